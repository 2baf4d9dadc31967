//! The storage edge: recovery at startup, a log-writer thread that group-commits txns (one
//! fsync for everything queued while the previous fsync ran), and background snapshots.

use crate::deliver::Deliver;
use config::ZooCfg;
use node::Event;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use storage::txnlog::TxnLog;
use tracing::{error, info, warn};
use tree::{DataTree, Prepared};

enum LogCommand {
    Append(Arc<Prepared>),
    AppendRaw(jute::TxnHeader, bytes::Bytes),
    Roll,
    /// A learner's TRUNC: cut the log after this zxid; answer when done.
    Truncate(i64, std_mpsc::Sender<()>),
    /// A learner's SNAP: this snapshot replaces the whole log.
    ResetToSnapshot {
        zxid: i64,
        bytes: Vec<u8>,
        done: std_mpsc::Sender<()>,
    },
}

/// What the server starts from.
pub struct Restored {
    pub tree: DataTree,
    pub sessions: Vec<(i64, i32)>,
    /// Txns replayed after the newest snapshot (they count toward the next one).
    pub replayed_txns: u64,
    /// The last logged txns as proposals: the window a leader DIFFs from after a restart.
    pub recent_txns: Vec<(i64, zab::wire::ProposalData)>,
}

/// The operator's `zkrs server --accept-data-loss`: a process-wide choice, made once before
/// the server starts, that every [`restore`] (at startup, and a learner's reload after a
/// TRUNC) honours.
static ACCEPT_DATA_LOSS: AtomicBool = AtomicBool::new(false);

/// Lets [`restore`] serve a dataDir with txns missing (logged as errors) instead of refusing.
pub fn set_accept_data_loss(accept: bool) {
    ACCEPT_DATA_LOSS.store(accept, Ordering::Relaxed);
}

/// Loads the newest valid snapshot and replays the log after it (ZooKeeper's restore); what
/// was replayed counts toward the next snapshot, which the core takes once snapCount is reached.
/// Txns missing between the snapshot and the end of the log refuse the start unless
/// [`set_accept_data_loss`] was called.
pub fn restore(cfg: &ZooCfg) -> anyhow::Result<Restored> {
    let data_dir = storage::datadir::version_dir(&cfg.data_dir)?;
    let log_dir = storage::datadir::version_dir(cfg.log_dir())?;
    let options = storage::datadir::RecoverOptions {
        accept_data_loss: ACCEPT_DATA_LOSS.load(Ordering::Relaxed),
    };
    let recovered = storage::datadir::recover_with(&cfg.data_dir, cfg.log_dir(), options)
        .map_err(|e| match e {
            storage::datadir::RecoverError::DataLoss(_) => anyhow::anyhow!(
                "{e}; refusing to start. Start with --accept-data-loss to serve the data that is there"
            ),
            e => anyhow::anyhow!("cannot recover the data in {}: {e}", cfg.data_dir.display()),
        })?;
    for gap in &recovered.data_loss {
        error!("DATA LOSS accepted by --accept-data-loss: {gap}; serving the data that is there");
    }
    for w in &recovered.warnings {
        warn!("{w}");
    }
    if let Some(torn) = &recovered.torn_tail {
        warn!("the last transaction log ended in a torn record, truncated: {torn}");
    }
    let mut recovered = recovered;
    // ephemerals whose owner is not a known session can never be cleaned up by an expiry:
    // delete them now, as ZooKeeper does at load (without a txn, at the last zxid)
    let dead: Vec<i64> = recovered
        .tree
        .ephemerals()
        .keys()
        .copied()
        .filter(|owner| !recovered.sessions.contains_key(owner))
        .collect();
    for owner in dead {
        warn!("deleting the ephemerals of session 0x{owner:x}, which is not among the recovered sessions");
        let header = jute::TxnHeader {
            client_id: owner,
            cxid: 0,
            zxid: recovered.last_zxid,
            time: 0,
            txn_type: jute::op::CLOSE_SESSION,
        };
        recovered.tree.process_txn(
            &header,
            &tree::Txn::CloseSession(jute::CloseSessionTxn::default()),
        );
        recovered.tree.drain_events();
    }
    let sessions: Vec<(i64, i32)> = recovered.sessions.iter().map(|(&id, &t)| (id, t)).collect();
    info!(
        "recovered zxid 0x{:x}: {} znodes, {} sessions (snapshot {}, logs in {})",
        recovered.last_zxid,
        recovered.tree.node_count(),
        sessions.len(),
        recovered
            .snapshot
            .as_ref()
            .map_or("none".into(), |p| p.display().to_string()),
        log_dir.display()
    );
    let snapshot_zxid = recovered.snapshot.as_ref().and_then(|p| {
        p.file_name()?
            .to_str()?
            .strip_prefix("snapshot.")
            .and_then(|h| i64::from_str_radix(h, 16).ok())
    });
    // ZooKeeper refuses a dataDir with logs and no snapshot: a first (small) snapshot is
    // written before serving; a fresh one after replaying is taken in the background. A loss
    // the operator accepted is accepted once: a snapshot of what is served goes past the gap.
    if snapshot_zxid.is_none() || !recovered.data_loss.is_empty() {
        let bytes = storage::snapshot::serialize(&recovered.tree, &sessions);
        let path = storage::snapshot::write(&data_dir, recovered.last_zxid, &bytes)?;
        info!("initial snapshot {}", path.display());
    }
    let recent: Result<Vec<_>, _> = recovered
        .recent_txns
        .iter()
        .map(|(zxid, bytes)| zab::wire::ProposalData::decode(bytes).map(|data| (*zxid, data)))
        .collect();
    // a record the proposal codec does not take only costs learners a SNAP instead of a DIFF
    let recent_txns = recent.unwrap_or_else(|e| {
        warn!("no DIFF window from the log after this restart: {e}");
        Vec::new()
    });
    Ok(Restored {
        replayed_txns: recovered.replayed_txns,
        tree: recovered.tree,
        sessions,
        recent_txns,
    })
}

/// What the core sends the thread writing a snapshot.
enum SnapshotPart {
    Bytes(Vec<u8>),
    /// Complete (seal, fsync, rename) or abandoned (temp file removed).
    End {
        complete: bool,
    },
}

/// Where the node's txns and snapshots go to become durable (the log-writer and snapshot
/// threads); [`Event::Durable`] and [`Event::SnapshotWritten`] come back.
pub trait TxnSink: Send {
    fn persist(&mut self, txn: Arc<Prepared>);
    /// [`TxnSink::persist`] of a txn record already serialized (a proposal's bytes).
    fn persist_raw(&mut self, header: jute::TxnHeader, body: bytes::Bytes);
    /// Start a new log file: a snapshot is starting.
    fn roll(&mut self);
    /// Remove every logged txn after `zxid` (a learner's TRUNC); returns once done.
    fn truncate(&mut self, zxid: i64);
    /// Replace the whole log by this snapshot file (a learner's SNAP); returns once durable.
    fn reset_to_snapshot(&mut self, zxid: i64, snapshot_file_bytes: Vec<u8>);
    /// Start writing the snapshot of a fuzzy snapshot started at `zxid`, with these sessions.
    fn begin_snapshot(&mut self, zxid: i64, sessions: Vec<(i64, i32)>);
    /// The next bytes of the serialized tree of the snapshot begun; the buffer comes back
    /// once they are written.
    fn snapshot_bytes(&mut self, bytes: Vec<u8>);
    /// The snapshot begun is complete (its last bytes sent), or abandoned.
    fn end_snapshot(&mut self, complete: bool);
}

/// The sink the node's txns go to.
pub struct DiskSink {
    log: std_mpsc::Sender<LogCommand>,
    core_tx: Deliver<Event>,
    /// The thread writing the snapshot being taken (or just taken).
    snapshot_writer: Option<(std_mpsc::Sender<SnapshotPart>, std::thread::JoinHandle<()>)>,
    snap_dir: PathBuf,
    data_dir: PathBuf,
    log_dir: PathBuf,
    retain: usize,
    purge_on_snapshot: bool,
}

impl DiskSink {
    /// Starts the log writer thread; it reports durable zxids to the core.
    pub fn start(
        cfg: &ZooCfg,
        last_zxid: i64,
        core_tx: Deliver<Event>,
    ) -> anyhow::Result<DiskSink> {
        let log_dir = storage::datadir::version_dir(cfg.log_dir())?;
        let snap_dir = storage::datadir::version_dir(&cfg.data_dir)?;
        let mut log = TxnLog::open(&log_dir, cfg.pre_alloc_size_kb * 1024)?;
        // the log asserts that zxids keep increasing across restarts too
        log.set_last_zxid(last_zxid);
        let (tx, rx) = std_mpsc::channel();
        let force_sync = cfg.force_sync;
        if !force_sync {
            warn!("forceSync=no: acknowledged writes are not fsynced and can be lost on a crash");
        }
        let dirs = (cfg.data_dir.clone(), cfg.log_dir().clone());
        let log_core_tx = core_tx.clone();
        std::thread::Builder::new()
            .name("txn-log".into())
            .spawn(move || log_writer(log, rx, force_sync, log_core_tx, dirs))?;
        Ok(DiskSink {
            log: tx,
            core_tx,
            snapshot_writer: None,
            snap_dir,
            data_dir: cfg.data_dir.clone(),
            log_dir: cfg.log_dir().clone(),
            retain: cfg.autopurge_snap_retain_count as usize,
            purge_on_snapshot: cfg.autopurge_purge_interval_hours > 0,
        })
    }
}

impl TxnSink for DiskSink {
    fn persist(&mut self, txn: Arc<Prepared>) {
        let _ = self.log.send(LogCommand::Append(txn));
    }

    fn persist_raw(&mut self, header: jute::TxnHeader, body: bytes::Bytes) {
        let _ = self.log.send(LogCommand::AppendRaw(header, body));
    }

    fn roll(&mut self) {
        let _ = self.log.send(LogCommand::Roll);
    }

    fn truncate(&mut self, zxid: i64) {
        // a snapshot still being written past the cut would survive it
        self.wait_for_snapshot_writer();
        let (done, wait) = std_mpsc::channel();
        let _ = self.log.send(LogCommand::Truncate(zxid, done));
        let _ = wait.recv();
    }

    fn reset_to_snapshot(&mut self, zxid: i64, snapshot_file_bytes: Vec<u8>) {
        self.wait_for_snapshot_writer();
        let (done, wait) = std_mpsc::channel();
        let _ = self.log.send(LogCommand::ResetToSnapshot {
            zxid,
            bytes: snapshot_file_bytes,
            done,
        });
        let _ = wait.recv();
    }

    fn begin_snapshot(&mut self, zxid: i64, sessions: Vec<(i64, i32)>) {
        // one snapshot at a time: the previous one's writer may still be sealing its file
        self.wait_for_snapshot_writer();
        let (tx, rx) = std_mpsc::channel();
        let dir = self.snap_dir.clone();
        let core_tx = self.core_tx.clone();
        let purge = self
            .purge_on_snapshot
            .then(|| (self.data_dir.clone(), self.log_dir.clone(), self.retain));
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || snapshot_writer(dir, zxid, sessions, rx, core_tx, purge));
        match spawned {
            Ok(handle) => self.snapshot_writer = Some((tx, handle)),
            // the parts sent go nowhere and their buffers never come back: the core's
            // snapshot waits, and the next one starts over
            Err(e) => error!("snapshot at zxid 0x{zxid:x}: no writer thread: {e}"),
        }
    }

    fn snapshot_bytes(&mut self, bytes: Vec<u8>) {
        if let Some((tx, _)) = &self.snapshot_writer {
            let _ = tx.send(SnapshotPart::Bytes(bytes));
        }
    }

    fn end_snapshot(&mut self, complete: bool) {
        if let Some((tx, _)) = &self.snapshot_writer {
            let _ = tx.send(SnapshotPart::End { complete });
        }
    }
}

impl DiskSink {
    fn wait_for_snapshot_writer(&mut self) {
        if let Some((tx, handle)) = self.snapshot_writer.take() {
            // a writer not told how its snapshot ended abandons it
            drop(tx);
            let _ = handle.join();
        }
    }
}

/// Writes one snapshot as the core's steps serialize it, handing each buffer back once its
/// bytes are written; a write error abandons the file but keeps handing buffers back.
fn snapshot_writer(
    dir: PathBuf,
    zxid: i64,
    sessions: Vec<(i64, i32)>,
    parts: std_mpsc::Receiver<SnapshotPart>,
    core_tx: Deliver<Event>,
    purge: Option<(PathBuf, PathBuf, usize)>,
) {
    let failed = |e: std::io::Error| error!("snapshot at zxid 0x{zxid:x} failed: {e}");
    let mut writer = storage::snapshot::SnapshotWriter::create(&dir, zxid, &sessions)
        .map_err(failed)
        .ok();
    let mut size = 0usize;
    let mut complete = false;
    while let Ok(part) = parts.recv() {
        match part {
            SnapshotPart::Bytes(bytes) => {
                size += bytes.len();
                if let Some(w) = writer.as_mut() {
                    if let Err(e) = w.write(&bytes) {
                        failed(e);
                        writer = None;
                    }
                }
                let _ = core_tx(Event::SnapshotWritten(bytes));
            }
            SnapshotPart::End { complete: c } => {
                complete = c;
                break;
            }
        }
    }
    let Some(writer) = writer.filter(|_| complete) else {
        return; // dropped: its temp file goes
    };
    match writer.finish() {
        Ok(path) => {
            info!("snapshot {} ({size} bytes of tree)", path.display());
            if let Some((data_dir, log_dir, retain)) = purge {
                if let Err(e) = storage::datadir::purge(&data_dir, &log_dir, retain) {
                    warn!("autopurge failed: {e}");
                }
            }
        }
        Err(e) => failed(e),
    }
    // what the writes since the last snapshot freed goes back to the OS, not only to the
    // allocator's free lists (standalone, 1 M znodes loaded by single creates: 375 -> 254 MiB
    // resident; setData throughput unchanged in an A/B)
    release_free_memory();
}

/// Appends everything queued, fsyncs once, reports the last zxid as durable, repeats.
fn log_writer(
    mut log: TxnLog,
    rx: std_mpsc::Receiver<LogCommand>,
    force_sync: bool,
    core_tx: Deliver<Event>,
    (data_dir, log_dir): (PathBuf, PathBuf),
) {
    // truncations and snapshot loads so far; the core counts the same (both are synchronous)
    let mut resets = 0u64;
    while let Ok(first) = rx.recv() {
        let mut last = None;
        let mut next = Some(first);
        while let Some(cmd) = next {
            let result = match cmd {
                LogCommand::Append(p) => {
                    last = Some(p.header.zxid);
                    log.append_parts(&p.header, &p.txn)
                }
                LogCommand::AppendRaw(header, body) => {
                    last = Some(header.zxid);
                    log.append_raw(&header, &body)
                }
                LogCommand::Roll => log.commit(force_sync).and_then(|_| log.roll()),
                LogCommand::Truncate(zxid, done) => {
                    // the file being appended to is cut from the writer's own index: cutting
                    // an uncommitted tail (every hand-off under load) reads nothing
                    let index = log.current_index();
                    let result = log
                        .commit(force_sync)
                        .and_then(|_| log.roll())
                        .and_then(|_| log.commit(force_sync))
                        .and_then(|_| {
                            storage::datadir::truncate_after_with_index(
                                &data_dir,
                                &log_dir,
                                zxid,
                                index.as_ref(),
                            )
                            .map_err(std::io::Error::other)
                        });
                    if result.is_ok() {
                        info!("log truncated after zxid 0x{zxid:x}");
                        log.set_last_zxid(zxid);
                        // everything kept was flushed above: report it under the new count,
                        // reports already sent are dropped as stale
                        resets += 1;
                        last = Some(zxid);
                    }
                    let _ = done.send(());
                    result.map(|_| ())
                }
                LogCommand::ResetToSnapshot { zxid, bytes, done } => {
                    let result = log
                        .commit(force_sync)
                        .and_then(|_| log.roll())
                        .and_then(|_| log.commit(force_sync))
                        .and_then(|_| {
                            let dir = storage::datadir::version_dir(&data_dir)?;
                            let path = storage::snapshot::write(&dir, zxid, &bytes)?;
                            info!("snapshot from the leader written to {}", path.display());
                            storage::datadir::remove_logs(&log_dir)
                                .map_err(std::io::Error::other)?;
                            Ok(())
                        });
                    if result.is_ok() {
                        log.set_last_zxid(zxid);
                        resets += 1;
                        last = Some(zxid);
                    }
                    let _ = done.send(());
                    result
                }
            };
            if let Err(e) = result {
                fatal_storage_error(e);
            }
            next = rx.try_recv().ok();
        }
        if let Some(zxid) = last {
            if let Err(e) = log.commit(force_sync) {
                fatal_storage_error(e);
            }
            if !core_tx(Event::Durable { zxid, resets }) {
                return;
            }
        }
    }
    let _ = log.commit(force_sync);
}

/// A write that cannot be made durable cannot be acknowledged: like ZooKeeper, stop the
/// server rather than serve with a log that has a hole (clients fail over and retry).
fn fatal_storage_error(e: std::io::Error) -> ! {
    error!("Severe unrecoverable error writing the transaction log, exiting: {e}");
    std::process::exit(2);
}

/// ZooKeeper's `acceptedEpoch` and `currentEpoch` files in dataDir/version-2: the number in
/// decimal, written atomically (temp file, fsync, rename). Missing files default to the epoch
/// of the last logged zxid, as ZooKeeper does.
pub fn read_epochs(cfg: &ZooCfg, last_zxid: i64) -> anyhow::Result<zab::peer::Persisted> {
    let dir = storage::datadir::version_dir(&cfg.data_dir)?;
    let read = |name: &str| -> anyhow::Result<i64> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<i64>().map_err(|_| {
                anyhow::anyhow!(
                    "{}: expected an epoch number, found {text:?}",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                info!(
                    "{} not found, using the epoch of the last zxid",
                    path.display()
                );
                Ok(last_zxid >> 32)
            }
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    };
    let current_epoch = read("currentEpoch")?;
    let accepted_epoch = read("acceptedEpoch")?.max(current_epoch);
    Ok(zab::peer::Persisted {
        accepted_epoch,
        current_epoch,
    })
}

pub fn write_epochs(
    data_dir: &std::path::Path,
    epochs: zab::peer::Persisted,
) -> std::io::Result<()> {
    let dir = storage::datadir::version_dir(data_dir)?;
    for (name, value) in [
        ("acceptedEpoch", epochs.accepted_epoch),
        ("currentEpoch", epochs.current_epoch),
    ] {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|t| t.trim() == value.to_string()) {
            continue;
        }
        let tmp = dir.join(format!("{name}.tmp"));
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(value.to_string().as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
    }
    std::fs::File::open(&dir)?.sync_all()
}

/// Gives the heap memory freed after a recovery (the log files read, the decoded txns, the
/// tables grown while replaying) or a snapshot (its serialized tree) back to the OS. glibc
/// keeps it otherwise: measured with 1 M znodes, 895 MiB resident after a restart against
/// 550 MiB before it.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointer of ours.
    unsafe {
        libc::malloc_trim(0);
    }
}
