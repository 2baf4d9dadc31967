//! Property tests of the txn log codec: round trip, and random damage is always detected or
//! read as an exact prefix of what was written, never as a different entry.

mod common;

use jute::{
    Acl, CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn,
    CreateTxn, DeleteTxn, ErrorTxn, Id, SetAclTxn, SetDataTxn, TxnHeader,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::path::Path;
use storage::txnlog::{self, encode_record, parse_log, TxnLog};
use tree::{Txn, TxnEntry};

fn path() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z0-9]{1,6}", 1..4)
        .prop_map(|parts| format!("/{}", parts.join("/")))
}

fn data() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::weighted(0.9, proptest::collection::vec(any::<u8>(), 0..40))
}

fn acl() -> impl Strategy<Value = Vec<Acl>> {
    proptest::collection::vec(
        (0i32..32, "(world|digest|ip|sasl)", "[a-zA-Z0-9:=/.]{0,20}").prop_map(
            |(perms, scheme, id)| Acl {
                perms,
                id: Id { scheme, id },
            },
        ),
        0..3,
    )
}

fn simple_txn() -> impl Strategy<Value = Txn> {
    prop_oneof![
        (path(), data(), acl(), any::<bool>(), any::<i32>()).prop_map(
            |(path, data, acl, ephemeral, parent_cversion)| {
                Txn::Create(CreateTxn {
                    path,
                    data,
                    acl,
                    ephemeral,
                    parent_cversion,
                })
            }
        ),
        (path(), data(), acl(), any::<i32>()).prop_map(|(path, data, acl, parent_cversion)| {
            Txn::Create2(CreateTxn {
                path,
                data,
                acl,
                ephemeral: false,
                parent_cversion,
            })
        }),
        (path(), data(), acl(), any::<i32>()).prop_map(|(path, data, acl, parent_cversion)| {
            Txn::CreateContainer(CreateContainerTxn {
                path,
                data,
                acl,
                parent_cversion,
            })
        }),
        (path(), data(), acl(), any::<i32>(), 1i64..0xff_ffff_ffff).prop_map(
            |(path, data, acl, parent_cversion, ttl)| {
                Txn::CreateTtl(CreateTtlTxn {
                    path,
                    data,
                    acl,
                    parent_cversion,
                    ttl,
                })
            }
        ),
        path().prop_map(|path| Txn::Delete(DeleteTxn { path })),
        path().prop_map(|path| Txn::DeleteContainer(DeleteTxn { path })),
        (path(), data(), any::<i32>()).prop_map(|(path, data, version)| Txn::SetData(SetDataTxn {
            path,
            data,
            version
        })),
        (data(), any::<i32>()).prop_map(|(data, version)| Txn::Reconfig(SetDataTxn {
            path: "/zookeeper/config".into(),
            data,
            version
        })),
        (path(), acl(), any::<i32>()).prop_map(|(path, acl, version)| Txn::SetAcl(SetAclTxn {
            path,
            acl,
            version
        })),
        (path(), any::<i32>())
            .prop_map(|(path, version)| Txn::Check(CheckVersionTxn { path, version })),
        any::<i32>().prop_map(|err| Txn::Error(ErrorTxn { err })),
        any::<i32>().prop_map(|time_out| Txn::CreateSession(CreateSessionTxn { time_out })),
        proptest::collection::vec(path(), 0..3)
            .prop_map(|paths_to_delete| Txn::CloseSession(CloseSessionTxn { paths_to_delete })),
    ]
}

fn txn() -> impl Strategy<Value = Txn> {
    prop_oneof![
        8 => simple_txn(),
        1 => proptest::collection::vec(simple_txn().prop_filter("no sessions in a multi", |t| {
            !matches!(t, Txn::CreateSession(_) | Txn::CloseSession(_))
        }), 0..4).prop_map(Txn::Multi),
    ]
}

/// Entries with strictly increasing zxids.
fn entries(min: usize, max: usize) -> impl Strategy<Value = Vec<TxnEntry>> {
    proptest::collection::vec(
        (txn(), any::<i64>(), any::<i32>(), any::<i64>(), 1i64..1000),
        min..max,
    )
    .prop_map(|items| {
        let mut zxid = 0x1_0000_0000i64;
        items
            .into_iter()
            .map(|(txn, client_id, cxid, time, step)| {
                zxid += step;
                TxnEntry {
                    header: TxnHeader {
                        client_id,
                        cxid,
                        zxid,
                        time,
                        txn_type: txn.txn_type(),
                    },
                    txn,
                }
            })
            .collect()
    })
}

fn file_bytes(entries: &[TxnEntry], padding: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"ZKLG");
    out.extend_from_slice(&2i32.to_be_bytes());
    out.extend_from_slice(&0i64.to_be_bytes());
    for e in entries {
        encode_record(e, &mut out);
    }
    out.resize(out.len() + padding, 0);
    out
}

fn is_prefix(got: &[TxnEntry], of: &[TxnEntry]) -> bool {
    got.len() <= of.len() && got == &of[..got.len()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn records_round_trip(entries in entries(1, 20), padding in 0usize..300) {
        let bytes = file_bytes(&entries, padding);
        let log = parse_log(Path::new("log.1"), &bytes).unwrap();
        prop_assert_eq!(&log.entries, &entries);
        prop_assert_eq!(log.torn_tail, None);
        prop_assert_eq!(log.valid_len as usize, bytes.len() - padding);
        // each record alone decodes to its entry
        for e in &entries {
            let mut rec = Vec::new();
            encode_record(e, &mut rec);
            let len = i32::from_be_bytes(rec[8..12].try_into().unwrap()) as usize;
            prop_assert_eq!(rec.len(), 12 + len + 1);
            prop_assert_eq!(rec[12 + len], b'B');
            let (back, digest) = txnlog::decode_txn_bytes(&rec[12..12 + len]).unwrap();
            prop_assert_eq!(&back, e);
            prop_assert!(digest.is_none());
        }
    }

    #[test]
    fn flipped_bytes_are_detected_or_read_as_a_prefix(
        entries in entries(1, 12),
        padding in 0usize..200,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let mut bytes = file_bytes(&entries, padding);
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Ok(log) = parse_log(Path::new("log.1"), &bytes) {
            prop_assert!(is_prefix(&log.entries, &entries), "a damaged log read as different entries");
            if log.entries.len() < entries.len() {
                prop_assert!(log.torn_tail.is_some(), "entries lost without a torn tail reported");
            }
        }
    }

    #[test]
    fn truncation_is_read_as_a_prefix(entries in entries(1, 12), padding in 0usize..100, cut in any::<prop::sample::Index>()) {
        let bytes = file_bytes(&entries, padding);
        let cut = cut.index(bytes.len() + 1);
        // a plain cut, and a cut whose rest is zeros (a crash inside preallocated space)
        let mut zeroed = bytes.clone();
        zeroed[cut..].fill(0);
        for (zero_filled, damaged) in [(false, &bytes[..cut]), (true, &zeroed[..])] {
            let log = parse_log(Path::new("log.1"), damaged).unwrap();
            prop_assert!(is_prefix(&log.entries, &entries));
            let ends: Vec<usize> = {
                let mut v = vec![16];
                let mut at = 16;
                for e in &entries {
                    let mut rec = Vec::new();
                    encode_record(e, &mut rec);
                    at += rec.len();
                    v.push(at);
                }
                v
            };
            // exactly the records that fit before the cut
            let complete = ends.iter().filter(|&&end| end <= cut).count().saturating_sub(1);
            prop_assert_eq!(log.entries.len(), if cut < 16 { 0 } else { complete });
            // zeroing from 8 on leaves a complete header (the dbid of a log is 0)
            let torn = match cut {
                0..=7 => true,
                8..=15 => !zero_filled,
                // torn when something non-zero follows the last complete record
                _ => {
                    let boundary = *ends.iter().filter(|&&end| end <= cut).max().unwrap();
                    damaged[boundary..].iter().any(|&b| b != 0)
                }
            };
            prop_assert_eq!(log.torn_tail.is_some(), torn, "cut at {}", cut);
        }
    }

    #[test]
    fn damage_before_the_last_record_is_an_error(entries in entries(2, 8), which in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), x in 1u8..=255) {
        let mut bytes = file_bytes(&entries, 64);
        let mut starts = vec![];
        let mut pos = 16;
        for e in &entries {
            let mut rec = Vec::new();
            encode_record(e, &mut rec);
            starts.push((pos, rec.len()));
            pos += rec.len();
        }
        let (start, len) = starts[which.index(entries.len() - 1)];
        bytes[start + at.index(len)] ^= x;
        let err = parse_log(Path::new("log.7"), &bytes).unwrap_err();
        prop_assert_eq!(err.offset as usize, start);
        prop_assert!(err.to_string().starts_with("log.7 @"));
    }
}

#[test]
fn appender_output_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = TxnLog::open(dir.path(), 1024).unwrap();
    let mut b = common::Builder::new();
    let mut rng = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..300 {
        let op = common::op_strategy().new_tree(&mut rng).unwrap().current();
        b.apply(&op);
    }
    for (i, e) in b.entries.iter().enumerate() {
        log.append(e).unwrap();
        if i % 7 == 0 {
            log.commit(i % 2 == 0).unwrap();
        }
        if i % 50 == 49 {
            log.roll().unwrap();
        }
    }
    log.commit(true).unwrap();
    let mut all = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort_by_key(|p| storage::zxid_from_name(p.file_name().unwrap().to_str().unwrap(), "log"));
    assert!(names.len() >= 5, "{names:?}");
    for p in &names {
        let f = txnlog::read_log(p).unwrap();
        assert_eq!(f.torn_tail, None);
        let len = std::fs::metadata(p).unwrap().len();
        assert_eq!(len % 1024, 0, "preallocated in whole chunks: {len}");
        assert_eq!(
            p.file_name().unwrap().to_str().unwrap(),
            txnlog::log_name(f.entries[0].zxid())
        );
        all.extend(f.entries);
    }
    assert_eq!(all, b.entries);
}
