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
}

/// How many of the last logged txns [`recover`] keeps (ZooKeeper's commitLogCount).
pub const RECENT_TXNS: usize = 500;

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
/// Differences from ZooKeeper, all on the safe side: a CRC-failing record in the middle of a
/// log is an error in both, but zkrs also refuses an incomplete record or a zeroed stretch
/// followed by valid records (ZooKeeper would silently skip to the next file); a dataDir with
/// logs and no snapshot at all is replayed from zxid 0 with a warning (ZooKeeper refuses it
/// unless zookeeper.snapshot.trust.empty is set); snapshot files that exist but none of which
/// is valid are an error (as in ZooKeeper).
pub fn recover(data_dir: &Path, log_dir: &Path) -> Result<Recovered, StorageError> {
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
            return Err(StorageError::new(
                p,
                0,
                "the txn log directory has snapshot files: check dataDir and dataLogDir",
            ));
        }
        if let Some((_, p)) = logs_in(&snap_dir)?.first() {
            return Err(StorageError::new(
                p,
                0,
                "the snapshot directory has log files: check dataDir and dataLogDir",
            ));
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
        return Err(StorageError::new(
            &e.file,
            e.offset,
            format!(
                "no valid snapshot in {}; oldest one: {}",
                snap_dir.display(),
                e.message
            ),
        ));
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
    let mut prev: Option<i64> = None;
    let mut first_replayed = true;
    let mut recent_txns: VecDeque<(i64, Vec<u8>)> = VecDeque::new();
    let mut replayed_txns = 0;
    for (_, path) in logs_after(&logs, snap_zxid) {
        // the last records of this file, as (zxid, byte range): copied once it is scanned
        let mut recent_here: VecDeque<(i64, std::ops::Range<usize>)> = VecDeque::new();
        let bytes = txnlog::read_log_bytes(&path).map_err(|e| StorageError::io(&path, e))?;
        // txns are applied as they are decoded; a corrupt record further on fails the whole
        // recovery, so nothing applied before it is ever served
        let end = txnlog::scan_log(&path, &bytes, |entry, offset, record| {
            let zxid = entry.zxid();
            let start = record.as_ptr() as usize - bytes.as_ptr() as usize;
            recent_here.push_back((zxid, start..start + record.len()));
            if recent_here.len() > RECENT_TXNS {
                recent_here.pop_front();
            }
            if let Some(p) = prev {
                if zxid <= p {
                    return Err(StorageError::new(
                        &path,
                        offset,
                        format!(
                            "zxid {zxid:#x} follows {p:#x}: zxids must increase across the log"
                        ),
                    ));
                }
            }
            prev = Some(zxid);
            if zxid <= snap_zxid {
                return Ok(());
            }
            if first_replayed {
                first_replayed = false;
                let (se, sc) = (snap_zxid >> 32, snap_zxid & 0xffff_ffff);
                if snapshot.is_some() && zxid >> 32 == se && (zxid & 0xffff_ffff) > sc + 1 {
                    warnings.push(format!(
                        "the log resumes at zxid {zxid:#x} after snapshot {snap_zxid:#x}: txns may be missing"
                    ));
                }
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
            if Some(&path) != newest_log.as_ref() {
                return Err(StorageError::new(
                    &path,
                    end.valid_len,
                    format!("{why} (not the newest log file, so this is not a torn write)"),
                ));
            }
            TxnLog::truncate_to(&txn_dir, &path, end.valid_len).map_err(|e| {
                StorageError::new(
                    &path,
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
    // txns are applied through the same path as live ones: drop their watch events
    let _ = tree.drain_events();
    tree.last_processed_zxid = last_zxid;
    let dangling = tree.dangling_acl_paths();
    if !dangling.is_empty() {
        warnings.push(format!(
            "{} znodes reference ACLs missing from the snapshot's ACL cache (first: {}); they are open to everyone",
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
