#!/usr/bin/env python3
"""Standalone benchmark: Apache ZooKeeper 3.8 vs zkrs on this machine, same load generator.

Starts one server, runs `zkrs bench` for each workload, stops it, then the other server, and
prints a Markdown table with zkrs/ZooKeeper ratios. Usage:

    python3 bench/standalone.py [--duration 5] [--sessions 1,32] [--json out.json]
"""
import argparse
import json
import sys

from common import machine, zkrs_bench
from servers import Server

WORKLOADS = ["create", "set", "get"]


def run_bench(server, workload, sessions, duration, in_flight):
    return zkrs_bench(server, "--workload", workload, "--sessions", sessions, "--in-flight", in_flight,
                      "--duration", duration, timeout=duration * 4 + 120)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds measured per workload")
    ap.add_argument("--sessions", default="1,32", help="comma-separated session counts")
    ap.add_argument("--in-flight", type=int, default=4, help="requests in flight per session")
    ap.add_argument("--force-sync", default="yes", choices=["yes", "no"],
                    help="forceSync for both servers (zkrs keeps data in memory until the storage issue lands)")
    ap.add_argument("--json", help="write raw results here")
    args = ap.parse_args()
    sessions = [int(s) for s in args.sessions.split(",")]
    results = {}
    for kind in ("zk", "zkrs"):
        with Server(kind, {"forceSync": args.force_sync}) as server:
            for workload in WORKLOADS:
                for n in sessions:
                    r = run_bench(server, workload, n, args.duration, args.in_flight)
                    results[(kind, workload, n)] = r
                    print(f"# {kind} {workload} sessions={n}: {r['ops_per_sec']:.0f} ops/s "
                          f"p50 {r['p50_ms']:.3f} ms p99 {r['p99_ms']:.3f} ms errors {r['errors']}",
                          file=sys.stderr, flush=True)
    print(f"Standalone, {machine()}, value 1 KiB, "
          f"{args.in_flight} requests in flight per session, {args.duration:g} s per run, forceSync={args.force_sync}\n")
    print("| workload | sessions | ZooKeeper ops/s | zkrs ops/s | ratio | ZK p50 ms | zkrs p50 ms | ZK p99 ms | zkrs p99 ms | p99 ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for workload in WORKLOADS:
        for n in sessions:
            zk, rs = results[("zk", workload, n)], results[("zkrs", workload, n)]
            ratio = rs["ops_per_sec"] / zk["ops_per_sec"] if zk["ops_per_sec"] else float("inf")
            p99_ratio = rs["p99_ms"] / zk["p99_ms"] if zk["p99_ms"] else float("inf")
            print(f"| {workload} | {n} | {zk['ops_per_sec']:.0f} | {rs['ops_per_sec']:.0f} | {ratio:.2f}x "
                  f"| {zk['p50_ms']:.3f} | {rs['p50_ms']:.3f} | {zk['p99_ms']:.3f} | {rs['p99_ms']:.3f} | {p99_ratio:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([dict(r, kind=k[0]) for k, r in results.items()], f, indent=1)


if __name__ == "__main__":
    main()
