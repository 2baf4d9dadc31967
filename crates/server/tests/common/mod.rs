//! What the socket-level tests share: a server started in this process, raw frames.
#![allow(dead_code)] // each test file uses its own part

use jute::Jute;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub async fn start(extra: &str) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let dir = std::env::temp_dir().join(format!(
        "zkrs-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let text = format!(
        "tickTime=200\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n{extra}",
        dir.display()
    );
    let cfg = config::ZooCfg::parse(&text, "test.cfg").unwrap();
    let (addr, stop) = spawn(cfg);
    (addr.await.unwrap(), stop)
}

/// Runs a server of `cfg` in this process: its client address once bound, and the sender
/// that stops it (dropping it stops it too).
pub fn spawn(
    cfg: config::ZooCfg,
) -> (
    tokio::sync::oneshot::Receiver<SocketAddr>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        server::run(
            cfg,
            async {
                let _ = stop_rx.await;
            },
            move |a| {
                let _ = addr_tx.send(a);
            },
        )
        .await
        .unwrap();
    });
    (addr_rx, stop_tx)
}

pub fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

pub async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let len = tokio::time::timeout(Duration::from_secs(5), s.read_i32())
        .await
        .ok()?
        .ok()?;
    let mut buf = vec![0; len as usize];
    s.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

/// A raw session: connect request sent, response read.
pub async fn raw_session(
    addr: SocketAddr,
    session_id: i64,
    passwd: Vec<u8>,
    timeout: i32,
) -> (TcpStream, jute::ConnectResponse) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = jute::ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: timeout,
        session_id,
        passwd: Some(passwd),
        read_only: false,
    };
    s.write_all(&frame(&req.encode())).await.unwrap();
    let body = read_frame(&mut s).await.expect("connect response");
    (s, jute::ConnectResponse::decode(&body).unwrap())
}

/// True when the server closed the connection (EOF) within a few seconds.
pub async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// One request frame: header and body.
pub fn request(xid: i32, op_type: i32, body: &[u8]) -> Vec<u8> {
    let mut out = jute::RequestHeader { xid, op_type }.encode();
    out.extend_from_slice(body);
    frame(&out)
}

/// A jute string.
pub fn jute_string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}
