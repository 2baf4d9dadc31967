//! Golden tests: bytes captured between Apache ZooKeeper 3.8.0 servers (see
//! tests/data/zk38/README.md) decode completely, type correctly, and re-encode to the very same
//! bytes.

use zab::wire::*;

macro_rules! data {
    ($name:literal) => {
        include_bytes!(concat!("data/zk38/", $name, ".bin")).as_slice()
    };
}

/// Decodes a whole quorum stream; asserts every item re-encodes to its own bytes.
fn quorum_stream(bytes: &[u8], from: Sender) -> Vec<(Packet, Option<SnapshotStream>)> {
    let mut dec = QuorumStreamDecoder::new(from);
    let mut rest = bytes;
    let mut out: Vec<(Packet, Option<SnapshotStream>)> = Vec::new();
    while !rest.is_empty() {
        let (item, used) = dec
            .next_item(rest)
            .unwrap()
            .unwrap_or_else(|| panic!("incomplete item at offset {}", bytes.len() - rest.len()));
        let raw_bytes = &rest[..used];
        match item {
            StreamItem::Packet(raw) => {
                assert_eq!(raw.encode(), raw_bytes);
                let p = Packet::from_raw(&raw, from).unwrap();
                assert_eq!(p.encode(), raw_bytes, "{p:?}");
                out.push((p, None));
            }
            StreamItem::Snapshot(s) => {
                assert_eq!(s.encode(), raw_bytes);
                let mut r = jute::Reader::new(&s.tree);
                tree::DataTree::deserialize_from(&mut r).unwrap();
                assert_eq!(r.remaining(), 0);
                out.last_mut().unwrap().1 = Some(s);
            }
        }
        rest = &rest[used..];
    }
    assert!(!dec.expecting_snapshot());
    // every txn carried by a proposal parses with the tree crate
    for (p, _) in &out {
        if let Packet::Proposal { data, .. }
        | Packet::Inform { data, .. }
        | Packet::InformAndActivate { data, .. } = p
        {
            tree::Txn::decode(data.header.txn_type, &data.txn).unwrap();
        }
    }
    out
}

fn types(items: &[(Packet, Option<SnapshotStream>)]) -> Vec<&'static str> {
    items
        .iter()
        .map(|(p, _)| packet_type::name(p.packet_type()).unwrap())
        .collect()
}

/// Decodes an election stream (initial message if `dialer`, then frames); asserts re-encoding.
fn election_stream(bytes: &[u8], dialer: bool) -> (Option<InitialMessage>, Vec<Notification>) {
    let mut rest = bytes;
    let mut init = None;
    if dialer {
        let (m, used) = InitialMessage::decode_prefix(rest).unwrap().unwrap();
        assert_eq!(m.encode(), &rest[..used]);
        init = Some(m);
        rest = &rest[used..];
    }
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (payload, used) = decode_election_frame(rest).unwrap().unwrap();
        let n = Notification::decode(payload).unwrap();
        assert_eq!(n.encode_frame(), &rest[..used]);
        out.push(n);
        rest = &rest[used..];
    }
    (init, out)
}

const CONFIG_V0: &str = "server.1=127.0.0.1:12721:12741:participant;127.0.0.1:12701\n\
server.2=127.0.0.1:12722:12742:participant;127.0.0.1:12702\n\
server.3=127.0.0.1:12723:12743:participant;127.0.0.1:12703\n\
version=0";

#[test]
fn first_election() {
    let (init, ns) = election_stream(data!("election_2to1_dialer"), true);
    assert_eq!(
        init.unwrap(),
        InitialMessage::v1(2, ElectionAddress::new("127.0.0.1", 12742))
    );
    let first = &ns[0];
    assert_eq!(
        (
            first.state,
            first.leader,
            first.zxid,
            first.election_epoch,
            first.peer_epoch
        ),
        (ServerState::Looking, 2, 0, 1, 0)
    );
    assert_eq!(first.version, 2);
    assert_eq!(first.config, CONFIG_V0.as_bytes());
    // initial message (8 + 8 + 4 + 15), then one frame: length + 44 + config
    assert_eq!(
        data!("election_2to1_dialer").len(),
        35 + 4 + 44 + CONFIG_V0.len()
    );

    let (_, ns) = election_stream(data!("election_2to1_acceptor"), false);
    // server 1 first votes for itself, then adopts 2 (same zxid, larger id)
    assert_eq!(ns.iter().map(|n| n.leader).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn restarted_server_meets_established_leader() {
    let (init, ns) = election_stream(data!("election_3to2_dialer"), true);
    assert_eq!(init.unwrap().sid, 3);
    assert_eq!(
        (ns[0].state, ns[0].leader, ns[0].zxid, ns[0].peer_epoch),
        (ServerState::Looking, 3, 0x1_0000_0013, 1)
    );
    let (_, ns) = election_stream(data!("election_3to2_acceptor"), false);
    // the leader answers with its vote from election time, peer epoch raised to the new epoch
    assert_eq!(
        (
            ns[0].state,
            ns[0].leader,
            ns[0].zxid,
            ns[0].election_epoch,
            ns[0].peer_epoch
        ),
        (ServerState::Leading, 2, 0, 1, 1)
    );
    assert!(String::from_utf8_lossy(&ns[0].config).ends_with("version=100000012"));
}

#[test]
fn smaller_id_dials_then_hangs_up() {
    let bytes = data!("election_3to4_dropped");
    let m = InitialMessage::decode(bytes).unwrap();
    assert_eq!(m.sid, 3);
    assert!(!dialer_keeps_connection(3, 4));
    assert_eq!(accept_decision(4, 3), AcceptDecision::CloseAndDialBack);
}

#[test]
fn second_election() {
    let (_, ns) = election_stream(data!("election_2to1_epoch2_dialer"), true);
    assert!(ns
        .iter()
        .all(|n| n.zxid == 0x1_0000_0006 && n.peer_epoch == 1));
    election_stream(data!("election_2to1_epoch2_acceptor"), false);
}

#[test]
fn observer_votes_for_nobody() {
    let (init, ns) = election_stream(data!("election_observer3to2_dialer"), true);
    assert_eq!(init.unwrap().sid, 3);
    let n = &ns[0];
    assert_eq!(
        (n.state, n.leader, n.zxid, n.peer_epoch),
        (ServerState::Looking, i64::MIN, i64::MIN, i64::MIN)
    );
    let (_, ns) = election_stream(data!("election_observer3to2_acceptor"), false);
    assert!(ns
        .iter()
        .any(|n| n.state == ServerState::Leading && n.leader == 2));
}

#[test]
fn follower_of_a_fresh_ensemble() {
    let learner = quorum_stream(data!("quorum_follower1_initial_learner"), Sender::Learner);
    let leader = quorum_stream(data!("quorum_follower1_initial_leader"), Sender::Leader);
    assert_eq!(
        types(&learner)[..5],
        ["FOLLOWERINFO", "ACKEPOCH", "ACK", "ACK", "PING"]
    );
    assert_eq!(
        types(&leader)[..5],
        ["LEADERINFO", "DIFF", "NEWLEADER", "UPTODATE", "PING"]
    );
    assert_eq!(
        learner[0].0,
        Packet::FollowerInfo(LearnerHello::new(0, 1, 0))
    );
    assert_eq!(
        learner[1].0,
        Packet::AckEpoch {
            last_zxid: 0,
            current_epoch: 0
        }
    );
    // NEWLEADER is acked with the new epoch's zxid, and so is UPTODATE
    assert_eq!(learner[2].0, Packet::Ack { zxid: 1 << 32 });
    assert_eq!(learner[3].0, Packet::Ack { zxid: 1 << 32 });
    assert_eq!(
        leader[0].0,
        Packet::LeaderInfo {
            zxid: 1 << 32,
            protocol_version: LEARNER_PROTOCOL_VERSION
        }
    );
    assert_eq!(leader[1].0, Packet::Diff { zxid: 0 });
    let Packet::NewLeader { zxid, config } = &leader[2].0 else {
        panic!()
    };
    assert_eq!(*zxid, 1 << 32);
    // the initial config (version 0) is re-versioned with the NEWLEADER zxid
    assert!(String::from_utf8_lossy(config.as_deref().unwrap()).ends_with("\nversion=100000000"));

    // broadcast: every PROPOSAL is followed by the follower's ACK and the leader's COMMIT
    let proposals: Vec<i64> = leader
        .iter()
        .filter_map(|(p, _)| match p {
            Packet::Proposal { zxid, data } => {
                assert_eq!(data.header.zxid, *zxid);
                Some(*zxid)
            }
            _ => None,
        })
        .collect();
    let commits: Vec<i64> = leader
        .iter()
        .filter_map(|(p, _)| match p {
            Packet::Commit { zxid } | Packet::CommitAndActivate { zxid, .. } => Some(*zxid),
            _ => None,
        })
        .collect();
    // (the reconfig that adds server 4 is committed by COMMITANDACTIVATE)
    assert_eq!(proposals, commits);
    assert_eq!(proposals[0], (1 << 32) + 1);
    let acks: Vec<i64> = learner
        .iter()
        .filter_map(|(p, _)| match p {
            Packet::Ack { zxid } if zxid & 0xffff_ffff != 0 => Some(*zxid),
            _ => None,
        })
        .collect();
    assert_eq!(acks, proposals);
    // forwarded requests: createSession without authinfo, client ops with the ip auth id
    let reqs: Vec<&LearnerRequest> = learner
        .iter()
        .filter_map(|(p, _)| match p {
            Packet::Request(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(reqs[0].op_type, jute::op::CREATE_SESSION);
    assert_eq!(reqs[0].authinfo, None);
    assert_eq!(reqs[0].request[..], 10000i32.to_be_bytes());
    assert!(reqs[1].authinfo.as_ref().unwrap()[0].scheme == "ip");
    assert!(reqs.iter().any(|r| r.op_type == jute::op::SYNC));
    assert!(reqs
        .iter()
        .any(|r| r.op_type == jute::op::CLOSE_SESSION && r.request.is_empty()));
    // the sync is answered by a SYNC packet; pings carry session touches
    assert!(leader.iter().any(|(p, _)| *p == Packet::Sync));
    assert!(learner.iter().any(|(p, _)| matches!(p, Packet::PingReply { touches, .. } if touches.len() == 1 && touches[0].timeout == 10000)));
}

#[test]
fn restarted_follower_gets_a_diff() {
    let learner = quorum_stream(data!("quorum_follower3_diff_learner"), Sender::Learner);
    let leader = quorum_stream(data!("quorum_follower3_diff_leader"), Sender::Leader);
    assert_eq!(
        learner[0].0,
        Packet::FollowerInfo(LearnerHello::new(1, 3, 0x1_0000_0012))
    );
    // it had already accepted epoch 1: -1 = "not a vote", but still its last zxid
    assert_eq!(
        learner[1].0,
        Packet::AckEpoch {
            last_zxid: 0x1_0000_0013,
            current_epoch: -1
        }
    );
    assert_eq!(
        types(&leader)[..8],
        [
            "LEADERINFO",
            "DIFF",
            "PROPOSAL",
            "COMMIT",
            "PROPOSAL",
            "COMMIT",
            "NEWLEADER",
            "UPTODATE"
        ]
    );
    assert_eq!(
        leader[1].0,
        Packet::Diff {
            zxid: 0x1_0000_0015
        }
    );
    // the synced txns are acked after NEWLEADER's ack, before UPTODATE's
    assert_eq!(types(&learner)[2..6], ["ACK", "ACK", "ACK", "ACK"]);
    let zx: Vec<i64> = learner[2..6]
        .iter()
        .map(|(p, _)| match p {
            Packet::Ack { zxid } => *zxid,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(zx, [1 << 32, 0x1_0000_0014, 0x1_0000_0015, 1 << 32]);
    // an error txn travels without digest
    let Packet::Proposal { data, .. } = &leader[4].0 else {
        panic!()
    };
    assert_eq!(data.header.txn_type, jute::op::ERROR);
    assert!(data.digest.is_none());
}

#[test]
fn joiner_snap_and_commitandactivate() {
    let learner = quorum_stream(data!("quorum_joiner4_reconfig_learner"), Sender::Learner);
    let leader = quorum_stream(data!("quorum_joiner4_reconfig_leader"), Sender::Leader);
    assert_eq!(
        learner[0].0,
        Packet::FollowerInfo(LearnerHello::new(0, 4, 0x1_0000_0000))
    );
    assert_eq!(
        types(&leader)[..4],
        ["LEADERINFO", "SNAP", "NEWLEADER", "UPTODATE"]
    );
    let snap = leader[1].1.as_ref().unwrap();
    assert!(snap.sessions.is_empty());
    let i = leader
        .iter()
        .position(|(p, _)| matches!(p, Packet::CommitAndActivate { .. }))
        .unwrap();
    assert_eq!(
        leader[i].0,
        Packet::CommitAndActivate {
            zxid: 0x1_0000_0012,
            designated_leader: 2
        }
    );
    let Packet::Proposal { data, .. } = &leader[i - 1].0 else {
        panic!()
    };
    assert_eq!(data.header.txn_type, jute::op::RECONFIG);
    let tree::Txn::Reconfig(t) = tree::Txn::decode(data.header.txn_type, &data.txn).unwrap() else {
        panic!()
    };
    assert_eq!(t.path, "/zookeeper/config");
    assert!(String::from_utf8_lossy(t.data.as_deref().unwrap())
        .contains("server.4=127.0.0.1:12724:12744:participant;127.0.0.1:12704"));
}

#[test]
fn snap_with_a_live_session_and_revalidate() {
    let learner = quorum_stream(data!("quorum_follower1_snap_learner"), Sender::Learner);
    let leader = quorum_stream(data!("quorum_follower1_snap_leader"), Sender::Leader);
    assert_eq!(
        learner[1].0,
        Packet::AckEpoch {
            last_zxid: 0x1_0000_0006,
            current_epoch: 1
        }
    );
    assert_eq!(
        leader[1].0,
        Packet::Snap {
            zxid: 0x1_0000_0006
        }
    );
    let snap = leader[1].1.as_ref().unwrap();
    assert_eq!(
        snap.sessions,
        [SessionTouch {
            session_id: 0x0100_0040_0429_0000,
            timeout: 10000
        }]
    );
    assert!(learner.iter().any(|(p, _)| *p
        == Packet::Revalidate {
            session_id: 0x0100_0040_0429_0000,
            timeout: 10000
        }));
    assert!(leader.iter().any(|(p, _)| *p
        == Packet::RevalidateReply {
            session_id: 0x0100_0040_0429_0000,
            valid: true
        }));
}

#[test]
fn observer_gets_inform_and_informandactivate() {
    let learner = quorum_stream(data!("quorum_observer3_learner"), Sender::Learner);
    let leader = quorum_stream(data!("quorum_observer3_leader"), Sender::Leader);
    assert_eq!(
        learner[0].0,
        Packet::ObserverInfo(LearnerHello::new(1, 3, 0x1_0000_0000))
    );
    // observers ack NEWLEADER and UPTODATE but never a txn
    assert!(learner
        .iter()
        .all(|(p, _)| !matches!(p, Packet::Ack { zxid } if zxid & 0xffff_ffff != 0)));
    assert!(leader
        .iter()
        .all(|(p, _)| !matches!(p, Packet::Proposal { .. } | Packet::Commit { .. })));
    let iaa = leader
        .iter()
        .find_map(|(p, _)| match p {
            Packet::InformAndActivate {
                zxid,
                designated_leader,
                data,
            } => Some((*zxid, *designated_leader, data)),
            _ => None,
        })
        .unwrap();
    assert_eq!((iaa.0, iaa.1), (0x2_0000_0004, 2));
    assert_eq!(iaa.2.header.txn_type, jute::op::RECONFIG);
    let informs = leader
        .iter()
        .filter(|(p, _)| matches!(p, Packet::Inform { .. }))
        .count();
    assert!(informs >= 3);

    let learner = quorum_stream(data!("quorum_observer3_epoch1_learner"), Sender::Learner);
    let leader = quorum_stream(data!("quorum_observer3_epoch1_leader"), Sender::Leader);
    assert!(matches!(learner[0].0, Packet::ObserverInfo(_)));
    assert!(learner
        .iter()
        .any(|(p, _)| matches!(p, Packet::Revalidate { .. })));
    assert!(leader
        .iter()
        .any(|(p, _)| matches!(p, Packet::RevalidateReply { valid: true, .. })));
}

/// Every captured stream also decodes when it arrives in small pieces.
#[test]
fn streams_decode_in_pieces() {
    for (bytes, from) in [
        (data!("quorum_follower1_snap_leader"), Sender::Leader),
        (data!("quorum_joiner4_reconfig_leader"), Sender::Leader),
        (data!("quorum_follower1_initial_learner"), Sender::Learner),
    ] {
        let whole = quorum_stream(bytes, from).len();
        let mut dec = QuorumStreamDecoder::new(from);
        let (mut buf, mut n) = (Vec::new(), 0);
        for chunk in bytes.chunks(5) {
            buf.extend_from_slice(chunk);
            while let Some((item, used)) = dec.next_item(&buf).unwrap() {
                buf.drain(..used);
                if matches!(item, StreamItem::Packet(_)) {
                    n += 1;
                }
            }
        }
        assert!(buf.is_empty());
        assert_eq!(n, whole);
    }
}

/// Taken off a shared receive buffer (proposals keep pointing into it), every captured stream
/// gives exactly the packets and snapshots decoded from it whole, whatever the pieces it
/// arrives in.
#[test]
fn streams_taken_off_a_receive_buffer_are_the_streams_read() {
    for (bytes, from) in [
        (data!("quorum_follower1_initial_leader"), Sender::Leader),
        (data!("quorum_follower1_initial_learner"), Sender::Learner),
        (data!("quorum_follower3_diff_leader"), Sender::Leader),
        (data!("quorum_follower3_diff_learner"), Sender::Learner),
        (data!("quorum_follower1_snap_leader"), Sender::Leader),
        (data!("quorum_joiner4_reconfig_leader"), Sender::Leader),
        (data!("quorum_joiner4_reconfig_learner"), Sender::Learner),
        (data!("quorum_observer3_leader"), Sender::Leader),
    ] {
        let whole = quorum_stream(bytes, from);
        for piece in [1, 7, 4096, bytes.len()] {
            let mut dec = QuorumStreamDecoder::new(from);
            let mut buf = bytes::BytesMut::new();
            let mut got: Vec<(Packet, Option<SnapshotStream>)> = Vec::new();
            for chunk in bytes.chunks(piece) {
                buf.extend_from_slice(chunk);
                while let Some(item) = dec.next_received(&mut buf).unwrap() {
                    match item {
                        Received::Packet(p) => got.push((p, None)),
                        Received::Snapshot(s) => got.last_mut().unwrap().1 = Some(s),
                    }
                }
            }
            assert!(buf.is_empty());
            assert_eq!(got, whole, "pieces of {piece} bytes");
        }
    }
}
