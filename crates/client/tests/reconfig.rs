//! Reconfiguration through the client API against reconfigEnabled 3-server ensembles of
//! Apache ZooKeeper 3.8 and zkrs: incremental, bulk and conditional reconfig; getConfig with a
//! watch; reconfig_and_wait's quorum barrier (a real txn, proposed and committed by the
//! leader); and the hint of a NewConfigNoQuorum when an observer is made a participant.

mod common;

use client::{ClientConfig, Error, EventType, ZooKeeper};
use common::{mode, srvr_zxid, Ensemble, Kind, SUPER_AUTH};
use std::time::Duration;

async fn admin(ens: &Ensemble, sids: &[u64]) -> ZooKeeper {
    let cs: Vec<String> = sids
        .iter()
        .map(|s| ens.servers[s].connect_string())
        .collect();
    let zk = ZooKeeper::builder(&cs.join(","))
        .session_timeout(10_000)
        .connect_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    zk.add_auth("digest", SUPER_AUTH).await.unwrap();
    zk
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

async fn reconfig_api(kind: Kind) {
    let mut ens = Ensemble::start(kind, 3);
    // r: a follower to remove and add back; the client is on the two others (a removed
    // server drops its clients, and removing the leader makes every server drop them)
    let leader = ens.wait_for_leader(Duration::from_secs(30));
    let r = (1..=3).find(|s| *s != leader).unwrap();
    let keep: Vec<u64> = (1..=3).filter(|s| *s != r).collect();
    let zk = admin(&ens, &keep).await;
    let mut events = zk.take_events().unwrap();
    let (data, stat) = zk.get_config(true).await.unwrap();
    let config = text(&data);
    for sid in 1..=3 {
        assert!(
            config.contains(&ens.servers[&sid].spec("participant")),
            "{config}"
        );
    }
    let version = ClientConfig::parse(&config).unwrap().version;
    assert_eq!(stat.mzxid, version);

    // incremental: remove r; the watch on the config fires
    let (new, stat) = zk
        .reconfig(None, Some(&r.to_string()), None, -1)
        .await
        .unwrap();
    let new = text(&new);
    assert!(!new.contains(&format!("server.{r}=")), "{new}");
    let v2 = ClientConfig::parse(&new).unwrap().version;
    assert!(v2 > version);
    assert_eq!(stat.mzxid, v2);
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("config watch fires")
            .unwrap();
        if ev.event_type == EventType::NodeDataChanged {
            assert_eq!(ev.path.as_deref(), Some("/zookeeper/config"));
            break;
        }
    }
    // conditional: a stale version fails, the current one works
    let back = ens.servers[&r].spec("participant");
    assert_eq!(
        zk.reconfig(Some(&back), None, None, version).await,
        Err(Error::BadVersion)
    );
    // reconfig_and_wait: the barrier is one more txn, committed through the leader
    let leader = ens.wait_for_leader(Duration::from_secs(30));
    let before = srvr_zxid(ens.port(leader)).unwrap();
    let (new, _) = zk
        .reconfig_and_wait(Some(&back), None, None, v2)
        .await
        .unwrap();
    assert!(text(&new).contains(&back));
    let leader_zxid = srvr_zxid(ens.port(leader)).unwrap();
    assert_eq!(leader_zxid, before + 2, "reconfig and barrier are two txns");
    // and the barrier alone: exactly one proposal, on the leader and on every follower
    let z = zk.quorum_barrier().await.unwrap();
    assert_eq!(z, leader_zxid + 1);
    for sid in 1..=3 {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while srvr_zxid(ens.port(sid)) != Some(z) {
            assert!(
                std::time::Instant::now() < deadline,
                "server {sid} lacks the barrier txn"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // bulk: the same membership written out in full
    let members: Vec<String> = (1..=3)
        .map(|s| ens.servers[&s].spec("participant"))
        .collect();
    let (new, _) = zk
        .reconfig(None, None, Some(&members.join(",")), -1)
        .await
        .unwrap();
    for m in &members {
        assert!(text(&new).contains(m.as_str()));
    }

    // observer -> participant without a quorum: NewConfigNoQuorum with the two commands
    // first a follower other than the one we are on goes down (before what follows, so that
    // the leader has seen it go when the observer is proposed as a participant)
    let on = common::port_of(&zk.connected_to().unwrap());
    let leader = ens.wait_for_leader(Duration::from_secs(30));
    let victim = (1..=3)
        .find(|s| *s != leader && ens.port(*s) != on)
        .unwrap();
    ens.servers.get_mut(&victim).unwrap().kill();
    let (current, _) = zk.get_config(false).await.unwrap();
    ens.add_joiner(4, "observer", &text(&current));
    let as_observer = ens.servers[&4].spec("observer");
    zk.reconfig_and_wait(Some(&as_observer), None, None, -1)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while mode(ens.port(4)).as_deref() != Some("observer") {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("server 4 observes");
    let as_participant = ens.servers[&4].spec("participant");
    let err = zk
        .reconfig(Some(&as_participant), None, None, -1)
        .await
        .unwrap_err();
    let Error::NewConfigNoQuorum { hint: Some(hint) } = &err else {
        panic!("expected NewConfigNoQuorum with a hint, got {err:?}");
    };
    assert!(hint.contains("`reconfig -remove 4`"), "{hint}");
    assert!(
        hint.contains(&format!("`reconfig -add {as_participant}`")),
        "{hint}"
    );
    // following the hint works: 4 is a non-voting follower in between and can ack
    zk.reconfig_and_wait(None, Some("4"), None, -1)
        .await
        .unwrap();
    // the former observer reconnects to the leader as a (non-voting) follower
    tokio::time::timeout(Duration::from_secs(30), async {
        while mode(ens.port(4)).as_deref() != Some("follower") {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("server 4 follows");
    let (new, _) = zk
        .reconfig_and_wait(Some(&as_participant), None, None, -1)
        .await
        .unwrap();
    assert!(text(&new).contains(&as_participant), "{}", text(&new));
    zk.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_through_the_api_apache_zookeeper() {
    reconfig_api(Kind::Zk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_through_the_api_zkrs() {
    reconfig_api(Kind::Zkrs).await;
}
