//! Clusters: each engine starts and answers its protocol; ports are on 127.0.0.1 only;
//! everything is labelled; passwords are random; teardown leaves nothing.

use chaosbank::labels;
use chaosbank::{Cluster, NodeKind};
use chaosbank_tests::{assert_gone, engine, Sql};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn databases_start_answer_sql_and_leave_nothing() {
    let engine = engine().await;
    let start = Instant::now();
    let cluster = Cluster::builder()
        .postgres()
        .mariadb()
        .start()
        .await
        .expect("cluster starts");
    eprintln!("postgres + mariadb up in {:.1?}", start.elapsed());
    let run = cluster.run_id().to_string();
    assert_eq!(cluster.nodes(), vec!["mariadb", "postgres"]);

    for node in ["postgres", "mariadb"] {
        let e = cluster.endpoint(node).unwrap();
        assert_eq!(e.host, "127.0.0.1");
        assert_eq!(e.password.as_ref().map(String::len), Some(24));
        let mut c = Sql::connect(&e, Duration::from_secs(10)).await.unwrap();
        c.exec("CREATE TABLE t (id BIGINT PRIMARY KEY)")
            .await
            .unwrap();
        c.exec("INSERT INTO t VALUES (41), (1)").await.unwrap();
        assert_eq!(c.scalar("SELECT MAX(id) FROM t").await.unwrap(), 41);
    }

    // Every container: labelled, published on 127.0.0.1 only, on the run's network.
    let containers = engine
        .containers_labelled(&[(labels::RUN, &run)])
        .await
        .unwrap();
    assert_eq!(containers.len(), 2);
    for c in &containers {
        let l = c.labels.clone().unwrap_or_default();
        assert_eq!(l.get(labels::CHAOSBANK).map(String::as_str), Some("1"));
        assert_eq!(l.get(labels::PID), Some(&std::process::id().to_string()));
        assert_eq!(l.get(labels::KEEP).map(String::as_str), Some("0"));
        for p in c.ports.clone().unwrap_or_default() {
            if p.public_port.is_some() {
                assert_eq!(p.ip.as_deref(), Some("127.0.0.1"), "{p:?}");
            }
        }
    }
    assert_eq!(
        engine
            .networks_labelled(&[(labels::RUN, &run)])
            .await
            .unwrap()
            .len(),
        1
    );

    cluster.down().await.expect("teardown");
    assert_gone(&engine, &run, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_differ_between_runs_and_a_dropped_cluster_is_removed() {
    let engine = engine().await;
    let a = Cluster::builder().postgres().start().await.expect("first");
    let b = Cluster::builder().postgres().start().await.expect("second");
    let (pa, pb) = (
        a.endpoint("postgres").unwrap().password,
        b.endpoint("postgres").unwrap().password,
    );
    assert_ne!(pa, pb);
    assert_ne!(a.run_id(), b.run_id());
    let (ra, rb) = (a.run_id().to_string(), b.run_id().to_string());
    drop(a); // cleanup follows ownership
    assert_gone(&engine, &ra, Duration::ZERO).await;
    b.down().await.unwrap();
    assert_gone(&engine, &rb, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_image_replaces_the_built_one() {
    let engine = engine().await;
    // Stand-in for `postgres:15` (there is no registry here): the built image, retagged.
    let built = chaosbank::images::ensure(&engine, "postgres", &Default::default())
        .await
        .unwrap();
    let tag = format!("chaosbank-test/postgres-official:{}", std::process::id());
    let ok = std::process::Command::new("docker")
        .args(["tag", &built.reference, &tag])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let cluster = Cluster::builder()
        .image(chaosbank::Service::Postgres, tag.clone())
        .start()
        .await
        .expect("starts from the named image");
    assert_eq!(cluster.node("postgres").unwrap().image, tag);
    cluster.down().await.unwrap();
    let _ = std::process::Command::new("docker")
        .args(["rmi", &tag])
        .status();
}

#[tokio::test(flavor = "multi_thread")]
async fn brokers_answer_their_protocols() {
    let engine = engine().await;
    let b = Cluster::builder()
        .ready_timeout(Duration::from_secs(90))
        .kafka()
        .rocketmq();
    let want = ["kafka", "broker", "namesrv"];
    let start = Instant::now();
    let cluster = b.start().await.expect("brokers start");
    eprintln!("{want:?} up in {:.1?}", start.elapsed());
    let run = cluster.run_id().to_string();
    {
        let k = cluster.endpoint("kafka").expect("a kafka endpoint");
        let brokers = chaosbank::probe::kafka::probe(k.port)
            .await
            .expect("metadata");
        assert!(
            brokers
                .iter()
                .any(|b| b.host == "127.0.0.1" && b.port == i32::from(k.port)),
            "kafka advertises {brokers:?}, expected 127.0.0.1:{}",
            k.port
        );
    }
    {
        let ns = cluster.endpoint("namesrv").expect("a namesrv endpoint");
        let br = cluster.endpoint("broker").expect("a broker endpoint");
        assert_eq!(br.kind, NodeKind::Broker);
        let r = chaosbank::probe::rocketmq::probe(ns.port, Some(br.port))
            .await
            .expect("broker registered");
        assert!(
            r.body.contains(&format!("127.0.0.1:{}", br.port)),
            "{}",
            r.body
        );
    }
    cluster.down().await.unwrap();
    assert_gone(&engine, &run, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_down_engine_is_a_clear_error() {
    // A socket nobody listens on: the error names it and says how to start an engine.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "engine_down_child",
            "--nocapture",
            "--include-ignored",
        ])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("unix:///nonexistent/docker.sock"), "{text}");
    assert!(text.contains("docker/setup.sh"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by a_down_engine_is_a_clear_error with DOCKER_HOST pointing nowhere"]
async fn engine_down_child() {
    let e = chaosbank::docker::Engine::connect().await.unwrap_err();
    println!("{e}");
}
