//! `zkrs bench`: a load generator speaking the client protocol, so that zkrs and Apache
//! ZooKeeper are measured by the same code. Prints one JSON line.
//!
//! `--server` takes one or more `host:port`; session i connects to the (i mod n)-th only, so
//! the sessions are spread evenly over an ensemble's servers.

use anyhow::{anyhow, bail, Context};
use client::{open_acl, Client, EventType, Op};
use hdrhistogram::Histogram;
use jute::CreateMode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

/// Sessions connecting at the same time while a workload sets up (not the session storm).
const CONNECT_CONCURRENCY: usize = 64;

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
    /// create --total znodes, --batch of them per multi (to load a large tree fast)
    Populate,
    /// --watchers sessions each with a getData watch on one znode, one setData; time until
    /// every watcher has the event, --trials times
    WatchFanout,
    /// --sessions sessions connecting at once; time until all are connected
    SessionStorm,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// host:port of the server to load, or a comma-separated list (session i uses the
    /// (i mod n)-th)
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
    /// seconds to measure (after --warmup)
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// seconds of load before measuring
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// bytes per value
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// name printed in the JSON result
    #[arg(long, default_value = "server")]
    pub label: String,
    /// stop after this many operations (populate: znodes) instead of after --duration (no
    /// warm-up)
    #[arg(long)]
    pub total: Option<u64>,
    /// also count completions per bucket of this many milliseconds over the measured window
    /// ("timeline" in the JSON; not with --total)
    #[arg(long)]
    pub timeline_ms: Option<u64>,
    /// populate: creates per multi
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// watch-fanout: sessions watching the znode
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    /// watch-fanout: setData events measured (median reported)
    #[arg(long, default_value_t = 5)]
    pub trials: usize,
    /// requested session timeout, milliseconds
    #[arg(long, default_value_t = 30_000)]
    pub session_timeout_ms: i32,
    /// session-storm: seconds a session may take to connect before it counts as an error
    #[arg(long, default_value_t = 120.0)]
    pub connect_timeout: f64,
    /// threads of the load generator. One by default: on a machine the servers share, a
    /// multi-threaded runtime spent its CPU handing sessions between threads (with 2 threads
    /// it drove 111 k getData/s at 32 sessions on 2 cores, one thread 240 k)
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<Value> {
    let servers: Vec<String> = args
        .server
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if servers.is_empty() {
        bail!("--server: no host:port given");
    }
    let nofile = raise_nofile_limit();
    let mut result = match args.workload {
        Workload::WatchFanout => watch_fanout(&args, &servers).await?,
        Workload::SessionStorm => session_storm(&args, &servers, nofile).await?,
        _ => load(&args, &servers).await?,
    };
    let common = json!({
        "label": args.label,
        "workload": workload_name(args.workload),
        "servers": servers.len(),
        "threads": args.threads,
    });
    if let (Value::Object(r), Value::Object(c)) = (&mut result, common) {
        r.extend(c);
    }
    Ok(result)
}

fn workload_name(w: Workload) -> &'static str {
    match w {
        Workload::Create => "create",
        Workload::Set => "set",
        Workload::Get => "get",
        Workload::Mixed => "mixed",
        Workload::Populate => "populate",
        Workload::WatchFanout => "watch-fanout",
        Workload::SessionStorm => "session-storm",
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (every session is a socket); returns the
/// soft limit in force.
fn raise_nofile_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.maximum != limit.current {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!("cannot raise RLIMIT_NOFILE to the hard limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quantile_ms(hist: &Histogram<u64>, q: f64) -> f64 {
    hist.value_at_quantile(q) as f64 / 1000.0
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// `count` sessions, session i on servers[i mod n], a few connecting at a time.
async fn connect_sessions(
    servers: &[String],
    count: usize,
    timeout_ms: i32,
) -> anyhow::Result<Vec<Client>> {
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut set = JoinSet::new();
    for i in 0..count {
        let server = servers[i % servers.len()].clone();
        let gate = gate.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let c = Client::connect(&server, timeout_ms).await;
            (i, c.with_context(|| format!("session {i} to {server}")))
        });
    }
    let mut out: Vec<Option<Client>> = (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, c) = joined?;
        out[i] = Some(c?);
    }
    Ok(out.into_iter().flatten().collect())
}

/// closeSession for every session, a few at a time (not measured).
async fn close_sessions(clients: Vec<Client>) {
    let gate = Arc::new(Semaphore::new(4 * CONNECT_CONCURRENCY));
    let mut set = JoinSet::new();
    for c in clients {
        let gate = gate.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let _ = tokio::time::timeout(Duration::from_secs(30), c.close()).await;
        });
    }
    while set.join_next().await.is_some() {}
}

/// The closed-loop workloads: create, set, get, mixed, populate.
async fn load(args: &BenchArgs, servers: &[String]) -> anyhow::Result<Value> {
    let root = format!("/bench-{}", std::process::id());
    let setup = Client::connect(&servers[0], args.session_timeout_ms).await?;
    let _ = setup
        .create(&root, b"", &open_acl(), CreateMode::Persistent)
        .await;
    let value = Arc::new(vec![b'v'; args.value_size]);
    let clients = connect_sessions(servers, args.sessions, args.session_timeout_ms).await?;
    // each session's own znode (populate: the parent of the session's znodes)
    let mut set = JoinSet::new();
    for (i, c) in clients.iter().enumerate() {
        let (c, node, value) = (c.clone(), format!("{root}/s{i}"), value.clone());
        set.spawn(async move {
            let _ = c
                .create(&node, &value, &open_acl(), CreateMode::Persistent)
                .await;
        });
    }
    while set.join_next().await.is_some() {}

    let per_op = if args.workload == Workload::Populate {
        args.batch.max(1) as u64
    } else {
        1
    };
    let bucket_ns = args
        .timeline_ms
        .filter(|_| args.total.is_none())
        .map(|b| b.max(1) * 1_000_000);
    let buckets = bucket_ns.map_or(0, |b| {
        ((args.duration * 1e9) / b as f64).ceil() as usize + 1
    });
    let timeline: Arc<Vec<AtomicU64>> = Arc::new((0..buckets).map(|_| AtomicU64::new(0)).collect());
    let base = Instant::now();
    // nanoseconds after `base` when measuring started
    let measure_from = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(args.total.is_some()));
    let issued = Arc::new(AtomicU64::new(0));
    let created = Arc::new(AtomicU64::new(0));
    let limit = args.total.unwrap_or(u64::MAX);
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        for lane in 0..args.in_flight {
            let c = c.clone();
            let (stop, measuring, issued, created) = (
                stop.clone(),
                measuring.clone(),
                issued.clone(),
                created.clone(),
            );
            let (timeline, measure_from) = (timeline.clone(), measure_from.clone());
            let value = value.clone();
            let node = format!("{root}/s{i}");
            let workload = args.workload;
            tasks.push(tokio::spawn(async move {
                let mut hist = new_histogram();
                let mut errors = 0u64;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let first = issued.fetch_add(per_op, Ordering::Relaxed);
                    if first >= limit {
                        break;
                    }
                    let count = per_op.min(limit - first);
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
                        Workload::Populate => {
                            let ops: Vec<Op> = (0..count)
                                .map(|k| Op::Create {
                                    path: format!("{node}/{lane}-{n}-{k}"),
                                    data: value.to_vec(),
                                    acl: open_acl(),
                                    mode: CreateMode::Persistent,
                                    ttl: None,
                                })
                                .collect();
                            c.multi(&ops).await.map(|_| {
                                created.fetch_add(count, Ordering::Relaxed);
                            })
                        }
                        Workload::WatchFanout | Workload::SessionStorm => unreachable!(),
                    };
                    if measuring.load(Ordering::Relaxed) {
                        match result {
                            Ok(()) => {
                                let micros = started.elapsed().as_micros().max(1) as u64;
                                let _ = hist.record(micros.min(600_000_000));
                                if let Some(b) = bucket_ns {
                                    let at = base.elapsed().as_nanos() as u64;
                                    let from = measure_from.load(Ordering::Relaxed);
                                    if let Some(slot) =
                                        timeline.get((at.saturating_sub(from) / b) as usize)
                                    {
                                        slot.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
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
        tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
        measure_from.store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
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
    let mut hist = new_histogram();
    let mut errors = 0;
    for (h, e) in results {
        hist.add(h)?;
        errors += e;
    }
    close_sessions(clients).await;
    let _ = setup.close().await;
    let mut out = json!({
        "sessions": args.sessions,
        "in_flight": args.in_flight,
        "value_size": args.value_size,
        "ops": hist.len(),
        "errors": errors,
        "seconds": elapsed,
        "ops_per_sec": hist.len() as f64 / elapsed,
        "p50_ms": quantile_ms(&hist, 0.50),
        "p99_ms": quantile_ms(&hist, 0.99),
        "max_ms": hist.max() as f64 / 1000.0,
    });
    if args.workload == Workload::Populate {
        let znodes = created.load(Ordering::Relaxed);
        out["batch"] = json!(per_op);
        out["znodes"] = json!(znodes);
        out["znodes_per_sec"] = json!(znodes as f64 / elapsed);
        out["root"] = json!(root);
    }
    if let Some(b) = bucket_ns {
        // the last bucket holds what completed between --duration and the stop: dropped
        let counts: Vec<u64> = timeline
            .iter()
            .take(buckets - 1)
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        out["timeline_ms"] = json!(b / 1_000_000);
        out["timeline"] = json!(counts);
    }
    Ok(out)
}

/// `--watchers` sessions (spread over the servers) each set a getData watch on one znode; a
/// session on the first server sets its data; the time from sending the setData until each
/// watcher's NodeDataChanged arrived. `--trials` times, the watches set again each time.
async fn watch_fanout(args: &BenchArgs, servers: &[String]) -> anyhow::Result<Value> {
    let root = format!("/bench-{}", std::process::id());
    let node = format!("{root}/watched");
    let setter = Client::connect(&servers[0], args.session_timeout_ms).await?;
    let _ = setter
        .create(&root, b"", &open_acl(), CreateMode::Persistent)
        .await;
    let value = vec![b'v'; args.value_size];
    setter
        .create(&node, &value, &open_acl(), CreateMode::Persistent)
        .await
        .context("creating the watched znode")?;
    let watchers = connect_sessions(servers, args.watchers, args.session_timeout_ms).await?;
    let (tx, mut arrivals) = mpsc::unbounded_channel();
    for w in &watchers {
        let mut events = w
            .take_events()
            .ok_or_else(|| anyhow!("events already taken"))?;
        let (tx, node) = (tx.clone(), node.clone());
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if e.event_type == EventType::NodeDataChanged
                    && e.path.as_deref() == Some(node.as_str())
                    && tx.send(Instant::now()).is_err()
                {
                    break;
                }
            }
        });
    }
    drop(tx);
    let n = watchers.len();
    let mut trials = Vec::new();
    for _ in 0..args.trials.max(1) {
        // events of an earlier trial that came after its deadline
        while arrivals.try_recv().is_ok() {}
        let mut set = JoinSet::new();
        for w in &watchers {
            let (w, node) = (w.clone(), node.clone());
            set.spawn(async move { w.get_data(&node, true).await.map(|_| ()) });
        }
        let mut arm_errors = 0;
        while let Some(r) = set.join_next().await {
            if !matches!(r, Ok(Ok(()))) {
                arm_errors += 1;
            }
        }
        let sent = Instant::now();
        setter.set_data(&node, &value, -1).await?;
        let set_reply = sent.elapsed();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut hist = new_histogram();
        while (hist.len() as usize) < n {
            match tokio::time::timeout_at(deadline, arrivals.recv()).await {
                Ok(Some(at)) => {
                    let micros = at.duration_since(sent).as_micros().max(1) as u64;
                    hist.record(micros.min(600_000_000))?;
                }
                _ => break,
            }
        }
        let delivered = hist.len() as usize;
        trials.push(json!({
            "delivered": delivered,
            "watch_errors": arm_errors,
            "set_reply_ms": ms(set_reply),
            "p50_ms": quantile_ms(&hist, 0.50),
            "p99_ms": quantile_ms(&hist, 0.99),
            "max_ms": hist.max() as f64 / 1000.0,
            "all_delivered_ms": (delivered == n).then(|| hist.max() as f64 / 1000.0),
        }));
        // let the watches of the next trial start from a quiet client
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let med = |key: &str| median(trials.iter().filter_map(|t| t[key].as_f64()).collect());
    let complete = trials
        .iter()
        .filter(|t| !t["all_delivered_ms"].is_null())
        .count();
    let out = json!({
        "watchers": n,
        "trials": trials.len(),
        "trials_all_delivered": complete,
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "max_ms": med("max_ms"),
        // a trial where some event never came counts as longer than any other
        "all_delivered_ms": median(
            trials
                .iter()
                .map(|t| t["all_delivered_ms"].as_f64().unwrap_or(f64::INFINITY))
                .collect()
        )
        .filter(|m| m.is_finite()),
        "set_reply_ms": med("set_reply_ms"),
        "per_trial": trials,
    });
    close_sessions(watchers).await;
    let _ = setter.delete(&node, -1).await;
    let _ = setter.close().await;
    Ok(out)
}

/// `--sessions` sessions (spread over the servers) all connecting at once; the time from the
/// start until each is connected.
async fn session_storm(args: &BenchArgs, servers: &[String], nofile: u64) -> anyhow::Result<Value> {
    let needed = args.sessions as u64 + 64;
    if nofile < needed {
        bail!(
            "RLIMIT_NOFILE is {nofile} (hard limit included): {} sessions need about {needed} file descriptors",
            args.sessions
        );
    }
    let connect_timeout = Duration::from_secs_f64(args.connect_timeout);
    let started = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..args.sessions {
        let server = servers[i % servers.len()].clone();
        let timeout_ms = args.session_timeout_ms;
        set.spawn(async move {
            let c = Client::builder(&server)
                .session_timeout(timeout_ms)
                .connect_timeout(connect_timeout)
                .connect()
                .await;
            (c, started.elapsed())
        });
    }
    let mut hist = new_histogram();
    let mut clients = Vec::with_capacity(args.sessions);
    let mut errors = 0u64;
    let mut first_error = None;
    let mut last = Duration::ZERO;
    while let Some(joined) = set.join_next().await {
        match joined? {
            (Ok(c), at) => {
                hist.record((at.as_micros().max(1) as u64).min(600_000_000))?;
                last = last.max(at);
                clients.push(c);
            }
            (Err(e), _) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let connections: u64 = clients.iter().map(|c| c.connection_count()).sum();
    let connected = clients.len();
    let closing = Instant::now();
    close_sessions(clients).await;
    Ok(json!({
        "sessions": args.sessions,
        "connected": connected,
        "errors": errors,
        "first_error": first_error,
        // connections beyond one per connected session: a connection was lost and made again
        "reconnects": connections.saturating_sub(connected as u64),
        "all_connected_ms": (errors == 0).then(|| ms(last)),
        "last_connected_ms": ms(last),
        "p50_ms": quantile_ms(&hist, 0.50),
        "p99_ms": quantile_ms(&hist, 0.99),
        "close_all_ms": ms(closing.elapsed()),
        "nofile_limit": nofile,
    }))
}
