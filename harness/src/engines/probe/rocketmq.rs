//! Just enough of RocketMQ's remoting protocol to ask a name server which brokers have
//! registered (request code 106, GET_BROKER_CLUSTER_INFO).
//!
//! A frame is `total: i32` (everything after itself), `header: i32` whose high byte is
//! the serialization type (0 = JSON) and low three bytes the header length, the JSON
//! header, then the body.

use super::{within, NotReady};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// GET_BROKER_CLUSTER_INFO, asked of the name server.
pub const GET_BROKER_CLUSTER_INFO: i32 = 106;
/// GET_BROKER_RUNTIME_INFO, asked of the broker itself.
pub const GET_BROKER_RUNTIME_INFO: i32 = 28;

/// A response: its header's `code` and its body as text.
#[derive(Clone, Debug)]
pub struct Response {
    /// 0 is success.
    pub code: i64,
    /// The `remark`, if any.
    pub remark: Option<String>,
    /// The body (JSON for cluster info).
    pub body: String,
}

/// Sends one request with an empty body to `127.0.0.1:port` and reads the response.
pub async fn request(port: u16, code: i32) -> Result<Response, NotReady> {
    let mut s = within(TcpStream::connect(("127.0.0.1", port))).await??;
    let header = serde_json::json!({
        "code": code,
        "language": "RUST",
        "version": 0,
        "opaque": 1,
        "flag": 0,
        "extFields": {},
        // Java clients send it; the Rust name server requires it.
        "serializeTypeCurrentRPC": "JSON",
    })
    .to_string()
    .into_bytes();
    let mut frame = Vec::with_capacity(8 + header.len());
    frame.extend_from_slice(&(4 + header.len() as i32).to_be_bytes());
    frame.extend_from_slice(&(header.len() as i32 & 0x00ff_ffff).to_be_bytes());
    frame.extend_from_slice(&header);
    within(s.write_all(&frame)).await??;
    let total = within(s.read_i32()).await??;
    if !(4..=16 << 20).contains(&total) {
        return Err(NotReady::Retry(format!("implausible frame length {total}")));
    }
    let mut buf = vec![0; total as usize];
    within(s.read_exact(&mut buf)).await??;
    let mark = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let (kind, hlen) = (mark >> 24, (mark & 0x00ff_ffff) as usize);
    if kind != 0 {
        return Err(NotReady::Retry(format!(
            "header serialized as type {kind}, not JSON"
        )));
    }
    if 4 + hlen > buf.len() {
        return Err(NotReady::Retry("header longer than frame".to_string()));
    }
    let header: serde_json::Value = serde_json::from_slice(&buf[4..4 + hlen])?;
    Ok(Response {
        code: header.get("code").and_then(|c| c.as_i64()).unwrap_or(-1),
        remark: header
            .get("remark")
            .and_then(|r| r.as_str())
            .map(str::to_string),
        body: String::from_utf8_lossy(&buf[4 + hlen..]).into_owned(),
    })
}

/// One attempt: the name server answers cluster info; with `broker_port`, the answer
/// must also list a broker at that port, and the broker itself must answer a runtime-info
/// request (after a broker restart the name server keeps listing the old registration
/// until it expires, so its word alone is not enough).
pub async fn probe(namesrv_port: u16, broker_port: Option<u16>) -> Result<Response, NotReady> {
    let r = request(namesrv_port, GET_BROKER_CLUSTER_INFO).await?;
    if r.code != 0 {
        return Err(NotReady::Retry(format!(
            "cluster info code {}: {}",
            r.code,
            r.remark.as_deref().unwrap_or("")
        )));
    }
    if let Some(port) = broker_port {
        if !r.body.contains(&format!(":{port}\"")) {
            return Err(NotReady::Retry(format!(
                "no broker at port {port} registered yet"
            )));
        }
    }
    Ok(r)
}
