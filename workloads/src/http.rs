//! The transfer API's client (`shared/spec/sut.md` §3): `POST /transfers` and
//! `GET /health` over HTTP/1.1 with kept-alive connections, each answer mapped onto the
//! history's `ok` / `fail` / `info` exactly as the contract's table says.
//!
//! Small on purpose: requests with a `Content-Length` body; answers with a
//! `Content-Length` or chunked body, or one that ends with the connection.

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use std::future::Future;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::bank::Transfer;
use crate::system::Outcome;

/// How the `fail` of a request that never reached the service starts.
pub const REFUSED: &str = "connection refused";

/// The largest answer body read (a service's answers are a few dozen bytes).
pub const MAX_BODY: usize = 1 << 20;

/// An HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// The server keeps the connection open.
    pub keep_alive: bool,
}

/// How a request ended short of an answer.
#[derive(Debug)]
pub enum CallError {
    /// No connection: the request never reached the service (contract: `fail`).
    Refused(io::Error),
    /// Sent, or maybe sent, with no complete answer (contract: `info`).
    Broken(String),
    /// No answer within the timeout (contract: `info`).
    TimedOut,
}

/// A client of one service address, keeping idle connections for reuse.
#[derive(Debug)]
pub struct HttpClient {
    addr: String,
    idle: Mutex<Vec<BufReader<TcpStream>>>,
}

impl HttpClient {
    /// A client of `addr` (`host:port`); connects on first use.
    pub fn new(addr: impl Into<String>) -> HttpClient {
        HttpClient {
            addr: addr.into(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The address it calls.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn take_idle(&self) -> Option<BufReader<TcpStream>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(conn) = idle.pop() {
            // A connection the server closed while idle reads as ready (EOF): drop it
            // rather than send on it and call the transfer unknown.
            let mut probe = [0u8; 1];
            match conn.get_ref().try_read(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(conn),
                _ => continue,
            }
        }
        None
    }

    /// Sends one request and reads its answer within `timeout`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Answer, CallError> {
        let started = tokio::time::Instant::now();
        let conn = match self.take_idle() {
            Some(c) => c,
            None => {
                // A connection that cannot be made — refused, or not made within the
                // timeout (a partitioned service) — carried no request.
                let sock = match tokio::time::timeout(timeout, TcpStream::connect(&self.addr)).await
                {
                    Ok(r) => r.map_err(CallError::Refused)?,
                    Err(_) => {
                        return Err(CallError::Refused(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no connection within {timeout:?}"),
                        )))
                    }
                };
                let _ = sock.set_nodelay(true);
                BufReader::new(sock)
            }
        };
        let left = timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, self.exchange(conn, method, path, body)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::TimedOut),
        }
    }

    async fn exchange(
        &self,
        mut conn: BufReader<TcpStream>,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Answer, CallError> {
        let body = body.unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive\r\n",
            self.addr
        );
        if method == "POST" {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        conn.get_mut()
            .write_all(&bytes)
            .await
            .map_err(|e| CallError::Broken(format!("sending the request: {e}")))?;
        let answer = read_answer(&mut conn)
            .await
            .map_err(|e| CallError::Broken(format!("reading the answer: {e}")))?;
        if answer.keep_alive {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
        Ok(answer)
    }

    /// `POST /transfers` for `t`, mapped onto the history's outcome (sut.md §3).
    pub async fn transfer(&self, t: &Transfer, timeout: Duration) -> Outcome {
        let body = serde_json::json!({
            "id": t.message_id(),
            "from": t.from,
            "to": t.to,
            "amount": t.amount,
        })
        .to_string();
        outcome_of(
            self.call("POST", "/transfers", Some(body.as_bytes()), timeout)
                .await,
            t,
        )
    }

    /// True when `GET /health` answers 200.
    pub async fn healthy(&self, timeout: Duration) -> bool {
        matches!(
            self.call("GET", "/health", None, timeout).await,
            Ok(Answer { status: 200, .. })
        )
    }
}

/// The contract's table: 200 `accepted` is `ok`; 409 `rejected` and a refused
/// connection are `fail`; anything else is `info`.
pub fn outcome_of(r: Result<Answer, CallError>, t: &Transfer) -> Outcome {
    let answer = match r {
        Ok(a) => a,
        Err(CallError::Refused(e)) => return Outcome::Fail(format!("{REFUSED}: {e}")),
        Err(CallError::Broken(e)) => return Outcome::Info(e),
        Err(CallError::TimedOut) => return Outcome::Info("no answer within the timeout".into()),
    };
    let json: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let status = json
        .as_ref()
        .and_then(|j| j.get("status"))
        .and_then(Value::as_str);
    match (answer.status, status) {
        (200, Some("accepted")) => Outcome::Ok(serde_json::to_value(t).unwrap_or(Value::Null)),
        (409, Some("rejected")) => Outcome::Fail(
            json.as_ref()
                .and_then(|j| j.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("rejected")
                .to_string(),
        ),
        (code, _) => Outcome::Info(format!(
            "HTTP {code}: {}",
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
        )),
    }
}

/// The longest status, header, chunk-size or trailer line read, with its CRLF.
pub const MAX_LINE: usize = 8 * 1024;

/// The most header lines (and, apart, trailer lines) read in one answer.
pub const MAX_HEADERS: usize = 100;

/// Reads one line of at most [`MAX_LINE`] bytes into `line` (cleared first), its end
/// included; `Ok(0)` at the end of the stream. A longer line is an error, read no
/// further: a service cannot make the harness hold more than that.
async fn read_line<R: AsyncBufRead + Unpin>(conn: &mut R, line: &mut Vec<u8>) -> io::Result<usize> {
    line.clear();
    loop {
        let buf = conn.fill_buf().await?;
        if buf.is_empty() {
            return Ok(line.len());
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len().saturating_add(take) > MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line over {MAX_LINE} bytes"),
            ));
        }
        line.extend_from_slice(&buf[..take]);
        conn.consume(take);
        if done {
            return Ok(line.len());
        }
    }
}

/// Reads one HTTP/1.1 answer from `conn`: the status line, the headers, and a
/// `Content-Length`, chunked, or until-close body. Whatever the bytes, it returns an
/// answer or an error (which the client records as `info`), never panics, and holds at
/// most [`MAX_LINE`] bytes of a line, [`MAX_HEADERS`] headers and [`MAX_BODY`] bytes
/// of body. The fuzz target (`fuzz/`) and a property test drive it through
/// [`parse_answer`].
pub async fn read_answer<R: AsyncBufRead + Unpin>(conn: &mut R) -> io::Result<Answer> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut raw = Vec::new();
    if read_line(conn, &mut raw).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed before an answer",
        ));
    }
    let line = String::from_utf8_lossy(&raw).into_owned();
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or_default().to_string();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("not an HTTP status line"))?;
    let mut length = None;
    let mut chunked = false;
    let mut keep_alive = version == "HTTP/1.1";
    let mut headers = 0;
    loop {
        if read_line(conn, &mut raw).await? == 0 {
            return Err(bad("the connection closed in the headers"));
        }
        let line = String::from_utf8_lossy(&raw);
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Err(bad("more than 100 header lines"));
        }
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| bad("a bad Content-Length"))?,
                )
            }
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            }
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            if read_line(conn, &mut raw).await? == 0 {
                return Err(bad("the connection closed in a chunked body"));
            }
            let line = String::from_utf8_lossy(&raw);
            let size =
                usize::from_str_radix(line.trim().split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| bad("a bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the blank line.
                for _ in 0..=MAX_HEADERS {
                    if read_line(conn, &mut raw).await? == 0 || raw.trim_ascii().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            let end = start
                .checked_add(size)
                .filter(|&end| end <= MAX_BODY)
                .ok_or_else(|| bad("an answer over 1 MiB"))?;
            body.resize(end, 0);
            conn.read_exact(&mut body[start..]).await?;
            // The CRLF after the chunk's data.
            read_line(conn, &mut raw).await?;
        }
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(bad("an answer over 1 MiB"));
        }
        body.resize(n, 0);
        conn.read_exact(&mut body).await?;
    } else if !(100..200).contains(&status) && status != 204 && status != 304 {
        // No length: the body ends with the connection.
        (&mut *conn)
            .take(MAX_BODY as u64)
            .read_to_end(&mut body)
            .await?;
        keep_alive = false;
    }
    Ok(Answer {
        status,
        body,
        keep_alive,
    })
}

/// [`read_answer`] over bytes already in memory (all a service sent): the answer, or
/// why those bytes are not one. For the fuzz target and property tests; never panics.
pub fn parse_answer(bytes: &[u8]) -> io::Result<Answer> {
    let mut reader = bytes;
    let fut = std::pin::pin!(read_answer(&mut reader));
    let mut fut = fut;
    // A slice never waits: one poll finishes the read.
    match fut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "the answer read waited on a slice",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn t() -> Transfer {
        Transfer {
            id: 17,
            from: "A/3".into(),
            to: "B/5".into(),
            amount: 12,
        }
    }

    fn answer(status: u16, body: &str) -> Result<Answer, CallError> {
        Ok(Answer {
            status,
            body: body.as_bytes().to_vec(),
            keep_alive: true,
        })
    }

    #[test]
    fn each_answer_maps_as_the_contract_table_says() {
        assert!(matches!(
            outcome_of(answer(200, r#"{"status":"accepted"}"#), &t()),
            Outcome::Ok(_)
        ));
        assert_eq!(
            outcome_of(
                answer(
                    409,
                    r#"{"status":"rejected","reason":"insufficient funds"}"#
                ),
                &t()
            ),
            Outcome::Fail("insufficient funds".into())
        );
        // A 200 whose body is not the contract's is unknown, as is any other status.
        assert!(matches!(
            outcome_of(answer(200, "ok"), &t()),
            Outcome::Info(_)
        ));
        assert!(matches!(
            outcome_of(answer(409, "{}"), &t()),
            Outcome::Info(_)
        ));
        assert!(matches!(
            outcome_of(answer(500, ""), &t()),
            Outcome::Info(_)
        ));
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(
            outcome_of(Err(CallError::Refused(refused)), &t()),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            outcome_of(Err(CallError::Broken("reset".into())), &t()),
            Outcome::Info(_)
        ));
        assert!(matches!(
            outcome_of(Err(CallError::TimedOut), &t()),
            Outcome::Info(_)
        ));
    }

    #[test]
    fn whatever_a_service_sends_is_an_answer_or_an_error_within_bounds() {
        let ok = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!(
            (ok.status, ok.body.as_slice(), ok.keep_alive),
            (200, &b"{}"[..], true)
        );
        let chunked = parse_answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\nT: 1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, b"{}");
        let until_close = parse_answer(b"HTTP/1.0 500 X\r\n\r\nboom").unwrap();
        assert_eq!(
            (until_close.body.as_slice(), until_close.keep_alive),
            (&b"boom"[..], false)
        );

        let endless = [
            b"HTTP/1.1 200 OK\r\nX: ".as_slice(),
            &vec![b'a'; MAX_LINE * 4],
        ]
        .concat();
        let e = parse_answer(&endless).unwrap_err().to_string();
        assert!(e.contains("a line over 8192 bytes"), "{e}");
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "X: 1\r\n".repeat(MAX_HEADERS + 1)
        );
        let e = parse_answer(many.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("more than 100 header lines"), "{e}");
        for (bytes, why) in [
            // A chunk size that would overflow the body's length.
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\nffffffffffffffff\r\n",
                "over 1 MiB",
            ),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n", "over 1 MiB"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "Content-Length"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\n", "over 1 MiB"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
            ("HTTP/1.1 OK\r\n\r\n", "status line"),
            ("", "closed before an answer"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", "closed in the headers"),
        ] {
            let e = parse_answer(bytes.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(why), "{bytes:?}: {e}");
        }
        // Not UTF-8 anywhere: still an answer.
        let raw =
            parse_answer(b"HTTP/1.1 200 \xff\xfe\r\n\xff: \xff\r\nContent-Length: 1\r\n\r\n\xff")
                .unwrap();
        assert_eq!(raw.body, [0xff]);
        // And as the contract's table maps it: unknown.
        assert!(matches!(outcome_of(Ok(raw), &t()), Outcome::Info(_)));
    }

    /// Serves each connection the canned answers in turn, reading one request each.
    async fn serve(answers: Vec<&'static str>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (sock, _) = l.accept().await.unwrap();
            let mut r = BufReader::new(sock);
            for a in answers {
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).await.unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).await.unwrap();
                r.get_mut().write_all(a.as_bytes()).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_sized_and_chunked_answers_on_one_connection() {
        let addr = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{\"status\":\"accepted\"}\n",
            "HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n\
             14\r\n{\"status\":\"rejected\"\r\n1\r\n}\r\n0\r\n\r\n",
        ])
        .await;
        let c = HttpClient::new(addr);
        let d = Duration::from_secs(5);
        assert!(matches!(c.transfer(&t(), d).await, Outcome::Ok(_)));
        assert_eq!(c.transfer(&t(), d).await, Outcome::Fail("rejected".into()));
    }

    #[tokio::test]
    async fn a_connection_closed_mid_answer_is_unknown_and_a_closed_port_is_refused() {
        let addr = serve(vec!["HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{\"sta"]).await;
        let c = HttpClient::new(addr);
        assert!(matches!(
            c.transfer(&t(), Duration::from_secs(5)).await,
            Outcome::Info(_)
        ));
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = l.local_addr().unwrap().to_string();
        drop(l);
        let c = HttpClient::new(closed);
        assert!(matches!(
            c.transfer(&t(), Duration::from_secs(5)).await,
            Outcome::Fail(_)
        ));
    }
}
