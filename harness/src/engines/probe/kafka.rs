//! Just enough of the Kafka wire protocol to ask a broker whether it serves: an
//! ApiVersions v0 request, then Metadata (v1, or v4 where v1 is gone) for the brokers it
//! advertises, then FindCoordinator v1 (where offered) for the consumer groups' coordinator.
//!
//! Frames are a big-endian `i32` size followed by the message; a request header (v1) is
//! `api_key: i16, api_version: i16, correlation_id: i32, client_id: i16-length string`.

use super::{within, NotReady};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const API_VERSIONS: i16 = 18;
const METADATA: i16 = 3;
const FIND_COORDINATOR: i16 = 10;
const CLIENT_ID: &[u8] = b"chaosbank-probe";

/// A broker as the Metadata response advertises it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    /// Broker id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
}

/// One attempt against `127.0.0.1:port`: ApiVersions must answer without error, and
/// Metadata must list at least one broker. Returns the advertised brokers.
pub async fn probe(port: u16) -> Result<Vec<Broker>, NotReady> {
    let mut s = within(TcpStream::connect(("127.0.0.1", port))).await??;
    let body = exchange(&mut s, API_VERSIONS, 0, 1, &[]).await?;
    let mut r = Reader(&body);
    let error = r.i16()?;
    if error != 0 {
        return Err(NotReady::Retry(format!("ApiVersions error code {error}")));
    }
    let mut metadata = None;
    let mut find_coordinator = None;
    for _ in 0..r.len()? {
        let (key, min, max) = (r.i16()?, r.i16()?, r.i16()?);
        if key == METADATA {
            metadata = Some((min, max));
        }
        if key == FIND_COORDINATOR {
            find_coordinator = Some((min, max));
        }
    }
    // Metadata v1 (tansu) or v4 (Apache Kafka 4 dropped v0–v3): the same broker list,
    // v4 with a throttle time before it and an auto-create flag in the request.
    // topics = null (-1) means "all topics".
    let (version, request): (i16, Vec<u8>) = match metadata {
        Some((min, max)) if min <= 1 && 1 <= max => (1, (-1i32).to_be_bytes().to_vec()),
        Some((min, max)) if min <= 4 && 4 <= max => {
            let mut body = (-1i32).to_be_bytes().to_vec();
            body.push(0);
            (4, body)
        }
        other => {
            return Err(NotReady::Retry(format!(
                "no Metadata v1 or v4 (range {other:?})"
            )))
        }
    };
    let body = exchange(&mut s, METADATA, version, 2, &request).await?;
    let mut r = Reader(&body);
    if version >= 3 {
        let _throttle_ms = r.i32()?;
    }
    let mut brokers = Vec::new();
    for _ in 0..r.len()? {
        let node_id = r.i32()?;
        let host = r.string()?;
        let port = r.i32()?;
        let _rack = r.nullable_string()?;
        brokers.push(Broker {
            node_id,
            host,
            port,
        });
    }
    if brokers.is_empty() {
        return Err(NotReady::Retry("Metadata lists no broker yet".to_string()));
    }
    // Consumer groups served: FindCoordinator v1 answers without error. On Apache Kafka
    // the first lookup creates the offsets topic and loads its partitions; until then a
    // consumer's fetch of its committed offsets went unanswered for up to 15 s.
    if matches!(find_coordinator, Some((min, max)) if min <= 1 && 1 <= max) {
        let key = b"chaosbank-probe";
        let mut body = (key.len() as i16).to_be_bytes().to_vec();
        body.extend_from_slice(key);
        body.push(0); // key type: group
        let resp = exchange(&mut s, FIND_COORDINATOR, 1, 3, &body).await?;
        let mut r = Reader(&resp);
        let _throttle_ms = r.i32()?;
        let error = r.i16()?;
        if error != 0 {
            return Err(NotReady::Retry(format!(
                "FindCoordinator error code {error} (the group coordinator is loading)"
            )));
        }
    }
    Ok(brokers)
}

async fn exchange(
    s: &mut TcpStream,
    api_key: i16,
    version: i16,
    correlation: i32,
    body: &[u8],
) -> Result<Vec<u8>, NotReady> {
    let mut msg = Vec::new();
    msg.extend_from_slice(&api_key.to_be_bytes());
    msg.extend_from_slice(&version.to_be_bytes());
    msg.extend_from_slice(&correlation.to_be_bytes());
    msg.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    msg.extend_from_slice(CLIENT_ID);
    msg.extend_from_slice(body);
    let mut frame = (msg.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&msg);
    within(s.write_all(&frame)).await??;
    let size = within(s.read_i32()).await??;
    if !(4..=16 << 20).contains(&size) {
        return Err(NotReady::Retry(format!("implausible response size {size}")));
    }
    let mut buf = vec![0; size as usize];
    within(s.read_exact(&mut buf)).await??;
    let got = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if got != correlation {
        return Err(NotReady::Retry(format!(
            "correlation id {got}, expected {correlation}"
        )));
    }
    buf.drain(..4);
    Ok(buf)
}

/// A cursor over a response body.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], NotReady> {
        if self.0.len() < n {
            return Err(NotReady::Retry("response cut short".to_string()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, NotReady> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, NotReady> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn len(&mut self) -> Result<usize, NotReady> {
        Ok(self.i32()?.max(0) as usize)
    }
    fn string(&mut self) -> Result<String, NotReady> {
        Ok(self.nullable_string()?.unwrap_or_default())
    }
    fn nullable_string(&mut self) -> Result<Option<String>, NotReady> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        let b = self.take(n as usize)?;
        Ok(Some(String::from_utf8_lossy(b).into_owned()))
    }
}
