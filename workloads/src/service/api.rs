//! The transfer API's server side (`docs/sut.md` §3), for chaosbank's own
//! producer nodes: the reference schemes take transfers over the same HTTP contract as a
//! user's service, so the harness drives every system alike through
//! [`super::HttpClient`].
//!
//! HTTP/1.1 with kept-alive connections; requests with a `Content-Length` body.

use std::future::Future;
use std::io;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::tables::parse_id;
use crate::bank::Transfer;
use crate::system::Outcome;

/// The largest request body taken.
const MAX_BODY: usize = 64 * 1024;

/// What the server asks of the system behind it.
pub trait Handler: Clone + Send + Sync + 'static {
    /// Runs one transfer.
    fn transfer(&self, t: Transfer) -> impl Future<Output = Outcome> + Send;
    /// True once transfers are taken (`GET /health`).
    fn healthy(&self) -> bool;
}

/// Serves `listener` until the returned future is dropped.
pub async fn serve<H: Handler>(listener: TcpListener, handler: H) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    conns.spawn(serve_conn(sock, handler.clone()));
                }
                Err(e) => {
                    tracing::warn!("transfer API accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// The answer to a transfer's outcome: 200 `accepted`, 409 `rejected` with the reason,
/// 503 for an outcome that is unknown (the client records `info`).
pub fn answer_of(outcome: &Outcome) -> (u16, Value) {
    match outcome {
        Outcome::Ok(_) => (200, json!({"status": "accepted"})),
        Outcome::Fail(reason) => (409, json!({"status": "rejected", "reason": reason})),
        Outcome::Info(reason) => (503, json!({"status": "unknown", "reason": reason})),
    }
}

/// A request body as a transfer chaosbank sent (`"id": "t17"`).
pub fn transfer_of(body: &[u8]) -> Result<Transfer, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("no string {k:?}"))
    };
    let id = text("id")?;
    Ok(Transfer {
        id: parse_id(&id).ok_or_else(|| format!("id {id:?} is not t<N>"))?,
        from: text("from")?,
        to: text("to")?,
        amount: v
            .get("amount")
            .and_then(Value::as_i64)
            .filter(|a| *a > 0)
            .ok_or("no positive integer \"amount\"")?,
    })
}

async fn serve_conn<H: Handler>(sock: TcpStream, handler: H) {
    let mut conn = BufReader::new(sock);
    loop {
        let (method, path, body) = match read_request(&mut conn).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!("transfer API: {e}");
                return;
            }
        };
        let (status, value) = match (method.as_str(), path.as_str()) {
            ("GET", "/health") if handler.healthy() => (200, json!({"status": "ok"})),
            ("GET", "/health") => (503, json!({"status": "starting"})),
            ("POST", "/transfers") => match transfer_of(&body) {
                Ok(t) => answer_of(&handler.transfer(t).await),
                Err(e) => (400, json!({"status": "bad request", "reason": e})),
            },
            _ => (404, json!({"status": "not found"})),
        };
        let body = value.to_string();
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            409 => "Conflict",
            _ => "Service Unavailable",
        };
        let out = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if conn.get_mut().write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// One request: `None` when the client closed the connection between requests.
async fn read_request(
    conn: &mut BufReader<TcpStream>,
) -> io::Result<Option<(String, String, Vec<u8>)>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts
        .next()
        .ok_or_else(|| bad("an empty request line"))?
        .to_string();
    let path = parts.next().ok_or_else(|| bad("no path"))?.to_string();
    let mut length = 0;
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err(bad("the connection closed in the headers"));
        }
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("a bad Content-Length"))?;
            }
        }
    }
    if length > MAX_BODY {
        return Err(bad("a request body over 64 KiB"));
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await?;
    Ok(Some((method, path, body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::HttpClient;
    use std::time::Duration;

    #[derive(Clone)]
    struct Fixed(Outcome);

    impl Handler for Fixed {
        async fn transfer(&self, _t: Transfer) -> Outcome {
            self.0.clone()
        }
        fn healthy(&self) -> bool {
            true
        }
    }

    fn t() -> Transfer {
        Transfer {
            id: 17,
            from: "A/3".into(),
            to: "B/5".into(),
            amount: 12,
        }
    }

    #[test]
    fn a_request_body_is_the_transfer_chaosbank_sent() {
        let body = br#"{"id": "t17", "from": "A/3", "to": "B/5", "amount": 12}"#;
        assert_eq!(transfer_of(body), Ok(t()));
        assert!(transfer_of(br#"{"id": "17", "from": "A/3", "to": "B/5", "amount": 12}"#).is_err());
        assert!(transfer_of(br#"{"id": "t1", "from": "A/3", "to": "B/5", "amount": 0}"#).is_err());
        assert!(transfer_of(b"{").is_err());
    }

    /// Every outcome crosses the HTTP contract and comes back as the same kind.
    #[tokio::test]
    async fn each_outcome_survives_the_round_trip_through_the_contract() {
        let cases = [
            Outcome::Ok(serde_json::to_value(t()).unwrap()),
            Outcome::Fail("insufficient funds".into()),
            Outcome::Info("the commit's answer was lost".into()),
        ];
        for outcome in cases {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap().to_string();
            let server = tokio::spawn(serve(l, Fixed(outcome.clone())));
            let c = HttpClient::new(addr);
            assert!(c.healthy(Duration::from_secs(5)).await);
            let got = c.transfer(&t(), Duration::from_secs(5)).await;
            server.abort();
            match (&outcome, &got) {
                (Outcome::Ok(a), Outcome::Ok(b)) => assert_eq!(a, b),
                (Outcome::Fail(a), Outcome::Fail(b)) => assert_eq!(a, b),
                (Outcome::Info(a), Outcome::Info(b)) => assert!(b.contains(a.as_str()), "{b}"),
                _ => panic!("{outcome:?} came back as {got:?}"),
            }
        }
    }
}
