//! JSON-lines request/response over TCP.
//!
//! One JSON value per line (`\n`-terminated, at most [`MAX_LINE`] bytes not
//! counting the newline): the client sends a request line, the server answers
//! with one response line, on a persistent connection. Requests on one
//! connection are handled one at a time, in order; different connections are
//! served concurrently.
//!
//! Errors are kept simple: a malformed request line (not valid JSON for the
//! request type, or over the size limit) makes the server log it and close
//! the connection, which the client sees as [`CallError::ClosedMidRequest`].
//! Blank lines are ignored. Application-level errors belong in the response
//! type.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Largest accepted line, in bytes, not counting the trailing newline.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// Serves `listener`: for each connection, for each request line, calls
/// `handler` and writes its response line.
///
/// Runs until the returned future is dropped (e.g. the task running it is
/// aborted); dropping it stops accepting and closes every open connection.
/// Accept errors are logged and retried after a short pause.
pub async fn serve<Req, Resp, F, Fut>(listener: TcpListener, handler: F) -> anyhow::Result<()>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
{
    // Connection tasks live in this set, so dropping this future closes them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((sock, peer)) => {
                    conns.spawn(serve_conn(sock, peer, handler.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "wire accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(res) = conns.join_next(), if !conns.is_empty() => {
                match res {
                    Err(e) if e.is_panic() => tracing::error!(error = %e, "wire connection handler panicked"),
                    _ => {}
                }
            }
        }
    }
}

async fn serve_conn<Req, Resp, F, Fut>(sock: TcpStream, peer: SocketAddr, handler: F)
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: Fn(Req) -> Fut,
    Fut: Future<Output = Resp>,
{
    let _ = sock.set_nodelay(true);
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line(&mut r, &mut line).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "wire read failed; closing connection");
                return;
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let req: Req = match serde_json::from_slice(&line) {
            Ok(req) => req,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "malformed request line; closing connection");
                return;
            }
        };
        let resp = handler(req).await;
        let mut out = match serde_json::to_vec(&resp) {
            Ok(out) => out,
            Err(e) => {
                tracing::error!(%peer, error = %e, "cannot encode response; closing connection");
                return;
            }
        };
        if out.len() > MAX_LINE {
            tracing::error!(%peer, len = out.len(), "response exceeds line limit; closing connection");
            return;
        }
        out.push(b'\n');
        if let Err(e) = w.write_all(&out).await {
            tracing::debug!(%peer, error = %e, "wire write failed; closing connection");
            return;
        }
    }
}

/// Reads one `\n`-terminated line (newline included) into `buf`.
/// `Ok(false)` on a clean EOF before any byte.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<bool> {
    let n = (&mut *r)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)
        .await?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() > MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line exceeds {MAX_LINE} bytes"),
            ));
        }
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-line",
        ));
    }
    Ok(true)
}

/// Why a [`Client::call`] failed.
///
/// [`CallError::maybe_executed`] tells "surely not sent" (safe to retry)
/// from "sent, no usable answer" (the server may have executed it).
#[derive(Debug)]
pub enum CallError {
    /// Could not connect (refused, unresolvable, or the timeout ran out while
    /// connecting). The request was surely not sent.
    Connect(io::Error),
    /// The request could not be encoded, or its line exceeds [`MAX_LINE`].
    /// Nothing was sent.
    Encode(String),
    /// The request was (maybe partly) sent but no response arrived within the
    /// timeout. It may have executed. The connection was dropped.
    Timeout(Duration),
    /// The connection failed or was closed after the request was (maybe) sent
    /// and before a full response arrived. It may have executed. The
    /// connection was dropped.
    ClosedMidRequest(io::Error),
    /// A response line arrived but could not be decoded (or was too long):
    /// the request most likely executed.
    BadResponse(String),
}

impl CallError {
    /// True when the server may have executed the request (it was sent, or
    /// partly sent, and no usable answer came back); false when it surely was
    /// not sent.
    pub fn maybe_executed(&self) -> bool {
        match self {
            CallError::Connect(_) | CallError::Encode(_) => false,
            CallError::Timeout(_) | CallError::ClosedMidRequest(_) | CallError::BadResponse(_) => {
                true
            }
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Connect(e) => write!(f, "connect failed (request not sent): {e}"),
            CallError::Encode(e) => write!(f, "cannot encode request (not sent): {e}"),
            CallError::Timeout(d) => {
                write!(
                    f,
                    "timed out after {d:?} waiting for response (may have executed)"
                )
            }
            CallError::ClosedMidRequest(e) => {
                write!(f, "connection closed mid-request (may have executed): {e}")
            }
            CallError::BadResponse(e) => write!(f, "bad response: {e}"),
        }
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Connect(e) | CallError::ClosedMidRequest(e) => Some(e),
            _ => None,
        }
    }
}

/// A client connection: one request in flight at a time; connects lazily and
/// reconnects on the next call after any connection error or timeout.
///
/// Before reusing an idle connection, the client checks without blocking
/// that the server has not closed it; if it has, the client reconnects
/// instead of sending on a dead socket (so a server restart between calls
/// does not turn into a spurious "maybe executed"). A close that races with
/// the send still can. Dropping a `call` future mid-flight drops the
/// connection, so a late response can never be read as the answer to a later
/// request.
#[derive(Debug)]
pub struct Client {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    /// A client for the server at `addr` (`host:port`, resolved at each
    /// connect). Does not connect until the first call.
    pub fn new(addr: String) -> Client {
        Client { addr, conn: None }
    }

    /// The `host:port` this client talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `req` and waits for the response for at most `timeout` in all
    /// (connecting included). On a connection error or timeout the connection
    /// is dropped (the next call reconnects) and the error says whether the
    /// request may have executed: see [`CallError::maybe_executed`].
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let mut line = serde_json::to_vec(req).map_err(|e| CallError::Encode(e.to_string()))?;
        if line.len() > MAX_LINE {
            return Err(CallError::Encode(format!(
                "request is {} bytes, limit is {MAX_LINE}",
                line.len()
            )));
        }
        line.push(b'\n');
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 60 * 60));

        // Taken out of `self` for the duration of the call: if this future is
        // dropped mid-flight, the connection goes with it.
        let mut conn = match self.conn.take() {
            Some(c) if is_reusable(&c) => c,
            _ => self.connect(deadline).await?,
        };
        let mut resp = Vec::new();
        match tokio::time::timeout_at(deadline, exchange(&mut conn, &line, &mut resp)).await {
            Err(_) => Err(CallError::Timeout(timeout)),
            Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
                Err(CallError::BadResponse(e.to_string()))
            }
            Ok(Err(e)) => Err(CallError::ClosedMidRequest(e)),
            Ok(Ok(())) => {
                // The response line was read whole: the connection is in sync.
                self.conn = Some(conn);
                serde_json::from_slice(&resp).map_err(|e| CallError::BadResponse(e.to_string()))
            }
        }
    }

    async fn connect(&self, deadline: Instant) -> Result<BufReader<TcpStream>, CallError> {
        match tokio::time::timeout_at(deadline, TcpStream::connect(&self.addr)).await {
            Err(_) => Err(CallError::Connect(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {} timed out", self.addr),
            ))),
            Ok(Err(e)) => Err(CallError::Connect(e)),
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(BufReader::new(s))
            }
        }
    }
}

/// True if an idle connection is still usable: nothing buffered and the
/// socket is neither closed nor carrying unexpected bytes.
fn is_reusable(conn: &BufReader<TcpStream>) -> bool {
    if !conn.buffer().is_empty() {
        return false;
    }
    let mut b = [0u8; 1];
    matches!(conn.get_ref().try_read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

async fn exchange(
    conn: &mut BufReader<TcpStream>,
    line: &[u8],
    resp: &mut Vec<u8>,
) -> io::Result<()> {
    conn.get_mut().write_all(line).await?;
    if read_line(conn, resp).await? {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before the response",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::sync::Arc;
    use tokio::task::JoinHandle;

    #[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
    struct Req {
        id: u64,
        sleep_ms: u64,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Resp {
        id: u64,
        doubled: u64,
    }

    async fn handler(r: Req) -> Resp {
        if r.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(r.sleep_ms)).await;
        }
        Resp {
            id: r.id,
            doubled: r.id * 2,
        }
    }

    async fn start_on(addr: &str) -> (String, JoinHandle<anyhow::Result<()>>) {
        let l = TcpListener::bind(addr).await.expect("bind");
        let a = l.local_addr().expect("addr").to_string();
        (a, tokio::spawn(serve(l, handler)))
    }

    async fn start() -> (String, JoinHandle<anyhow::Result<()>>) {
        start_on("127.0.0.1:0").await
    }

    fn req(id: u64, sleep_ms: u64) -> Req {
        Req { id, sleep_ms }
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn round_trip_on_one_connection() {
        let (addr, _h) = start().await;
        let mut c = Client::new(addr.clone());
        assert_eq!(c.addr(), addr);
        for id in 0..20 {
            let r: Resp = c.call(&req(id, 0), T).await.expect("call");
            assert_eq!(
                r,
                Resp {
                    id,
                    doubled: id * 2
                }
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_clients() {
        // Each request waits in the handler until all 50 clients' requests are in it at
        // once: a server that handled them one at a time would never answer (the calls
        // then fail by their timeout), whatever the machine's speed.
        const CLIENTS: usize = 50;
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS));
        let _h = tokio::spawn(serve(l, move |r: Req| {
            let barrier = barrier.clone();
            async move {
                barrier.wait().await;
                handler(r).await
            }
        }));
        let mut tasks = JoinSet::new();
        for k in 0..CLIENTS as u64 {
            let addr = addr.clone();
            tasks.spawn(async move {
                let mut c = Client::new(addr);
                for i in 0..10u64 {
                    let id = k * 1000 + i;
                    let r: Resp = c.call(&req(id, 0), T).await.expect("call");
                    assert_eq!(
                        r,
                        Resp {
                            id,
                            doubled: id * 2
                        }
                    );
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("client task");
        }
    }

    #[tokio::test]
    async fn requests_on_one_connection_are_sequential() {
        let (addr, _h) = start().await;
        let mut c = Client::new(addr);
        let t = Instant::now();
        for id in 0..3 {
            let _: Resp = c.call(&req(id, 100), T).await.expect("call");
        }
        assert!(t.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn nothing_listening_is_not_sent() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr").to_string()
        };
        let mut c = Client::new(addr);
        let e = c
            .call::<_, Resp>(&req(1, 0), T)
            .await
            .expect_err("must fail");
        assert!(matches!(e, CallError::Connect(_)), "{e:?}");
        assert!(!e.maybe_executed());
        assert!(e.to_string().contains("not sent"), "{e}");
    }

    #[tokio::test]
    async fn server_dropped_mid_request_is_maybe_executed() {
        // The server is stopped once request 2 is in its handler, which never answers it.
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let (entered_tx, entered) = tokio::sync::oneshot::channel::<()>();
        let entered_tx = Arc::new(std::sync::Mutex::new(Some(entered_tx)));
        let h = tokio::spawn(serve(l, move |r: Req| {
            let entered_tx = entered_tx.clone();
            async move {
                if r.id == 2 {
                    if let Some(tx) = entered_tx.lock().expect("lock").take() {
                        let _ = tx.send(());
                    }
                    std::future::pending::<()>().await;
                }
                handler(r).await
            }
        }));
        let mut c = Client::new(addr);
        let _: Resp = c.call(&req(1, 0), T).await.expect("warm-up");
        tokio::spawn(async move {
            if entered.await.is_ok() {
                h.abort();
            }
        });
        let e = c
            .call::<_, Resp>(&req(2, 0), T)
            .await
            .expect_err("must fail");
        // Closed, not timed out: the call ended because the server went away.
        assert!(matches!(e, CallError::ClosedMidRequest(_)), "{e:?}");
        assert!(e.maybe_executed());
        // Nothing listens any more: the next call is surely not sent.
        let e = c
            .call::<_, Resp>(&req(3, 0), T)
            .await
            .expect_err("must fail");
        assert!(!e.maybe_executed(), "{e:?}");
    }

    #[tokio::test]
    async fn timeout_is_maybe_executed_and_next_call_reconnects() {
        let (addr, _h) = start().await;
        let mut c = Client::new(addr);
        let t = Instant::now();
        let e = c
            .call::<_, Resp>(&req(1, 2_000), Duration::from_millis(200))
            .await
            .expect_err("must time out");
        let el = t.elapsed();
        assert!(matches!(e, CallError::Timeout(_)), "{e:?}");
        assert!(e.maybe_executed());
        assert!(el >= Duration::from_millis(200), "{el:?}");
        // The late response must not be mistaken for this one's.
        let r: Resp = c.call(&req(7, 0), T).await.expect("call");
        assert_eq!(r, Resp { id: 7, doubled: 14 });
    }

    #[tokio::test]
    async fn dropped_call_does_not_desync() {
        let (addr, _h) = start().await;
        let mut c = Client::new(addr);
        let r = tokio::time::timeout(
            Duration::from_millis(50),
            c.call::<_, Resp>(&req(1, 300), T),
        )
        .await;
        assert!(r.is_err(), "outer timeout should fire");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let r: Resp = c.call(&req(2, 0), T).await.expect("call");
        assert_eq!(r, Resp { id: 2, doubled: 4 });
    }

    /// A connection the server at `addr` has served once: it reads the end of the
    /// stream once the server's connection tasks are gone.
    async fn watch(addr: &str) -> TcpStream {
        let s = TcpStream::connect(addr).await.expect("connect");
        let mut s = BufReader::new(s);
        s.get_mut()
            .write_all(b"{\"id\":9,\"sleep_ms\":0}\n")
            .await
            .expect("write");
        let mut line = String::new();
        s.read_line(&mut line).await.expect("answer");
        assert!(line.contains("\"doubled\":18"), "{line}");
        s.into_inner()
    }

    #[tokio::test]
    async fn reconnects_after_server_restart_on_same_port() {
        let (addr, h) = start().await;
        let mut c = Client::new(addr.clone());
        let _: Resp = c.call(&req(1, 0), T).await.expect("first server");
        let watched = watch(&addr).await;
        h.abort();
        let _ = h.await;
        // The aborted connection tasks have closed their sockets.
        assert_server_closes(watched).await;
        let e = c.call::<_, Resp>(&req(2, 0), T).await.expect_err("down");
        assert!(!e.maybe_executed(), "{e:?}");
        let (addr2, _h2) = start_on(&addr).await;
        assert_eq!(addr2, addr);
        let r: Resp = c.call(&req(3, 0), T).await.expect("after restart");
        assert_eq!(r, Resp { id: 3, doubled: 6 });
    }

    #[tokio::test]
    async fn stale_idle_connection_is_replaced_transparently() {
        let (addr, h) = start().await;
        let mut c = Client::new(addr.clone());
        let _: Resp = c.call(&req(1, 0), T).await.expect("first server");
        let watched = watch(&addr).await;
        h.abort();
        let _ = h.await;
        let (_a, _h2) = start_on(&addr).await;
        // The old server's connections are closed (the client's idle one too).
        assert_server_closes(watched).await;
        // The idle connection was closed by the old server; no spurious error.
        let r: Resp = c.call(&req(3, 0), T).await.expect("after restart");
        assert_eq!(r, Resp { id: 3, doubled: 6 });
    }

    async fn assert_server_closes(mut s: TcpStream) {
        let mut buf = Vec::new();
        match tokio::time::timeout(T, s.read_to_end(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => assert!(buf.is_empty(), "unexpected reply"),
            Err(_) => panic!("server kept the connection open"),
        }
    }

    #[tokio::test]
    async fn malformed_line_closes_connection() {
        let (addr, _h) = start().await;
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"\n  \nnot json\n").await.expect("write");
        assert_server_closes(s).await;
        // Wrong shape for Req is malformed too.
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"{\"nope\":1}\n").await.expect("write");
        assert_server_closes(s).await;
        // The server still serves others.
        let mut c = Client::new(addr);
        let _: Resp = c.call(&req(1, 0), T).await.expect("call");
    }

    #[tokio::test]
    async fn oversized_line_is_rejected() {
        let (addr, _h) = start().await;
        let s = TcpStream::connect(&addr).await.expect("connect");
        let (mut r, mut w) = s.into_split();
        tokio::spawn(async move {
            let chunk = vec![b'a'; 1024 * 1024];
            for _ in 0..(MAX_LINE / chunk.len() + 2) {
                if w.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        let mut buf = Vec::new();
        let res = tokio::time::timeout(T, r.read_to_end(&mut buf)).await;
        assert!(res.is_ok(), "server kept the connection open");
        assert!(buf.is_empty());

        // The client refuses to send one.
        let mut c = Client::new(addr);
        let big = "x".repeat(MAX_LINE);
        let e = c.call::<_, Resp>(&big, T).await.expect_err("too large");
        assert!(matches!(e, CallError::Encode(_)), "{e:?}");
        assert!(!e.maybe_executed());
    }

    #[tokio::test]
    async fn bad_response_is_reported() {
        // Server answers with something that isn't a Resp.
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        tokio::spawn(serve(l, |r: Req| async move { format!("id {}", r.id) }));
        let mut c = Client::new(addr);
        let e = c.call::<_, Resp>(&req(1, 0), T).await.expect_err("bad");
        assert!(matches!(e, CallError::BadResponse(_)), "{e:?}");
        assert!(e.maybe_executed());
        // Same connection still in sync, reading as the right type works.
        let s: String = c.call(&req(2, 0), T).await.expect("call");
        assert_eq!(s, "id 2");
    }
}
