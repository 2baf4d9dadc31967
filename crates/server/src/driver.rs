//! The node's task: feeds the node each message with the time, then executes the actions it
//! queued, in order — frames to connection writers, txns and snapshots to the disk threads,
//! packets to quorum connections, notifications to the election, files for epochs and
//! dynamic configurations. Results come back later as messages (bytes written, txns durable).

use crate::deliver::Deliver;
use crate::inbox::CoreMsg;
use crate::outbox::Outbox;
use crate::persist::{DiskSink, TxnSink};
use crate::quorum_net::{ElectionNet, QuorumLink, ZabEvent};
use config::ZooCfg;
use node::{Action, ConnId, Event, LinkId, Node, PeerEvent};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{error, info, warn};

/// Where our quorum and election ports listen, movable by a reconfiguration.
pub struct PeerListeners {
    pub quorum: tokio::sync::watch::Sender<String>,
    pub election: tokio::sync::watch::Sender<String>,
    pub listen_all: bool,
}

/// The address a quorum or election port binds: our server line's host, or every interface
/// with quorumListenOnAllIPs (IPv6 in brackets, as HostPort prints it).
pub(crate) fn listen_address(listen_all: bool, host: &str, port: u16) -> String {
    let host = if listen_all { "0.0.0.0" } else { host };
    config::HostPort {
        host: host.to_owned(),
        port,
    }
    .to_string()
}

impl PeerListeners {
    /// Moves the listeners to the ports of our line in an activated configuration.
    fn follow(&self, me: &config::ServerSpec) {
        for (listener, port) in [
            (&self.quorum, me.quorum.port),
            (&self.election, me.election_port),
        ] {
            let address = listen_address(self.listen_all, &me.quorum.host, port);
            if *listener.borrow() != address {
                let _ = listener.send(address);
            }
        }
    }
}

/// The ensemble's edges: the election's connections and our listeners.
pub struct PeerEdges {
    pub election: ElectionNet,
    pub listeners: PeerListeners,
    /// jute.maxbuffer, for the connections we dial.
    pub max_buffer: usize,
}

pub struct Driver {
    node: Node,
    cfg: Arc<ZooCfg>,
    inbox: UnboundedSender<CoreMsg>,
    outboxes: HashMap<ConnId, Outbox>,
    /// The quorum connections the node knows, by id, with the server at the other end.
    links: HashMap<LinkId, (u64, QuorumLink)>,
    sink: DiskSink,
    peers: Option<PeerEdges>,
    client_listener: tokio::sync::watch::Sender<String>,
    /// Reused between messages.
    actions: Vec<Action>,
}

impl Driver {
    pub fn new(
        node: Node,
        cfg: Arc<ZooCfg>,
        inbox: UnboundedSender<CoreMsg>,
        sink: DiskSink,
        client_listener: tokio::sync::watch::Sender<String>,
    ) -> Self {
        Driver {
            node,
            cfg,
            inbox,
            outboxes: HashMap::new(),
            links: HashMap::new(),
            sink,
            peers: None,
            client_listener,
            actions: Vec::new(),
        }
    }

    /// Replicated mode: starts the Zab peer.
    pub fn start_replica(&mut self, replica: node::Replica, peers: PeerEdges) {
        self.peers = Some(peers);
        self.node.start_replica(replica);
        self.execute();
    }

    pub fn handle(&mut self, msg: CoreMsg) {
        let event = match msg {
            CoreMsg::Accepted {
                conn,
                remote,
                outbox,
            } => {
                self.outboxes.insert(conn, outbox);
                Event::Accepted { conn, remote }
            }
            CoreMsg::Node(Event::Closed { conn }) => {
                self.outboxes.remove(&conn);
                Event::Closed { conn }
            }
            CoreMsg::Node(event) => event,
            CoreMsg::Zab(ev) => Event::Peer(self.register_link(ev)),
        };
        self.node.handle(crate::clock::now(), event);
        self.execute();
    }

    /// Keeps the socket handle of a new quorum connection; the node gets its id.
    fn register_link(&mut self, ev: ZabEvent) -> PeerEvent {
        match ev {
            ZabEvent::LearnerUp { sid, link } => {
                let id = link.id;
                self.links.insert(id, (sid, link));
                PeerEvent::LearnerUp { sid, link: id }
            }
            ZabEvent::LeaderUp { sid, link } => {
                let id = link.id;
                self.links.insert(id, (sid, link));
                PeerEvent::LeaderUp { sid, link: id }
            }
            ZabEvent::Peer(event) => event,
        }
    }

    /// Executes what the node queued, and what it queues meanwhile (a reload's results).
    fn execute(&mut self) {
        loop {
            self.node.drain_actions_into(&mut self.actions);
            if self.actions.is_empty() {
                return;
            }
            let mut actions = std::mem::take(&mut self.actions);
            for action in actions.drain(..) {
                self.run(action);
            }
            // the buffer (now empty) is kept for the next message
            self.actions = actions;
        }
    }

    fn run(&mut self, action: Action) {
        match action {
            Action::Send { conn, frame, reply } => {
                if let Some(o) = self.outboxes.get(&conn) {
                    o.queue(frame, reply);
                }
            }
            Action::Close { conn } => {
                if let Some(o) = self.outboxes.get(&conn) {
                    o.close();
                }
            }
            Action::Abort { conn } => {
                if let Some(o) = self.outboxes.get(&conn) {
                    o.abort();
                }
            }
            Action::ReportWrites { conn } => {
                if let Some(bytes) = self.outboxes.get(&conn).and_then(|o| o.report_writes()) {
                    let _ = self
                        .inbox
                        .send(CoreMsg::Node(Event::Written { conn, bytes }));
                }
            }
            Action::AnswerFourLetter { conn, word, arg } => {
                let text = match arg {
                    Some(mask) => crate::fourlw::run_set_trace_mask(&self.node, mask),
                    None => crate::fourlw::run(&self.node, conn, &word),
                };
                if let Some(o) = self.outboxes.get(&conn) {
                    o.queue(bytes::Bytes::from(text), true);
                }
            }
            Action::MoveClientListener(address) => self.move_client_listener(&address),
            Action::Persist(prepared) => self.sink.persist(prepared),
            Action::PersistRaw { header, body } => self.sink.persist_raw(header, body),
            Action::RollLog => self.sink.roll(),
            Action::TruncateLog { zxid } => self.sink.truncate(zxid),
            Action::ResetLogToSnapshot {
                zxid,
                sessions,
                serialized_tree,
            } => {
                let file = storage::snapshot::serialize_parts(&sessions, &serialized_tree);
                drop(serialized_tree);
                self.sink.reset_to_snapshot(zxid, file);
            }
            Action::BeginSnapshot { zxid, sessions } => self.sink.begin_snapshot(zxid, sessions),
            Action::SnapshotBytes(bytes) => self.sink.snapshot_bytes(bytes),
            Action::EndSnapshot { complete } => self.sink.end_snapshot(complete),
            Action::ScheduleSnapshotStep => {
                let _ = self.inbox.send(CoreMsg::Node(Event::SnapshotStep));
            }
            Action::ReloadFromDisk => {
                // the truncation before it was waited for: the files are as the node expects
                match crate::persist::restore(&self.cfg) {
                    Ok(restored) => {
                        let event = Event::Reloaded {
                            tree: Box::new(restored.tree),
                            sessions: restored.sessions,
                        };
                        self.node.handle(crate::clock::now(), event);
                    }
                    Err(e) => fatal(&format!("cannot reload after truncation: {e}")),
                }
            }
            Action::ReleaseFreeMemory => crate::persist::release_free_memory(),
            Action::SendNotification { to, notification } => {
                if let Some(p) = &self.peers {
                    p.election.send(to, &notification);
                }
            }
            Action::SendPacket { link, packet } => {
                if let Some((sid, l)) = self.links.get(&link) {
                    if !l.send_packet(&packet) {
                        let sid = *sid;
                        self.link_failed(sid, link);
                    }
                }
            }
            Action::SendBytes { link, bytes } => {
                if let Some((sid, l)) = self.links.get(&link) {
                    if !l.send_bytes(&bytes) {
                        let sid = *sid;
                        self.link_failed(sid, link);
                    }
                }
            }
            Action::ConnectToLeader {
                sid,
                address,
                give_up_ms,
            } => {
                let Some(p) = &self.peers else {
                    return;
                };
                let inbox = self.inbox.clone();
                let deliver: Deliver<ZabEvent> =
                    Arc::new(move |ev| inbox.send(CoreMsg::Zab(ev)).is_ok());
                crate::quorum_net::connect_to_leader(
                    sid,
                    address,
                    Duration::from_millis(give_up_ms),
                    deliver,
                    p.max_buffer,
                );
            }
            Action::CloseLink { link } => {
                // dropping the last handle flushes and closes the connection
                self.links.remove(&link);
            }
            Action::StoreEpochs(epochs) => {
                if let Err(e) = crate::persist::write_epochs(&self.cfg.data_dir, epochs) {
                    error!("cannot write the epoch files, exiting: {e}");
                    std::process::exit(2);
                }
            }
            Action::ConfigProposed(config) => {
                if let Some(p) = &self.peers {
                    p.election.add_members(config.clone());
                }
                crate::dynamic_config::write_next(&self.cfg, &config);
            }
            Action::ConfigActivated { my_id, config } => {
                if let Some(p) = &self.peers {
                    p.election.set_config(config.clone());
                }
                crate::dynamic_config::write_committed(&self.cfg, my_id, &config);
            }
            Action::MovePeerListeners(me) => {
                if let Some(p) = &self.peers {
                    p.listeners.follow(&me);
                }
            }
            Action::Fatal(message) => fatal(&message),
        }
    }

    /// A quorum connection that is gone or too far behind: closed, and the node told.
    fn link_failed(&mut self, sid: u64, link: LinkId) {
        if self.links.remove(&link).is_some() {
            warn!("quorum connection to server {sid} is gone or too far behind; dropping it");
            let _ = self
                .inbox
                .send(CoreMsg::Node(Event::Peer(PeerEvent::LinkDown {
                    sid,
                    link,
                })));
        }
    }

    /// Listens on `address` from now on; connections already open stay where they are.
    fn move_client_listener(&mut self, address: &config::HostPort) {
        let current: Option<std::net::SocketAddr> = self.client_listener.borrow().parse().ok();
        let same = current.is_some_and(|c| {
            c.port() == address.port
                && (c.ip().is_unspecified() || address.host.parse().ok() == Some(c.ip()))
        });
        if !same {
            info!("client port moves to {address}");
            let _ = self.client_listener.send(address.to_string());
        }
    }
}

fn fatal(message: &str) -> ! {
    error!("{message}; exiting");
    std::process::exit(3);
}
