//! Official images pulled from a real registry: Debian's `docker-registry` on 127.0.0.1,
//! holding the images chaosbank builds under the official names (`postgres:15`,
//! `mariadb:10.11`, `apache/kafka:4.1.1`, `apache/rocketmq:5.3.3`), so that `--images
//! official` runs its whole path here: the pull through the engine API, and each engine
//! configured the way its official image's documentation says (Apache Kafka by its
//! `KAFKA_*` environment, Apache RocketMQ by `sh mqnamesrv` and `sh mqbroker -c CONF`).

use chaosbank::cluster::Cluster;
use chaosbank::service::{Engines, ImageSource, Service};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use workloads::clients::kafka;

/// The registry process, its storage, and the tags the test made: all removed on drop,
/// whatever happened.
struct Registry {
    child: Child,
    dir: std::path::PathBuf,
    addr: String,
    tags: Vec<String>,
}

impl Registry {
    fn start() -> Registry {
        assert!(
            std::path::Path::new("/usr/bin/docker-registry").exists(),
            "this test needs Debian's docker-registry: run `bash docker/setup.sh --tests`"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let dir = std::env::temp_dir().join(format!("chaosbank-registry-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).expect("the registry's folder");
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            ),
        )
        .expect("the registry's config");
        let child = Command::new("/usr/bin/docker-registry")
            .args(["serve", config.to_str().expect("a UTF-8 path")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry {
            child,
            dir,
            addr,
            tags: Vec::new(),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(&registry.addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the registry did not listen on {} within 20 s",
                registry.addr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    fn docker(args: &[&str]) {
        let out = Command::new("docker")
            .args(args)
            .output()
            .expect("docker runs");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Pushes `local` as `<registry>/<name>` and removes that tag here, so the cluster
    /// has to pull it.
    fn publish(&mut self, local: &str, name: &str) -> String {
        let tag = format!("{}/{name}", self.addr);
        Self::docker(&["tag", local, &tag]);
        self.tags.push(tag.clone());
        Self::docker(&["push", &tag]);
        Self::docker(&["rmi", &tag]);
        tag
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for tag in &self.tags {
            let _ = Command::new("docker")
                .args(["rmi", tag])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn present(reference: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", reference])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn official_images_are_pulled_from_a_registry_and_configured_their_way() {
    let engine = chaosbank_tests::engine().await;
    let mut registry = Registry::start();
    let mut pushed = Vec::new();
    for (service, name) in [
        (Service::Postgres, "postgres:15"),
        (Service::Mariadb, "mariadb:10.11"),
        (Service::Kafka, "apache/kafka:4.1.1"),
        (Service::RocketMq, "apache/rocketmq:5.3.3"),
    ] {
        let built = chaosbank::images::ensure(&engine, service.image(), &Default::default())
            .await
            .expect("the image builds");
        let tag = registry.publish(&built.reference, name);
        assert!(
            !present(&tag),
            "{tag} is still here: the pull would not run"
        );
        pushed.push((service, tag));
    }
    let cluster = Cluster::builder()
        .engines(Engines {
            images: ImageSource::Official,
            ..Engines::default()
        })
        .registry(registry.addr.clone())
        .service(Service::Postgres)
        .service(Service::Mariadb)
        .service(Service::Kafka)
        .service(Service::RocketMq)
        .start()
        .await
        .expect("the cluster starts from the pulled official images");
    for (service, tag) in &pushed {
        assert!(present(tag), "{tag} was not pulled");
        for node in service.nodes() {
            assert_eq!(&cluster.node(node.name()).expect("the node").image, tag);
        }
    }
    let version = cluster.engine_version("kafka").await.unwrap_or_default();
    assert!(version.contains("Apache Kafka 4.1.1"), "{version}");
    // The RocketMQ broker, started by `sh mqbroker -c` from the harness's broker.conf,
    // registered with the name server (`sh mqnamesrv`): the cluster's readiness asks
    // the name server for its route.
    let version = cluster.engine_version("broker").await.unwrap_or_default();
    assert!(version.contains("Apache RocketMQ 5.3.3"), "{version}");
    // Configured by the official image's KAFKA_* environment, it serves: a record sent
    // is read back.
    let bootstrap = cluster.endpoint("kafka").expect("kafka").addr();
    kafka::create_topic(&bootstrap, "official", 1)
        .await
        .expect("a topic");
    let producer = kafka::Producer::connect(&bootstrap, true).expect("a producer");
    producer
        .send("official", b"1", br#"{"id":1}"#)
        .await
        .expect("a record sent");
    let log = tokio::task::spawn_blocking(move || {
        kafka::read_log(
            &bootstrap,
            "official",
            0,
            kafka::Isolation::ReadCommitted,
            Duration::from_secs(30),
        )
    })
    .await
    .expect("the reader")
    .expect("the log read back");
    assert_eq!(log.records.len(), 1);
    cluster.down().await.expect("the cluster is removed");
    drop(registry);
    for (_, tag) in &pushed {
        assert!(!present(tag), "{tag} was left behind");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_from_a_registry_that_is_down_names_the_image_and_the_registry() {
    let _engine = chaosbank_tests::engine().await;
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let started = Cluster::builder()
        .engines(Engines {
            images: ImageSource::Official,
            ..Engines::default()
        })
        .registry(addr.clone())
        .service(Service::Postgres)
        .start()
        .await;
    let Err(err) = started else {
        panic!("a cluster started without its image");
    };
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!("{addr}/postgres:15")) && text.contains(&addr),
        "{text}"
    );
}
