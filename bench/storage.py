#!/usr/bin/env python3
"""Storage benchmark: Apache ZooKeeper 3.8 vs zkrs, standalone, forceSync=yes for both.

1. setData throughput and p50/p99 latency of 1 KiB values with 1, 8 and 64 sessions (each
   with a few requests in flight): the curve shows group commit at work.
2. N znodes of 100 bytes (default 1,000,000): the server's RSS once they are loaded, and the
   time from starting the server on that dataDir until a client reads a znode back.

    python3 bench/storage.py [--duration 5] [--znodes 1000000]
"""
import argparse
import sys
import time

from common import machine, rss_mib, zkrs_bench as bench
from kazoo.client import KazooClient
from servers import Server


def time_to_serve(server, probe_path):
    """Seconds from process start until a client can read `probe_path`."""
    started = time.time()
    server.start(timeout=600)
    zk = KazooClient(server.connect_string, timeout=30)
    while True:
        try:
            zk.start(timeout=30)
            zk.get(probe_path)
            break
        except Exception:
            time.sleep(0.05)
    elapsed = time.time() - started
    zk.stop()
    zk.close()
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--sessions", default="1,8,64")
    ap.add_argument("--znodes", type=int, default=1_000_000)
    args = ap.parse_args()
    sessions = [int(s) for s in args.sessions.split(",")]
    res = {}
    for kind in ("zk", "zkrs"):
        server = Server(kind, {"forceSync": "yes"}, java_heap="4g")
        try:
            server.start()
            for n in sessions:
                res[(kind, "set", n)] = r = bench(server, "--workload", "set", "--sessions", str(n),
                                                  "--in-flight", "2", "--duration", str(args.duration))
                print(f"# {kind} set sessions={n}: {r['ops_per_sec']:.0f} ops/s p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms",
                      file=sys.stderr, flush=True)
            load = bench(server, "--workload", "create", "--sessions", "32", "--in-flight", "4",
                         "--value-size", "100", "--total", str(args.znodes))
            res[(kind, "load")] = load
            # steady state: let a snapshot started during the load finish
            time.sleep(8)
            res[(kind, "rss")] = rss_mib(server.proc.pid)
            res[(kind, "peak")] = rss_mib(server.proc.pid, "VmHWM")
            zk = KazooClient(server.connect_string)
            zk.start()
            root = [c for c in zk.get_children("/") if c.startswith("bench-")][0]
            probe = f"/{root}/s0"
            zk.stop()
            zk.close()
            server.stop()
            res[(kind, "restart")] = time_to_serve(server, probe)
            print(f"# {kind}: loaded {load['ops']} znodes in {load['seconds']:.1f}s, RSS {res[(kind, 'rss')]:.0f} MiB, "
                  f"restart to serving {res[(kind, 'restart')]:.2f}s", file=sys.stderr, flush=True)
        finally:
            server.cleanup()
    print(f"Standalone, forceSync=yes, {machine()}; setData of 1 KiB, "
          f"2 requests in flight per session, {args.duration:g} s per run\n")
    print("| figure | ZooKeeper | zkrs | zkrs / ZooKeeper |")
    print("|---|---|---|---|")
    for n in sessions:
        zk, rs = res[("zk", "set", n)], res[("zkrs", "set", n)]
        print(f"| setData ops/s, {n} sessions | {zk['ops_per_sec']:.0f} | {rs['ops_per_sec']:.0f} | "
              f"{rs['ops_per_sec'] / zk['ops_per_sec']:.2f}x |")
        print(f"| setData p50 / p99 ms, {n} sessions | {zk['p50_ms']:.2f} / {zk['p99_ms']:.2f} | "
              f"{rs['p50_ms']:.2f} / {rs['p99_ms']:.2f} | {rs['p50_ms'] / zk['p50_ms']:.2f}x / {rs['p99_ms'] / zk['p99_ms']:.2f}x |")
    print(f"| RSS with {args.znodes:,} znodes of 100 B (8 s after loading) | {res[('zk', 'rss')]:.0f} MiB | {res[('zkrs', 'rss')]:.0f} MiB | "
          f"{res[('zkrs', 'rss')] / res[('zk', 'rss')]:.2f}x |")
    print(f"| peak RSS while loading them | {res[('zk', 'peak')]:.0f} MiB | {res[('zkrs', 'peak')]:.0f} MiB | "
          f"{res[('zkrs', 'peak')] / res[('zk', 'peak')]:.2f}x |")
    print(f"| restart to serving with {args.znodes:,} znodes | {res[('zk', 'restart')]:.2f} s | {res[('zkrs', 'restart')]:.2f} s | "
          f"{res[('zkrs', 'restart')] / res[('zk', 'restart')]:.2f}x |")
    print(f"| loading {args.znodes:,} znodes (create, 32 sessions) | {res[('zk', 'load')]['ops_per_sec']:.0f} ops/s | "
          f"{res[('zkrs', 'load')]['ops_per_sec']:.0f} ops/s | "
          f"{res[('zkrs', 'load')]['ops_per_sec'] / res[('zk', 'load')]['ops_per_sec']:.2f}x |")


if __name__ == "__main__":
    main()
