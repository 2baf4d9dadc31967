//! The standalone server over real sockets: sessions, limits and bad input.

use client::{open_acl, Client, Error};
use jute::{op, CreateMode, ErrorCode, Jute};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

mod common;
use common::*;

#[tokio::test]
async fn expired_session_loses_its_ephemerals_and_watchers_hear_it() {
    let (addr, _stop) = start("").await;
    let watcher = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    let mut events = watcher.take_events().unwrap();
    // the owner negotiates the minimum timeout (2 ticks = 400 ms) and then goes silent
    let (mut owner, resp) = raw_session(addr, 0, vec![0; 16], 1).await;
    assert_eq!(resp.time_out, 400);
    let create = jute::CreateRequest {
        path: "/eph".into(),
        data: Some(b"x".to_vec()),
        acl: open_acl(),
        flags: 1,
    };
    let mut body = jute::RequestHeader {
        xid: 1,
        op_type: op::CREATE,
    }
    .encode();
    create.write(&mut body);
    owner.write_all(&frame(&body)).await.unwrap();
    let reply = read_frame(&mut owner).await.unwrap();
    assert_eq!(jute::ReplyHeader::decode(&reply[..16]).unwrap().err, 0);
    let stat = watcher
        .exists("/eph", true)
        .await
        .unwrap()
        .expect("ephemeral exists");
    assert_eq!(stat.ephemeral_owner, resp.session_id);
    let ev = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            // the client also reports its connection state (event type None)
            let ev = events.recv().await.unwrap();
            if ev.event_type != client::EventType::None {
                return ev;
            }
        }
    })
    .await
    .expect("expiry within 5 s");
    assert_eq!(
        (ev.event_type, ev.path.as_deref()),
        (client::EventType::NodeDeleted, Some("/eph"))
    );
    assert!(watcher.exists("/eph", false).await.unwrap().is_none());
    assert!(
        closed_by_server(&mut owner).await,
        "the expired session's connection is closed"
    );
    // and the session cannot be resumed
    let (_s, resp2) =
        raw_session(addr, resp.session_id, resp.passwd.clone().unwrap(), 10_000).await;
    assert_eq!(resp2.session_id, 0);
}

#[tokio::test]
async fn a_session_is_resumed_on_a_new_connection_with_its_password_only() {
    let (addr, _stop) = start("").await;
    let (mut first, resp) = raw_session(addr, 0, vec![0; 16], 10_000).await;
    let passwd = resp.passwd.clone().unwrap();
    let (_second, again) = raw_session(addr, resp.session_id, passwd.clone(), 10_000).await;
    assert_eq!(again.session_id, resp.session_id);
    assert!(
        closed_by_server(&mut first).await,
        "the old connection of a moved session is closed"
    );
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
    a.create("/still-serving", b"", &open_acl(), CreateMode::Persistent)
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_input_closes_or_fails_one_connection_and_changes_nothing() {
    let (addr, _stop) = start("jute.maxbuffer=4096\n").await;
    let good = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    good.create("/keep", b"v", &open_acl(), CreateMode::Persistent)
        .await
        .unwrap();
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
    let mut body = jute::RequestHeader {
        xid: 7,
        op_type: op::GET_DATA,
    }
    .encode();
    body.extend_from_slice(&[0, 0, 0, 50, b'/']);
    s.write_all(&frame(&body)).await.unwrap();
    let reply = jute::ReplyHeader::decode(&read_frame(&mut s).await.unwrap()).unwrap();
    assert_eq!(
        (reply.xid, reply.err),
        (7, ErrorCode::MarshallingError.code())
    );
    let body = jute::RequestHeader {
        xid: 8,
        op_type: 77,
    }
    .encode();
    s.write_all(&frame(&body)).await.unwrap();
    let reply = jute::ReplyHeader::decode(&read_frame(&mut s).await.unwrap()).unwrap();
    assert_eq!((reply.xid, reply.err), (8, ErrorCode::Unimplemented.code()));
    // a request header cut short closes the connection
    s.write_all(&frame(&[0, 0, 0])).await.unwrap();
    assert!(closed_by_server(&mut s).await);

    // an invalid path is BadArguments (sent raw: the client refuses it before sending)
    let (mut s, _) = raw_session(addr, 0, vec![0; 16], 10_000).await;
    let mut body = jute::RequestHeader {
        xid: 9,
        op_type: op::CREATE,
    }
    .encode();
    jute::CreateRequest {
        path: "no-slash".into(),
        data: Some(Vec::new()),
        acl: open_acl(),
        flags: 0,
    }
    .write(&mut body);
    s.write_all(&frame(&body)).await.unwrap();
    let reply = jute::ReplyHeader::decode(&read_frame(&mut s).await.unwrap()[..16]).unwrap();
    assert_eq!((reply.xid, reply.err), (9, ErrorCode::BadArguments.code()));
    assert!(matches!(
        good.create("no-slash", b"", &open_acl(), CreateMode::Persistent)
            .await,
        Err(Error::InvalidArgument(_))
    ));
    let after = good.exists("/keep", false).await.unwrap().unwrap();
    assert_eq!(before, after);
    assert_eq!(
        good.get_data("/keep", false).await.unwrap().0.unwrap(),
        b"v"
    );
}

/// Valid request frames of many kinds, to be mutated.
fn sample_requests() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut push = |op_type: i32, body: Vec<u8>| {
        let mut b = jute::RequestHeader { xid: 3, op_type }.encode();
        b.extend_from_slice(&body);
        out.push(b);
    };
    push(
        op::CREATE,
        jute::CreateRequest {
            path: "/f".into(),
            data: Some(vec![1, 2]),
            acl: open_acl(),
            flags: 3,
        }
        .encode(),
    );
    push(
        op::GET_DATA,
        jute::GetDataRequest {
            path: "/keep".into(),
            watch: true,
        }
        .encode(),
    );
    push(
        op::SET_WATCHES2,
        jute::SetWatches2 {
            relative_zxid: 1,
            data_watches: vec!["/a".into()],
            ..Default::default()
        }
        .encode(),
    );
    let mut multi = Vec::new();
    jute::MultiHeader {
        op_type: op::CREATE,
        done: false,
        err: -1,
    }
    .write(&mut multi);
    jute::CreateRequest {
        path: "/m".into(),
        data: None,
        acl: open_acl(),
        flags: 0,
    }
    .write(&mut multi);
    jute::MultiHeader {
        op_type: op::DELETE,
        done: false,
        err: -1,
    }
    .write(&mut multi);
    jute::DeleteRequest {
        path: "/keep".into(),
        version: 99,
    }
    .write(&mut multi);
    jute::MultiHeader {
        op_type: -1,
        done: true,
        err: -1,
    }
    .write(&mut multi);
    push(op::MULTI, multi);
    push(
        op::SET_ACL,
        jute::SetAclRequest {
            path: "/keep".into(),
            acl: vec![],
            version: 7,
        }
        .encode(),
    );
    push(
        op::ADD_WATCH,
        jute::AddWatchRequest {
            path: "/".into(),
            mode: 1,
        }
        .encode(),
    );
    push(
        op::AUTH,
        jute::AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Some(b"a:b".to_vec()),
        }
        .encode(),
    );
    out
}

#[tokio::test]
async fn mutated_and_random_packets_never_take_the_server_down() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let (addr, _stop) = start("jute.maxbuffer=65536\n").await;
    let good = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    good.create("/keep", b"v", &open_acl(), CreateMode::Persistent)
        .await
        .unwrap();
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let samples = sample_requests();
    let byte_flips = proptest::collection::vec((0usize..512, proptest::num::u8::ANY), 0..6);
    let random = proptest::collection::vec(proptest::num::u8::ANY, 0..300);
    for round in 0..150 {
        let (mut s, _) = raw_session(addr, 0, vec![0; 16], 10_000).await;
        let mut packet = samples[round % samples.len()].clone();
        for (at, byte) in byte_flips.new_tree(&mut runner).unwrap().current() {
            let n = packet.len();
            packet[at % n] = byte;
        }
        let payload = if round % 5 == 4 {
            random.new_tree(&mut runner).unwrap().current()
        } else {
            frame(&packet)
        };
        let _ = s.write_all(&payload).await;
        // whatever the server answers, it must keep answering a well-behaved client
        assert!(
            good.exists("/", false).await.unwrap().is_some(),
            "server alive after round {round}"
        );
    }
    assert_eq!(
        good.get_data("/keep", false).await.unwrap().0.unwrap(),
        b"v"
    );
}
