//! Whole servers (`zab::peer::Peer`) on an in-memory network with a fake clock: they elect a
//! leader, establish an epoch, commit proposals, survive the leader's crash, and a restarted
//! server catches up. After every step: no two servers disagree on a committed zxid.

use config::{parse_properties, QuorumConfig};
use jute::TxnHeader;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use zab::election::ServerState;
use zab::peer::{Input, Output, Peer, Persisted};
use zab::wire::ProposalData;

const TICK_MS: u64 = 100;

fn config(n: u64) -> Arc<QuorumConfig> {
    let text: String = (1..=n)
        .map(|i| format!("server.{i}=h:{}:{}\n", 1000 + i, 2000 + i))
        .collect();
    Arc::new(QuorumConfig::from_properties(&parse_properties(&text, "t").unwrap()).unwrap())
}

fn txn(tag: i32) -> ProposalData {
    ProposalData {
        header: TxnHeader {
            client_id: 9,
            cxid: tag,
            zxid: 0,
            time: 0,
            txn_type: jute::op::CREATE_SESSION,
        },
        txn: 5000i32.to_be_bytes().to_vec().into(),
        digest: None,
    }
}

struct Node {
    peer: Peer,
    up: bool,
    /// The durable log: (zxid, cxid tag), in zxid order.
    log: Vec<(i64, i32)>,
    committed_upto: i64,
    persisted: Persisted,
}

struct Net {
    nodes: BTreeMap<u64, Node>,
    queue: VecDeque<(u64, u64, Input)>,
    now: u64,
    /// Every zxid any server committed, with its txn: must never disagree.
    decided: BTreeMap<i64, i32>,
}

impl Net {
    fn new(n: u64) -> Net {
        let cfg = config(n);
        let nodes = (1..=n)
            .map(|id| {
                let peer = Peer::new(id, cfg.clone(), Persisted::default(), 0, TICK_MS, 10, 5);
                (
                    id,
                    Node {
                        peer,
                        up: true,
                        log: Vec::new(),
                        committed_upto: 0,
                        persisted: Persisted::default(),
                    },
                )
            })
            .collect();
        Net {
            nodes,
            queue: VecDeque::new(),
            now: 0,
            decided: BTreeMap::new(),
        }
    }

    fn start(&mut self, id: u64) {
        let out = self.nodes.get_mut(&id).unwrap().peer.start(self.now);
        self.outputs(id, out);
    }

    fn outputs(&mut self, id: u64, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::SendNotification { to, notification } => {
                    self.queue
                        .push_back((id, to, Input::Notification(notification)))
                }
                Output::SendPacket { to, packet } => {
                    self.queue
                        .push_back((id, to, Input::Packet { from: id, packet }))
                }
                Output::ConnectToLeader { leader } => {
                    if self.nodes[&leader].up {
                        self.queue.push_back((leader, id, Input::ConnectedToLeader));
                    }
                }
                Output::DropQuorumConnections
                | Output::DropLearner { .. }
                | Output::Role(_)
                | Output::Serving(_)
                | Output::ConfigProposed(_)
                | Output::ConfigActivated(_) => {}
                Output::SendSnapshot { to } => {
                    // the snapshot carries the sender's committed state
                    let upto = self.nodes[&id].committed_upto;
                    let entries: Vec<(i64, i32)> = self.nodes[&id]
                        .log
                        .iter()
                        .copied()
                        .filter(|(z, _)| *z <= upto)
                        .collect();
                    let target = self.nodes.get_mut(&to).unwrap();
                    target.log = entries;
                    target.committed_upto = upto;
                }
                Output::LoadSnapshot { .. } => {}
                Output::Truncate { zxid } => self
                    .nodes
                    .get_mut(&id)
                    .unwrap()
                    .log
                    .retain(|(z, _)| *z <= zxid),
                Output::Persist { zxid, data } => {
                    let n = self.nodes.get_mut(&id).unwrap();
                    assert!(
                        n.log.last().is_none_or(|(z, _)| *z < zxid),
                        "server {id} logs 0x{zxid:x} out of order: {:x?}",
                        n.log.last()
                    );
                    n.log.push((zxid, data.header.cxid));
                    self.queue.push_back((id, id, Input::Durable { zxid }));
                }
                Output::Commit { zxid, .. } => {
                    let n = self.nodes.get_mut(&id).unwrap();
                    assert!(zxid >= n.committed_upto, "server {id} commits backwards");
                    n.committed_upto = zxid;
                    for &(z, tag) in n.log.iter().filter(|(z, _)| *z <= zxid) {
                        let previous = self.decided.insert(z, tag);
                        assert!(
                            previous.is_none_or(|p| p == tag),
                            "zxid 0x{z:x} committed as {previous:?} and {tag}"
                        );
                    }
                }
                Output::StoreEpochs(p) => self.nodes.get_mut(&id).unwrap().persisted = p,
                Output::ReplyPing { to, zxid } => self.queue.push_back((
                    id,
                    to,
                    Input::Packet {
                        from: id,
                        packet: zab::wire::Packet::PingReply {
                            zxid,
                            touches: Vec::new(),
                        },
                    },
                )),
                Output::FromLearner { .. }
                | Output::FromLeader { .. }
                | Output::TouchSessions(_)
                | Output::ReadBarrierPassed(_) => {}
            }
        }
    }

    /// Delivers messages and ticks until `ms` of simulated time have passed.
    fn run(&mut self, ms: u64) {
        let until = self.now + ms;
        while self.now < until {
            let mut delivered = 0;
            while let Some((from, to, input)) = self.queue.pop_front() {
                if !self.nodes[&to].up || !self.nodes[&from].up {
                    continue;
                }
                let out = self.nodes.get_mut(&to).unwrap().peer.step(self.now, input);
                self.outputs(to, out);
                delivered += 1;
                if delivered > 100_000 {
                    panic!("message storm");
                }
            }
            self.now += 10;
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in ids {
                if self.nodes[&id].up {
                    let out = self
                        .nodes
                        .get_mut(&id)
                        .unwrap()
                        .peer
                        .step(self.now, Input::Tick);
                    self.outputs(id, out);
                }
            }
        }
    }

    fn leader(&self) -> Option<u64> {
        let leaders: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.up && n.peer.state() == ServerState::Leading)
            .map(|(id, _)| *id)
            .collect();
        assert!(leaders.len() <= 1, "two leaders: {leaders:?}");
        leaders.first().copied()
    }

    fn serving(&self) -> BTreeSet<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.up && n.peer.is_serving())
            .map(|(id, _)| *id)
            .collect()
    }

    fn propose(&mut self, leader: u64, tag: i32) -> i64 {
        let (zxid, out) = self
            .nodes
            .get_mut(&leader)
            .unwrap()
            .peer
            .propose(txn(tag))
            .expect("leader is established");
        self.outputs(leader, out);
        zxid
    }

    fn crash(&mut self, id: u64) {
        self.nodes.get_mut(&id).unwrap().up = false;
        let others: Vec<u64> = self.nodes.keys().copied().filter(|o| *o != id).collect();
        for o in others {
            self.queue
                .push_back((o, o, Input::Disconnected { peer: id }));
        }
    }

    /// Restarts a crashed server from what it had on disk.
    fn restart(&mut self, id: u64, cfg: Arc<QuorumConfig>) {
        let n = self.nodes.get_mut(&id).unwrap();
        let last = n.log.last().map_or(0, |(z, _)| *z);
        n.peer = Peer::new(id, cfg, n.persisted, last, TICK_MS, 10, 5);
        n.up = true;
        n.committed_upto = n.committed_upto.min(last);
        self.start(id);
    }
}

#[test]
fn elect_commit_lose_the_leader_and_catch_up_a_restarted_server() {
    let mut net = Net::new(3);
    for id in 1..=3 {
        net.start(id);
    }
    net.run(3_000);
    let first = net.leader().expect("a leader after 3 s");
    assert_eq!(first, 3, "equal histories: the highest id leads");
    assert_eq!(net.serving(), BTreeSet::from([1, 2, 3]));

    let mut zxids = Vec::new();
    for tag in 0..20 {
        zxids.push(net.propose(first, tag));
        net.run(20);
    }
    net.run(500);
    for (id, n) in &net.nodes {
        assert_eq!(
            n.committed_upto,
            *zxids.last().unwrap(),
            "server {id} committed everything"
        );
        assert_eq!(n.log.len(), 20, "server {id}'s log");
    }

    // the leader crashes: the two others elect a new one and keep committing
    net.crash(first);
    net.run(5_000);
    let second = net.leader().expect("a new leader after the crash");
    assert_ne!(second, first);
    assert_eq!(net.serving().len(), 2);
    let mut later = Vec::new();
    for tag in 100..110 {
        later.push(net.propose(second, tag));
        net.run(20);
    }
    net.run(500);
    assert!(
        later[0] >> 32 > zxids[0] >> 32,
        "the new leader's epoch is higher"
    );

    // the old leader restarts from its disk, follows the new leader and catches up
    net.restart(first, config(3));
    net.run(5_000);
    assert_eq!(net.leader(), Some(second), "the established leader stays");
    assert_eq!(net.serving(), BTreeSet::from([1, 2, 3]));
    let expected: Vec<i64> = zxids.iter().chain(later.iter()).copied().collect();
    for (id, n) in &net.nodes {
        let logged: Vec<i64> = n.log.iter().map(|(z, _)| *z).collect();
        assert_eq!(logged, expected, "server {id}'s log");
        assert_eq!(n.committed_upto, *later.last().unwrap(), "server {id}");
    }
}

#[test]
fn a_minority_never_elects_and_never_commits() {
    let mut net = Net::new(5);
    for id in 1..=5 {
        net.start(id);
    }
    net.run(3_000);
    let leader = net.leader().expect("a leader");
    for tag in 0..5 {
        net.propose(leader, tag);
    }
    net.run(500);
    let committed = net.nodes[&leader].committed_upto;
    // three servers crash: the two left can neither elect nor commit
    let survivors: Vec<u64> = (1..=5).filter(|id| *id != leader).take(2).collect();
    for id in 1..=5 {
        if !survivors.contains(&id) {
            net.crash(id);
        }
    }
    net.run(20_000);
    assert_eq!(net.leader(), None, "two of five elected a leader");
    assert!(net.serving().is_empty());
    for id in survivors {
        assert!(net.nodes[&id].committed_upto <= committed);
    }
}

#[test]
fn a_single_participant_leads_alone() {
    // standaloneEnabled=false with one server line: it elects itself and serves
    let mut net = Net::new(1);
    net.start(1);
    net.run(2_000);
    let node = &net.nodes[&1];
    assert_eq!(node.peer.state(), ServerState::Leading);
    assert!(node.peer.is_serving());
    assert_eq!(node.persisted.current_epoch, 1);
}
