#!/usr/bin/env python3
"""Three-server ensemble benchmark: Apache ZooKeeper 3.8 vs zkrs on this machine, same load
generator.

For each kind: starts a 3-server ensemble (tickTime 2000, initLimit 10, syncLimit 5,
forceSync=yes) and, for each workload and session count, loads it with `zkrs bench`: one load
process per server, all at once, the sessions spread evenly over the servers (writes sent to
followers are forwarded to the leader, as in production). Then it measures failover: a kazoo
client connected to the followers writes in a loop, the leader is killed with SIGKILL, and the
time from the kill to the first acknowledged write issued after it is taken; the killed server
is restarted and the trial repeated. Prints a Markdown table with zkrs/ZooKeeper ratios when
both kinds ran. Usage:

    python3 bench/ensemble.py [--kinds zk,zkrs] [--duration 5] [--sessions 3,48]
                              [--failover-trials 5] [--quick] [--json out.json]
"""
import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from common import machine, zkrs_bench  # also puts tests/harness first on sys.path, so that
from ensemble import Ensemble            # this is the harness's ensemble.py, not this script
from writes import SequentialWriter, connect

WORKLOADS = ["create", "set", "get"]
SERVERS = 3
TICK_MS, INIT_LIMIT, SYNC_LIMIT = 2000, 10, 5
NAMES = {"zk": "ZooKeeper", "zkrs": "zkrs"}


def spread(sessions, servers):
    """Session counts per server, as even as possible: spread(8, 3) == [3, 3, 2]."""
    return [sessions // servers + (1 if i < sessions % servers else 0) for i in range(servers)]


def run_load(ensemble, workload, sessions, duration, in_flight):
    """Runs one `zkrs bench` per server at once; returns their results combined: summed
    throughput and errors, and the highest p50/p99 of the processes (their histograms are
    not available to merge)."""
    def one(member, count):
        try:
            return zkrs_bench(member, "--workload", workload, "--sessions", count, "--in-flight", in_flight,
                              "--duration", duration, timeout=duration * 4 + 120)
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"zkrs bench against server {member.sid} failed: {e.stderr.strip()}") from e

    jobs = [(m, n) for m, n in zip(ensemble.members.values(), spread(sessions, len(ensemble.members))) if n]
    with ThreadPoolExecutor(len(jobs)) as pool:
        parts = list(pool.map(lambda job: one(*job), jobs))
    return {
        "workload": workload,
        "sessions": sessions,
        "ops_per_sec": sum(p["ops_per_sec"] for p in parts),
        "errors": sum(p["errors"] for p in parts),
        "p50_ms": max(p["p50_ms"] for p in parts),
        "p99_ms": max(p["p99_ms"] for p in parts),
        "per_server": parts,
    }


def failover_trial(ensemble):
    """Seconds from kill -9 of the leader to the first acknowledged write issued after it."""
    leader = ensemble.wait_for_quorum()
    followers = [sid for sid in ensemble.members if sid != leader]
    client = connect(ensemble.connect_string(followers))
    try:
        client.ensure_path("/failover")
        writer = SequentialWriter(client, "/failover").start()
        try:
            writer.wait_for_acks(time.monotonic(), count=50)
            killed_at = time.monotonic()
            ensemble.kill(leader)
            resumed_at = writer.wait_for_acks(killed_at, timeout=120)
        finally:
            writer.stop()
    finally:
        client.stop()
        client.close()
    ensemble.restart(leader)
    ensemble.wait_for_quorum()
    return resumed_at - killed_at


def bench_kind(kind, args, sessions):
    results = {"load": [], "failover_s": []}
    with Ensemble(kind, SERVERS, extra_cfg={"forceSync": "yes"}, tick_ms=TICK_MS, init_limit=INIT_LIMIT,
                  sync_limit=SYNC_LIMIT, java_heap="512m") as ensemble:
        for workload in WORKLOADS:
            for n in sessions:
                r = run_load(ensemble, workload, n, args.duration, args.in_flight)
                results["load"].append(r)
                print(f"# {kind} {workload} sessions={n}: {r['ops_per_sec']:.0f} ops/s "
                      f"p50 {r['p50_ms']:.3f} ms p99 {r['p99_ms']:.3f} ms errors {r['errors']}",
                      file=sys.stderr, flush=True)
        for trial in range(args.failover_trials):
            seconds = failover_trial(ensemble)
            results["failover_s"].append(seconds)
            print(f"# {kind} failover trial {trial + 1}: {seconds:.3f} s", file=sys.stderr, flush=True)
    return results


def ratio(new, old):
    return f"{new / old:.2f}x" if old else "n/a"


def print_tables(results, kinds, sessions, args):
    compare = "zk" in kinds and "zkrs" in kinds
    print(f"Ensemble of {SERVERS} servers, {machine()}, value 1 KiB, {args.in_flight} requests in flight "
          f"per session, sessions spread evenly over the servers (one `zkrs bench` per server), "
          f"{args.duration:g} s per run, tickTime {TICK_MS}, initLimit {INIT_LIMIT}, syncLimit {SYNC_LIMIT}, "
          f"forceSync=yes. ops/s: sum over the servers; p50/p99: the highest among the per-server "
          f"load processes.\n")
    header = ["workload", "sessions"]
    for kind in kinds:
        header += [f"{NAMES[kind]} ops/s"]
    if compare:
        header += ["ratio"]
    for kind in kinds:
        header += [f"{NAMES[kind]} p50 ms", f"{NAMES[kind]} p99 ms"]
    if compare:
        header += ["p99 ratio"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for workload in WORKLOADS:
        for n in sessions:
            row = {kind: next(r for r in results[kind]["load"] if r["workload"] == workload and r["sessions"] == n)
                   for kind in kinds}
            cells = [workload, str(n)] + [f"{row[k]['ops_per_sec']:.0f}" for k in kinds]
            if compare:
                cells.append(ratio(row["zkrs"]["ops_per_sec"], row["zk"]["ops_per_sec"]))
            for kind in kinds:
                cells += [f"{row[kind]['p50_ms']:.3f}", f"{row[kind]['p99_ms']:.3f}"]
            if compare:
                cells.append(ratio(row["zkrs"]["p99_ms"], row["zk"]["p99_ms"]))
            print("| " + " | ".join(cells) + " |")

    print(f"\nFailover: kill -9 of the leader → first acknowledged write issued after the kill "
          f"(kazoo client connected to the two followers, sequential creates in a loop), "
          f"{args.failover_trials} trial(s)\n")
    header = [""] + [NAMES[k] for k in kinds] + (["ratio"] if compare else [])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    medians = {k: statistics.median(results[k]["failover_s"]) for k in kinds}
    cells = ["median s"] + [f"{medians[k]:.3f}" for k in kinds]
    if compare:
        cells.append(ratio(medians["zkrs"], medians["zk"]))
    print("| " + " | ".join(cells) + " |")
    cells = ["trials s"] + [", ".join(f"{s:.3f}" for s in results[k]["failover_s"]) for k in kinds]
    print("| " + " | ".join(cells + ([""] if compare else [])) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="zk,zkrs", help="comma-separated: zk, zkrs")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds measured per workload")
    ap.add_argument("--sessions", default="3,48", help="comma-separated total session counts")
    ap.add_argument("--in-flight", type=int, default=4, help="requests in flight per session")
    ap.add_argument("--failover-trials", type=int, default=5, help="leader kills per kind")
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke run: 1 s per workload, 3 sessions, 1 failover trial")
    ap.add_argument("--json", help="write raw results here")
    args = ap.parse_args()
    logging.getLogger("kazoo").setLevel(logging.ERROR)  # a killed leader makes kazoo warn at length
    if args.quick:
        args.duration, args.sessions, args.failover_trials = 1.0, "3", 1
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not kinds or any(k not in NAMES for k in kinds):
        ap.error(f"--kinds: choose among {', '.join(NAMES)}")
    if args.failover_trials < 1:
        ap.error("--failover-trials must be at least 1")
    sessions = [int(s) for s in args.sessions.split(",")]

    results = {kind: bench_kind(kind, args, sessions) for kind in kinds}
    print_tables(results, kinds, sessions, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
