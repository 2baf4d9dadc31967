//! The txn log: files `log.<hex zxid of the first txn>` in `version-2`, as ZooKeeper's
//! FileTxnLog writes them.
//!
//! A file is a `FileHeader {magic "ZKLG", version 2, dbid 0}` followed by records:
//! `long adler32(bytes)`, `int length`, `bytes` (TxnHeader + txn record [+ TxnDigest]), and the
//! end-of-record byte 'B'. The file is grown ahead of the writes in `preAllocSize` chunks of
//! zeros (64 MiB by default), so a record whose checksum and length are both 0 marks the end.
//!
//! Torn tails. A crash while appending leaves a prefix of the last batch, then zeros. The
//! reader therefore accepts a bad record (incomplete, failing its checksum, without its 'B')
//! as a *torn tail* when no valid record can be found anywhere after it: it reports it and
//! does not return it. When a valid record does follow, the bad one is corruption in the
//! middle of the log and reading fails with the file and offset: skipping it would silently
//! drop committed txns. The same holds for a zeroed region followed by valid records.

use crate::{adler32, StorageError};
use jute::{op, FileHeader, Jute, Reader, TxnDigest, TxnHeader};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use tree::{Txn, TxnEntry};

/// "ZKLG" as a big-endian int.
pub const TXNLOG_MAGIC: i32 = i32::from_be_bytes(*b"ZKLG");
/// The only txn log format version ZooKeeper writes.
pub const VERSION: i32 = 2;
/// ZooKeeper's default preAllocSize: 64 MiB (zookeeper.preAllocSize is in KiB).
pub const DEFAULT_PRE_ALLOC_BYTES: u64 = 64 * 1024 * 1024;
/// File name prefix: `log.<hex zxid>`.
pub const LOG_PREFIX: &str = "log";
/// Bytes of the FileHeader.
pub const HEADER_LEN: u64 = 16;
/// The end-of-record byte.
const EOR: u8 = b'B';
/// Bytes of a TxnHeader: the smallest possible txn.
const TXN_HEADER_LEN: usize = 32;
/// Bytes of a TxnDigest (int version, long treeDigest).
const DIGEST_LEN: usize = 12;

/// `log.<hex zxid>`, as ZooKeeper's Util.makeLogName.
pub fn log_name(zxid: i64) -> String {
    format!("{LOG_PREFIX}.{:x}", zxid as u64)
}

/// One record exactly as ZooKeeper frames it: Adler32 checksum (long) of the txn bytes, the
/// bytes as a jute buffer (TxnHeader + txn record), then the end-of-record byte 'B'.
/// No TxnDigest is written (ZooKeeper reads records without one).
pub fn encode_record(entry: &TxnEntry, out: &mut Vec<u8>) {
    encode_record_parts(&entry.header, &entry.txn, out);
}

/// [`encode_record`] from a header and a txn held elsewhere (no TxnEntry to build).
pub fn encode_record_parts(header: &TxnHeader, txn: &Txn, out: &mut Vec<u8>) {
    debug_assert_eq!(header.txn_type, txn.txn_type());
    encode_record_with(header, out, |out| txn.write_body(out));
}

/// [`encode_record`] of a txn record already serialized (`body`: the bytes
/// [`Txn::write_body`] gives, as a proposal carries them).
pub fn encode_record_raw(header: &TxnHeader, body: &[u8], out: &mut Vec<u8>) {
    encode_record_with(header, out, |out| out.extend_from_slice(body));
}

fn encode_record_with(header: &TxnHeader, out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 12]);
    header.write(out);
    body(out);
    let len = out.len() - start - 12;
    let crc = adler32(&out[start + 12..]);
    out[start..start + 8].copy_from_slice(&crc.to_be_bytes());
    out[start + 8..start + 12].copy_from_slice(&(len as i32).to_be_bytes());
    out.push(EOR);
}

/// Decodes the bytes of one record: TxnHeader, the txn, and the optional TxnDigest that
/// ZooKeeper 3.6+ appends. The txn must re-encode to exactly the bytes read, so nothing is
/// ever half-understood.
pub fn decode_txn_bytes(bytes: &[u8]) -> Result<(TxnEntry, Option<TxnDigest>), String> {
    decode_txn_bytes_with(bytes, &mut Vec::new())
}

/// [`decode_txn_bytes`] re-encoding into `scratch` (cleared first), a buffer the caller keeps
/// across records.
pub fn decode_txn_bytes_with(
    bytes: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<(TxnEntry, Option<TxnDigest>), String> {
    let mut r = Reader::new(bytes);
    let header = TxnHeader::read(&mut r).map_err(|e| format!("bad TxnHeader: {e}"))?;
    let rest = r.rest();
    if header.txn_type == op::CLOSE_SESSION && rest.is_empty() {
        // before 3.6 a closeSession carried no CloseSessionTxn
        let txn = Txn::decode(header.txn_type, rest).map_err(|e| e.to_string())?;
        return Ok((TxnEntry { header, txn }, None));
    }
    let txn = Txn::decode(header.txn_type, rest).map_err(|e| {
        format!(
            "bad {} txn (type {}): {e}",
            op::name(header.txn_type),
            header.txn_type
        )
    })?;
    scratch.clear();
    txn.write_body(scratch);
    let body = &scratch[..];
    if !rest.starts_with(body) {
        return Err(format!(
            "{} txn does not re-encode to the bytes read",
            op::name(header.txn_type)
        ));
    }
    let digest = match rest.len() - body.len() {
        0 => None,
        DIGEST_LEN => Some(
            TxnDigest::decode(&rest[body.len()..]).map_err(|e| format!("bad TxnDigest: {e}"))?,
        ),
        n => return Err(format!("{n} unexpected bytes after the txn")),
    };
    Ok((TxnEntry { header, txn }, digest))
}

/// A log file as read by [`read_log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    pub path: PathBuf,
    /// The valid records, in file order.
    pub entries: Vec<TxnEntry>,
    /// The offset of each entry's record in the file.
    pub offsets: Vec<u64>,
    /// Bytes from the start of the file to the end of the last valid record (the header's 16
    /// when there is none; 0 when even the header is incomplete).
    pub valid_len: u64,
    /// What follows the valid records when it is neither zeros nor the end of the file: an
    /// incomplete or damaged last record (or stray bytes) with no valid record after it.
    pub torn_tail: Option<String>,
}

/// Reads a log file; a partial or checksum-failing LAST record (followed only by zeros/EOF,
/// i.e. preallocated space) is a torn tail (reported, not returned); a bad record followed by
/// more data is corruption in the middle: Err naming file, offset and what is wrong. Trailing
/// TxnDigest after a txn (ZooKeeper 3.6+ writes one) is accepted and ignored.
pub fn read_log(path: &Path) -> Result<LogFile, StorageError> {
    let bytes = read_log_bytes(path).map_err(|e| StorageError::io(path, e))?;
    parse_log(path, &bytes)
}

/// The bytes of a log file up to its last non-zero byte (at least its first 16): what
/// [`parse_log`] needs, without reading the preallocated zeros after the data.
pub fn read_log_bytes(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let end = nonzero_end(&file, len)?.max(len.min(HEADER_LEN));
    let mut bytes = vec![0u8; end as usize];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

/// One past the last non-zero byte of the file. Holes are skipped (SEEK_DATA/SEEK_HOLE), so a
/// preallocated 64 MiB file costs what its data costs.
fn nonzero_end(file: &File, len: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    for (start, end) in data_regions(file, len).into_iter().rev() {
        let mut hi = end;
        while hi > start {
            let lo = hi.saturating_sub(buf.len() as u64).max(start);
            let chunk = &mut buf[..(hi - lo) as usize];
            file.read_exact_at(chunk, lo)?;
            if let Some(i) = chunk.iter().rposition(|&b| b != 0) {
                return Ok(lo + i as u64 + 1);
            }
            hi = lo;
        }
    }
    Ok(0)
}

/// The `[start, end)` ranges of a file that hold data; the whole file when the file system
/// cannot tell.
fn data_regions(file: &File, len: u64) -> Vec<(u64, u64)> {
    use rustix::fs::{seek, SeekFrom};
    let whole = vec![(0, len)];
    let mut out = Vec::new();
    let mut off = 0;
    while off < len {
        let start = match seek(file, SeekFrom::Data(off)) {
            Ok(start) => start,
            Err(rustix::io::Errno::NXIO) => break,
            Err(_) => return whole,
        };
        let end = match seek(file, SeekFrom::Hole(start)) {
            Ok(end) if end > start => end.min(len),
            _ => return whole,
        };
        out.push((start, end));
        off = end;
    }
    out
}

/// [`read_log`] on bytes already in memory (`path` only names them in errors).
pub fn parse_log(path: &Path, bytes: &[u8]) -> Result<LogFile, StorageError> {
    let mut entries = Vec::new();
    let mut offsets = Vec::new();
    let end = scan_log(path, bytes, |entry, offset, _record| {
        entries.push(entry);
        offsets.push(offset);
        Ok(())
    })?;
    Ok(LogFile {
        path: path.to_owned(),
        entries,
        offsets,
        valid_len: end.valid_len,
        torn_tail: end.torn_tail,
    })
}

/// How a scanned log ends: [`LogFile`]'s `valid_len` and `torn_tail`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogEnd {
    pub valid_len: u64,
    pub torn_tail: Option<String>,
}

/// [`parse_log`] handing each valid entry with its record's offset and its bytes (TxnHeader,
/// txn and digest: a PROPOSAL's data) to `on_entry` as it is decoded, so that a recovery applies a txn while its bytes are still in the cache and never
/// holds a whole file of decoded txns. An error from `on_entry` stops the scan. Entries are
/// handed over before a corrupt record further on is found: a caller that must not act on a
/// corrupt file acts only once this returns Ok.
pub fn scan_log(
    path: &Path,
    bytes: &[u8],
    mut on_entry: impl FnMut(TxnEntry, u64, &[u8]) -> Result<(), StorageError>,
) -> Result<LogEnd, StorageError> {
    let err = |offset: usize, message: String| StorageError::new(path, offset as u64, message);
    let mut log = LogEnd::default();
    let magic = TXNLOG_MAGIC.to_be_bytes();
    let nonzero_end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let header = (bytes.len() >= HEADER_LEN as usize)
        .then(|| FileHeader::decode(&bytes[..HEADER_LEN as usize]).expect("16 bytes"));
    let complete = matches!(&header, Some(h) if h.magic == TXNLOG_MAGIC && h.version == VERSION);
    if !complete && nonzero_end <= HEADER_LEN as usize {
        // a crash while the header was being written: nothing else was
        let mut expected = magic.to_vec();
        expected.extend_from_slice(&VERSION.to_be_bytes());
        expected.extend_from_slice(&[0; 8]);
        if bytes.iter().zip(&expected).all(|(b, e)| b == e || *b == 0) {
            log.torn_tail = Some(format!(
                "the header is incomplete (at most {} of its 16 bytes written)",
                nonzero_end.min(bytes.len())
            ));
            return Ok(log);
        }
    }
    let Some(header) = header else {
        return Err(err(0, "not a ZooKeeper txn log: bad magic number".into()));
    };
    if header.magic != TXNLOG_MAGIC {
        return Err(err(
            0,
            format!(
                "not a ZooKeeper txn log: magic {:#010x} is not {:#010x} (\"ZKLG\")",
                header.magic, TXNLOG_MAGIC
            ),
        ));
    }
    if header.version != VERSION {
        return Err(err(
            4,
            format!("unsupported txn log version {}", header.version),
        ));
    }
    let mut pos = HEADER_LEN as usize;
    let mut scratch = Vec::new();
    loop {
        log.valid_len = pos as u64;
        if pos >= nonzero_end {
            return Ok(log); // end of file, or only preallocated zeros left
        }
        let problem = match check_record(bytes, pos) {
            Record::Valid { len } => {
                let txn_bytes = &bytes[pos + 12..pos + 12 + len];
                match decode_txn_bytes_with(txn_bytes, &mut scratch) {
                    Ok((entry, _digest)) => {
                        on_entry(entry, pos as u64, txn_bytes)?;
                        pos += 12 + len + 1;
                        continue;
                    }
                    // a record that passes its checksum is not a torn write
                    Err(e) => {
                        return Err(err(
                            pos,
                            format!("record passes its checksum but is not a txn: {e}"),
                        ))
                    }
                }
            }
            Record::End => "zeros (the end of the log) followed by non-zero bytes".to_owned(),
            Record::Bad(why) => why,
        };
        if let Some(next) = find_valid_record(bytes, pos + 1, nonzero_end) {
            return Err(err(
                pos,
                format!(
                    "{problem}, and a valid record follows at offset {next}: \
                     the log is corrupt in the middle (refusing to skip committed txns)"
                ),
            ));
        }
        log.torn_tail = Some(format!(
            "{problem} at offset {pos}; {} bytes up to the last non-zero byte discarded",
            nonzero_end - pos
        ));
        return Ok(log);
    }
}

enum Record {
    Valid { len: usize },
    End,
    Bad(String),
}

/// Framing and checksum of the record at `pos` (the txn itself is not decoded).
fn check_record(bytes: &[u8], pos: usize) -> Record {
    let avail = bytes.len() - pos;
    if avail < 12 {
        return Record::Bad(format!("incomplete record header ({avail} of 12 bytes)"));
    }
    let crc = i64::from_be_bytes(bytes[pos..pos + 8].try_into().expect("8"));
    let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().expect("4"));
    if len == 0 && crc == 0 {
        return Record::End;
    }
    if len <= 0 {
        return Record::Bad(format!("invalid record length {len}"));
    }
    let len = len as usize;
    if avail < 12 + len + 1 {
        return Record::Bad(format!(
            "incomplete record: length {len} needs {} bytes, {avail} left",
            12 + len + 1
        ));
    }
    let actual = adler32(&bytes[pos + 12..pos + 12 + len]);
    if crc != actual {
        return Record::Bad(format!(
            "checksum mismatch (stored {crc:#x}, computed {actual:#x})"
        ));
    }
    if bytes[pos + 12 + len] != EOR {
        return Record::Bad("missing end-of-record byte 'B'".into());
    }
    Record::Valid { len }
}

/// The first offset in `from..end` where a complete, checksum-valid, decodable record starts.
fn find_valid_record(bytes: &[u8], from: usize, end: usize) -> Option<usize> {
    (from..end).find(|&q| {
        if q + 12 + TXN_HEADER_LEN + 1 > bytes.len() || bytes[q..q + 4] != [0; 4] {
            return false; // an Adler32 has its high 32 bits clear
        }
        let len = i32::from_be_bytes(bytes[q + 8..q + 12].try_into().expect("4"));
        if len < TXN_HEADER_LEN as i32 || q + 12 + len as usize + 1 > bytes.len() {
            return false;
        }
        let len = len as usize;
        bytes[q + 12 + len] == EOR
            && matches!(check_record(bytes, q), Record::Valid { .. })
            && decode_txn_bytes(&bytes[q + 12..q + 12 + len]).is_ok()
    })
}

/// The size a preallocated log file grows to before `position` bytes are written, as
/// ZooKeeper's FilePadding.calculateFileSizeWithPadding: when the data comes within 4 KiB of
/// the current size, add `pre_alloc` (rounded to a multiple of it when the data already
/// passed the end).
pub fn padded_size(position: u64, file_size: u64, pre_alloc: u64) -> u64 {
    if pre_alloc > 0 && position + 4096 >= file_size {
        if position > file_size {
            let size = position + pre_alloc;
            size - size % pre_alloc
        } else {
            file_size + pre_alloc
        }
    } else {
        file_size
    }
}

/// How far ahead of the records zeros are written into the preallocated space.
const ZEROS_AHEAD: u64 = 1 << 20;
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

struct Current {
    path: PathBuf,
    /// None until the first commit writes to it.
    file: Option<File>,
    /// Bytes written to the file so far.
    pos: u64,
    /// The preallocated size of the file.
    size: u64,
    /// The end of what was written to the file, records or zeros written ahead of them.
    written: u64,
    /// (zxid, offset) of each record appended to this file: a truncation of the recent tail
    /// (a learner cutting an uncommitted tail) then needs no read of the file.
    index: Vec<(i64, u64)>,
}

/// Where the records of one log file start, as the writer recorded them.
#[derive(Debug, Clone, Default)]
pub struct LogIndex {
    pub path: PathBuf,
    /// (zxid, offset of its record), in file order.
    pub records: Vec<(i64, u64)>,
}

/// The appender: files `log.<hex zxid of first txn>` in a directory, FileHeader{magic, version
/// 2, dbid 0}, zero preallocation in `pre_alloc_bytes` chunks as ZooKeeper's FilePadding does.
///
/// Group commit: call [`TxnLog::append`] for every txn of a batch, then one
/// [`TxnLog::commit`]`(true)`; every appended txn is durable when it returns Ok. After an Err
/// the state of the files is unknown: drop the TxnLog and recover. Appends not committed are
/// discarded on drop.
pub struct TxnLog {
    dir: PathBuf,
    pre_alloc: u64,
    current: Option<Current>,
    /// Encoded records (and a new file's header) not yet written.
    buf: Vec<u8>,
    /// Files left by roll() whose data is written but not yet fsynced.
    rolled: Vec<File>,
    /// A file was created since the directory was last fsynced.
    dir_dirty: bool,
    last_zxid: Option<i64>,
}

impl TxnLog {
    /// Opens the log in `dir` (a `version-2` directory). Appends go to a NEW file on the first
    /// append after open or roll; existing files are never appended to.
    pub fn open(dir: &Path, pre_alloc_bytes: u64) -> io::Result<TxnLog> {
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("txn log directory {} does not exist", dir.display()),
            ));
        }
        Ok(TxnLog {
            dir: dir.to_owned(),
            pre_alloc: pre_alloc_bytes,
            current: None,
            buf: Vec::new(),
            rolled: Vec::new(),
            dir_dirty: false,
            last_zxid: None,
        })
    }

    /// The directory the log files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file the next commit writes to, if a txn was appended since open or roll.
    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    /// Bytes of the current file once pending appends are written (0 right after a roll).
    pub fn current_size(&self) -> u64 {
        self.current.as_ref().map_or(0, |c| c.pos) + self.buf.len() as u64
    }

    /// The zxid of the last appended txn.
    pub fn last_zxid(&self) -> Option<i64> {
        self.last_zxid
    }

    /// Tells the log the last zxid already on disk (from recovery), so that an append of a
    /// zxid not above it is refused.
    pub fn set_last_zxid(&mut self, zxid: i64) {
        self.last_zxid = Some(zxid);
    }

    /// Buffers one txn. Refuses (InvalidInput) a zxid that does not increase.
    pub fn append(&mut self, entry: &TxnEntry) -> io::Result<()> {
        self.append_parts(&entry.header, &entry.txn)
    }

    /// [`TxnLog::append`] from a header and a txn held elsewhere: the server's log writer
    /// appends the prepared txns it shares with the request pipeline without copying them.
    pub fn append_parts(&mut self, header: &TxnHeader, txn: &Txn) -> io::Result<()> {
        debug_assert_eq!(header.txn_type, txn.txn_type());
        self.append_with(header, |out| txn.write_body(out))
    }

    /// [`TxnLog::append`] of a txn record already serialized, as a proposal carries it: a
    /// follower logs what the leader sent without decoding and re-encoding it.
    pub fn append_raw(&mut self, header: &TxnHeader, body: &[u8]) -> io::Result<()> {
        self.append_with(header, |out| out.extend_from_slice(body))
    }

    fn append_with(
        &mut self,
        header: &TxnHeader,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> io::Result<()> {
        let zxid = header.zxid;
        if let Some(last) = self.last_zxid {
            if zxid <= last {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("zxid {zxid:#x} appended after {last:#x}: zxids must increase"),
                ));
            }
        }
        if self.current.is_none() {
            self.current = Some(Current {
                path: self.dir.join(log_name(zxid)),
                file: None,
                pos: 0,
                size: 0,
                written: 0,
                index: Vec::new(),
            });
            FileHeader {
                magic: TXNLOG_MAGIC,
                version: VERSION,
                dbid: 0,
            }
            .write(&mut self.buf);
        }
        let cur = self.current.as_mut().expect("set above");
        cur.index.push((zxid, cur.pos + self.buf.len() as u64));
        encode_record_with(header, &mut self.buf, body);
        self.last_zxid = Some(zxid);
        Ok(())
    }

    /// The records of the file being appended to (None before the first append after
    /// open or roll).
    pub fn current_index(&self) -> Option<LogIndex> {
        self.current.as_ref().map(|c| LogIndex {
            path: c.path.clone(),
            records: c.index.clone(),
        })
    }

    /// Writes the buffered records and, when `fsync`, makes them durable (fdatasync of every
    /// file written since the last sync, and of the directory when a file was created).
    /// `fsync = false` is ZooKeeper's forceSync=no: fast and unsafe.
    pub fn commit(&mut self, fsync: bool) -> io::Result<()> {
        self.write_buffer()?;
        if fsync {
            for f in self.rolled.drain(..) {
                f.sync_data()?;
            }
            if let Some(file) = self.current.as_ref().and_then(|c| c.file.as_ref()) {
                file.sync_data()?;
            }
            if self.dir_dirty {
                crate::sync_dir(&self.dir)?;
                self.dir_dirty = false;
            }
        } else {
            self.rolled.clear();
        }
        Ok(())
    }

    /// The next append starts a new file. Buffered records go to the current file first (they
    /// become durable at the next commit(true)).
    pub fn roll(&mut self) -> io::Result<()> {
        self.write_buffer()?;
        if let Some(file) = self.current.take().and_then(|c| c.file) {
            self.rolled.push(file);
        }
        Ok(())
    }

    fn write_buffer(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let cur = self.current.as_mut().expect("buffered records have a file");
        if cur.file.is_none() {
            // like ZooKeeper's FileOutputStream: a stale file of that name is replaced
            let file = File::options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&cur.path)?;
            cur.file = Some(file);
            self.dir_dirty = true;
        }
        let file = cur.file.as_ref().expect("just opened");
        let end = cur.pos + self.buf.len() as u64;
        let size = padded_size(end, cur.size, self.pre_alloc);
        if size != cur.size {
            // sparse zeros, as ZooKeeper's single byte written at the new end
            file.set_len(size)?;
            cur.size = size;
        }
        if end > cur.written {
            // zeros written ahead of the records, a MiB at a time: the preallocated space
            // is a hole, and an fdatasync after writing into a hole commits the filesystem's
            // journal (the blocks are allocated then); into blocks written once it only
            // flushes the data (fdatasync of 10 KB appends on this machine's ext4: 150 us
            // into a hole, 92 us into written zeros). The file's bytes are the same.
            let to = (end + ZEROS_AHEAD).min(cur.size);
            let mut at = end;
            while at < to {
                let n = (to - at).min(ZEROS.len() as u64) as usize;
                file.write_all_at(&ZEROS[..n], at)?;
                at += n as u64;
            }
            cur.written = to.max(end);
        }
        file.write_all_at(&self.buf, cur.pos)?;
        cur.pos = end;
        self.buf.clear();
        Ok(())
    }

    /// Cuts a torn tail: the file keeps its first `valid_len` bytes (ZooKeeper's truncate uses
    /// setLength the same way; the preallocated zeros go too, which readers take as the end).
    /// A file whose header itself is incomplete (`valid_len` < 16) is removed. The file and
    /// the directory `dir` are fsynced.
    pub fn truncate_to(dir: &Path, path: &Path, valid_len: u64) -> io::Result<()> {
        if valid_len < HEADER_LEN {
            std::fs::remove_file(path)?;
        } else {
            let file = File::options().write(true).open(path)?;
            file.set_len(valid_len)?;
            file.sync_all()?;
        }
        crate::sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jute::{CreateSessionTxn, CreateTxn};

    fn entry(zxid: i64) -> TxnEntry {
        let txn = Txn::Create(CreateTxn {
            path: format!("/n{zxid}"),
            data: Some(vec![zxid as u8; 3]),
            acl: vec![],
            ephemeral: false,
            parent_cversion: zxid as i32,
        });
        TxnEntry {
            header: TxnHeader {
                client_id: 1,
                cxid: 2,
                zxid,
                time: 3,
                txn_type: txn.txn_type(),
            },
            txn,
        }
    }

    #[test]
    fn padding_matches_zookeeper() {
        // header written, file empty: grow by one chunk
        assert_eq!(padded_size(16, 0, 1000), 1000);
        assert_eq!(padded_size(16, 16, 65536), 16 + 65536);
        // far from the end: unchanged
        assert_eq!(padded_size(100, 65552, 65536), 65552);
        // within 4 KiB of the end: one more chunk
        assert_eq!(padded_size(62000, 65552, 65536), 131088);
        // past the end: rounded to a multiple
        assert_eq!(padded_size(200_000, 65552, 65536), 262144);
        assert_eq!(padded_size(10, 0, 0), 0);
    }

    #[test]
    fn digest_after_txn_is_accepted() {
        let e = TxnEntry {
            header: TxnHeader {
                client_id: 5,
                cxid: 0,
                zxid: 1,
                time: 9,
                txn_type: op::CREATE_SESSION,
            },
            txn: Txn::CreateSession(CreateSessionTxn { time_out: 30000 }),
        };
        let mut bytes = Vec::new();
        e.header.write(&mut bytes);
        e.txn.write_body(&mut bytes);
        TxnDigest {
            version: 2,
            tree_digest: 77,
        }
        .write(&mut bytes);
        let (back, digest) = decode_txn_bytes(&bytes).unwrap();
        assert_eq!(back, e);
        assert_eq!(digest.unwrap().tree_digest, 77);
        bytes.push(0);
        assert!(decode_txn_bytes(&bytes).is_err());
    }

    #[test]
    fn append_commit_roll() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TxnLog::open(dir.path(), 4096).unwrap();
        for z in 1..=3 {
            log.append(&entry(z)).unwrap();
        }
        assert!(log.append(&entry(3)).is_err());
        log.commit(true).unwrap();
        log.roll().unwrap();
        log.append(&entry(0x10)).unwrap();
        log.commit(false).unwrap();
        log.append(&entry(0x11)).unwrap();
        log.commit(true).unwrap();
        let first = read_log(&dir.path().join("log.1")).unwrap();
        assert_eq!(first.entries, (1..=3).map(entry).collect::<Vec<_>>());
        assert_eq!(first.torn_tail, None);
        assert_eq!(
            std::fs::metadata(dir.path().join("log.1")).unwrap().len(),
            4096
        );
        let second = read_log(&dir.path().join("log.10")).unwrap();
        assert_eq!(second.entries, vec![entry(0x10), entry(0x11)]);
    }

    #[test]
    fn a_log_of_raw_records_is_byte_for_byte_the_log_of_decoded_ones() {
        let (decoded, raw) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut by_parts = TxnLog::open(decoded.path(), 4096).unwrap();
        let mut by_bytes = TxnLog::open(raw.path(), 4096).unwrap();
        for z in 1..=5 {
            let e = entry(z);
            by_parts.append_parts(&e.header, &e.txn).unwrap();
            by_bytes.append_raw(&e.header, &e.txn.body()).unwrap();
        }
        by_parts.commit(true).unwrap();
        by_bytes.commit(true).unwrap();
        let read = |dir: &tempfile::TempDir| std::fs::read(dir.path().join("log.1")).unwrap();
        assert_eq!(read(&decoded), read(&raw));
        let back = read_log(&raw.path().join("log.1")).unwrap();
        assert_eq!(back.entries, (1..=5).map(entry).collect::<Vec<_>>());
    }

    #[test]
    fn reading_skips_holes_but_sees_stray_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TxnLog::open(dir.path(), 1 << 20).unwrap();
        for z in 1..=3 {
            log.append(&entry(z)).unwrap();
        }
        log.commit(true).unwrap();
        let path = dir.path().join("log.1");
        let data_len = log.current_size();
        // ZooKeeper's padding writes one zero byte at the new end: a data block of zeros
        let file = File::options().read(true).write(true).open(&path).unwrap();
        file.write_all_at(&[0], (3 << 20) - 1).unwrap();
        assert_eq!(read_log_bytes(&path).unwrap().len() as u64, data_len);
        let clean = read_log(&path).unwrap();
        assert_eq!((clean.entries.len(), clean.torn_tail), (3, None));
        // a stray byte far behind the data, after a hole
        file.write_all_at(&[7], 2 << 20).unwrap();
        let stray = read_log(&path).unwrap();
        assert_eq!(stray.entries.len(), 3);
        assert_eq!(stray.valid_len, data_len);
        assert!(stray.torn_tail.unwrap().contains("non-zero"));
        assert_eq!(nonzero_end(&file, 3 << 20).unwrap(), (2 << 20) + 1);
    }

    #[test]
    fn header_problems() {
        let p = Path::new("log.1");
        assert!(parse_log(p, b"").unwrap().torn_tail.is_some());
        assert!(parse_log(p, b"ZK").unwrap().torn_tail.is_some());
        assert!(parse_log(p, &[0; 100]).unwrap().torn_tail.is_some());
        assert!(parse_log(p, b"ZKLG\0\0\0\0\0\0\0\0\0\0\0\0\0\0")
            .unwrap()
            .torn_tail
            .is_some());
        assert!(parse_log(p, b"ZKL\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0")
            .unwrap()
            .torn_tail
            .is_some());
        assert!(parse_log(p, b"ZKX").is_err());
        let e = parse_log(p, b"ZKSN\0\0\0\x02\0\0\0\0\0\0\0\0").unwrap_err();
        assert!(e.message.contains("magic"), "{e}");
        assert_eq!(e.offset, 0);
        let e = parse_log(p, b"ZKLG\0\0\0\x03\0\0\0\0\0\0\0\0").unwrap_err();
        assert!(e.message.contains("version"), "{e}");
        let ok = parse_log(p, b"ZKLG\0\0\0\x02\0\0\0\0\0\0\0\0").unwrap();
        assert_eq!(
            (ok.entries.len(), ok.valid_len, ok.torn_tail),
            (0, 16, None)
        );
    }
}
