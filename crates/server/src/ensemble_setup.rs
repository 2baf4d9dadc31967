//! Replicated mode at startup: which server we are (dataDir/myid), where we listen, and the
//! Zab peer we start from what is on disk.

use crate::deliver::Deliver;
use crate::driver::{PeerEdges, PeerListeners};
use crate::quorum_net::ZabEvent;
use anyhow::Context;
use config::{QuorumConfig, ZooCfg};
use node::Replica;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::info;
use zab::peer::Peer;

/// What replicated mode needs, decided before the client port is bound.
pub struct EnsembleSetup {
    pub my_id: u64,
    pub quorum: Arc<QuorumConfig>,
    /// A configuration proposed and not active when the server stopped (`.dynamic.next`).
    pub last_seen: Option<Arc<QuorumConfig>>,
    quorum_bind: String,
    election_bind: String,
    /// quorumListenOnAllIPs: bind 0.0.0.0 rather than the host of our server line.
    listen_all: bool,
    bind_retries: u32,
}

fn property<'a>(cfg: &'a ZooCfg, key: &str) -> Option<&'a str> {
    cfg.properties
        .iter()
        .rev()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

/// None: standalone (no server lines, or a single one with standaloneEnabled, as ZooKeeper).
/// Fills the client address from our server line when it has one. Reads the membership from
/// the dynamic configuration file when zoo.cfg names one (and was not read with
/// [`crate::dynamic_files::load`]), and backs a replicated single-file zoo.cfg up to
/// `<zoo.cfg>.bak` when reconfigEnabled, as ZooKeeper does at boot.
pub fn prepare(cfg: &mut ZooCfg) -> anyhow::Result<Option<EnsembleSetup>> {
    crate::dynamic_files::complete(cfg)?;
    let Some(quorum) = cfg.quorum.clone() else {
        return Ok(None);
    };
    let membership_file = cfg
        .dynamic_config_file
        .as_ref()
        .map_or_else(|| cfg.source.clone(), |p| p.display().to_string());
    let standalone_enabled = cfg.standalone_enabled;
    let myid_path = cfg.data_dir.join("myid");
    let my_id = match std::fs::read_to_string(&myid_path) {
        Ok(text) => text.trim().parse::<u64>().map_err(|_| {
            anyhow::anyhow!(
                "{}: expected the server's id (a number), found {:?}",
                myid_path.display(),
                text.trim()
            )
        })?,
        Err(_) if quorum.members.len() == 1 => *quorum.members.keys().next().expect("one"),
        Err(e) => anyhow::bail!(
            "{} is missing ({e}): in replicated mode it holds this server's id, one of the server.N lines of {}",
            myid_path.display(),
            membership_file
        ),
    };
    if let Some(backup) = crate::dynamic_files::backup_on_boot(cfg)? {
        info!("{} backed up to {}", cfg.source, backup.display());
    }
    let Some(me) = quorum.members.get(&my_id) else {
        anyhow::bail!(
            "{}: myid is {my_id} but {} has no server.{my_id} line (My id {my_id} not in the peer list)",
            myid_path.display(),
            membership_file
        );
    };
    if let Some(client) = &me.client {
        cfg.client_port = Some(client.port);
        cfg.client_port_address = Some(client.host.clone());
    }
    if quorum.members.len() == 1 && standalone_enabled {
        info!("a single server in the configuration and standaloneEnabled: running standalone");
        return Ok(None);
    }
    let listen_all = property(cfg, "quorumListenOnAllIPs") == Some("true");
    let bind = |port| crate::driver::listen_address(listen_all, &me.quorum.host, port);
    let bind_retries = match property(cfg, "electionPortBindRetry") {
        None => 3,
        Some(v) => v.trim().parse().with_context(|| {
            format!(
                "{}: electionPortBindRetry: expected a number, found {v:?}",
                cfg.source
            )
        })?,
    };
    Ok(Some(EnsembleSetup {
        my_id,
        last_seen: cfg.last_seen_quorum.clone().map(Arc::new),
        quorum_bind: bind(me.quorum.port),
        listen_all,
        election_bind: bind(me.election_port),
        bind_retries,
        quorum: Arc::new(quorum),
    }))
}

/// Binds the quorum and election ports and builds the peer from the recovered state.
pub async fn start(
    setup: &EnsembleSetup,
    cfg: &ZooCfg,
    last_zxid: i64,
    recent_txns: Vec<(i64, zab::wire::ProposalData)>,
    core_tx: Deliver<ZabEvent>,
) -> anyhow::Result<(Replica, PeerEdges)> {
    let listener = TcpListener::bind(&setup.quorum_bind)
        .await
        .with_context(|| format!("cannot bind the quorum port {}", setup.quorum_bind))?;
    info!("quorum port listening on {}", setup.quorum_bind);
    let (quorum_moves, quorum_moved) = tokio::sync::watch::channel(setup.quorum_bind.clone());
    tokio::spawn(crate::quorum_net::listen_quorum(
        listener,
        quorum_moved,
        core_tx.clone(),
        cfg.jute_max_buffer,
        std::time::Duration::from_millis(cfg.tick_time as u64 * cfg.init_limit.max(1) as u64),
    ));
    let (election_moves, election_moved) = tokio::sync::watch::channel(setup.election_bind.clone());
    let election = crate::quorum_net::start_election(
        setup.my_id,
        setup.quorum.clone(),
        setup.election_bind.clone(),
        setup.bind_retries,
        election_moved,
        core_tx.clone(),
    )
    .await?;
    let persisted = crate::persist::read_epochs(cfg, last_zxid)?;
    info!(
        "server {} starting Zab at zxid 0x{last_zxid:x}, accepted epoch {}, current epoch {}",
        setup.my_id, persisted.accepted_epoch, persisted.current_epoch
    );
    let peer = Peer::new(
        setup.my_id,
        setup.quorum.clone(),
        persisted,
        last_zxid,
        cfg.tick_time as u64,
        cfg.init_limit as u64,
        cfg.sync_limit as u64,
    )
    .with_reconfig_enabled(cfg.reconfig_enabled)
    .with_logged_window(recent_txns);
    let peer = match &setup.last_seen {
        // .dynamic.next is written when the reconfig is proposed, before its txn is durable:
        // after a crash its txn may not be in the log, and then it was never ours to count
        Some(next) if cfg.reconfig_enabled && next.version <= last_zxid => {
            peer.with_last_seen(next.clone())
        }
        Some(next) if cfg.reconfig_enabled => {
            info!(
                "ignoring the proposed configuration 0x{:x} of the .next file: its txn is not in the log (last zxid 0x{last_zxid:x})",
                next.version
            );
            peer
        }
        _ => peer,
    };
    let listeners = PeerListeners {
        quorum: quorum_moves,
        election: election_moves,
        listen_all: setup.listen_all,
    };
    let edges = PeerEdges {
        election,
        listeners,
        max_buffer: cfg.jute_max_buffer,
    };
    Ok((Replica::new(peer), edges))
}
