//! Recovers a dataDir and prints its tree as JSON (a test helper):
//! `cargo run -p zkrs-storage --example dump_tree -- <dataDir> [dataLogDir]`.
//! Note that recovery truncates a torn tail of the newest log file.

#[path = "../tests/common/treejson.rs"]
mod treejson;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(data_dir) = args.first() else {
        eprintln!("usage: dump_tree <dataDir> [dataLogDir]");
        std::process::exit(2);
    };
    let log_dir = args.get(1).unwrap_or(data_dir);
    match storage::datadir::recover(data_dir.as_ref(), log_dir.as_ref()) {
        Ok(r) => println!("{}", treejson::recovered_json(&r)),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
