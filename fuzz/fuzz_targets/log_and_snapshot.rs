//! Transaction log files, snapshot files and single txns as read from disk (possibly
//! damaged, possibly another program's): a clear error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = storage::txnlog::parse_log(Path::new("log.100000001"), data);
    let _ = storage::snapshot::parse(Path::new("snapshot.100000001"), data);
    let _ = storage::txnlog::decode_txn_bytes(data);
    if data.len() >= 4 {
        let txn_type = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        let _ = tree::txn::Txn::decode(txn_type, &data[4..]);
    }
});
