//! A dataDir (and dataLogDir) as a whole: recovery at start and autopurge, following
//! ZooKeeper's FileTxnSnapLog, FileSnap and PurgeTxnLog.
//!
//! `data_dir` and `log_dir` are the configured `dataDir` and `dataLogDir` (equal when no
//! dataLogDir is set): the files live in their `version-2` subdirectory.

use crate::snapshot::{self, SNAPSHOT_PREFIX};
use crate::txnlog::{self, TxnLog, LOG_PREFIX};
use crate::{list_by_zxid, StorageError};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use tree::{DataTree, Txn};

/// The subdirectory of a dataDir or dataLogDir that holds the files.
pub const VERSION_DIR: &str = "version-2";

/// `<dir>/version-2` (created if missing).
pub fn version_dir(dir: &Path) -> std::io::Result<PathBuf> {
    let v = dir.join(VERSION_DIR);
    std::fs::create_dir_all(&v)?;
    Ok(v)
}

/// The outcome of [`recover`].
#[derive(Debug)]
pub struct Recovered {
    /// The tree with every logged txn applied; `last_processed_zxid` = `last_zxid`.
    pub tree: DataTree,
    /// Open sessions and their timeouts (ms), from the snapshot and the log.
    pub sessions: BTreeMap<i64, i32>,
    /// The zxid of the last txn replayed, or of the snapshot, or 0 for an empty dataDir.
    pub last_zxid: i64,
    /// The snapshot loaded, if any.
    pub snapshot: Option<PathBuf>,
    /// The torn tail cut from the last log file, if there was one.
    pub torn_tail: Option<String>,
    /// Snapshots skipped as corrupt, and other things an operator should hear about.
    pub warnings: Vec<String>,
    /// The last [`RECENT_TXNS`] records of the log (zxid, TxnHeader + txn + digest bytes), in
    /// order: a leader's window of committed txns for DIFF right after a restart, as
    /// ZooKeeper's committedLog is filled while it loads its database.
    pub recent_txns: Vec<(i64, Vec<u8>)>,
    /// How many txns of the log were applied after the snapshot.
    pub replayed_txns: u64,
    /// Txns missing from the dataDir, accepted by [`RecoverOptions::accept_data_loss`]
    /// (without it recovery fails with them all).
    pub data_loss: Vec<DataGap>,
}

/// How many of the last logged txns [`recover`] keeps (ZooKeeper's commitLogCount).
pub const RECENT_TXNS: usize = 500;

/// What [`recover_with`] may accept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoverOptions {
    /// Serve the data that is there when txns are missing (the operator's
    /// `--accept-data-loss`): the gaps are returned in [`Recovered::data_loss`] instead of
    /// failing the recovery.
    pub accept_data_loss: bool,
}

/// Why [`recover`] gives up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoverError {
    /// A file that cannot be used as it is.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Every file reads back fine but txns are missing between the snapshot and the last
    /// logged txn (at least one gap).
    #[error("{}", display_gaps(.0))]
    DataLoss(Vec<DataGap>),
}

impl RecoverError {
    /// The file problem, if this is one.
    pub fn storage(&self) -> Option<&StorageError> {
        match self {
            RecoverError::Storage(e) => Some(e),
            RecoverError::DataLoss(_) => None,
        }
    }
}

fn display_gaps(gaps: &[DataGap]) -> String {
    gaps.iter()
        .map(|g| g.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where the txns before a [`DataGap`] are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GapStart {
    /// Nowhere: there is no snapshot and the first log file does not start at the first txn.
    Nothing,
    /// The snapshot recovery started from: the first log file to replay starts after its
    /// zxid + 1.
    Snapshot(PathBuf),
    /// This log file holds the last txn before the gap.
    Log(PathBuf),
}

/// Txns that should be in the dataDir and are not: `first..=last` are neither in the
/// snapshot used nor in any log file, while later txns are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataGap {
    /// The `version-2` directory of the log files.
    pub log_dir: PathBuf,
    pub first: i64,
    pub last: i64,
    /// What holds the txn right before the gap.
    pub after: GapStart,
    /// The log file that holds the txn right after the gap.
    pub before: PathBuf,
    /// The snapshot recovery started from.
    pub snapshot: Option<PathBuf>,
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

impl std::fmt::Display for DataGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.log_dir.display())?;
        if self.first == self.last {
            write!(f, "txn {:#x} is missing ", self.first)?;
        } else {
            write!(f, "txns {:#x}..{:#x} are missing ", self.first, self.last)?;
        }
        let before = file_name(&self.before);
        match &self.after {
            GapStart::Log(p) if *p == self.before => write!(f, "inside {before}")?,
            GapStart::Log(p) => write!(f, "between {} and {before}", file_name(p))?,
            GapStart::Snapshot(p) => write!(f, "between {} and {before}", file_name(p))?,
            GapStart::Nothing => write!(f, "before {before}")?,
        }
        match (&self.snapshot, &self.after) {
            (Some(_), GapStart::Snapshot(_)) => Ok(()),
            (Some(s), _) => write!(f, " ({} used)", file_name(s)),
            (None, _) => write!(f, " (no snapshot)"),
        }
    }
}

/// Whether a log may hold `next` right after `prev` (a txn, or the zxid of the snapshot
/// replay starts from) with nothing missing in between. A zxid is `epoch << 32 | counter`.
/// Within an epoch a leader numbers its proposals 1, 2, 3… and every one of them is logged
/// by every server that has the later ones (zab's Leader::propose; a learner logs a DIFF's
/// txns and a SNAP replaces the whole log), so the next txn is `prev + 1`. A new leader's
/// epoch starts over at counter 1 (its NEWLEADER zxid `epoch << 32` is no txn), and epochs
/// may be skipped (an election whose epoch never got established), so the first txn of any
/// later epoch may follow anything. A counter of 0 in a later epoch is never logged, and
/// accepted too rather than flagged.
pub fn zxid_follows(prev: i64, next: i64) -> bool {
    next == prev.wrapping_add(1) || (next >> 32 > prev >> 32 && next & 0xffff_ffff <= 1)
}

/// The txns certainly missing between `prev` and `next` when [`zxid_follows`] says some
/// are: the rest of the epoch when `next` is in the same one, else the start of `next`'s
/// epoch (how much of `prev`'s epoch followed it cannot be known).
fn missing_range(prev: i64, next: i64) -> (i64, i64) {
    if next >> 32 == prev >> 32 {
        (prev + 1, next - 1)
    } else {
        ((next >> 32 << 32) | 1, next - 1)
    }
}

/// The log files to read to replay everything after `snap_zxid`, as ZooKeeper's
/// FileTxnLog.getLogFiles: the newest file starting at or before `snap_zxid` (it may hold
/// txns after it) and every later one, ascending.
pub fn logs_after(logs: &[(i64, PathBuf)], snap_zxid: i64) -> Vec<(i64, PathBuf)> {
    let start = logs
        .iter()
        .filter(|(z, _)| *z <= snap_zxid)
        .map(|(z, _)| *z)
        .max()
        .unwrap_or(i64::MIN);
    logs.iter().filter(|(z, _)| *z >= start).cloned().collect()
}

/// ZooKeeper's restore: newest snapshot that reads back valid (fall back to older ones; a
/// corrupt newer one is skipped with a warning), then replay every txn with zxid > the
/// snapshot's zxid from the log files (the file whose start zxid <= snapshot zxid+1 and all
/// later ones), in zxid order, applying them with DataTree::process_txn and tracking sessions
/// (createSession adds id->timeout, closeSession removes). A torn tail of the LAST log file is
/// truncated (so later appends never leave garbage in the middle) and reported. Corruption
/// anywhere else → Err. Zxids must strictly increase across the replayed log.
///
/// Txns missing between the snapshot and the last logged txn (a log file lost, a newest
/// snapshot damaged so that an older one is used while the logs between them were purged, a
/// log file with a hole) fail the recovery with [`RecoverError::DataLoss`], naming the files
/// and the zxids: the rule is [`zxid_follows`]. ZooKeeper only warns about some of them and
/// serves what it has; see [`recover_with`] for the operator's way to do the same.
///
/// Differences from ZooKeeper, all on the safe side: a CRC-failing record in the middle of a
/// log is an error in both, but zkrs also refuses an incomplete record or a zeroed stretch
/// followed by valid records (ZooKeeper would silently skip to the next file); a dataDir with
/// logs and no snapshot at all is replayed from zxid 0 with a warning (ZooKeeper refuses it
/// unless zookeeper.snapshot.trust.empty is set); snapshot files that exist but none of which
/// is valid are an error (as in ZooKeeper).
pub fn recover(data_dir: &Path, log_dir: &Path) -> Result<Recovered, RecoverError> {
    recover_with(data_dir, log_dir, RecoverOptions::default())
}

/// [`recover`]; with [`RecoverOptions::accept_data_loss`] txns missing from the dataDir are
/// reported in [`Recovered::data_loss`] and the tree is what the files hold.
pub fn recover_with(
    data_dir: &Path,
    log_dir: &Path,
    options: RecoverOptions,
) -> Result<Recovered, RecoverError> {
    let snap_dir = version_dir(data_dir).map_err(|e| StorageError::io(data_dir, e))?;
    let txn_dir = version_dir(log_dir).map_err(|e| StorageError::io(log_dir, e))?;
    let snaps =
        list_by_zxid(&snap_dir, SNAPSHOT_PREFIX).map_err(|e| StorageError::io(&snap_dir, e))?;
    let logs = list_by_zxid(&txn_dir, LOG_PREFIX).map_err(|e| StorageError::io(&txn_dir, e))?;
    if snap_dir != txn_dir {
        // ZOOKEEPER-2967: catch swapped dataDir / dataLogDir
        if let Some((_, p)) = list_by_zxid(&txn_dir, SNAPSHOT_PREFIX)
            .map_err(|e| StorageError::io(&txn_dir, e))?
            .first()
        {
            return Err(RecoverError::Storage(StorageError::new(
                p,
                0,
                "the txn log directory has snapshot files: check dataDir and dataLogDir",
            )));
        }
        if let Some((_, p)) = logs_in(&snap_dir)?.first() {
            return Err(RecoverError::Storage(StorageError::new(
                p,
                0,
                "the snapshot directory has log files: check dataDir and dataLogDir",
            )));
        }
    }
    let mut warnings = Vec::new();

    // newest valid snapshot
    type Loaded = (i64, PathBuf, DataTree, Vec<(i64, i32)>);
    let mut loaded: Option<Loaded> = None;
    let mut candidates = 0;
    let mut last_error = None;
    for (zxid, path) in snaps.iter().rev() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".tmp") {
            continue; // an unfinished atomic write
        }
        candidates += 1;
        if name != snapshot::snapshot_name(*zxid) {
            let e = StorageError::new(
                path,
                0,
                "not a plain snapshot (zookeeper.snapshot.compression.method is not supported)",
            );
            warnings.push(format!("skipping unreadable snapshot: {e}"));
            last_error = Some(e);
            continue;
        }
        match snapshot::read(path) {
            Ok((tree, sessions)) => {
                loaded = Some((*zxid, path.clone(), tree, sessions));
                break;
            }
            Err(e) => {
                warnings.push(format!("skipping invalid snapshot: {e}"));
                last_error = Some(e);
            }
        }
    }
    if loaded.is_none() && candidates > 0 {
        let e = last_error.expect("a candidate failed");
        return Err(RecoverError::Storage(StorageError::new(
            &e.file,
            e.offset,
            format!(
                "no valid snapshot in {}; oldest one: {}",
                snap_dir.display(),
                e.message
            ),
        )));
    }
    let (snap_zxid, snapshot, mut tree, sessions) = match loaded {
        Some((z, p, t, s)) => (z, Some(p), t, s),
        None => {
            if !logs.is_empty() {
                warnings.push(format!(
                    "no snapshot in {}: replaying the txn logs from the beginning \
                     (Apache ZooKeeper refuses such a dataDir)",
                    snap_dir.display()
                ));
            }
            (0, None, DataTree::new(), Vec::new())
        }
    };
    tree.last_processed_zxid = snap_zxid;
    let mut sessions: BTreeMap<i64, i32> = sessions.into_iter().collect();

    // replay
    let mut torn_tail = None;
    let newest_log = logs.last().map(|(_, p)| p.clone());
    let mut last_zxid = snap_zxid;
    // the last txn read (replayed or not), and the index of its file in `to_replay`
    let mut prev: Option<(i64, usize)> = None;
    let mut gaps = Vec::new();
    let mut recent_txns: VecDeque<(i64, Vec<u8>)> = VecDeque::new();
    let mut replayed_txns = 0;
    let to_replay = logs_after(&logs, snap_zxid);
    for (file_index, (_, path)) in to_replay.iter().enumerate() {
        // the last records of this file, as (zxid, byte range): copied once it is scanned
        let mut recent_here: VecDeque<(i64, std::ops::Range<usize>)> = VecDeque::new();
        let bytes = txnlog::read_log_bytes(path).map_err(|e| StorageError::io(path, e))?;
        // txns are applied as they are decoded; a corrupt record further on fails the whole
        // recovery, so nothing applied before it is ever served
        let end = txnlog::scan_log(path, &bytes, |entry, offset, record| {
            let zxid = entry.zxid();
            let start = record.as_ptr() as usize - bytes.as_ptr() as usize;
            recent_here.push_back((zxid, start..start + record.len()));
            if recent_here.len() > RECENT_TXNS {
                recent_here.pop_front();
            }
            let before = prev.replace((zxid, file_index));
            if let Some((p, _)) = before {
                if zxid <= p {
                    return Err(StorageError::new(
                        path,
                        offset,
                        format!(
                            "zxid {zxid:#x} follows {p:#x}: zxids must increase across the log"
                        ),
                    ));
                }
            }
            if zxid <= snap_zxid {
                return Ok(());
            }
            // what this txn must follow: the txn before it, or the snapshot
            let after_txn = before.filter(|(p, _)| *p >= snap_zxid);
            let after_zxid = after_txn.map_or(snap_zxid, |(p, _)| p);
            if !zxid_follows(after_zxid, zxid) {
                let (first, last) = missing_range(after_zxid, zxid);
                let after = match (after_txn, &snapshot) {
                    (Some((_, f)), _) => GapStart::Log(to_replay[f].1.clone()),
                    (None, Some(s)) => GapStart::Snapshot(s.clone()),
                    (None, None) => GapStart::Nothing,
                };
                gaps.push(DataGap {
                    log_dir: txn_dir.clone(),
                    first,
                    last,
                    after,
                    before: path.clone(),
                    snapshot: snapshot.clone(),
                });
            }
            match &entry.txn {
                Txn::CreateSession(t) => {
                    sessions.insert(entry.header.client_id, t.time_out);
                }
                Txn::CloseSession(_) => {
                    sessions.remove(&entry.header.client_id);
                }
                _ => {}
            }
            tree.process_txn(&entry.header, &entry.txn);
            replayed_txns += 1;
            last_zxid = zxid;
            Ok(())
        })?;
        for (zxid, range) in recent_here {
            recent_txns.push_back((zxid, bytes[range].to_vec()));
            if recent_txns.len() > RECENT_TXNS {
                recent_txns.pop_front();
            }
        }
        drop(bytes);
        if let Some(why) = &end.torn_tail {
            if Some(path) != newest_log.as_ref() {
                return Err(RecoverError::Storage(StorageError::new(
                    path,
                    end.valid_len,
                    format!("{why} (not the newest log file, so this is not a torn write)"),
                )));
            }
            TxnLog::truncate_to(&txn_dir, path, end.valid_len).map_err(|e| {
                StorageError::new(
                    path,
                    end.valid_len,
                    format!("cannot truncate the torn tail: {e}"),
                )
            })?;
            torn_tail = Some(format!(
                "{}: {why}; truncated to {} bytes",
                path.display(),
                end.valid_len
            ));
        }
    }
    if !gaps.is_empty() && !options.accept_data_loss {
        return Err(RecoverError::DataLoss(gaps));
    }
    // txns are applied through the same path as live ones: drop their watch events
    let _ = tree.drain_events();
    tree.last_processed_zxid = last_zxid;
    let dangling = tree.dangling_acl_paths();
    if !dangling.is_empty() {
        warnings.push(format!(
            "{} znodes reference ACLs missing from the snapshot's ACL cache (first: {}): \
             every operation on them is denied (except to a super user, or with skipACL) \
             until a super user sets their ACL",
            dangling.len(),
            dangling[0]
        ));
    }
    Ok(Recovered {
        tree,
        sessions,
        last_zxid,
        snapshot,
        torn_tail,
        warnings,
        recent_txns: recent_txns.into(),
        replayed_txns,
        data_loss: gaps,
    })
}

fn logs_in(dir: &Path) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    list_by_zxid(dir, LOG_PREFIX).map_err(|e| StorageError::io(dir, e))
}

/// autopurge: keep the newest `retain` snapshots (min 3) and the logs needed to replay from
/// the oldest kept, as ZooKeeper's PurgeTxnLog: the snapshots kept are the newest ones that
/// pass ZooKeeper's quick validity check; older snapshots are removed, and so are the log
/// files older than the one that starts at or before the oldest kept snapshot. Returns the
/// removed files.
pub fn purge(data_dir: &Path, log_dir: &Path, retain: usize) -> std::io::Result<Vec<PathBuf>> {
    let retain = retain.max(3);
    let snap_dir = version_dir(data_dir)?;
    let txn_dir = version_dir(log_dir)?;
    let snaps = list_by_zxid(&snap_dir, SNAPSHOT_PREFIX)?;
    let kept: Vec<i64> = snaps
        .iter()
        .rev()
        .filter(|(_, p)| snapshot::looks_valid(p))
        .take(retain)
        .map(|(z, _)| *z)
        .collect();
    let Some(&oldest_kept) = kept.last() else {
        return Ok(Vec::new());
    };
    let logs = list_by_zxid(&txn_dir, LOG_PREFIX)?;
    let needed: Vec<PathBuf> = logs_after(&logs, oldest_kept)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let mut doomed: Vec<PathBuf> = logs
        .into_iter()
        .filter(|(z, p)| *z < oldest_kept && !needed.contains(p))
        .map(|(_, p)| p)
        .collect();
    doomed.extend(
        snaps
            .into_iter()
            .filter(|(z, _)| *z < oldest_kept)
            .map(|(_, p)| p),
    );
    let mut removed = Vec::new();
    for p in doomed {
        match std::fs::remove_file(&p) {
            Ok(()) => removed.push(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if !removed.is_empty() {
        crate::sync_dir(&snap_dir)?;
        if txn_dir != snap_dir {
            crate::sync_dir(&txn_dir)?;
        }
    }
    Ok(removed)
}

/// A learner told by its leader to TRUNC: remove every txn after `zxid` from the log (log files
/// that start after it, and the tail of the one that holds it) and every snapshot after it,
/// as ZooKeeper's FileTxnSnapLog.truncateLog. Returns the removed or shortened files.
pub fn truncate_after(
    data_dir: &Path,
    log_dir: &Path,
    zxid: i64,
) -> Result<Vec<PathBuf>, StorageError> {
    truncate_after_with_index(data_dir, log_dir, zxid, None)
}

/// [`truncate_after`], with the writer's index of one log file (the one it was appending
/// to): that file is cut at the recorded offset without being read. Only the last file that
/// starts at or before `zxid` can hold txns after it (zxids ascend across files), so at most
/// that one is read.
pub fn truncate_after_with_index(
    data_dir: &Path,
    log_dir: &Path,
    zxid: i64,
    known: Option<&txnlog::LogIndex>,
) -> Result<Vec<PathBuf>, StorageError> {
    let snap_dir = version_dir(data_dir).map_err(|e| StorageError::io(data_dir, e))?;
    let txn_dir = version_dir(log_dir).map_err(|e| StorageError::io(log_dir, e))?;
    let mut touched = Vec::new();
    let remove = |p: &PathBuf, touched: &mut Vec<PathBuf>| -> Result<(), StorageError> {
        std::fs::remove_file(p).map_err(|e| StorageError::io(p, e))?;
        touched.push(p.clone());
        Ok(())
    };
    let logs = logs_in(&txn_dir)?;
    let last_kept = logs.iter().rposition(|(start, _)| *start <= zxid);
    for (i, (start, path)) in logs.into_iter().enumerate() {
        if start > zxid {
            remove(&path, &mut touched)?;
            continue;
        }
        if Some(i) != last_kept {
            continue; // a later file starts at or before zxid: this one ends before it
        }
        let cut = match known.filter(|k| k.path == path) {
            Some(index) => index
                .records
                .iter()
                .find(|(z, _)| *z > zxid)
                .map(|(_, offset)| *offset),
            None => {
                let log = txnlog::read_log(&path)?;
                log.entries
                    .iter()
                    .position(|e| e.zxid() > zxid)
                    .map(|i| log.offsets[i])
            }
        };
        if let Some(offset) = cut {
            TxnLog::truncate_to(&txn_dir, &path, offset).map_err(|e| StorageError::io(&path, e))?;
            touched.push(path);
        }
    }
    for (snap_zxid, path) in
        list_by_zxid(&snap_dir, SNAPSHOT_PREFIX).map_err(|e| StorageError::io(&snap_dir, e))?
    {
        if snap_zxid > zxid {
            remove(&path, &mut touched)?;
        }
    }
    crate::sync_dir(&txn_dir).map_err(|e| StorageError::io(&txn_dir, e))?;
    crate::sync_dir(&snap_dir).map_err(|e| StorageError::io(&snap_dir, e))?;
    Ok(touched)
}

/// A learner that received a SNAP and wrote it as a snapshot: every log file is history the
/// snapshot replaces (or txns of an abandoned epoch), so all go.
pub fn remove_logs(log_dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let txn_dir = version_dir(log_dir).map_err(|e| StorageError::io(log_dir, e))?;
    let mut removed = Vec::new();
    for (_, path) in logs_in(&txn_dir)? {
        std::fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        removed.push(path);
    }
    crate::sync_dir(&txn_dir).map_err(|e| StorageError::io(&txn_dir, e))?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(zs: &[i64]) -> Vec<(i64, PathBuf)> {
        zs.iter()
            .map(|z| (*z, PathBuf::from(format!("log.{z:x}"))))
            .collect()
    }

    #[test]
    fn zxid_continuity() {
        const E: i64 = 1 << 32;
        // within an epoch: the next counter, nothing else
        assert!(zxid_follows(E | 7, E | 8));
        assert!(!zxid_follows(E | 7, E | 9));
        assert!(zxid_follows(0, 1));
        assert!(!zxid_follows(0, 2));
        // a later epoch (skipped ones too) starts at counter 1; a snapshot may be named at
        // a NEWLEADER zxid (counter 0)
        assert!(zxid_follows(E | 7, (2 << 32) | 1));
        assert!(zxid_follows(E | 7, (9 << 32) | 1));
        assert!(zxid_follows(0, E | 1));
        assert!(zxid_follows(2 << 32, (2 << 32) | 1));
        assert!(!zxid_follows(E | 7, (2 << 32) | 2));
        assert_eq!(missing_range(E | 7, E | 9), (E | 8, E | 8));
        assert_eq!(
            missing_range(E | 7, (3 << 32) | 5),
            ((3 << 32) | 1, (3 << 32) | 4)
        );
        // the counter's last value runs into the next epoch's zero
        assert!(zxid_follows(E | 0xffff_ffff, 2 << 32));
    }

    #[test]
    fn log_selection_matches_zookeeper() {
        let logs = files(&[1, 10, 20, 30]);
        let pick = |s| {
            logs_after(&logs, s)
                .iter()
                .map(|(z, _)| *z)
                .collect::<Vec<_>>()
        };
        assert_eq!(pick(0), vec![1, 10, 20, 30]);
        assert_eq!(pick(1), vec![1, 10, 20, 30]);
        assert_eq!(pick(15), vec![10, 20, 30]);
        assert_eq!(pick(19), vec![10, 20, 30]);
        assert_eq!(pick(20), vec![20, 30]);
        assert_eq!(pick(99), vec![30]);
        assert!(logs_after(&[], 5).is_empty());
    }
}
