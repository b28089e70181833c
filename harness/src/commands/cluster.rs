//! `chaosbank cluster up|down`: a cluster to poke at by hand.
use anyhow::Context;
use chaosbank::docker::Engine;
use chaosbank::reaper::{self, Sweep};
use chaosbank::service::{Engines, ImageSource, KafkaImpl, RocketMqImpl};
use chaosbank::{Cluster, Service};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `chaosbank cluster up|down`.
#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Start the engines, print how to reach each, and exit leaving them running.
    ///
    /// The cluster is labelled chaosbank.keep=1, so later runs do not reap it; remove it
    /// with `chaosbank cluster down`. Ctrl-C while it starts removes what was started.
    /// A service can run a ready-made image instead of a built one:
    /// CHAOSBANK_IMAGE_POSTGRES=postgres:15, CHAOSBANK_IMAGE_MARIADB=mariadb:10.11, …
    #[command(after_help = "Examples:\n  chaosbank cluster up\n  \
        chaosbank cluster up --services postgres,mariadb\n  \
        CHAOSBANK_IMAGE_POSTGRES=postgres:15 chaosbank cluster up -s postgres")]
    Up(UpArgs),
    /// Remove kept clusters and every leftover of killed runs.
    #[command(after_help = "Examples:\n  chaosbank cluster down\n  chaosbank cluster down --all")]
    Down(DownArgs),
}

/// Flags of `chaosbank cluster up`.
#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Services to start, comma-separated: postgres, mariadb, kafka, rocketmq.
    #[arg(long, short, value_delimiter = ',', default_value = "postgres,mariadb,kafka,rocketmq",
          value_parser = parse_service)]
    pub services: Vec<Service>,
    /// The Kafka implementation: apache (Apache Kafka 4) or tansu.
    #[arg(long, default_value = "apache", value_parser = KafkaImpl::parse)]
    pub kafka: KafkaImpl,
    /// The RocketMQ implementation: apache (Apache RocketMQ 5) or rust (rocketmq-rust).
    #[arg(long, default_value = "apache", value_parser = RocketMqImpl::parse)]
    pub rocketmq: RocketMqImpl,
    /// Where the engines' images come from: built (here, from docker/) or official
    /// (postgres:15, mariadb:10.11, apache/kafka:4.1.1, pulled from Docker Hub or from
    /// CHAOSBANK_REGISTRY=host:port; apache/rocketmq:5.3.3 too).
    #[arg(long, default_value = "built", value_parser = ImageSource::parse)]
    pub images: ImageSource,
    /// Seconds each node has to answer its protocol before the start is abandoned.
    #[arg(long, default_value_t = 180)]
    pub ready_timeout: u64,
    /// Print the endpoints as one JSON array instead of text.
    #[arg(long, default_value_t = false)]
    pub json: bool,
}

/// Flags of `chaosbank cluster down`.
#[derive(clap::Args, Debug)]
pub struct DownArgs {
    /// Also remove runs whose harness is still running (e.g. a test suite in progress).
    #[arg(long, default_value_t = false)]
    pub all: bool,
}

fn parse_service(s: &str) -> Result<Service, String> {
    Service::parse(s)
        .ok_or_else(|| format!("unknown service {s:?}; use postgres, mariadb, kafka or rocketmq"))
}

/// Runs `chaosbank cluster …`.
pub fn run(cmd: ClusterCommand) -> ExitCode {
    match cmd {
        ClusterCommand::Up(args) => super::block_on(up(args)),
        ClusterCommand::Down(args) => super::block_on(down(args)),
    }
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let mut builder = Cluster::builder()
        .engines(Engines {
            kafka: args.kafka,
            rocketmq: args.rocketmq,
            images: args.images,
            ..Engines::default()
        })
        .keep(true)
        .ready_timeout(Duration::from_secs(args.ready_timeout));
    for s in &args.services {
        builder = builder.service(*s);
    }
    // Ctrl-C drops the start future, and with it the half-built cluster.
    let cluster = tokio::select! {
        c = builder.start() => c.context("starting the cluster")?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: removing what was started");
            return Ok(ExitCode::from(130));
        }
    };
    let endpoints = cluster.endpoints();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&endpoints)?);
    } else {
        println!(
            "cluster {} up in {:.1} s (network {})",
            cluster.run_id(),
            start.elapsed().as_secs_f64(),
            cluster.network()
        );
        for e in &endpoints {
            let what = cluster.engine_version(&e.node).await.unwrap_or_default();
            println!(
                "  {:<8} {:<16} {:<28} {}",
                e.node,
                e.addr(),
                what,
                e.how_to_reach()
            );
        }
        println!("remove it with: chaosbank cluster down");
    }
    cluster.detach();
    Ok(ExitCode::SUCCESS)
}

async fn down(args: DownArgs) -> anyhow::Result<ExitCode> {
    let engine = Engine::connect().await?;
    let sweep = if args.all {
        Sweep::Everything
    } else {
        Sweep::OrphansAndKept
    };
    let reaped = reaper::sweep(&engine, sweep)
        .await
        .context("removing chaosbank containers and networks")?;
    for c in &reaped.containers {
        println!("removed container {c}");
    }
    for n in &reaped.networks {
        println!("removed network {n}");
    }
    if reaped.is_empty() {
        println!("nothing to remove");
    }
    Ok(ExitCode::SUCCESS)
}
