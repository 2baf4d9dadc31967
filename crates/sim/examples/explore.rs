//! Runs many seeds and reports the failures: `cargo run -p zkrs-sim --release --example
//! explore -- --seeds 1000 [--from 0] [--voters 5] [--observers 1] [--fault-ms 20000]
//! [--verbose (print each failure's trace tail)] [--trace-lines 400] [--trace]`.
//! Without --voters the ensemble shape follows from each seed (as in the seeds test).

use sim::{run, SimConfig, Stats};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| -> Option<u64> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name} takes a number"))
            })
    };
    let seeds = arg("--seeds").unwrap_or(100);
    let from = arg("--from").unwrap_or(0);
    let trace = args.iter().any(|a| a == "--trace");
    let verbose = trace || args.iter().any(|a| a == "--verbose");
    let started = Instant::now();
    let mut total = Stats::default();
    let mut failures = Vec::new();
    for seed in from..from + seeds {
        let mut cfg = SimConfig::for_seed(seed);
        if let Some(v) = arg("--voters") {
            cfg.voters = v as usize;
            cfg.observers = arg("--observers").unwrap_or(0) as usize;
        }
        if let Some(ms) = arg("--fault-ms") {
            cfg.fault_ms = ms;
        }
        cfg.trace = trace;
        if let Some(lines) = arg("--trace-lines") {
            cfg.trace_lines = lines as usize;
        }
        match run(&cfg) {
            Ok(stats) => total.add(&stats),
            Err(f) if verbose => {
                eprintln!("{f}");
                failures.push(seed);
            }
            Err(f) => {
                eprintln!("seed {seed}: {} ms: {}", f.at_ms, f.message);
                failures.push(seed);
            }
        }
    }
    println!(
        "{seeds} seeds in {:.1} s, {} failed {:?}\n{total:#?}",
        started.elapsed().as_secs_f64(),
        failures.len(),
        failures
    );
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
