//! The standalone server over real sockets: sessions, limits and bad input.

use client::{open_acl, Client, Error};
use jute::{op, CreateMode, ErrorCode, Jute};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(extra: &str) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let dir = std::env::temp_dir().join(format!("zkrs-test-{}-{}", std::process::id(), rand_suffix()));
    let text = format!("tickTime=200\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n{extra}", dir.display());
    let cfg = config::ZooCfg::parse(&text, "test.cfg").unwrap();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        server::run(cfg, async { let _ = stop_rx.await; }, move |a| { let _ = addr_tx.send(a); }).await.unwrap();
    });
    (addr_rx.await.unwrap(), stop_tx)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let len = tokio::time::timeout(Duration::from_secs(5), s.read_i32()).await.ok()?.ok()?;
    let mut buf = vec![0; len as usize];
    s.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

/// A raw session: connect request sent, response read.
async fn raw_session(addr: SocketAddr, session_id: i64, passwd: Vec<u8>, timeout: i32) -> (TcpStream, jute::ConnectResponse) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = jute::ConnectRequest { protocol_version: 0, last_zxid_seen: 0, time_out: timeout, session_id, passwd: Some(passwd), read_only: false };
    s.write_all(&frame(&req.encode())).await.unwrap();
    let body = read_frame(&mut s).await.expect("connect response");
    (s, jute::ConnectResponse::decode(&body).unwrap())
}

/// True when the server closed the connection (EOF) within a few seconds.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn expired_session_loses_its_ephemerals_and_watchers_hear_it() {
    let (addr, _stop) = start("").await;
    let watcher = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    let mut events = watcher.take_events().unwrap();
    // the owner negotiates the minimum timeout (2 ticks = 400 ms) and then goes silent
    let (mut owner, resp) = raw_session(addr, 0, vec![0; 16], 1).await;
    assert_eq!(resp.time_out, 400);
    let create = jute::CreateRequest { path: "/eph".into(), data: Some(b"x".to_vec()), acl: open_acl(), flags: 1 };
    let mut body = jute::RequestHeader { xid: 1, op_type: op::CREATE }.encode();
    create.write(&mut body);
    owner.write_all(&frame(&body)).await.unwrap();
    let reply = read_frame(&mut owner).await.unwrap();
    assert_eq!(jute::ReplyHeader::decode(&reply[..16]).unwrap().err, 0);
    let stat = watcher.exists("/eph", true).await.unwrap().expect("ephemeral exists");
    assert_eq!(stat.ephemeral_owner, resp.session_id);
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.expect("expiry within 5 s").unwrap();
    assert_eq!((ev.event_type, ev.path.as_str()), (jute::event::NODE_DELETED, "/eph"));
    assert!(watcher.exists("/eph", false).await.unwrap().is_none());
    assert!(closed_by_server(&mut owner).await, "the expired session's connection is closed");
    // and the session cannot be resumed
    let (_s, resp2) = raw_session(addr, resp.session_id, resp.passwd.clone().unwrap(), 10_000).await;
    assert_eq!(resp2.session_id, 0);
}

#[tokio::test]
async fn a_session_is_resumed_on_a_new_connection_with_its_password_only() {
    let (addr, _stop) = start("").await;
    let (mut first, resp) = raw_session(addr, 0, vec![0; 16], 10_000).await;
    let passwd = resp.passwd.clone().unwrap();
    let (_second, again) = raw_session(addr, resp.session_id, passwd.clone(), 10_000).await;
    assert_eq!(again.session_id, resp.session_id);
    assert!(closed_by_server(&mut first).await, "the old connection of a moved session is closed");
    let mut wrong = passwd.clone();
    wrong[0] ^= 1;
    let (mut third, rejected) = raw_session(addr, resp.session_id, wrong, 10_000).await;
    assert_eq!((rejected.session_id, rejected.time_out), (0, 0));
    assert!(closed_by_server(&mut third).await);
}

#[tokio::test]
async fn max_client_cnxns_limits_connections_per_ip() {
    let (addr, _stop) = start("maxClientCnxns=2\n").await;
    let a = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    let _b = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    assert!(Client::connect(&addr.to_string(), 10_000).await.is_err());
    a.create("/still-serving", b"", &open_acl(), CreateMode::Persistent).await.unwrap();
}

#[tokio::test]
async fn bad_input_closes_or_fails_one_connection_and_changes_nothing() {
    let (addr, _stop) = start("jute.maxbuffer=4096\n").await;
    let good = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    good.create("/keep", b"v", &open_acl(), CreateMode::Persistent).await.unwrap();
    let before = good.exists("/keep", false).await.unwrap().unwrap();

    // garbage instead of a connect request
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&frame(b"\x01\x02\x03")).await.unwrap();
    assert!(closed_by_server(&mut s).await);

    // a length over jute.maxbuffer
    let (mut s, _) = raw_session(addr, 0, vec![0; 16], 10_000).await;
    s.write_all(&100_000i32.to_be_bytes()).await.unwrap();
    assert!(closed_by_server(&mut s).await);

    // a negative length
    let (mut s, _) = raw_session(addr, 0, vec![0; 16], 10_000).await;
    s.write_all(&(-5i32).to_be_bytes()).await.unwrap();
    assert!(closed_by_server(&mut s).await);

    // a truncated getData body gets MarshallingError, an unknown opcode Unimplemented
    let (mut s, _) = raw_session(addr, 0, vec![0; 16], 10_000).await;
    let mut body = jute::RequestHeader { xid: 7, op_type: op::GET_DATA }.encode();
    body.extend_from_slice(&[0, 0, 0, 50, b'/']);
    s.write_all(&frame(&body)).await.unwrap();
    let reply = jute::ReplyHeader::decode(&read_frame(&mut s).await.unwrap()).unwrap();
    assert_eq!((reply.xid, reply.err), (7, ErrorCode::MarshallingError.code()));
    let body = jute::RequestHeader { xid: 8, op_type: 77 }.encode();
    s.write_all(&frame(&body)).await.unwrap();
    let reply = jute::ReplyHeader::decode(&read_frame(&mut s).await.unwrap()).unwrap();
    assert_eq!((reply.xid, reply.err), (8, ErrorCode::Unimplemented.code()));
    // a request header cut short closes the connection
    s.write_all(&frame(&[0, 0, 0])).await.unwrap();
    assert!(closed_by_server(&mut s).await);

    // an invalid path is BadArguments
    assert_eq!(
        good.create("no-slash", b"", &open_acl(), CreateMode::Persistent).await.unwrap_err(),
        Error::Keeper(ErrorCode::BadArguments)
    );
    let after = good.exists("/keep", false).await.unwrap().unwrap();
    assert_eq!(before, after);
    assert_eq!(good.get_data("/keep", false).await.unwrap().0.unwrap(), b"v");
}
