//! Prints a txn log or snapshot file in readable form:
//! `cargo run -p zkrs-storage --example zkdump -- <version-2/log.N | version-2/snapshot.N>`.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: zkdump <log or snapshot file>");
        std::process::exit(2);
    };
    let path = std::path::Path::new(&path);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut out = std::io::stdout().lock();
    let result = if name.starts_with("snapshot.") {
        storage::inspect::format_snapshot(path, &mut out)
    } else {
        storage::inspect::format_log(path, &mut out)
    };
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
