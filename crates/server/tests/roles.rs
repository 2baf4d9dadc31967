//! Hostile input against every role of a real ensemble (three participants and an observer,
//! in this process, over loopback sockets): each role answers what a client or a stranger on
//! the quorum port sends as ZooKeeper does, and keeps serving — the leader keeps its term.

use client::{open_acl, Client};
use jute::{op, CreateMode, ErrorCode, Jute};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zab::wire::{LearnerHello, Packet};

mod common;
use common::*;

struct Member {
    client: SocketAddr,
    quorum: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts servers 1-3 (participants) and 4 (observer) and waits until each serves.
async fn start_ensemble() -> Vec<Member> {
    let ports: Vec<[u16; 3]> = (0..4)
        .map(|_| [free_port(), free_port(), free_port()])
        .collect();
    let lines: String = ports
        .iter()
        .enumerate()
        .map(|(i, [q, e, c])| {
            let role = if i == 3 { ":observer" } else { "" };
            format!("server.{}=127.0.0.1:{q}:{e}{role};127.0.0.1:{c}\n", i + 1)
        })
        .collect();
    let base = std::env::temp_dir().join(format!(
        "zkrs-roles-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut members = Vec::new();
    for (i, [q, _, c]) in ports.iter().enumerate() {
        let sid = i + 1;
        let dir = base.join(sid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("myid"), format!("{sid}\n")).unwrap();
        let peer_type = if sid == 4 { "peerType=observer\n" } else { "" };
        let text = format!(
            "tickTime=100\ninitLimit=20\nsyncLimit=10\ndataDir={}\n{peer_type}{lines}",
            dir.display()
        );
        let cfg = config::ZooCfg::parse(&text, "roles.cfg").unwrap();
        let (_, stop_tx) = spawn(cfg);
        members.push(Member {
            client: format!("127.0.0.1:{c}").parse().unwrap(),
            quorum: format!("127.0.0.1:{q}").parse().unwrap(),
            _stop: stop_tx,
        });
    }
    for m in &members {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while mode(m.client).await.is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} never served",
                m.client
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    members
}

/// `srvr`'s Mode and Zxid, once the server serves.
async fn srvr(addr: SocketAddr) -> Option<(String, i64)> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(b"srvr").await.ok()?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_string(&mut text))
        .await
        .ok()?
        .ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    let mode = field("Mode:")?;
    let zxid = i64::from_str_radix(field("Zxid:")?.trim_start_matches("0x"), 16).ok()?;
    Some((mode, zxid))
}

async fn mode(addr: SocketAddr) -> Option<String> {
    srvr(addr).await.map(|(mode, _)| mode)
}

/// Sends one request with this opcode and body; the error code of its answer (None: no
/// answer, the connection closed).
async fn ask(addr: SocketAddr, op_type: i32, body: &[u8]) -> Option<i32> {
    let (mut s, session) = raw_session(addr, 0, vec![0; 16], 10_000).await;
    assert_ne!(session.session_id, 0, "session refused by {addr}");
    s.write_all(&request(7, op_type, body)).await.ok()?;
    let reply = read_frame(&mut s).await?;
    let header = jute::ReplyHeader::decode(&reply[..16]).ok()?;
    assert_eq!(header.xid, 7);
    Some(header.err)
}

/// A new client session through `addr` creates a znode.
async fn serves_writes(addr: SocketAddr, name: &str) {
    let c = Client::connect(&addr.to_string(), 10_000)
        .await
        .unwrap_or_else(|e| panic!("no new session on {addr}: {e:?}"));
    c.create(name, b"", &open_acl(), CreateMode::Persistent)
        .await
        .unwrap_or_else(|e| panic!("no write through {addr}: {e:?}"));
}

#[tokio::test]
async fn every_role_answers_bad_client_requests_and_keeps_serving() {
    let members = start_ensemble().await;
    serves_writes(members[0].client, "/before").await;
    let leadership = leader_and_epoch(&members).await;
    // a create whose body stops inside its data field
    let mut truncated_create = jute_string("/t");
    truncated_create.extend_from_slice(&100i32.to_be_bytes());
    truncated_create.extend_from_slice(b"abc");
    // a multi whose first op header announces a create, followed by junk
    let mut junk_multi = jute::MultiHeader {
        op_type: op::CREATE,
        done: false,
        err: -1,
    }
    .encode();
    junk_multi.extend_from_slice(&[0xff; 9]);
    for (i, m) in members.iter().enumerate() {
        let role = mode(m.client).await.unwrap();
        let mut check = jute_string("/");
        check.extend_from_slice(&(-1i32).to_be_bytes());
        let cases: [(&str, i32, &[u8], ErrorCode); 5] = [
            // a version check outside a multi takes down a ZooKeeper 3.8 ensemble
            ("lone check", op::CHECK, &check, ErrorCode::Unimplemented),
            (
                "deleteContainer",
                op::DELETE_CONTAINER,
                &jute_string("/zookeeper"),
                ErrorCode::BadArguments,
            ),
            (
                "truncated create",
                op::CREATE,
                &truncated_create,
                ErrorCode::MarshallingError,
            ),
            (
                "junk multi",
                op::MULTI,
                &junk_multi,
                ErrorCode::MarshallingError,
            ),
            ("unknown opcode", 999, b"\x01\x02", ErrorCode::Unimplemented),
        ];
        for (what, op_type, body, expected) in cases {
            let err = ask(m.client, op_type, body).await;
            assert_eq!(
                err,
                Some(expected.code()),
                "{what} to server {} ({role})",
                i + 1
            );
        }
        serves_writes(m.client, &format!("/after-{}", i + 1)).await;
    }
    // and each still serves after all the others were probed, under the same leader
    for (i, m) in members.iter().enumerate() {
        serves_writes(m.client, &format!("/again-{}", i + 1)).await;
    }
    assert_eq!(leader_and_epoch(&members).await, leadership);
}

async fn leader_and_epoch(members: &[Member]) -> (usize, i64) {
    for (i, m) in members.iter().enumerate() {
        if let Some((mode, zxid)) = srvr(m.client).await {
            if mode == "leader" {
                return (i, zxid >> 32);
            }
        }
    }
    panic!("no leader");
}

/// Connects to `quorum` and sends these packets.
async fn impostor(quorum: SocketAddr, packets: &[Packet]) -> TcpStream {
    let mut s = TcpStream::connect(quorum).await.unwrap();
    let mut bytes = Vec::new();
    for p in packets {
        p.to_raw().encode_into(&mut bytes);
    }
    s.write_all(&bytes).await.unwrap();
    s
}

#[tokio::test]
async fn strangers_on_the_quorum_port_do_not_move_the_leadership() {
    let members = start_ensemble().await;
    // a write, so that the zxid srvr shows is of the leader's epoch
    serves_writes(members[0].client, "/before").await;
    let (leader, epoch) = leader_and_epoch(&members).await;
    let quorum = members[leader].quorum;
    let hello = |epoch: i64| Packet::FollowerInfo(LearnerHello::new(epoch, 99, 0));
    let mut held = Vec::new();
    // a stranger registering with a later epoch, then a COMMIT and an ACK of a future zxid
    held.push(
        impostor(
            quorum,
            &[hello(epoch + 5), Packet::Commit { zxid: epoch << 32 }],
        )
        .await,
    );
    held.push(impostor(quorum, &[hello(epoch), Packet::Commit { zxid: 1 }]).await);
    held.push(
        impostor(
            quorum,
            &[
                hello(epoch),
                Packet::Ack {
                    zxid: (epoch << 32) + 1000,
                },
            ],
        )
        .await,
    );
    // an epoch whose successor would overflow into a negative zxid, again and again
    for _ in 0..20 {
        held.push(impostor(quorum, &[hello(i32::MAX as i64)]).await);
    }
    // garbage, and a first packet that is no FOLLOWERINFO
    let mut garbage = TcpStream::connect(quorum).await.unwrap();
    garbage.write_all(&[0x7f; 64]).await.unwrap();
    held.push(garbage);
    held.push(impostor(quorum, &[Packet::Commit { zxid: 5 }]).await);
    // and one that never registers is closed after initLimit (20 ticks of 100 ms)
    let mut silent = TcpStream::connect(quorum).await.unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    assert_eq!(
        leader_and_epoch(&members).await,
        (leader, epoch),
        "the leader or its epoch changed"
    );
    for (i, m) in members.iter().enumerate() {
        serves_writes(m.client, &format!("/still-{}", i + 1)).await;
    }
    assert_eq!(leader_and_epoch(&members).await, (leader, epoch));
}
