//! `zkrs bench`: a closed-loop load generator speaking the client protocol, so that zkrs and
//! Apache ZooKeeper are measured by the same code.

use client::{open_acl, Client};
use hdrhistogram::Histogram;
use jute::CreateMode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// create of new znodes
    Create,
    /// setData of one znode per session
    Set,
    /// getData of one znode per session
    Get,
    /// 90% getData, 10% setData
    Mixed,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// host:port of the server to load
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub server: String,
    #[arg(long, value_enum, default_value = "set")]
    pub workload: Workload,
    /// concurrent sessions
    #[arg(long, default_value_t = 32)]
    pub sessions: usize,
    /// requests in flight per session
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// seconds to measure (after a one-second warm-up)
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// bytes per value
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// name printed in the JSON result
    #[arg(long, default_value = "server")]
    pub label: String,
    /// stop after this many operations instead of after --duration (no warm-up)
    #[arg(long)]
    pub total: Option<u64>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<serde_json::Value> {
    let root = format!("/bench-{}", std::process::id());
    let setup = Client::connect(&args.server, 30_000).await?;
    let _ = setup
        .create(&root, b"", &open_acl(), CreateMode::Persistent)
        .await;
    let value = vec![b'v'; args.value_size];
    let mut clients = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        let c = Client::connect(&args.server, 30_000).await?;
        let node = format!("{root}/s{i}");
        let _ = c
            .create(&node, &value, &open_acl(), CreateMode::Persistent)
            .await;
        clients.push(Arc::new(c));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(args.total.is_some()));
    let issued = Arc::new(AtomicU64::new(0));
    let limit = args.total.unwrap_or(u64::MAX);
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        for lane in 0..args.in_flight {
            let c = c.clone();
            let stop = stop.clone();
            let measuring = measuring.clone();
            let issued = issued.clone();
            let value = value.clone();
            let node = format!("{root}/s{i}");
            let workload = args.workload;
            tasks.push(tokio::spawn(async move {
                let mut hist =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
                let mut errors = 0u64;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if issued.fetch_add(1, Ordering::Relaxed) >= limit {
                        break;
                    }
                    n += 1;
                    let started = Instant::now();
                    let result = match workload {
                        Workload::Create => c
                            .create(
                                &format!("{node}-{lane}-{n}"),
                                &value,
                                &open_acl(),
                                CreateMode::Persistent,
                            )
                            .await
                            .map(|_| ()),
                        Workload::Set => c.set_data(&node, &value, -1).await.map(|_| ()),
                        Workload::Get => c.get_data(&node, false).await.map(|_| ()),
                        Workload::Mixed => {
                            if n.is_multiple_of(10) {
                                c.set_data(&node, &value, -1).await.map(|_| ())
                            } else {
                                c.get_data(&node, false).await.map(|_| ())
                            }
                        }
                    };
                    if measuring.load(Ordering::Relaxed) {
                        match result {
                            Ok(()) => {
                                let micros = started.elapsed().as_micros().max(1) as u64;
                                let _ = hist.record(micros.min(60_000_000));
                            }
                            Err(_) => errors += 1,
                        }
                    }
                }
                (hist, errors)
            }));
        }
    }
    let started;
    let mut results = Vec::with_capacity(tasks.len());
    if args.total.is_some() {
        started = Instant::now();
        for t in tasks {
            results.push(t.await?);
        }
    } else {
        tokio::time::sleep(Duration::from_secs(1)).await;
        measuring.store(true, Ordering::Relaxed);
        started = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
        measuring.store(false, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            results.push(t.await?);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let mut errors = 0;
    for (h, e) in results {
        hist.add(h)?;
        errors += e;
    }
    drop(clients);
    Ok(serde_json::json!({
        "label": args.label,
        "workload": format!("{:?}", args.workload).to_lowercase(),
        "sessions": args.sessions,
        "in_flight": args.in_flight,
        "value_size": args.value_size,
        "ops": hist.len(),
        "errors": errors,
        "seconds": elapsed,
        "ops_per_sec": hist.len() as f64 / elapsed,
        "p50_ms": hist.value_at_quantile(0.50) as f64 / 1000.0,
        "p99_ms": hist.value_at_quantile(0.99) as f64 / 1000.0,
    }))
}
