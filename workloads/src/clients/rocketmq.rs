//! RocketMQ client (`rocketmq-client-rust` 1.0) for the `rocketmq` image.
//!
//! Every client object hangs off a [`Runtime`]: the client crate runs its network and
//! timer tasks on a runtime it owns (separate from the caller's tokio runtime). Call
//! [`Runtime::shutdown`] after shutting the producers and consumers down.
//!
//! Facts that matter to callers:
//! * transaction listeners are synchronous ([`TxHandler`]): the broker's check-back runs
//!   `check` on a client thread, so it must not block on the caller's async runtime;
//! * after a broker restart a producer is invisible to check-backs until its next
//!   heartbeat (every 10 s here); the image's check interval × max checks (200 s) covers that.
//! * the broker auto-creates topics on first send (autoCreateTopicEnable), so a consumer
//!   started before any send may see "route not found" warnings until the first send.

use std::any::Any;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use rocketmq_client_rust::{
    ClientConfig, ClientRuntime, ClientRuntimeConfig, ConsumeConcurrentlyContext,
    ConsumeConcurrentlyStatus, DefaultMQProducer, DefaultMQPushConsumer, LocalTransactionState,
    MQPushConsumer as _, MessageListenerConcurrently, TelemetryHandle, TransactionListener,
    TransactionMQProducer,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::common::message::MessageTrait;
use rocketmq_model::result::{SendResult, SendStatus};
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};

/// How often every client heartbeats the brokers: the shortest the client allows. A
/// killed client is dropped by the broker only after `channelExpiredTimeout` without a
/// heartbeat (the image sets 30 s); until then its queues stay assigned to it, and a
/// restarted producer is invisible to check-backs until its first heartbeat.
const HEARTBEAT_MS: u32 = 10_000;

fn client_config() -> ClientConfig {
    let mut c = ClientConfig::default();
    c.set_heartbeat_broker_interval(HEARTBEAT_MS);
    c
}

fn err(context: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{context}: {e}")
}

/// The runtime every RocketMQ client object of this process is built on.
pub struct Runtime {
    owner: RuntimeOwner,
    client: Arc<ClientRuntime>,
}

impl Runtime {
    /// `name` labels the runtime's threads.
    pub fn new(name: &str) -> Result<Self> {
        let mut config = RuntimeConfig {
            thread_name: format!("rocketmq-{name}"),
            ..Default::default()
        };
        // Push consumers run every message handler on the metadata-io blocking lane,
        // sized by default to two threads per core with a queue of eight per core: on
        // two cores, four handlers waiting on a database that is away fill it, and the
        // client then rejects consumes ("capacity exceeded") and sends the messages to
        // its retry topic, minutes late. Give it room.
        config.max_blocking_threads = config.max_blocking_threads.max(160);
        let lane = &mut config.blocking_lane_policies.metadata_io;
        lane.max_concurrency = lane.max_concurrency.max(128);
        lane.max_queue_depth = lane.max_queue_depth.max(4096);
        lane.queue_timeout = lane.queue_timeout.max(std::time::Duration::from_secs(60));
        // A handler waits out a database outage rather than handing the message back:
        // a send-back that fails (the consumer cut off) strands the message in this
        // client until it restarts.
        lane.task_timeout = lane.task_timeout.max(std::time::Duration::from_secs(600));
        let owner = RuntimeOwner::plan(config)
            .map_err(|e| err("planning the RocketMQ client runtime", e))?
            .build()
            .map_err(|e| err("building the RocketMQ client runtime", e))?;
        // A no-op telemetry handle: the client must not install a global tracing
        // subscriber (the harness owns that).
        let client = ClientRuntime::try_new(
            owner.root_context().component("client"),
            ClientRuntimeConfig::default(),
            TelemetryHandle::noop(),
        )
        .map_err(|e| err("creating the RocketMQ client runtime", e))?;
        Ok(Self { owner, client })
    }

    fn client(&self) -> Arc<ClientRuntime> {
        Arc::clone(&self.client)
    }

    /// Stops the client runtime's tasks. Shut producers and consumers down first.
    pub async fn shutdown(self) {
        let _ = self.client.shutdown().await;
        let _ = self.owner.shutdown_tasks().await;
        let _ = self.owner.shutdown_background();
    }
}

/// Where an acknowledged message was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub msg_id: String,
    pub queue_id: i32,
    pub queue_offset: u64,
    pub transaction_id: Option<String>,
}

fn sent_from(result: SendResult) -> Result<Sent> {
    if result.send_status != SendStatus::SendOk {
        return Err(anyhow!("send not stored OK: {}", result.send_status));
    }
    Ok(Sent {
        msg_id: result.msg_id.map(|m| m.to_string()).unwrap_or_default(),
        queue_id: result
            .message_queue
            .as_ref()
            .map(|q| q.queue_id())
            .unwrap_or(-1),
        queue_offset: result.queue_offset,
        transaction_id: result.transaction_id,
    })
}

fn message(topic: &str, key: &str, body: &[u8]) -> Message {
    Message::builder()
        .topic(topic)
        .key(key)
        .body_slice(body)
        .build_unchecked()
}

/// A plain producer (synchronous sends: each `send` returns once the broker stored it).
pub struct Producer {
    inner: DefaultMQProducer,
}

impl Producer {
    /// `namesrv` is `host:port` of the name server, e.g. `127.0.0.1:19876`.
    pub async fn start(rt: &Runtime, namesrv: &str, group: &str) -> Result<Self> {
        let mut inner = DefaultMQProducer::builder(rt.client())
            .client_config(client_config())
            .producer_group(group.to_owned())
            .name_server_addr(namesrv.to_owned())
            .build();
        inner
            .start()
            .await
            .map_err(|e| err("starting the RocketMQ producer", e))?;
        Ok(Self { inner })
    }

    /// Sends `body` with message key `key`; waits up to `timeout_ms` for the broker.
    pub async fn send(&self, topic: &str, key: &str, body: &[u8], timeout_ms: u64) -> Result<Sent> {
        let result = self
            .inner
            .send_with_timeout(message(topic, key, body), timeout_ms)
            .await
            .map_err(|e| err(&format!("sending to {topic}"), e))?
            .ok_or_else(|| anyhow!("sending to {topic}: no send result"))?;
        sent_from(result)
    }

    pub async fn shutdown(mut self) {
        self.inner.shutdown().await;
    }
}

/// One delivered message, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub topic: String,
    pub msg_id: String,
    pub key: Option<String>,
    pub body: Vec<u8>,
    pub queue_id: i32,
    pub queue_offset: i64,
    /// How many times the broker re-delivered it (0 on first delivery).
    pub reconsume_times: i32,
    pub transaction_id: Option<String>,
}

impl Delivered {
    fn from_ext(m: &MessageExt) -> Self {
        Self {
            topic: m.topic().to_string(),
            msg_id: m.msg_id().to_string(),
            key: m.get_keys().map(|k| k.to_string()),
            body: m.body().map(|b| b.to_vec()).unwrap_or_default(),
            queue_id: m.queue_id(),
            queue_offset: m.queue_offset(),
            reconsume_times: m.reconsume_times(),
            transaction_id: m.transaction_id().map(|t| t.to_string()),
        }
    }
}

struct Listener<F>(F);

impl<F> MessageListenerConcurrently for Listener<F>
where
    F: Fn(&Delivered) -> bool + Send + Sync + 'static,
{
    fn consume_message(
        &self,
        msgs: &[&MessageExt],
        _context: &ConsumeConcurrentlyContext,
    ) -> rocketmq_client_rust::ClientResult<ConsumeConcurrentlyStatus> {
        for m in msgs {
            if !(self.0)(&Delivered::from_ext(m)) {
                return Ok(ConsumeConcurrentlyStatus::ReconsumeLater);
            }
        }
        Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
    }
}

/// A clustering push consumer (one group shares the queues; offsets stored on the broker).
/// A new group starts from the first offset.
pub struct PushConsumer {
    inner: DefaultMQPushConsumer,
}

impl PushConsumer {
    /// Starts consuming `topic` (all tags). `handler` runs on a client thread for each
    /// message, one at a time per queue; returning `false` asks for redelivery later.
    pub async fn start<F>(
        rt: &Runtime,
        namesrv: &str,
        group: &str,
        topic: &str,
        handler: F,
    ) -> Result<Self>
    where
        F: Fn(&Delivered) -> bool + Send + Sync + 'static,
    {
        let mut inner = DefaultMQPushConsumer::builder(rt.client())
            .client_config(client_config())
            .consumer_group(group.to_owned())
            .name_server_addr(namesrv.to_owned())
            .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
            .consume_message_batch_max_size(1)
            .build();
        inner
            .subscribe(topic.to_owned(), "*")
            .await
            .map_err(|e| err(&format!("subscribing to {topic}"), e))?;
        inner.register_message_listener_concurrently(Listener(handler));
        inner
            .start()
            .await
            .map_err(|e| err("starting the RocketMQ consumer", e))?;
        Ok(Self { inner })
    }

    /// Like [`PushConsumer::start`], but hands each message to the returned channel and
    /// acknowledges it as soon as it is queued there: at-most-once past this point if
    /// the process dies first. For examples and tests that only watch a topic; the
    /// schemes' consumers acknowledge after their credit commits.
    pub async fn start_channel(
        rt: &Runtime,
        namesrv: &str,
        group: &str,
        topic: &str,
    ) -> Result<(Self, tokio::sync::mpsc::UnboundedReceiver<Delivered>)> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let consumer = Self::start(rt, namesrv, group, topic, move |d: &Delivered| {
            tx.send(d.clone()).is_ok()
        })
        .await?;
        Ok((consumer, rx))
    }

    pub async fn shutdown(mut self) {
        self.inner.shutdown().await;
    }
}

/// The outcome of a local transaction, as the broker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxDecision {
    Commit,
    Rollback,
    /// Not decided yet: the broker will ask again through [`TxHandler::check`].
    Unknown,
}

impl From<TxDecision> for LocalTransactionState {
    fn from(d: TxDecision) -> Self {
        match d {
            TxDecision::Commit => LocalTransactionState::CommitMessage,
            TxDecision::Rollback => LocalTransactionState::RollbackMessage,
            TxDecision::Unknown => LocalTransactionState::Unknown,
        }
    }
}

impl From<LocalTransactionState> for TxDecision {
    fn from(s: LocalTransactionState) -> Self {
        match s {
            LocalTransactionState::CommitMessage => TxDecision::Commit,
            LocalTransactionState::RollbackMessage => TxDecision::Rollback,
            LocalTransactionState::Unknown => TxDecision::Unknown,
        }
    }
}

/// The half message a transaction decision is asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HalfMessage {
    pub topic: String,
    pub key: Option<String>,
    pub body: Vec<u8>,
    pub transaction_id: Option<String>,
    /// When the producer made it (ms since the epoch, the producer's clock): the
    /// broker's stored `born_timestamp` in a check-back, `None` in `execute`. Unlike
    /// anything the producer kept in memory, it survives a producer restart.
    pub born_ms: Option<i64>,
}

/// The local side of a transactional message. Both methods are synchronous and run on
/// client threads.
pub trait TxHandler: Send + Sync + 'static {
    /// Runs the local transaction right after the half message is stored.
    fn execute(&self, msg: &HalfMessage) -> TxDecision;
    /// Answers the broker's check-back for a half message still undecided.
    fn check(&self, msg: &HalfMessage) -> TxDecision;
}

struct TxBridge<H>(H);

impl<H: TxHandler> TransactionListener for TxBridge<H> {
    fn execute_local_transaction(
        &self,
        msg: &dyn MessageTrait,
        _arg: Option<&(dyn Any + Send + Sync)>,
    ) -> LocalTransactionState {
        let half = HalfMessage {
            topic: msg.topic().to_string(),
            key: msg.get_keys().map(|k| k.to_string()),
            body: msg.get_body().map(|b| b.to_vec()).unwrap_or_default(),
            transaction_id: msg.transaction_id().map(|t| t.to_string()),
            born_ms: None,
        };
        self.0.execute(&half).into()
    }

    fn check_local_transaction(&self, msg: &MessageExt) -> LocalTransactionState {
        let d = Delivered::from_ext(msg);
        let half = HalfMessage {
            topic: d.topic,
            key: d.key,
            body: d.body,
            transaction_id: d.transaction_id,
            born_ms: Some(msg.born_timestamp()),
        };
        self.0.check(&half).into()
    }
}

/// The result of a transactional send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxSent {
    /// Where the half message was stored.
    pub half: Sent,
    /// What `execute` decided (sent to the broker as a one-way end-transaction).
    pub decision: TxDecision,
}

/// A transactional producer: half message, local transaction, commit/rollback, and
/// check-backs for undecided half messages.
pub struct TxProducer {
    inner: TransactionMQProducer,
}

impl TxProducer {
    pub async fn start<H: TxHandler>(
        rt: &Runtime,
        namesrv: &str,
        group: &str,
        topics: &[&str],
        handler: H,
    ) -> Result<Self> {
        let mut inner = TransactionMQProducer::builder(rt.client())
            .client_config(client_config())
            .producer_group(group.to_owned())
            .name_server_addr(namesrv.to_owned())
            .topics(
                topics
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<String>>(),
            )
            .transaction_listener(TxBridge(handler))
            .build();
        inner
            .start()
            .await
            .map_err(|e| err("starting the RocketMQ transactional producer", e))?;
        Ok(Self { inner })
    }

    /// Stores a half message, runs the handler's `execute`, and reports both.
    pub async fn send(&self, topic: &str, key: &str, body: &[u8]) -> Result<TxSent> {
        let result = self
            .inner
            .send_message_in_transaction::<(), _>(message(topic, key, body), None)
            .await
            .map_err(|e| err(&format!("transactional send to {topic}"), e))?;
        let half = sent_from(
            result
                .send_result
                .ok_or_else(|| anyhow!("transactional send to {topic}: no send result"))?,
        )
        .context("storing the half message")?;
        let decision = result
            .local_transaction_state
            .map(TxDecision::from)
            .unwrap_or(TxDecision::Unknown);
        Ok(TxSent { half, decision })
    }

    pub async fn shutdown(mut self) {
        self.inner.shutdown().await;
    }
}

/// The broker's raw send rate in messages/s: `senders` concurrent synchronous sends of
/// 100 bytes for `duration`, from one producer of group `chaosbank-bench`. Boxed: the
/// client's futures are too deep for the default recursion limit of a caller's crate.
pub fn send_rate(
    namesrv: String,
    senders: usize,
    duration: std::time::Duration,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<f64>> + Send>> {
    Box::pin(async move {
        let rt = Runtime::new("chaosbank-bench")?;
        let producer = Producer::start(&rt, &namesrv, "chaosbank-bench").await?;
        let body = vec![b'x'; 100];
        let start = std::time::Instant::now();
        let sent = std::sync::atomic::AtomicUsize::new(0);
        let tasks = (0..senders).map(|i| {
            let (producer, body, sent) = (&producer, &body, &sent);
            async move {
                let mut n = 0u64;
                while start.elapsed() < duration {
                    let key = format!("{i}-{n}");
                    producer.send("chaosbank-bench", &key, body, 3000).await?;
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    n += 1;
                }
                Ok::<(), anyhow::Error>(())
            }
        });
        let results = futures_util::future::join_all(tasks).await;
        let took = start.elapsed();
        producer.shutdown().await;
        rt.shutdown().await;
        for r in results {
            r?;
        }
        Ok(sent.into_inner() as f64 / took.as_secs_f64())
    })
}

/// Creates `topic` with `queues` queues on every broker the name server at `namesrv`
/// knows (through the broker's default topic key, `TBW102`), so its route exists before
/// anyone sends to it. Boxed, as [`send_rate`].
pub fn create_topic(
    namesrv: String,
    topic: String,
    queues: i32,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>> {
    Box::pin(async move {
        let rt = Runtime::new("chaosbank-admin")?;
        let mut inner = DefaultMQProducer::builder(rt.client())
            .client_config(client_config())
            .producer_group("chaosbank-admin".to_owned())
            .name_server_addr(namesrv.clone())
            .build();
        inner
            .start()
            .await
            .map_err(|e| err("starting the RocketMQ admin producer", e))?;
        let r = inner
            .create_topic("TBW102", &topic, queues, std::collections::HashMap::new())
            .await
            .map_err(|e| err(&format!("creating the topic {topic}"), e));
        inner.shutdown().await;
        rt.shutdown().await;
        r
    })
}
