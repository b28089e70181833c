//! A userspace TCP forwarder with injectable latency.
//!
//! The kernel this runs on has no `netem`, so latency is injected here: a
//! service process runs a few [`Forwarder`]s that listen on `127.0.0.1:P` and
//! pipe every accepted connection to a `host:port` target (resolved at connect
//! time), and points its engine clients at the forwarders instead of at the
//! engines. [`Forwarder::set_delay`] then slows every chunk of bytes in both
//! directions.
//!
//! Each direction of a connection is a two-stage pipeline: a reader stamps
//! every chunk it reads with `now + delay` (the delay in force at read time)
//! and queues it; a writer sleeps until the stamp and writes the chunk. So the
//! delay adds latency without cutting throughput to one chunk per delay, and
//! byte order is always preserved (a chunk is never written before the chunk
//! read before it, even if the delay was lowered in between).
//!
//! A forwarder started with a [`Tap`] ([`Forwarder::start_tapped`]) also reads the
//! replies it carries ([`super::boundary`]) and acts on an aimed fault
//! ([`super::aim`]): it writes the aimed reply and then crashes the process, or
//! withholds it and resets the connection.
//!
//! Caveats: the TCP handshake itself is not delayed (the client's `connect`
//! to the forwarder succeeds at once; the forwarder then connects to the
//! target with the OS's connect timeout), and a failed target connect shows
//! up to the client as an accepted connection that is closed straight away.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use super::aim::{Action, Tap};
use super::boundary::{Protocol, ReplySide, RequestSide, Watch};

/// Largest chunk read in one go.
const CHUNK: usize = 32 * 1024;
/// Chunks queued per direction between reader and writer (bounds memory to
/// about `QUEUE * CHUNK` bytes per direction per connection).
const QUEUE: usize = 256;
/// Delays are clamped to this, so that `now + delay` can never overflow.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A running forwarder: a cheap, clone-able handle.
///
/// Dropping the last handle shuts the forwarder down, like
/// [`Forwarder::shutdown`].
#[derive(Clone, Debug)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    local_addr: SocketAddr,
    target: String,
    /// Current delay in nanoseconds.
    delay: Arc<AtomicU64>,
    /// The accept loop; aborting it drops every connection task too.
    accept: AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Forwarder {
    /// Binds `listen` and starts accepting; each accepted connection is piped
    /// to `target` (`host:port`, resolved anew for every connection).
    ///
    /// Must be called inside a tokio runtime. Use port 0 for an ephemeral port
    /// and read it back with [`Forwarder::local_addr`].
    pub async fn start(listen: SocketAddr, target: String) -> anyhow::Result<Forwarder> {
        Forwarder::start_with(listen, target, None).await
    }

    /// [`Forwarder::start`], reading every connection's replies (by the protocol of the
    /// target's host name, [`Protocol::for_engine`]) into `tap`, which may act on them.
    pub async fn start_tapped(
        listen: SocketAddr,
        target: String,
        tap: Arc<Tap>,
    ) -> anyhow::Result<Forwarder> {
        Forwarder::start_with(listen, target, Some(tap)).await
    }

    async fn start_with(
        listen: SocketAddr,
        target: String,
        tap: Option<Arc<Tap>>,
    ) -> anyhow::Result<Forwarder> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding forwarder on {listen}"))?;
        let local_addr = listener
            .local_addr()
            .context("reading forwarder's bound address")?;
        let delay = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::from(target.as_str()),
            delay.clone(),
            tap,
        ));
        tracing::debug!(%local_addr, %target, "forwarder started");
        Ok(Forwarder {
            inner: Arc::new(Inner {
                local_addr,
                target,
                delay,
                accept: task.abort_handle(),
            }),
        })
    }

    /// The address the forwarder listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The `host:port` every connection is forwarded to.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// Sets the delay added to every chunk in both directions from now on
    /// (`Duration::ZERO` = none). Chunks already read keep the delay they
    /// were stamped with. Clamped to [`MAX_DELAY`].
    pub fn set_delay(&self, d: Duration) {
        let nanos = u64::try_from(d.min(MAX_DELAY).as_nanos()).unwrap_or(u64::MAX);
        self.inner.delay.store(nanos, Ordering::Relaxed);
        tracing::debug!(upstream = %self.inner.target, delay_ms = d.as_millis() as u64, "forwarder delay set");
    }

    /// The delay currently applied to newly read chunks.
    pub fn delay(&self) -> Duration {
        Duration::from_nanos(self.inner.delay.load(Ordering::Relaxed))
    }

    /// Stops accepting and closes every open connection (asynchronously: the
    /// sockets are closed as soon as the runtime gets to the aborted tasks).
    /// Idempotent.
    pub fn shutdown(&self) {
        self.inner.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: Arc<str>,
    delay: Arc<AtomicU64>,
    tap: Option<Arc<Tap>>,
) {
    // Connection tasks live in this set, so aborting this task closes them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((sock, peer)) => {
                    conns.spawn(handle_conn(sock, peer, target.clone(), delay.clone(), tap.clone()));
                }
                Err(e) => {
                    // Usually transient (e.g. out of file descriptors): back off a little.
                    tracing::warn!(error = %e, "forwarder accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(res) = conns.join_next(), if !conns.is_empty() => {
                match res {
                    Err(e) if e.is_panic() => tracing::error!(error = %e, "forwarder connection task panicked"),
                    _ => {}
                }
            }
        }
    }
}

/// How long a connect to the target may take (a partitioned target never answers).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes a dead upstream show as an error within seconds: keepalive probes on an idle
/// connection and a bound on unacknowledged data. A container that is killed vanishes
/// without a reset, and without these the forwarder (and the client behind it, whose
/// own connection stays healthy) would wait on it for many minutes.
fn detect_dead_peer(stream: &TcpStream) {
    let sock = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(2))
        .with_interval(Duration::from_secs(1))
        .with_retries(3);
    if let Err(e) = sock.set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "setting keepalive");
    }
    if let Err(e) = sock.set_tcp_user_timeout(Some(Duration::from_secs(5))) {
        tracing::debug!(error = %e, "setting the user timeout");
    }
}

async fn handle_conn(
    client: TcpStream,
    peer: SocketAddr,
    target: Arc<str>,
    delay: Arc<AtomicU64>,
    tap: Option<Arc<Tap>>,
) {
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&*target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, %target, error = %e, "connect to target failed; dropping client");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, %target, "connect to target timed out; dropping client");
            return;
        }
    };
    detect_dead_peer(&upstream);
    // Latency is what we inject on purpose; don't let Nagle add more.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_r, client_w) = client.into_split();
    let (up_r, up_w) = upstream.into_split();
    let (requests, replies) = match tap {
        Some(tap) => {
            let engine: Arc<str> = Arc::from(target.rsplit_once(':').map_or(&*target, |(h, _)| h));
            let (req, rep) = Watch::pair(Protocol::for_engine(&engine));
            (Inspect::Requests(req), Inspect::Replies(rep, tap, engine))
        }
        None => (Inspect::Nothing, Inspect::Nothing),
    };
    // The first error in either direction drops both pipes, closing both sockets.
    match tokio::try_join!(
        pipe(client_r, up_w, delay.clone(), requests),
        pipe(up_r, client_w, delay, replies)
    ) {
        Ok(_) => tracing::trace!(%peer, %target, "forwarded connection finished"),
        Err(e) => tracing::debug!(%peer, %target, error = %e, "forwarded connection failed"),
    }
}

/// What a pipe reads in the bytes it carries.
enum Inspect {
    /// Nothing (an untapped forwarder).
    Nothing,
    /// The process's requests, so replies can be matched to them.
    Requests(RequestSide),
    /// The engine's replies, counted into the tap, which may act on one.
    Replies(ReplySide, Arc<Tap>, Arc<str>),
}

/// What the reader hands the writer.
enum Item {
    /// Bytes to write once the instant comes.
    Bytes(Instant, Vec<u8>),
    /// An aimed crash: the bytes before it are written; crash now.
    Crash(Arc<Tap>),
    /// An aimed cut: the bytes before it are written; reset the connection now.
    Reset,
}

/// Copies `r` to `w`, delaying every chunk by the delay in force when it was
/// read. On EOF from `r`, flushes the queue and shuts down `w`'s write side.
async fn pipe(
    mut r: OwnedReadHalf,
    mut w: OwnedWriteHalf,
    delay: Arc<AtomicU64>,
    mut inspect: Inspect,
) -> io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<Item>(QUEUE);
    let reader = async move {
        let res = loop {
            let mut buf = Vec::with_capacity(CHUNK);
            match r.read_buf(&mut buf).await {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if n < CHUNK / 4 {
                        buf.shrink_to_fit();
                    }
                    let d = Duration::from_nanos(delay.load(Ordering::Relaxed)).min(MAX_DELAY);
                    let due = Instant::now() + d;
                    let (buf, then) = inspect.chunk(buf);
                    let mut items = vec![Item::Bytes(due, buf)];
                    items.extend(then);
                    let stop = items.len() > 1;
                    for item in items {
                        if tx.send(item).await.is_err() {
                            // The writer is gone, which only happens when it failed.
                            break;
                        }
                    }
                    if stop {
                        // An aimed fault fired: nothing more is carried this way.
                        break Ok(());
                    }
                }
                Err(e) => break Err(e),
            }
        };
        // Closing the channel tells the writer to flush and half-close.
        drop(tx);
        res
    };
    let writer = async move {
        while let Some(item) = rx.recv().await {
            match item {
                Item::Bytes(due, buf) => {
                    tokio::time::sleep_until(due).await;
                    w.write_all(&buf).await?;
                }
                Item::Crash(tap) => {
                    w.flush().await?;
                    tap.crash();
                    return Err(io::Error::other("aimed crash"));
                }
                Item::Reset => {
                    // Close with a reset, not a clean end of stream.
                    let _ = socket2::SockRef::from(w.as_ref()).set_linger(Some(Duration::ZERO));
                    w.forget();
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "aimed cut before a reply",
                    ));
                }
            }
        }
        w.flush().await?;
        w.shutdown().await
    };
    tokio::try_join!(reader, writer).map(|_| ())
}

impl Inspect {
    /// Reads a chunk; returns the part to write and what to do after writing it.
    fn chunk(&mut self, mut buf: Vec<u8>) -> (Vec<u8>, Option<Item>) {
        match self {
            Inspect::Nothing => (buf, None),
            Inspect::Requests(req) => {
                req.feed(&buf);
                (buf, None)
            }
            Inspect::Replies(rep, tap, engine) => {
                for seen in rep.feed(&buf) {
                    match tap.hit(engine, seen.reply) {
                        Some(Action::Crash) => {
                            buf.truncate(seen.end);
                            return (buf, Some(Item::Crash(tap.clone())));
                        }
                        Some(Action::Cut) => {
                            buf.truncate(seen.start);
                            return (buf, Some(Item::Reset));
                        }
                        None => {}
                    }
                }
                (buf, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::task::JoinHandle;
    use tokio::time::timeout;

    const LOCAL: &str = "127.0.0.1:0";

    fn local() -> SocketAddr {
        LOCAL.parse().expect("valid addr")
    }

    /// An echo server: copies each connection back to itself, then half-closes.
    async fn echo_server() -> (SocketAddr, JoinHandle<()>) {
        let l = TcpListener::bind(LOCAL).await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let h = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        (addr, h)
    }

    async fn connect(f: &Forwarder) -> TcpStream {
        let s = TcpStream::connect(f.local_addr()).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        s
    }

    async fn ping(c: &mut TcpStream) {
        c.write_all(b"ping").await.expect("write");
        let mut b = [0u8; 4];
        c.read_exact(&mut b).await.expect("read");
        assert_eq!(&b, b"ping");
    }

    fn payload(n: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect()
    }

    /// Sends `data`, half-closes, and returns everything read until EOF.
    async fn send_and_collect(c: TcpStream, data: Vec<u8>) -> Vec<u8> {
        let (mut r, mut w) = c.into_split();
        let writer = tokio::spawn(async move {
            w.write_all(&data).await.expect("write payload");
            w.shutdown().await.expect("shutdown");
        });
        let mut got = Vec::new();
        timeout(Duration::from_secs(30), r.read_to_end(&mut got))
            .await
            .expect("no EOF within 30 s")
            .expect("read to end");
        writer.await.expect("writer task");
        got
    }

    /// Asserts the client sees EOF or an error (not a hang) within 2 s.
    async fn assert_closed(c: &mut TcpStream) {
        let mut b = [0u8; 16];
        match timeout(Duration::from_secs(2), c.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!("expected EOF, read {n} bytes"),
            Err(_) => panic!("connection still open after 2 s"),
        }
    }

    #[tokio::test]
    async fn round_trips_small_and_10mb_payloads() {
        let (echo, _h) = echo_server().await;
        let f = Forwarder::start(local(), echo.to_string())
            .await
            .expect("start");
        assert_eq!(f.target(), echo.to_string());
        assert_eq!(f.delay(), Duration::ZERO);

        let mut c = connect(&f).await;
        ping(&mut c).await;
        ping(&mut c).await;

        let data = payload(10 * 1024 * 1024);
        let got = send_and_collect(connect(&f).await, data.clone()).await;
        assert_eq!(got.len(), data.len());
        assert!(got == data, "10 MB payload corrupted");
    }

    #[tokio::test]
    async fn resolves_hostname_targets() {
        let (echo, _h) = echo_server().await;
        let f = Forwarder::start(local(), format!("localhost:{}", echo.port()))
            .await
            .expect("start");
        let mut c = connect(&f).await;
        ping(&mut c).await;
    }

    #[tokio::test]
    async fn delay_applies_both_ways_and_can_be_removed() {
        let (echo, _h) = echo_server().await;
        let f = Forwarder::start(local(), echo.to_string())
            .await
            .expect("start");
        let mut c = connect(&f).await;
        ping(&mut c).await; // connection to the target is up

        f.set_delay(Duration::from_millis(200));
        assert_eq!(f.delay(), Duration::from_millis(200));
        let t = Instant::now();
        ping(&mut c).await;
        let el = t.elapsed();
        assert!(el >= Duration::from_millis(400), "round trip took {el:?}");
        let delayed = el;

        // A handle clone controls the same forwarder.
        f.clone().set_delay(Duration::ZERO);
        assert_eq!(f.delay(), Duration::ZERO);
        let t = Instant::now();
        ping(&mut c).await;
        let el = t.elapsed();
        assert!(el < delayed, "healed {el:?} vs delayed {delayed:?}");
    }

    #[tokio::test]
    async fn delay_preserves_order_and_pipelines() {
        let (echo, _h) = echo_server().await;
        let f = Forwarder::start(local(), echo.to_string())
            .await
            .expect("start");
        f.set_delay(Duration::from_millis(50));
        let c = connect(&f).await;
        let (mut r, mut w) = c.into_split();
        const N: u32 = 300;
        let t = Instant::now();
        let writer = tokio::spawn(async move {
            for i in 0..N {
                w.write_all(&i.to_be_bytes()).await.expect("write");
                if i % 3 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            w.shutdown().await.expect("shutdown");
        });
        let mut got = Vec::new();
        timeout(Duration::from_secs(30), r.read_to_end(&mut got))
            .await
            .expect("no EOF within 30 s")
            .expect("read");
        writer.await.expect("writer");
        let el = t.elapsed();
        let want: Vec<u8> = (0..N).flat_map(|i| i.to_be_bytes()).collect();
        assert!(got == want, "bytes reordered or lost");
        assert!(el >= Duration::from_millis(100), "took {el:?}");
        // ~100 separate writes; one-chunk-per-delay would take >= 5 s.
        assert!(el < Duration::from_secs(3), "not pipelined: took {el:?}");
    }

    #[tokio::test]
    async fn half_close_propagates() {
        // The server answers only after seeing EOF from the client.
        let l = TcpListener::bind(LOCAL).await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut s, _)) = l.accept().await {
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf).await;
                let _ = s.write_all(format!("got {}", buf.len()).as_bytes()).await;
                let _ = s.shutdown().await;
            }
        });
        let f = Forwarder::start(local(), addr.to_string())
            .await
            .expect("start");
        f.set_delay(Duration::from_millis(20));
        let got = timeout(
            Duration::from_secs(5),
            send_and_collect(connect(&f).await, vec![7u8; 1000]),
        )
        .await
        .expect("half-close did not propagate");
        assert_eq!(got, b"got 1000");
    }

    #[tokio::test]
    async fn shutdown_closes_existing_connections() {
        let (echo, _h) = echo_server().await;
        let f = Forwarder::start(local(), echo.to_string())
            .await
            .expect("start");
        let mut c1 = connect(&f).await;
        let mut c2 = connect(&f).await;
        ping(&mut c1).await;
        ping(&mut c2).await;
        f.shutdown();
        assert_closed(&mut c1).await;
        assert_closed(&mut c2).await;
        // No longer accepting: connect is refused, or at worst closed at once.
        if let Ok(Ok(mut c)) =
            timeout(Duration::from_secs(2), TcpStream::connect(f.local_addr())).await
        {
            assert_closed(&mut c).await;
        }
    }

    #[tokio::test]
    async fn dropping_last_handle_shuts_down() {
        let (echo, _h) = echo_server().await;
        let f = Forwarder::start(local(), echo.to_string())
            .await
            .expect("start");
        let mut c = connect(&f).await;
        ping(&mut c).await;
        let f2 = f.clone();
        drop(f);
        ping(&mut c).await; // still alive through f2
        drop(f2);
        assert_closed(&mut c).await;
    }

    #[tokio::test]
    async fn refused_target_gives_prompt_eof() {
        let dead = {
            let l = TcpListener::bind(LOCAL).await.expect("bind");
            l.local_addr().expect("addr")
        }; // listener dropped: nothing listens there now
        let f = Forwarder::start(local(), dead.to_string())
            .await
            .expect("start");
        let mut c = connect(&f).await;
        // Closed, not left hanging (assert_closed waits 2 s at most).
        assert_closed(&mut c).await;
        // The forwarder itself keeps working.
        let mut c = connect(&f).await;
        assert_closed(&mut c).await;
    }

    #[tokio::test]
    async fn target_closing_closes_client() {
        // A server that accepts and closes immediately.
        let l = TcpListener::bind(LOCAL).await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                drop(s);
            }
        });
        let f = Forwarder::start(local(), addr.to_string())
            .await
            .expect("start");
        let mut c = connect(&f).await;
        assert_closed(&mut c).await;
    }
}
