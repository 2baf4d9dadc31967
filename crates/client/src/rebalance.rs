//! Auto-rebalance (opt-in): follow /zookeeper/config and move the connection as the host
//! provider's rebalancing decides (reconfiguration manual §5). On a change of the config
//! node: sync, read it with a new watch, and if its version is newer, wait a random delay
//! (so that clients do not all move at once) and call update_server_list with every
//! server's client address.

use crate::config_data::ClientConfig;
use crate::types::{EventType, KeeperState, WatchedEvent};
use crate::{Inner, ZooKeeper, CONFIG_NODE};
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::mpsc;

pub(crate) fn spawn(
    inner: Weak<Inner>,
    mut events: mpsc::UnboundedReceiver<WatchedEvent>,
    max_delay: Duration,
) {
    tokio::spawn(async move {
        let mut known: Option<i64> = None;
        let mut need_read = true;
        loop {
            if need_read {
                let Some(zk) = inner.upgrade().map(|inner| ZooKeeper { inner }) else {
                    return;
                };
                if !zk.state().is_alive() {
                    return;
                }
                // sync first: the server we are on may lag behind the leader
                let read = async {
                    zk.sync("/").await?;
                    zk.get_config_for(true, false).await
                };
                match read.await {
                    Ok((data, _)) => {
                        need_read = false;
                        if let Some(cfg) = ClientConfig::parse(&String::from_utf8_lossy(&data)) {
                            let newer = known.is_some_and(|v| cfg.version > v);
                            if known.is_none() || newer {
                                known = Some(cfg.version);
                            }
                            if newer && !cfg.servers.is_empty() {
                                let ms = max_delay.as_millis() as u64;
                                let delay = if ms == 0 {
                                    0
                                } else {
                                    rand::random::<u64>() % ms
                                };
                                tokio::time::sleep(Duration::from_millis(delay)).await;
                                let _ = zk.update_server_list(&cfg.connect_string()).await;
                            }
                        }
                    }
                    Err(_) => {
                        // retried when the session is connected again
                    }
                }
            }
            let Some(ev) = events.recv().await else {
                return;
            };
            match (ev.event_type, ev.state) {
                (_, KeeperState::Expired | KeeperState::Closed | KeeperState::AuthFailed) => return,
                (EventType::NodeDataChanged, _) if ev.path.as_deref() == Some(CONFIG_NODE) => {
                    need_read = true
                }
                // after a reconnect the watch was re-registered by SetWatches2; a read that
                // failed while disconnected is retried now
                (EventType::None, KeeperState::SyncConnected) => {
                    need_read = need_read || known.is_none()
                }
                _ => {}
            }
        }
    });
}
