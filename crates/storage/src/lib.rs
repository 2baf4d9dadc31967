//! Durable storage in Apache ZooKeeper 3.8's on-disk formats: the txn log (`log.<zxid>`), the
//! snapshots (`snapshot.<zxid>`), recovery of a dataDir, autopurge and human-readable dumps.
//!
//! This crate owns files and fsync and nothing else: no sockets, threads or clocks. Group
//! commit is the caller's loop around [`txnlog::TxnLog::append`] and
//! [`txnlog::TxnLog::commit`].
//!
//! The formats, as ZooKeeper 3.8 writes them:
//! - every file starts with a `FileHeader {int magic, int version = 2, long dbid}`: magic "ZKLG"
//!   and dbid 0 for logs, "ZKSN" and dbid -1 for snapshots;
//! - a log record is `long adler32(bytes)`, `buffer bytes` (TxnHeader, txn record and, since
//!   3.6, an optional TxnDigest), then the byte 'B'; a record of length 0 (the zero-filled,
//!   preallocated space) ends the log;
//! - a snapshot is the header, the sessions, the tree (see `tree::snapshot`), then the seal:
//!   the Adler32 of every byte before it as a long and the string "/"; ZooKeeper 3.6+ may
//!   append a digest section (`long zxid, int version, long digest`) sealed the same way.

use std::path::{Path, PathBuf};

pub mod datadir;
pub mod inspect;
pub mod snapshot;
pub mod txnlog;

/// A file that cannot be used as it is, with the offset of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} @{offset}: {message}", file.display())]
pub struct StorageError {
    pub file: PathBuf,
    pub offset: u64,
    pub message: String,
}

impl StorageError {
    pub fn new(file: &Path, offset: u64, message: impl Into<String>) -> Self {
        StorageError {
            file: file.to_owned(),
            offset,
            message: message.into(),
        }
    }

    pub(crate) fn io(file: &Path, err: std::io::Error) -> Self {
        StorageError::new(file, 0, format!("I/O error: {err}"))
    }
}

/// Adler32 as java.util.zip.Adler32.getValue() returns it (an unsigned 32-bit value in a long).
pub(crate) fn adler32(bytes: &[u8]) -> i64 {
    simd_adler32::adler32(&bytes) as i64
}

/// The zxid in a file name `<prefix>.<hex>[.anything]`, as ZooKeeper's Util.getZxidFromName
/// reads it; None for other names.
pub fn zxid_from_name(name: &str, prefix: &str) -> Option<i64> {
    let mut parts = name.split('.');
    if parts.next()? != prefix {
        return None;
    }
    let hex = parts.next()?;
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16)
        .ok()
        .filter(|z| *z <= i64::MAX as u64)
        .map(|z| z as i64)
}

/// fsyncs a directory, so that files created, renamed or removed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// The entries of `dir` named `<prefix>.<hex>...`, sorted by zxid ascending, with their zxids.
pub(crate) fn list_by_zxid(dir: &Path, prefix: &str) -> std::io::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(zxid) = zxid_from_name(name, prefix) {
            out.push((zxid, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(zxid_from_name("log.1f", "log"), Some(0x1f));
        assert_eq!(
            zxid_from_name("snapshot.100000002", "snapshot"),
            Some(0x1_0000_0002)
        );
        assert_eq!(zxid_from_name("snapshot.1f.tmp", "snapshot"), Some(0x1f));
        assert_eq!(zxid_from_name("log.xyz", "log"), None);
        assert_eq!(zxid_from_name("log.", "log"), None);
        assert_eq!(zxid_from_name("log.-1", "log"), None);
        assert_eq!(zxid_from_name("snapshot.1", "log"), None);
        assert_eq!(zxid_from_name("logs.1", "log"), None);
    }

    #[test]
    fn error_display() {
        let e = StorageError::new(Path::new("/d/log.1"), 42, "bad");
        assert_eq!(e.to_string(), "/d/log.1 @42: bad");
    }

    #[test]
    fn adler_matches_java() {
        // java.util.zip.Adler32 of "Wikipedia" is 0x11E60398
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
    }
}
