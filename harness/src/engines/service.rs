//! What each engine needs to start and to be called ready, testcontainers-style: its
//! image recipe, its nodes, their environment and ports, and the protocol probe that
//! says a node serves. The image contract is in `docker/CONTRACT.md`.

use crate::probe::{self, NotReady, SqlTarget};
use serde::Serialize;
use std::fmt;

/// An engine chaosbank can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    /// PostgreSQL 15: node `postgres`.
    Postgres,
    /// MariaDB 10.11: node `mariadb`.
    Mariadb,
    /// A Kafka broker (Apache Kafka, or tansu): node `kafka`.
    Kafka,
    /// RocketMQ (Apache, or the Rust implementation): nodes `namesrv` and `broker`.
    RocketMq,
}

/// Which implementation serves the Kafka API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KafkaImpl {
    /// Apache Kafka 4 (KRaft), image `kafka`: transactions work.
    #[default]
    Apache,
    /// tansu 0.6, image `tansu`: no transactions; needs `docker/build-brokers.sh`.
    Tansu,
}

/// Which implementation of RocketMQ runs the name server and broker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RocketMqImpl {
    /// Apache RocketMQ 5, image `rocketmq`.
    #[default]
    Apache,
    /// rocketmq-rust 1.0, image `rocketmq-rust`; needs `docker/build-brokers.sh`.
    Rust,
}

/// Where the engines' images come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageSource {
    /// Built here from `docker/<name>` (the default).
    #[default]
    Built,
    /// The projects' official images (`postgres:15`, `mariadb:10.11`,
    /// `apache/kafka:4.1.1`, `apache/rocketmq:5.3.3`), pulled through the engine from Docker Hub or from
    /// `CHAOSBANK_REGISTRY`, and configured as their own documentation says.
    Official,
}

impl ImageSource {
    /// Parses `built` or `official`.
    pub fn parse(s: &str) -> Result<ImageSource, String> {
        match s {
            "built" => Ok(ImageSource::Built),
            "official" => Ok(ImageSource::Official),
            _ => Err(format!("unknown image source {s:?}; use built or official")),
        }
    }
}

/// The registry official images are pulled from instead of Docker Hub, `host:port`.
pub const REGISTRY_ENV: &str = "CHAOSBANK_REGISTRY";

impl KafkaImpl {
    /// Parses `apache` or `tansu`.
    pub fn parse(s: &str) -> Result<KafkaImpl, String> {
        match s {
            "apache" => Ok(KafkaImpl::Apache),
            "tansu" => Ok(KafkaImpl::Tansu),
            _ => Err(format!(
                "unknown Kafka implementation {s:?}; use apache or tansu"
            )),
        }
    }

    /// `apache` or `tansu`.
    pub fn name(self) -> &'static str {
        match self {
            KafkaImpl::Apache => "apache",
            KafkaImpl::Tansu => "tansu",
        }
    }

    /// True when the broker implements Kafka transactions.
    pub fn has_transactions(self) -> bool {
        self == KafkaImpl::Apache
    }
}

impl RocketMqImpl {
    /// Parses `apache` or `rust`.
    pub fn parse(s: &str) -> Result<RocketMqImpl, String> {
        match s {
            "apache" => Ok(RocketMqImpl::Apache),
            "rust" => Ok(RocketMqImpl::Rust),
            _ => Err(format!(
                "unknown RocketMQ implementation {s:?}; use apache or rust"
            )),
        }
    }

    /// `apache` or `rust`.
    pub fn name(self) -> &'static str {
        match self {
            RocketMqImpl::Apache => "apache",
            RocketMqImpl::Rust => "rust",
        }
    }
}

/// The implementations a cluster runs for the brokers; the default is Apache's for both.
/// Also the `--kafka`, `--rocketmq` and `--images` flags of the run settings
/// ([`crate::RunConfig`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize, clap::Args,
)]
pub struct Engines {
    /// The Kafka implementation: apache (Apache Kafka 4, the default) or tansu (needs
    /// `docker/setup.sh --rust-brokers`).
    #[serde(default)]
    #[arg(long, default_value = "apache", value_parser = KafkaImpl::parse)]
    pub kafka: KafkaImpl,
    /// The RocketMQ implementation: apache (Apache RocketMQ 5, the default) or rust
    /// (rocketmq-rust; needs `docker/setup.sh --rust-brokers`).
    #[serde(default)]
    #[arg(long, default_value = "apache", value_parser = RocketMqImpl::parse)]
    pub rocketmq: RocketMqImpl,
    /// Where the engines' images come from: built (here, from docker/) or official
    /// (postgres:15, mariadb:10.11, apache/kafka:4.1.1, pulled from Docker Hub or from
    /// CHAOSBANK_REGISTRY=host:port; apache/rocketmq:5.3.3 too).
    #[serde(default)]
    #[arg(long, default_value = "built", value_parser = ImageSource::parse)]
    pub images: ImageSource,
    /// The Debezium line of the Kafka Connect worker (outbox-cdc, and a service with
    /// connectors): 3.7 (the default, the newest served) or 3.2 (an older line, without
    /// offset.mismatch.strategy; `docker/setup.sh --debezium-matrix` resolves its jars).
    #[serde(default)]
    #[arg(long, default_value = "3.7", value_parser = Debezium::parse)]
    pub debezium: Debezium,
}

/// The Debezium release line the worker runs (`--debezium`): each has its own image,
/// Debezium on the Kafka Connect it is built against (see `docker/CONTRACT.md`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Debezium {
    /// 3.7 (3.7.1.Final on Kafka Connect 4.3.1), image `connect`: the newest served.
    #[default]
    #[serde(rename = "3.7")]
    V3_7,
    /// 3.2 (3.2.3.Final on Kafka Connect 3.9.1), image `connect-3.2`: an older line,
    /// without `offset.mismatch.strategy`.
    #[serde(rename = "3.2")]
    V3_2,
}

impl Debezium {
    /// Every line, newest first.
    pub const ALL: [Debezium; 2] = [Debezium::V3_7, Debezium::V3_2];

    /// Parses `3.7` or `3.2` (a full version of the line, `3.2.3.Final`, too).
    pub fn parse(s: &str) -> Result<Debezium, String> {
        Debezium::ALL
            .into_iter()
            .find(|d| s == d.name() || s.strip_prefix(d.name()).is_some_and(|r| r.starts_with('.')))
            .ok_or_else(|| format!("unknown Debezium line {s:?}; use 3.7 or 3.2"))
    }

    /// `3.7` or `3.2`.
    pub fn name(self) -> &'static str {
        match self {
            Debezium::V3_7 => "3.7",
            Debezium::V3_2 => "3.2",
        }
    }

    /// The image (and recipe under `docker/`) that runs this line.
    pub fn image(self) -> &'static str {
        match self {
            Debezium::V3_7 => "connect",
            Debezium::V3_2 => "connect-3.2",
        }
    }

    /// The environment variable naming a ready-made image for this line:
    /// `CHAOSBANK_IMAGE_CONNECT`, `CHAOSBANK_IMAGE_CONNECT_3_2`.
    pub fn image_env(self) -> String {
        format!(
            "CHAOSBANK_IMAGE_{}",
            self.image().to_uppercase().replace(['-', '.'], "_")
        )
    }

    /// True when the connector has `offset.mismatch.strategy` (absent from 3.2.3 and
    /// 3.3.1, present in 3.7.1), so `--slot-mismatch trust_offset` means something.
    pub fn has_mismatch_strategy(self) -> bool {
        self == Debezium::V3_7
    }
}

impl Engines {
    /// The image recipe (`docker/<name>`) and image name (`chaosbank/<name>`) that runs
    /// service `s` with these implementations.
    pub fn image(&self, s: Service) -> &'static str {
        match (s, self.kafka, self.rocketmq) {
            (Service::Postgres, ..) => "postgres",
            (Service::Mariadb, ..) => "mariadb",
            (Service::Kafka, KafkaImpl::Apache, _) => "kafka",
            (Service::Kafka, KafkaImpl::Tansu, _) => "tansu",
            (Service::RocketMq, _, RocketMqImpl::Apache) => "rocketmq",
            (Service::RocketMq, _, RocketMqImpl::Rust) => "rocketmq-rust",
        }
    }

    /// The environment variable naming a ready-made image for service `s` with these
    /// implementations: `CHAOSBANK_IMAGE_` and the image name in capitals
    /// (`CHAOSBANK_IMAGE_KAFKA`, `CHAOSBANK_IMAGE_TANSU`, `CHAOSBANK_IMAGE_ROCKETMQ_RUST`).
    pub fn image_env(&self, s: Service) -> String {
        format!(
            "CHAOSBANK_IMAGE_{}",
            self.image(s).to_uppercase().replace('-', "_")
        )
    }

    /// The official image of service `s` (prefixed by `registry/` when given), or an
    /// error naming why there is none: the Rust brokers have no official image, and
    /// Apache RocketMQ's is not supported yet.
    pub fn official_image(&self, s: Service, registry: Option<&str>) -> Result<String, String> {
        let name = match self.image(s) {
            "postgres" => "postgres:15",
            "mariadb" => "mariadb:10.11",
            "kafka" => "apache/kafka:4.1.1",
            "rocketmq" => "apache/rocketmq:5.3.3",
            other => {
                return Err(format!(
                    "{other} has no official image: --images official runs Apache Kafka and \
                     Apache RocketMQ only"
                ))
            }
        };
        Ok(match registry.filter(|r| !r.is_empty()) {
            Some(r) => format!("{}/{name}", r.trim_end_matches('/')),
            None => name.to_string(),
        })
    }

    /// A person's name for the implementation behind service `s`, e.g. `Apache Kafka`.
    pub fn describe(&self, s: Service) -> &'static str {
        match self.image(s) {
            "postgres" => "PostgreSQL",
            "mariadb" => "MariaDB",
            "kafka" => "Apache Kafka",
            "tansu" => "tansu",
            "rocketmq" => "Apache RocketMQ",
            _ => "rocketmq-rust",
        }
    }
}

impl Service {
    /// Every service, in start order.
    pub const ALL: [Service; 4] = [
        Service::Postgres,
        Service::Mariadb,
        Service::Kafka,
        Service::RocketMq,
    ];

    /// The image recipe (`docker/<name>`) and image name (`chaosbank/<name>`) of this
    /// service with the default [`Engines`] (Apache Kafka, Apache RocketMQ).
    pub fn image(self) -> &'static str {
        Engines::default().image(self)
    }

    /// The environment variable that names a ready-made image to use instead of building
    /// one with the default [`Engines`], e.g. `CHAOSBANK_IMAGE_POSTGRES=postgres:15`.
    pub fn image_env(self) -> String {
        Engines::default().image_env(self)
    }

    /// The nodes this service runs, in start order.
    pub fn nodes(self) -> &'static [NodeKind] {
        match self {
            Service::Postgres => &[NodeKind::Postgres],
            Service::Mariadb => &[NodeKind::Mariadb],
            Service::Kafka => &[NodeKind::Kafka],
            Service::RocketMq => &[NodeKind::Namesrv, NodeKind::Broker],
        }
    }

    /// Parses a service name as the CLI spells it (`postgres`, `mariadb`, `kafka`,
    /// `rocketmq`).
    pub fn parse(name: &str) -> Option<Service> {
        match name {
            "postgres" => Some(Service::Postgres),
            "mariadb" => Some(Service::Mariadb),
            "kafka" | "kafka-api" | "tansu" => Some(Service::Kafka),
            "rocketmq" | "rocketmq-rust" => Some(Service::RocketMq),
            _ => None,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Postgres => "postgres",
            Service::Mariadb => "mariadb",
            Service::Kafka => "kafka",
            Service::RocketMq => "rocketmq",
        })
    }
}

/// One container's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeKind {
    /// The PostgreSQL server.
    Postgres,
    /// The MariaDB server.
    Mariadb,
    /// The Kafka-API broker.
    Kafka,
    /// The RocketMQ name server.
    Namesrv,
    /// The RocketMQ broker.
    Broker,
    /// A scheme's producer process (the node image, `chaosbank node`).
    Producer,
    /// A scheme's outbox relay process (the node image).
    Relay,
    /// A scheme's consumer process (the node image).
    Consumer,
    /// A process of a user's service under test (`--service`): its node is named as the
    /// manifest names it, not after its kind.
    Service,
}

/// The user name chaosbank creates in both databases (and the database's name).
pub const SQL_USER: &str = "chaosbank";
/// The RocketMQ name server's port inside the run network.
pub const NAMESRV_PORT: u16 = 9876;
/// The control port of the node containers ([`workloads::node::CONTROL_PORT`]).
pub const CONTROL_PORT: u16 = workloads::node::CONTROL_PORT;

impl NodeKind {
    /// The node's name: its network alias and the last part of its container name.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Postgres => "postgres",
            NodeKind::Mariadb => "mariadb",
            NodeKind::Kafka => "kafka",
            NodeKind::Namesrv => "namesrv",
            NodeKind::Broker => "broker",
            NodeKind::Producer => "producer",
            NodeKind::Relay => "relay",
            NodeKind::Consumer => "consumer",
            NodeKind::Service => "service",
        }
    }

    /// The node kind that runs a scheme's role.
    pub fn of_role(role: workloads::system::Role) -> NodeKind {
        match role {
            workloads::system::Role::Producer => NodeKind::Producer,
            workloads::system::Role::Relay => NodeKind::Relay,
            workloads::system::Role::Consumer => NodeKind::Consumer,
        }
    }

    /// True for the node containers that run chaosbank's own processes (the schemes'
    /// producers, relays and consumers) rather than an engine.
    pub fn is_app(self) -> bool {
        matches!(
            self,
            NodeKind::Producer | NodeKind::Relay | NodeKind::Consumer | NodeKind::Service
        )
    }

    /// The port the server listens on inside the container, given the host port:
    /// brokers that advertise their address listen on the host port itself.
    pub fn container_port(self, host_port: u16) -> u16 {
        match self {
            NodeKind::Postgres => 5432,
            NodeKind::Mariadb => 3306,
            NodeKind::Namesrv => NAMESRV_PORT,
            NodeKind::Kafka | NodeKind::Broker => host_port,
            NodeKind::Producer | NodeKind::Relay | NodeKind::Consumer | NodeKind::Service => {
                CONTROL_PORT
            }
        }
    }

    /// The container's command (the RocketMQ image runs either role).
    pub fn cmd(self) -> Option<Vec<String>> {
        match self {
            NodeKind::Namesrv => Some(vec!["namesrv".to_string()]),
            NodeKind::Broker => Some(vec!["broker".to_string()]),
            NodeKind::Producer | NodeKind::Relay | NodeKind::Consumer | NodeKind::Service => {
                Some(vec!["node".to_string()])
            }
            _ => None,
        }
    }

    /// The container's command with the official image: Apache RocketMQ's runs
    /// `sh mqnamesrv`, and `sh mqbroker -n NAMESRV -c CONF` with a broker.conf written from
    /// `BROKER_CONF` first (see [`NodeKind::official_env`]). `None`: the image's own.
    pub fn official_cmd(self) -> Option<Vec<String>> {
        match self {
            NodeKind::Namesrv => Some(vec!["sh".to_string(), "mqnamesrv".to_string()]),
            NodeKind::Broker => Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                "printf '%s\\n' \"$BROKER_CONF\" > /tmp/broker.conf && \
                 exec sh mqbroker -n \"$NAMESRV_ADDR\" -c /tmp/broker.conf"
                    .to_string(),
            ]),
            _ => None,
        }
    }

    /// The broker.conf of Apache RocketMQ's official image, listening on `port`: the
    /// settings chaosbank's own image renders (docker/CONTRACT.md), its store in the
    /// image's default place.
    pub fn official_broker_conf(port: u16) -> String {
        let ha = if port < u16::MAX { port + 1 } else { port - 1 };
        [
            "brokerClusterName=DefaultCluster".to_string(),
            "brokerName=broker-a".to_string(),
            "brokerId=0".to_string(),
            "brokerRole=ASYNC_MASTER".to_string(),
            "brokerIP1=127.0.0.1".to_string(),
            format!("listenPort={port}"),
            format!("haListenPort={ha}"),
            "autoCreateTopicEnable=true".to_string(),
            "flushDiskType=ASYNC_FLUSH".to_string(),
            "transactionTimeOut=3000".to_string(),
            "transactionCheckInterval=5000".to_string(),
            "transactionCheckMax=40".to_string(),
            "transactionOpBatchInterval=1000".to_string(),
            "channelExpiredTimeout=30000".to_string(),
            "registerNameServerPeriod=10000".to_string(),
            "mappedFileSizeCommitLog=16777216".to_string(),
            "mappedFileSizeConsumeQueue=600000".to_string(),
            "timerWheelEnable=false".to_string(),
            "maxHashSlotNum=50000".to_string(),
            "maxIndexNum=200000".to_string(),
            "diskMaxUsedSpaceRatio=95".to_string(),
        ]
        .join("\n")
    }

    /// The container's environment as the official image's documentation has it, where
    /// it differs from [`NodeKind::env`]: Apache Kafka's image renders every `KAFKA_X_Y`
    /// variable as the property `x.y`. `None`: the same as [`NodeKind::env`].
    pub fn official_env(self, host_port: u16) -> Option<Vec<String>> {
        let p = |k: &str, v: String| format!("{k}={v}");
        match self {
            NodeKind::Kafka => {
                let controller = if host_port < u16::MAX {
                    host_port + 1
                } else {
                    host_port - 1
                };
                Some(vec![
                    p("KAFKA_NODE_ID", "1".into()),
                    p("KAFKA_PROCESS_ROLES", "broker,controller".into()),
                    p(
                        "KAFKA_LISTENERS",
                        format!(
                            "PLAINTEXT://0.0.0.0:{host_port},CONTROLLER://127.0.0.1:{controller}"
                        ),
                    ),
                    p(
                        "KAFKA_ADVERTISED_LISTENERS",
                        format!("PLAINTEXT://127.0.0.1:{host_port}"),
                    ),
                    p("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".into()),
                    p(
                        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                        "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
                    ),
                    p(
                        "KAFKA_CONTROLLER_QUORUM_VOTERS",
                        format!("1@127.0.0.1:{controller}"),
                    ),
                    p("CLUSTER_ID", "Y2hhb3NiYW5rLWthZmthMQ".into()),
                    p("KAFKA_LOG_DIRS", "/var/lib/kafka/data".into()),
                    p("KAFKA_NUM_PARTITIONS", "1".into()),
                    p("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".into()),
                    p("KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS", "4".into()),
                    p("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1".into()),
                    p("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1".into()),
                    p("KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS", "4".into()),
                    p(
                        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
                        "1".into(),
                    ),
                    p("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1".into()),
                    p("KAFKA_MIN_INSYNC_REPLICAS", "1".into()),
                    p("KAFKA_DEFAULT_REPLICATION_FACTOR", "1".into()),
                    p("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".into()),
                    p("KAFKA_GROUP_CONSUMER_SESSION_TIMEOUT_MS", "10000".into()),
                    p("KAFKA_GROUP_CONSUMER_MIN_SESSION_TIMEOUT_MS", "6000".into()),
                    p(
                        "KAFKA_TRANSACTION_ABORT_TIMED_OUT_TRANSACTION_CLEANUP_INTERVAL_MS",
                        "5000".into(),
                    ),
                    p("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m".into()),
                ])
            }
            NodeKind::Namesrv => Some(vec![
                p("CHAOSBANK_OFFICIAL_IMAGE", "1".into()),
                p("JAVA_OPT_EXT", "-Xms128m -Xmx256m".into()),
            ]),
            NodeKind::Broker => Some(vec![
                p("CHAOSBANK_OFFICIAL_IMAGE", "1".into()),
                p(
                    "NAMESRV_ADDR",
                    format!("{}:{NAMESRV_PORT}", NodeKind::Namesrv.name()),
                ),
                p(
                    "JAVA_OPT_EXT",
                    "-Xms256m -Xmx512m -XX:MaxDirectMemorySize=256m".into(),
                ),
                p("BROKER_CONF", NodeKind::official_broker_conf(host_port)),
            ]),
            _ => None,
        }
    }

    /// The container's environment, per the image contract.
    pub fn env(self, host_port: u16, password: &str, root_password: &str) -> Vec<String> {
        let p = |k: &str, v: &str| format!("{k}={v}");
        match self {
            NodeKind::Postgres => vec![
                p("POSTGRES_USER", SQL_USER),
                p("POSTGRES_PASSWORD", password),
                p("POSTGRES_DB", SQL_USER),
            ],
            NodeKind::Mariadb => vec![
                p("MARIADB_USER", SQL_USER),
                p("MARIADB_PASSWORD", password),
                p("MARIADB_DATABASE", SQL_USER),
                p("MARIADB_ROOT_PASSWORD", root_password),
            ],
            NodeKind::Kafka => vec![
                p("KAFKA_PORT", &host_port.to_string()),
                p("KAFKA_ADVERTISED_HOST", "127.0.0.1"),
            ],
            NodeKind::Namesrv => vec![p("NAMESRV_PORT", &NAMESRV_PORT.to_string())],
            NodeKind::Broker => vec![
                p("BROKER_PORT", &host_port.to_string()),
                p("BROKER_IP", "127.0.0.1"),
                p(
                    "NAMESRV_ADDR",
                    &format!("{}:{NAMESRV_PORT}", NodeKind::Namesrv.name()),
                ),
            ],
            // Their whole configuration comes in `CHAOSBANK_NODE_CONFIG`.
            NodeKind::Producer | NodeKind::Relay | NodeKind::Consumer | NodeKind::Service => {
                Vec::new()
            }
        }
    }
}

/// How to reach one node from the host: always 127.0.0.1 and a published port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// The node's name.
    pub node: String,
    /// Its role.
    pub kind: NodeKind,
    /// Always `127.0.0.1`.
    pub host: String,
    /// The published port.
    pub port: u16,
    /// SQL user, for databases.
    pub user: Option<String>,
    /// SQL password (random per run), for databases.
    pub password: Option<String>,
    /// Database name, for databases.
    pub database: Option<String>,
}

impl Endpoint {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A URL a client library takes: `postgres://…`, `mysql://…`, or `host:port` for
    /// brokers (Kafka bootstrap server, RocketMQ name server or broker address).
    pub fn url(&self) -> String {
        let user = self.user.as_deref().unwrap_or_default();
        let pass = self.password.as_deref().unwrap_or_default();
        let db = self.database.as_deref().unwrap_or_default();
        match self.kind {
            NodeKind::Postgres => format!("postgres://{user}:{pass}@{}/{db}", self.addr()),
            NodeKind::Mariadb => format!("mysql://{user}:{pass}@{}/{db}", self.addr()),
            _ => self.addr(),
        }
    }

    /// A line telling a person how to poke at this node by hand.
    pub fn how_to_reach(&self) -> String {
        let pass = self.password.as_deref().unwrap_or_default();
        let user = self.user.as_deref().unwrap_or_default();
        let db = self.database.as_deref().unwrap_or_default();
        match self.kind {
            NodeKind::Postgres => format!("psql '{}'", self.url()),
            NodeKind::Mariadb => format!(
                "mysql -h {} -P {} -u {user} -p'{pass}' {db}   # {}",
                self.host,
                self.port,
                self.url()
            ),
            NodeKind::Kafka => format!("kafka bootstrap server {}", self.addr()),
            NodeKind::Namesrv => format!("rocketmq name server {}", self.addr()),
            NodeKind::Broker => format!("rocketmq broker {}", self.addr()),
            NodeKind::Producer | NodeKind::Relay | NodeKind::Consumer => {
                format!("chaosbank {} control port {}", self.node, self.addr())
            }
            NodeKind::Service => {
                format!(
                    "service process {} (control port {})",
                    self.node,
                    self.addr()
                )
            }
        }
    }

    /// The SQL coordinates, for databases.
    pub fn sql(&self) -> Option<SqlTarget> {
        Some(SqlTarget {
            port: self.port,
            user: self.user.clone()?,
            password: self.password.clone()?,
            database: self.database.clone()?,
        })
    }
}

/// One readiness attempt for a node; `namesrv_port` is needed for a broker, which is
/// ready once the name server lists it.
pub async fn probe(e: &Endpoint, namesrv_port: Option<u16>) -> Result<(), NotReady> {
    let need_sql = || {
        e.sql()
            .ok_or_else(|| NotReady::Retry("endpoint has no credentials".to_string()))
    };
    match e.kind {
        NodeKind::Postgres => probe::postgres(&need_sql()?).await,
        NodeKind::Mariadb => probe::mysql(&need_sql()?).await,
        NodeKind::Kafka => probe::kafka::probe(e.port).await.map(drop),
        NodeKind::Namesrv => probe::rocketmq::probe(e.port, None).await.map(drop),
        NodeKind::Broker => {
            let ns = namesrv_port
                .ok_or_else(|| NotReady::Retry("no name server in this cluster".to_string()))?;
            probe::rocketmq::probe(ns, Some(e.port)).await.map(drop)
        }
        NodeKind::Producer | NodeKind::Relay | NodeKind::Consumer | NodeKind::Service => {
            probe::node(e.port).await
        }
    }
}
