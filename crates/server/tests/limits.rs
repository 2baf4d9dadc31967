//! What bounds the memory one client can make the server hold: replies larger than
//! jute.maxbuffer are refused, a connection that does not read its notifications is closed,
//! one that never completes its handshake too — and the server serves on.

use client::{open_acl, Client, Error, Op};
use jute::{op, CreateMode, Jute};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::*;

#[tokio::test]
async fn a_multi_read_or_get_children_larger_than_jute_maxbuffer_is_refused() {
    let (addr, _stop) = start("jute.maxbuffer=1048575\n").await;
    let c = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    c.create(
        "/big",
        &vec![7u8; 400_000],
        &open_acl(),
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    // three fit in one reply
    let fits: Vec<Op> = (0..2)
        .map(|_| Op::GetData {
            path: "/big".into(),
        })
        .collect();
    assert_eq!(c.multi_read(&fits).await.unwrap().len(), 2);
    // a thousand would be 400 MB
    let huge: Vec<Op> = (0..1000)
        .map(|_| Op::GetData {
            path: "/big".into(),
        })
        .collect();
    assert!(matches!(
        c.multi_read(&huge).await,
        Err(Error::MarshallingError)
    ));
    // children whose names add up to more than jute.maxbuffer
    let name = "c".repeat(2000);
    for i in 0..600 {
        c.create(
            &format!("/big/{name}{i}"),
            b"",
            &open_acl(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    }
    assert!(matches!(
        c.get_children("/big", false).await,
        Err(Error::MarshallingError)
    ));
    let as_multi = [Op::GetChildren {
        path: "/big".into(),
    }];
    assert!(matches!(
        c.multi_read(&as_multi).await,
        Err(Error::MarshallingError)
    ));
    // the session and the server go on
    assert_eq!(c.get_all_children_number("/big").await.unwrap(), 600);
}

#[tokio::test]
async fn a_client_that_does_not_read_its_notifications_is_disconnected() {
    let (addr, _stop) = start("").await;
    // a recursive watch on / from a client that then never reads
    let (mut silent, _) = raw_session(addr, 0, vec![0; 16], 30_000).await;
    let mut add_watch = jute_string("/");
    add_watch.extend_from_slice(&1i32.to_be_bytes()); // PERSISTENT_RECURSIVE
    silent
        .write_all(&request(1, op::ADD_WATCH, &add_watch))
        .await
        .unwrap();
    let reply = read_frame(&mut silent).await.unwrap();
    assert_eq!(jute::ReplyHeader::decode(&reply[..16]).unwrap().err, 0);
    // ~1 KiB per notification: 40 MiB of them, far beyond what the sockets buffer
    let writer = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    let long = "n".repeat(1000);
    let started = Instant::now();
    for batch in 0..400 {
        let ops: Vec<Op> = (0..100)
            .map(|i| Op::Create {
                path: format!("/{long}{batch}-{i}"),
                data: vec![],
                acl: open_acl(),
                mode: CreateMode::Persistent,
                ttl: None,
            })
            .collect();
        writer.multi(&ops).await.unwrap();
    }
    // what reached the socket before the server gave up on it, then the end
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received += n,
            Err(_) => panic!("the connection is still open, {received} bytes read"),
        }
    }
    assert!(
        received < 30 << 20,
        "{received} bytes arrived: the connection was not cut short"
    );
    // the writer was never held up for long, and the server serves on
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(writer.exists("/", false).await.unwrap().is_some());
    let fresh = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    fresh
        .create("/after", b"", &open_acl(), CreateMode::Persistent)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_connection_without_a_handshake_is_closed() {
    let (addr, _stop) = start("").await;
    // declares a 1 MB ConnectRequest and sends one byte of it
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(&(1_000_000i32).to_be_bytes())
        .await
        .unwrap();
    stalled.write_all(&[0]).await.unwrap();
    // sends half a length prefix
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(&[0, 0]).await.unwrap();
    let started = Instant::now();
    for s in [&mut stalled, &mut half] {
        let mut buf = [0u8; 16];
        let ended = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await;
        assert!(
            matches!(ended, Ok(Ok(0)) | Ok(Err(_))),
            "still open after {:?}",
            started.elapsed()
        );
    }
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "closed too early"
    );
    let c = Client::connect(&addr.to_string(), 10_000).await.unwrap();
    assert!(c.exists("/", false).await.unwrap().is_some());
}
