//! What the node's task receives: node events, plus the two that bring a socket with them
//! (the driver keeps the socket's handle and gives the node its id).

use crate::outbox::Outbox;
use crate::quorum_net::ZabEvent;
use node::{ConnId, Event};
use std::net::SocketAddr;

#[derive(Debug)]
pub enum CoreMsg {
    /// A client connection was accepted; `outbox` queues its frames for its writer task.
    Accepted {
        conn: ConnId,
        remote: SocketAddr,
        outbox: Outbox,
    },
    /// An event the node takes as it is.
    Node(Event),
    /// Election and quorum connections.
    Zab(ZabEvent),
}
