//! Snapshots: files `snapshot.<hex zxid>`, as ZooKeeper's FileSnap writes them (uncompressed,
//! zookeeper.snapshot.compression.method unset).
//!
//! Layout: `FileHeader {magic "ZKSN", version 2, dbid -1}`, the sessions (`int count`, then per
//! session `long id, int timeout`), the tree (`tree::snapshot`), the seal (`long` Adler32 of
//! every byte before it, then the string "/"). ZooKeeper 3.6+ appends a digest section
//! (`long zxid, int digestVersion, long digest` — a hex string instead of the long when
//! digestVersion < 2) and a second seal covering everything before it; we read and check it,
//! and never write it (ZooKeeper 3.8 reads snapshots without one).

use crate::{adler32, StorageError};
use jute::{write_str, FileHeader, Jute, Reader};
use std::io::Write;
use std::path::{Path, PathBuf};
use tree::DataTree;

/// "ZKSN" as a big-endian int.
pub const SNAP_MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
pub const VERSION: i32 = 2;
/// ZooKeeper's FileSnap writes dbid -1.
pub const DBID: i64 = -1;
/// File name prefix: `snapshot.<hex zxid>`.
pub const SNAPSHOT_PREFIX: &str = "snapshot";

/// `snapshot.<hex zxid>`, as ZooKeeper's Util.makeSnapshotName (uncompressed).
pub fn snapshot_name(zxid: i64) -> String {
    format!("{SNAPSHOT_PREFIX}.{:x}", zxid as u64)
}

/// Whole file content: FileHeader{ZKSN, 2, dbid -1}, sessions (int count; long id, int
/// timeout), the tree, then the seal (Adler32 of everything before it as a long, then the
/// string "/"). No digest section (ZooKeeper 3.8 accepts snapshots without one).
pub fn serialize(tree: &DataTree, sessions: &[(i64, i32)]) -> Vec<u8> {
    let mut serialized = Vec::with_capacity(4096);
    tree.serialize_into(&mut serialized);
    serialize_parts(sessions, &serialized)
}

/// The file content around a tree already serialized.
pub fn serialize_parts(sessions: &[(i64, i32)], serialized_tree: &[u8]) -> Vec<u8> {
    let mut out = head(sessions);
    out.extend_from_slice(serialized_tree);
    seal(&mut out);
    out
}

/// The file header and the sessions, which come before the tree.
fn head(sessions: &[(i64, i32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + sessions.len() * 12);
    FileHeader {
        magic: SNAP_MAGIC,
        version: VERSION,
        dbid: DBID,
    }
    .write(&mut out);
    (sessions.len() as i32).write(&mut out);
    for (id, timeout) in sessions {
        id.write(&mut out);
        timeout.write(&mut out);
    }
    out
}

fn seal(out: &mut Vec<u8>) {
    adler32(out).write(out);
    write_str(out, "/");
}

/// How much of a snapshot is written between two fsyncs.
const SYNC_EVERY_BYTES: usize = 4 << 20;

/// A snapshot file written as its tree is serialized (a fuzzy snapshot's steps): header and
/// sessions first, then the tree's bytes as they come, checksummed on the way, then the seal.
/// Written to `snapshot.<zxid>.tmp` and renamed when complete, as ZooKeeper's
/// AtomicFileOutputStream; a writer dropped unfinished removes its temp file.
pub struct SnapshotWriter {
    file: std::fs::File,
    dir: PathBuf,
    tmp: PathBuf,
    path: PathBuf,
    checksum: simd_adler32::Adler32,
    /// Written with O_DIRECT (when the filesystem takes it): a snapshot goes from `staging`
    /// to the disk without being copied into the page cache, which a large tree's snapshots
    /// every few seconds churned through by the gigabyte (pages allocated, copied into,
    /// written back, then dropped).
    direct: bool,
    /// The bytes not yet written; with `direct`, written in whole aligned chunks from the
    /// aligned window `staging[start..start + DIRECT_CHUNK]`.
    staging: Vec<u8>,
    start: usize,
    filled: usize,
    unsynced: usize,
    finished: bool,
    zxid: i64,
}

/// Bytes per write to the snapshot file (a multiple of any logical block size).
const DIRECT_CHUNK: usize = 1 << 20;
/// Alignment of O_DIRECT buffers, offsets and lengths (the largest logical block size).
const DIRECT_ALIGN: usize = 4096;

impl SnapshotWriter {
    pub fn create(dir: &Path, zxid: i64, sessions: &[(i64, i32)]) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(snapshot_name(zxid));
        let tmp = dir.join(format!("{}.tmp", snapshot_name(zxid)));
        let mut open = std::fs::OpenOptions::new();
        open.write(true).create(true).truncate(true);
        let (file, direct) = match open
            .clone()
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(&tmp)
        {
            Ok(file) => (file, true),
            // tmpfs and some others refuse O_DIRECT: write through the page cache there
            Err(_) => (open.open(&tmp)?, false),
        };
        let staging = vec![0u8; DIRECT_CHUNK + DIRECT_ALIGN];
        let start = staging.as_ptr().align_offset(DIRECT_ALIGN);
        let mut writer = SnapshotWriter {
            file,
            dir: dir.to_path_buf(),
            tmp,
            path,
            checksum: simd_adler32::Adler32::new(),
            direct,
            staging,
            start,
            filled: 0,
            unsynced: 0,
            finished: false,
            zxid,
        };
        writer.write(&head(sessions))?;
        Ok(writer)
    }

    /// Appends the next bytes of the serialized tree.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.checksum.write(bytes);
        self.stage(bytes)
    }

    /// Adds bytes to the staging buffer, writing it out whenever a chunk is full.
    fn stage(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let room = DIRECT_CHUNK - self.filled;
            let n = room.min(bytes.len());
            let at = self.start + self.filled;
            self.staging[at..at + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == DIRECT_CHUNK {
                self.flush_chunk(DIRECT_CHUNK)?;
            }
        }
        Ok(())
    }

    /// Writes the first `len` staged bytes (all of them, or an aligned part when direct).
    fn flush_chunk(&mut self, len: usize) -> std::io::Result<()> {
        self.file
            .write_all(&self.staging[self.start..self.start + len])?;
        self.staging
            .copy_within(self.start + len..self.start + self.filled, self.start);
        self.filled -= len;
        self.unsynced += len;
        // flushed a few MiB at a time: one fsync of a whole large snapshot at the end holds
        // up the transaction log's fsyncs on the same disk for as long as it takes
        if self.unsynced >= SYNC_EVERY_BYTES {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(())
    }

    /// Seals the file (Adler32 of everything before, then "/"), makes it durable and gives
    /// it its name. The tree's bytes must have ended with its terminator.
    ///
    /// The older snapshots' pages then leave the page cache: only the newest is read again (at
    /// a restart). Kept, a large tree's snapshots filled the cache by the gigabyte and writes
    /// slowed as it grew (setData on 300 k znodes of 1 KiB, 3 servers on one 2-core VM: from
    /// 26 k to 17 k ops/s over 40 s with 19 GB cached; steady at 25 k with this).
    pub fn finish(mut self) -> std::io::Result<PathBuf> {
        let mut tail = Vec::with_capacity(16);
        (self.checksum.finish() as i64).write(&mut tail);
        write_str(&mut tail, "/");
        self.stage(&tail)?;
        if self.direct {
            // the whole blocks directly, the last partial one through the page cache
            let aligned = self.filled / DIRECT_ALIGN * DIRECT_ALIGN;
            if aligned > 0 {
                self.flush_chunk(aligned)?;
            }
            let flags = rustix::fs::fcntl_getfl(&self.file)? - rustix::fs::OFlags::DIRECT;
            rustix::fs::fcntl_setfl(&self.file, flags)?;
        }
        if self.filled > 0 {
            self.flush_chunk(self.filled)?;
        }
        self.file.sync_all()?;
        std::fs::rename(&self.tmp, &self.path)?;
        self.finished = true;
        crate::sync_dir(&self.dir)?;
        for (zxid, older) in crate::list_by_zxid(&self.dir, SNAPSHOT_PREFIX)? {
            if zxid < self.zxid {
                drop_cached_pages(&older);
            }
        }
        Ok(self.path.clone())
    }
}

/// Asks the kernel to forget the cached pages of a file (clean ones: a snapshot is fsynced).
fn drop_cached_pages(path: &Path) {
    if let Ok(file) = std::fs::File::open(path) {
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `snapshot.<hex zxid>` atomically (temp file + fsync + rename + fsync dir), as
/// ZooKeeper's AtomicFileOutputStream (whose temp file is also `<name>.tmp`).
pub fn write(dir: &Path, zxid: i64, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(snapshot_name(zxid));
    let tmp = dir.join(format!("{}.tmp", snapshot_name(zxid)));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        crate::sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| path)
}

/// A ZooKeeper digest section read from a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotDigest {
    pub zxid: i64,
    pub version: i32,
    pub digest: i64,
}

/// A snapshot's content.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub header: FileHeader,
    pub sessions: Vec<(i64, i32)>,
    pub tree: DataTree,
    pub digest: Option<SnapshotDigest>,
}

/// Reads and validates one snapshot (header, seal; optional ZooKeeper digest section + second
/// seal). The tree's `last_processed_zxid` is the zxid of the file name (0 if it has none).
pub fn read(path: &Path) -> Result<(DataTree, Vec<(i64, i32)>), StorageError> {
    let s = read_full(path)?;
    Ok((s.tree, s.sessions))
}

/// [`read`] with the header and the digest section.
pub fn read_full(path: &Path) -> Result<Snapshot, StorageError> {
    let bytes = std::fs::read(path).map_err(|e| StorageError::io(path, e))?;
    let mut snap = parse(path, &bytes)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    snap.tree.last_processed_zxid = crate::zxid_from_name(name, SNAPSHOT_PREFIX).unwrap_or(0);
    Ok(snap)
}

/// Parses a snapshot's bytes (`path` only names them in errors).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Snapshot, StorageError> {
    let mut r = Reader::new(bytes);
    let fail = |r: &Reader<'_>, what: String| StorageError::new(path, r.position() as u64, what);
    let eof = |r: &Reader<'_>, e: jute::JuteError| {
        StorageError::new(
            path,
            r.position() as u64,
            format!("truncated or malformed: {e}"),
        )
    };
    let header = FileHeader::read(&mut r).map_err(|e| eof(&r, e))?;
    if header.magic != SNAP_MAGIC {
        return Err(StorageError::new(
            path,
            0,
            format!(
                "not a ZooKeeper snapshot: magic {:#010x} is not {:#010x} (\"ZKSN\")",
                header.magic, SNAP_MAGIC
            ),
        ));
    }
    let count_at = r.position();
    let count = r.read_i32().map_err(|e| eof(&r, e))?;
    if count < 0 || count as usize > r.remaining() / 12 {
        return Err(StorageError::new(
            path,
            count_at as u64,
            format!("invalid session count {count}"),
        ));
    }
    let mut sessions = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let id = r.read_i64().map_err(|e| eof(&r, e))?;
        let timeout = r.read_i32().map_err(|e| eof(&r, e))?;
        sessions.push((id, timeout));
    }
    let tree = DataTree::deserialize_from(&mut r).map_err(|e| fail(&r, e))?;
    check_seal(path, bytes, &mut r)?;
    let mut digest = None;
    if r.remaining() > 0 {
        let at = r.position();
        let bad = |e: String| {
            StorageError::new(
                path,
                at as u64,
                format!("bad digest section after the seal: {e}"),
            )
        };
        let zxid = r.read_i64().map_err(|e| bad(e.to_string()))?;
        let version = r.read_i32().map_err(|e| bad(e.to_string()))?;
        let value = if version < 2 {
            let s = r
                .read_str_ref()
                .map_err(|e| bad(e.to_string()))?
                .unwrap_or("0");
            i64::from_str_radix(s, 16)
                .or_else(|_| u64::from_str_radix(s, 16).map(|v| v as i64))
                .map_err(|_| bad(format!("digest {s:?} is not hex")))?
        } else {
            r.read_i64().map_err(|e| bad(e.to_string()))?
        };
        check_seal(path, bytes, &mut r)?;
        digest = Some(SnapshotDigest {
            zxid,
            version,
            digest: value,
        });
    }
    if r.remaining() > 0 {
        return Err(fail(
            &r,
            format!("{} unexpected bytes after the seal", r.remaining()),
        ));
    }
    Ok(Snapshot {
        header,
        sessions,
        tree,
        digest,
    })
}

fn check_seal(path: &Path, bytes: &[u8], r: &mut Reader<'_>) -> Result<(), StorageError> {
    let at = r.position();
    let expected = adler32(&bytes[..at]);
    let err = |m: String| StorageError::new(path, at as u64, m);
    let stored = r
        .read_i64()
        .map_err(|e| err(format!("truncated before the checksum seal: {e}")))?;
    let slash = r
        .read_str_ref()
        .map_err(|e| err(format!("truncated checksum seal: {e}")))?;
    if stored != expected {
        return Err(err(format!(
            "checksum mismatch (stored {stored:#x}, computed {expected:#x})"
        )));
    }
    if slash != Some("/") {
        return Err(err(format!("seal ends with {slash:?}, not \"/\"")));
    }
    Ok(())
}

/// ZooKeeper's quick validity check (SnapStream.isValidCheckedStream), used to pick the
/// snapshots autopurge keeps: at least 10 bytes, ending with the string "/" of a seal.
pub fn looks_valid(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let check = || -> std::io::Result<bool> {
        let mut f = std::fs::File::open(path)?;
        let len = f.metadata()?.len();
        if len < 10 {
            return Ok(false);
        }
        f.seek(SeekFrom::Start(len - 5))?;
        let mut tail = [0u8; 5];
        f.read_exact(&mut tail)?;
        Ok(tail == [0, 0, 0, 1, b'/'])
    };
    check().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_round_trips_and_is_sealed() {
        let tree = DataTree::new();
        let bytes = serialize(&tree, &[(0x100, 30000), (0x101, 4000)]);
        assert_eq!(&bytes[..4], b"ZKSN");
        assert_eq!(&bytes[bytes.len() - 5..], &[0, 0, 0, 1, b'/']);
        let snap = parse(Path::new("snapshot.0"), &bytes).unwrap();
        assert_eq!(snap.sessions, vec![(0x100, 30000), (0x101, 4000)]);
        assert_eq!(snap.tree.node_count(), 4);
        assert_eq!(snap.header.dbid, -1);
        assert_eq!(snap.digest, None);
    }

    #[test]
    fn digest_section_is_checked() {
        let tree = DataTree::new();
        let mut bytes = serialize(&tree, &[]);
        5i64.write(&mut bytes);
        2i32.write(&mut bytes);
        1234i64.write(&mut bytes);
        let mut sealed = bytes.clone();
        seal(&mut sealed);
        let snap = parse(Path::new("s"), &sealed).unwrap();
        assert_eq!(
            snap.digest,
            Some(SnapshotDigest {
                zxid: 5,
                version: 2,
                digest: 1234
            })
        );
        // digest section without its seal, or with a wrong one
        assert!(parse(Path::new("s"), &bytes).is_err());
        let n = sealed.len();
        sealed[n - 6] ^= 1;
        assert!(parse(Path::new("s"), &sealed).is_err());
    }

    #[test]
    fn write_is_atomic_and_named_by_zxid() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = serialize(&DataTree::new(), &[]);
        let p = write(dir.path(), 0x1_0000_002a, &bytes).unwrap();
        assert_eq!(p.file_name().unwrap(), "snapshot.10000002a");
        assert!(looks_valid(&p));
        let (tree, sessions) = read(&p).unwrap();
        assert_eq!(tree.last_processed_zxid, 0x1_0000_002a);
        assert!(sessions.is_empty());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file left");
    }
}
