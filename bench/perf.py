#!/usr/bin/env python3
"""The performance benchmark of issue 7: Apache ZooKeeper 3.8 and zkrs as 3-server ensembles on
loopback, one after the other, driven by the same load generator (`zkrs bench`), one Markdown
table with zkrs / ZooKeeper ratios and the issue's targets.

For each kind (zk, then zkrs) a 3-server ensemble is started with forceSync=yes, tickTime 2000,
initLimit 10, syncLimit 5, maxClientCnxns=0 (no per-address connection limit: every session
comes from 127.0.0.1), ZooKeeper with -Xmx2g. One `zkrs bench` process drives it; session i
connects to server i mod 3 (writes sent to followers are forwarded to the leader). Workloads:

  load       create, setData and getData of 1 KiB values with 1, 32 and 256 sessions, each
             keeping 4 requests in flight (closed loop); 1 s warm-up, then 5 s measured:
             ops/s, p50/p99 latency, and completions per 100 ms (the timelines plotted);
             each run on a fresh ensemble, the kinds alternating run by run (each workload
             and session count for one kind, then the other, the order swapped every run):
             this VM's speed drifts by tens of percent over minutes, and a ratio of two
             figures measured minutes apart carried that drift
  mixed      90% getData / 10% setData, 32 sessions, same settings (the parts mixed, watch,
             storm and failover share one fresh ensemble)
  watch      1,000 sessions each set a getData watch on one znode; one setData from a session
             on server 1; the time from sending it until each watcher has its NodeDataChanged:
             p50, max (= all delivered); 5 trials (watches set again each time), medians
  storm      10,000 sessions connecting at once: time until all are connected, errors
  failover   kill -9 of the leader, time to the first acknowledged write issued after it
             (kazoo, sequential creates through the followers); 5 trials, median
  bigtree    on a fresh ensemble: 300,000 znodes of 1 KiB (multi batches of 100 creates), then
             setData at 32 sessions for 10 s: writes while snapshots copy a large tree
  znodes     on a fresh ensemble: 1,000,000 znodes of 100 bytes created by 32 sessions with
             multi batches of 100 creates (4 in flight each); 8 s later the RSS (VmRSS) and
             peak (VmHWM) of each server; then all three servers stopped (SIGTERM) and started
             again: the time from starting them until a client getData succeeds on one of
             them, and on all three; then a follower alone restarted the same way
  reconfig   bench/reconfig.py (subprocess; its own ensembles: tickTime 500, initLimit 20,
             syncLimit 10): add a server, remove a follower, remove the leader; longest gap
             and time back to 90%, medians of 5 trials (its raw results and plot are written
             to bench/results/reconfig.json and docs/reconfig-timelines.png)

Raw results: bench/results/perf.json; timelines plot: docs/perf-timelines.png. Usage:

    python3 bench/perf.py [--kinds zk,zkrs] [--parts load,mixed,...] [--smoke] [--json F] [--plot F]

--smoke (CI): 1 s per load run (all on one ensemble per kind), 1 and 32 sessions, 100 watchers, 300 sessions
in the storm, 20,000 znodes, 5,000 in the big tree, 1 trial of everything, reconfig.py --quick; JSON and plot
go to a temporary directory.
"""
import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

from common import (REPO, comma_list, ensemble_bench, machine, pin_zkrs_binary, provenance, read_probe,
                    rss_mib, wait_for_quiet)
from ensemble import Ensemble  # the harness's (tests/harness is first on sys.path: see common.py)
from writes import SequentialWriter, connect

NAMES = {"zk": "ZooKeeper", "zkrs": "zkrs"}
PARTS = ["load", "mixed", "watch", "storm", "failover", "bigtree", "znodes", "reconfig"]
WORKLOADS = ["create", "set", "get"]
SERVERS = 3
TICK_MS, INIT_LIMIT, SYNC_LIMIT = 2000, 10, 5
CFG = {"forceSync": "yes", "maxClientCnxns": "0"}
TIMELINE_MS = 100
MIXED_SESSIONS = 32

FULL = SimpleNamespace(sessions=[1, 32, 256], in_flight=4, duration=5.0, warmup=1.0, watchers=1000,
                       watch_trials=5, storm_sessions=10_000, znodes=1_000_000, batch=100, settle=8.0,
                       failover_trials=5, reconfig_trials=5, java_heap="2g", big_tree=300_000, fresh_runs=True)
SMOKE = SimpleNamespace(sessions=[1, 32], in_flight=4, duration=1.0, warmup=0.5, watchers=100,
                        watch_trials=2, storm_sessions=300, znodes=20_000, batch=100, settle=1.0,
                        failover_trials=1, reconfig_trials=1, java_heap="2g", big_tree=5_000, fresh_runs=False)


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


def raise_nofile_limit():
    """Soft RLIMIT_NOFILE to the hard limit, inherited by the servers we start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def new_ensemble(kind, p):
    return Ensemble(kind, SERVERS, extra_cfg=CFG, tick_ms=TICK_MS, init_limit=INIT_LIMIT, sync_limit=SYNC_LIMIT,
                    java_heap=p.java_heap)


# -- the parts ----------------------------------------------------------------------------------

def load_run(ensemble, p, workload, sessions):
    r = ensemble_bench(ensemble, "--workload", workload, "--sessions", sessions, "--in-flight", p.in_flight,
                       "--duration", p.duration, "--warmup", p.warmup, "--timeline-ms", TIMELINE_MS,
                       timeout=p.duration * 4 + 300)
    log(f"{ensemble.kind} {workload} sessions={sessions}: {r['ops_per_sec']:.0f} ops/s p50 {r['p50_ms']:.3f} ms "
        f"p99 {r['p99_ms']:.3f} ms errors {r['errors']}")
    return r


def watch_fanout(ensemble, p):
    r = ensemble_bench(ensemble, "--workload", "watch-fanout", "--watchers", p.watchers, "--trials", p.watch_trials,
                       timeout=600 + 120 * p.watch_trials)
    log(f"{ensemble.kind} watch fan-out {r['watchers']} watchers: p50 {r['p50_ms']:.1f} ms, all delivered "
        f"{r['all_delivered_ms']} ms ({r['trials_all_delivered']} of {r['trials']} trials complete)")
    return r


def session_storm(ensemble, p):
    r = ensemble_bench(ensemble, "--workload", "session-storm", "--sessions", p.storm_sessions,
                       "--connect-timeout", 120, timeout=900)
    log(f"{ensemble.kind} session storm {r['sessions']}: last connected after {r['last_connected_ms']:.0f} ms, "
        f"connected {r['connected']}, errors {r['errors']} {r['first_error'] or ''}")
    return r


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


def serving_times(ensemble, sids, probe, started, timeout=900):
    """{sid: seconds from `started` until server sid answered a getData of `probe`}."""
    out = {}
    deadline = time.monotonic() + timeout
    while len(out) < len(sids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{ensemble.kind}: servers {sorted(set(sids) - set(out))} did not serve "
                               f"{probe} within {timeout} s\n" + "\n".join(ensemble.log_tail(s, 15) for s in sids))
        for sid in sids:
            if sid not in out and read_probe(ensemble.client_port(sid), probe, timeout=0.5):
                out[sid] = time.monotonic() - started
        ensemble._check_alive(sids)
        time.sleep(0.01)
    return out


def rss_all(ensemble, field="VmRSS"):
    return {sid: rss_mib(ensemble.pid(sid), field) for sid in ensemble.sids(running_only=True)}


def big_tree(kind, p):
    """setData at 32 sessions on a fresh ensemble holding p.big_tree znodes of 1 KiB: the
    snapshots every 50-100 k txns (snapCount's default) then copy a large tree while the load
    runs. Twice the usual duration, so that both kinds snapshot during it."""
    with new_ensemble(kind, p) as ensemble:
        load = ensemble_bench(ensemble, "--workload", "populate", "--total", p.big_tree, "--value-size", 1024,
                              "--sessions", 32, "--in-flight", 4, "--batch", p.batch, timeout=7200)
        if load["errors"] or load["znodes"] < p.big_tree:
            raise RuntimeError(f"{kind}: loading {p.big_tree} znodes: {load['znodes']} created, "
                               f"{load['errors']} errors")
        time.sleep(p.settle)
        r = ensemble_bench(ensemble, "--workload", "set", "--sessions", 32, "--in-flight", p.in_flight,
                           "--duration", 2 * p.duration, "--warmup", p.warmup, timeout=p.duration * 8 + 300)
        r["znodes"] = load["znodes"]
        log(f"{kind} set sessions=32 on {load['znodes']} znodes of 1 KiB: {r['ops_per_sec']:.0f} ops/s "
            f"p50 {r['p50_ms']:.3f} ms p99 {r['p99_ms']:.3f} ms errors {r['errors']}")
        return r


def many_znodes(kind, p):
    """Loads p.znodes znodes into a fresh ensemble; RSS; whole-ensemble and single-server restart."""
    with new_ensemble(kind, p) as ensemble:
        load = ensemble_bench(ensemble, "--workload", "populate", "--total", p.znodes, "--value-size", 100,
                              "--sessions", 32, "--in-flight", 4, "--batch", p.batch, timeout=7200)
        if load["errors"] or load["znodes"] < p.znodes:
            raise RuntimeError(f"{kind}: loading {p.znodes} znodes: {load['znodes']} created, {load['errors']} errors")
        log(f"{kind}: {load['znodes']} znodes loaded in {load['seconds']:.1f} s")
        time.sleep(p.settle)  # a snapshot started during the load finishes
        rss, peak = rss_all(ensemble), rss_all(ensemble, "VmHWM")
        probe = f"{load['root']}/s0"
        sids = sorted(ensemble.members)
        for sid in sids:
            ensemble.members[sid].stop()
        started = time.monotonic()
        for sid in sids:
            ensemble.members[sid].launch()
        serving = serving_times(ensemble, sids, probe, started)
        ensemble.wait_for_quorum()
        time.sleep(p.settle)
        rss_restarted = rss_all(ensemble)
        follower = next(sid for sid in sids if sid != ensemble.leader())
        ensemble.members[follower].stop()
        started = time.monotonic()
        ensemble.members[follower].launch()
        single = serving_times(ensemble, [follower], probe, started)[follower]
        r = {"load": load, "rss_mib": rss, "peak_rss_mib": peak, "rss_after_restart_mib": rss_restarted,
             "restart_first_read_s": min(serving.values()), "restart_all_read_s": max(serving.values()),
             "restart_read_s": serving, "single_restart_read_s": single}
        log(f"{kind}: RSS {fmt_rss(rss)} MiB, restart to serving {r['restart_first_read_s']:.2f} s "
            f"(all {r['restart_all_read_s']:.2f} s), one follower {single:.2f} s")
        return r


def interleaved_load_runs(kinds, p):
    """The load runs of every kind, alternating: for each workload and session count one
    kind's run then the other's, the order swapped every run, each on a fresh ensemble."""
    loads = {kind: [] for kind in kinds}
    runs = [(workload, n) for workload in WORKLOADS for n in p.sessions]
    for i, (workload, n) in enumerate(runs):
        for kind in (kinds if i % 2 == 0 else list(reversed(kinds))):
            with new_ensemble(kind, p) as ensemble:
                loads[kind].append(load_run(ensemble, p, workload, n))
    return loads


def bench_kind(kind, p, parts):
    res = {"load": []}
    if "load" in parts:
        # each run on a fresh ensemble: creates grow the tree by as many znodes as the server
        # under test managed to create, and every later run would then snapshot a tree whose
        # size depends on that server's own speed (at 2648dcb zkrs's setData ran on 387 k znodes
        # of 1 KiB, ZooKeeper's on 164 k)
        # (the smoke run, whose figures are not results, shares one: CI's time is short)
        runs = [(workload, n) for workload in WORKLOADS for n in p.sessions]
        if p.fresh_runs:
            for workload, n in runs:
                with new_ensemble(kind, p) as ensemble:
                    res["load"].append(load_run(ensemble, p, workload, n))
        else:
            with new_ensemble(kind, p) as ensemble:
                for workload, n in runs:
                    res["load"].append(load_run(ensemble, p, workload, n))
    if {"mixed", "watch", "storm", "failover"} & set(parts):
        with new_ensemble(kind, p) as ensemble:
            if "mixed" in parts:
                res["load"].append(load_run(ensemble, p, "mixed", MIXED_SESSIONS))
            if "watch" in parts:
                res["watch"] = watch_fanout(ensemble, p)
            if "storm" in parts:
                res["storm"] = session_storm(ensemble, p)
            if "failover" in parts:
                res["failover_s"] = []
                for trial in range(p.failover_trials):
                    res["failover_s"].append(failover_trial(ensemble))
                    log(f"{kind} failover trial {trial + 1}: {res['failover_s'][-1]:.3f} s")
    if "bigtree" in parts:
        res["big_tree"] = big_tree(kind, p)
    if "znodes" in parts:
        res["znodes"] = many_znodes(kind, p)
    return res


def reconfig(kinds, p, smoke, out_dir):
    """Runs bench/reconfig.py; returns its raw results (summary per scenario and kind)."""
    path = os.path.join(out_dir, "reconfig.json") if smoke else os.path.join(REPO, "bench", "results", "reconfig.json")
    cmd = [sys.executable, os.path.join(REPO, "bench", "reconfig.py"), "--kinds", ",".join(kinds), "--json", path]
    cmd += ["--quick"] if smoke else ["--trials", str(p.reconfig_trials)]
    log(" ".join(os.path.relpath(c, REPO) if c.startswith(REPO) else c for c in cmd))
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=7200)
    sys.stderr.write("".join("#   " + line + "\n" for line in out.stdout.splitlines()))
    if out.returncode:
        raise RuntimeError(f"bench/reconfig.py exited with {out.returncode}")
    with open(path) as f:
        return json.load(f)


# -- the table ----------------------------------------------------------------------------------

def fmt_rss(rss):
    return " / ".join(f"{v:.0f}" for _, v in sorted(rss.items()))


def fmt_ratio(r):
    """Three significant digits, so that a ratio printed next to a target is never rounded onto it."""
    return "n/a" if r is None else f"{r:#.3g}x"


def find_load(res, workload, sessions):
    return next((r for r in res.get("load", []) if r["workload"] == workload and r["sessions"] == sessions), None)


class Table:
    """Rows of: figure, a value per kind, zkrs / ZooKeeper ratio, target, met/missed."""

    def __init__(self, kinds):
        self.kinds = kinds
        self.rows = []
        self.targets = []

    def add(self, figure, values, text=None, ratio=None, target="", met=None):
        """`values`: {kind: number or None}; `text`: how to print them (default: the number);
        `ratio`: printed ratio (default zkrs / ZooKeeper of values); `met`: a function of the
        ratio and the zkrs value, for rows with a target."""
        text = text or (lambda v: "n/a" if v is None else f"{v:.0f}")
        if ratio is None:
            z, r = values.get("zk"), values.get("zkrs")
            ratio_value = r / z if z and r is not None else None
            ratio = fmt_ratio(ratio_value)
        else:
            ratio_value = None
        status = ""
        if target:
            ok = met(ratio_value, values.get("zkrs")) if met else None
            status = "n/a" if ok is None else ("met" if ok else "**missed**")
            self.targets.append((figure, target, status))
        self.rows.append([figure] + [text(values.get(k)) for k in self.kinds] + [ratio, target, status])

    def render(self):
        header = ["figure"] + [NAMES[k] for k in self.kinds] + ["zkrs / ZooKeeper", "target (issue 7)", ""]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def at_least(x):
    return lambda ratio, _: None if ratio is None else ratio >= x


def at_most(x):
    return lambda ratio, _: None if ratio is None else ratio <= x


def ms(v):
    return "n/a" if v is None else f"{v:.1f}"


def table(results, kinds, p):
    t = Table(kinds)
    per = {k: results[k] for k in kinds}

    def each(f):
        return {k: f(per[k]) for k in kinds}

    for workload in WORKLOADS + ["mixed"]:
        for n in (p.sessions if workload != "mixed" else [MIXED_SESSIONS]):
            runs = each(lambda r: find_load(r, workload, n))
            if not any(runs.values()):
                continue
            name = {"create": "create", "set": "setData", "get": "getData", "mixed": "90% getData / 10% setData"}
            target_tput = target_p99 = ""
            if n == 32 and workload in ("create", "set"):
                target_tput, target_p99 = "≥ 3× (write)", "p99 ≤ 0.5× (write)"
            elif n == 32 and workload == "get":
                target_tput = "≥ 2× (read)"
            val = lambda key: {k: r[key] if r else None for k, r in runs.items()}  # noqa: E731
            t.add(f"{name[workload]} ops/s, {n} session{'s' if n > 1 else ''}", val("ops_per_sec"),
                  target=target_tput, met=at_least(3 if workload != "get" else 2))
            p50, p99 = val("p50_ms"), val("p99_ms")
            ratio = ("n/a" if None in (p99.get("zk"), p99.get("zkrs")) or not p99.get("zk") or not p50.get("zk")
                     else f"{fmt_ratio(p50['zkrs'] / p50['zk'])} / {fmt_ratio(p99['zkrs'] / p99['zk'])}")
            status = None
            if target_p99:
                status = (lambda _, __, p99=p99: None if not p99.get("zk") or p99.get("zkrs") is None
                          else p99["zkrs"] / p99["zk"] <= 0.5)
            t.add(f"{name[workload]} p50 / p99 ms, {n} session{'s' if n > 1 else ''}",
                  {k: (p50[k], p99[k]) if p50[k] is not None else None for k in kinds},
                  text=lambda v: "n/a" if v is None else f"{v[0]:.2f} / {v[1]:.2f}", ratio=ratio,
                  target=target_p99, met=status)
            errors = sum((r or {}).get("errors", 0) for r in runs.values())
            if errors:
                t.rows[-1][0] += f" ({errors} errors)"
    big = each(lambda r: r.get("big_tree"))
    if any(big.values()):
        count = next(b["znodes"] for b in big.values() if b)
        val = lambda key: {k: b[key] if b else None for k, b in big.items()}  # noqa: E731
        t.add(f"setData ops/s, 32 sessions, on {count:,} znodes of 1 KiB", val("ops_per_sec"))
        p50, p99 = val("p50_ms"), val("p99_ms")
        ratio = ("n/a" if not p50.get("zk") or not p99.get("zk") or p99.get("zkrs") is None
                 else f"{fmt_ratio(p50['zkrs'] / p50['zk'])} / {fmt_ratio(p99['zkrs'] / p99['zk'])}")
        t.add(f"setData p50 / p99 ms, 32 sessions, on {count:,} znodes of 1 KiB",
              {k: (p50[k], p99[k]) if p50[k] is not None else None for k in kinds},
              text=lambda v: "n/a" if v is None else f"{v[0]:.2f} / {v[1]:.2f}", ratio=ratio)

    watch = each(lambda r: r.get("watch"))
    if any(watch.values()):
        n = next(w["watchers"] for w in watch.values() if w)
        trials = next(w["trials"] for w in watch.values() if w)
        get = lambda key: {k: w[key] if w else None for k, w in watch.items()}  # noqa: E731
        t.add(f"watch fan-out, {n:,} watchers: p50 ms (median of {trials})", get("p50_ms"), text=ms)
        t.add(f"watch fan-out, {n:,} watchers: all delivered ms", get("all_delivered_ms"), text=ms)
        t.rows[-1][0] += " (trials complete: " + ", ".join(
            f"{NAMES[k]} {w['trials_all_delivered']}/{w['trials']}" for k, w in watch.items() if w) + ")"

    storm = each(lambda r: r.get("storm"))
    if any(storm.values()):
        n = next(s["sessions"] for s in storm.values() if s)
        get = lambda key: {k: s[key] if s else None for k, s in storm.items()}  # noqa: E731
        t.add(f"session storm, {n:,} sessions at once: all connected ms", get("all_connected_ms"), text=ms)
        t.add("session storm: p50 / p99 connect ms",
              {k: (s["p50_ms"], s["p99_ms"]) if s else None for k, s in storm.items()},
              text=lambda v: "n/a" if v is None else f"{v[0]:.0f} / {v[1]:.0f}", ratio="")
        t.add("session storm: errors / reconnects",
              {k: (s["errors"], s["reconnects"]) if s else None for k, s in storm.items()},
              text=lambda v: "n/a" if v is None else f"{v[0]} / {v[1]}", ratio="")

    fail = each(lambda r: statistics.median(r["failover_s"]) if r.get("failover_s") else None)
    if any(v is not None for v in fail.values()):
        trials = max(len(per[k].get("failover_s", [])) for k in kinds)
        t.add(f"leader kill -9 → first write ms (median of {trials})",
              {k: v * 1000 if v is not None else None for k, v in fail.items()})

    zn = each(lambda r: r.get("znodes"))
    if any(zn.values()):
        count = next(z["load"]["znodes"] for z in zn.values() if z)
        get = lambda f: {k: f(z) if z else None for k, z in zn.items()}  # noqa: E731
        t.add(f"loading {count:,} znodes of 100 B (multi of {p.batch} creates, 32 sessions): znodes/s",
              get(lambda z: z["load"]["znodes_per_sec"]))
        for key, label in (("rss_mib", f"RSS with {count:,} znodes, servers 1 / 2 / 3 (ratio of the sums) MiB"),
                           ("peak_rss_mib", "peak RSS (VmHWM) while loading, servers 1 / 2 / 3 MiB"),
                           ("rss_after_restart_mib", "RSS after the ensemble restart, servers 1 / 2 / 3 MiB")):
            vals = get(lambda z: z[key])
            sums = {k: sum(v.values()) if v else None for k, v in vals.items()}
            z_, r_ = sums.get("zk"), sums.get("zkrs")
            t.add(label, vals, text=lambda v: "n/a" if v is None else fmt_rss(v),
                  ratio=fmt_ratio(r_ / z_ if z_ and r_ is not None else None),
                  target="≤ 0.3×" if key == "rss_mib" else "",
                  met=(lambda _, __, z_=z_, r_=r_: None if not z_ or r_ is None else r_ / z_ <= 0.3))
        t.add(f"restart of all 3 servers with {count:,} znodes → first read s",
              get(lambda z: z["restart_first_read_s"]), text=lambda v: "n/a" if v is None else f"{v:.2f}",
              target="≤ 0.2×", met=at_most(0.2))
        t.add("restart of all 3 servers → every server serves a read s", get(lambda z: z["restart_all_read_s"]),
              text=lambda v: "n/a" if v is None else f"{v:.2f}")
        t.add("restart of one follower → it serves a read s", get(lambda z: z["single_restart_read_s"]),
              text=lambda v: "n/a" if v is None else f"{v:.2f}")

    rc = results.get("reconfig")
    if rc:
        summary = rc["summary"]
        titles = {"add": "reconfig: add a server", "follower": "reconfig: remove a follower",
                  "leader": "reconfig: remove the leader"}
        trials = rc["settings"]["trials"]
        for scenario in ("add", "follower", "leader"):
            if scenario not in summary:
                continue
            s = {k: summary[scenario].get(k) for k in kinds}
            gap = {k: v["longest_gap_s"] * 1000 if v and v["longest_gap_s"] is not None else None for k, v in s.items()}
            back = {k: v["time_to_90_s"] * 1000 if v and v["time_to_90_s"] is not None else None
                    for k, v in s.items()}
            fmt = lambda v: "n/a" if v is None else ("not back" if v == float("inf") else f"{v:.0f}")  # noqa: E731
            if scenario == "leader":
                t.add(f"{titles[scenario]}: longest gap ms (median of {trials})", gap, text=fmt,
                      target="≤ 0.25× and < 100 ms",
                      met=lambda ratio, v: None if ratio is None or v is None else ratio <= 0.25 and v < 100)
            else:
                t.add(f"{titles[scenario]}: longest gap ms (median of {trials})", gap, text=fmt)
            finite = {k: v if v != float("inf") else None for k, v in back.items()}
            t.add(f"{titles[scenario]}: time back to 90% ms", back, text=fmt,
                  ratio=None if None not in finite.values() else "n/a")
            if scenario == "add":
                dips = {k: v if v and v["dip"] is not None and v.get("dip_beyond_noise") is not None else None
                        for k, v in s.items()}
                d = dips.get("zkrs")
                t.add(f"{titles[scenario]}: lowest 100 ms bucket in the 2 s after / before it (noise), share of the "
                      f"level (medians of {trials}); mean paired difference ± standard error; dip beyond noise "
                      "(one-sided paired t-test, 5%)?",
                      dips, ratio="", target="no dip beyond noise",
                      text=lambda v: "n/a" if v is None else (
                          f"{v['dip']:.2f} / {v['pre_dip']:.2f}; {v['dip_paired_mean']:+.3f} ± {v['dip_paired_se']:.3f}; "
                          f"{'dip' if v['dip_beyond_noise'] else 'no dip'}"),
                      met=lambda _, __, d=d: None if d is None else not d["dip_beyond_noise"])
    return t


def header(p, args, kinds):
    return (f"3-server ensembles on loopback, {machine()}, one after the other; forceSync=yes, tickTime {TICK_MS}, "
            f"initLimit {INIT_LIMIT}, syncLimit {SYNC_LIMIT}, maxClientCnxns=0 (no per-address limit), ZooKeeper "
            f"-Xmx{p.java_heap}. Load: one `zkrs bench` process on one thread, session i on server i mod 3, "
            f"{p.in_flight} requests in flight per session, values 1 KiB, {p.warmup:g} s warm-up + "
            f"{p.duration:g} s measured per run, each load run on a fresh ensemble"
            f"{', the kinds alternating run by run' if p.fresh_runs and len(kinds) > 1 else ''}. "
            f"Ratios zkrs / ZooKeeper (lower is better for times, latencies "
            f"and memory).{' SMOKE RUN: short runs and small counts, not results.' if args.smoke else ''}\n")


def plot(results, kinds, p, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"zk": "tab:orange", "zkrs": "tab:blue"}
    titles = {"create": "create", "set": "setData", "get": "getData", "mixed": "90% getData / 10% setData"}
    shown = [w for w in titles if any(find_load(results[k], w, MIXED_SESSIONS) for k in kinds)]
    if not shown:
        return False
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 2.8 * len(shown)), sharex=True, squeeze=False)
    for ax, workload in zip(axes[:, 0], shown):
        for kind in kinds:
            r = find_load(results[kind], workload, MIXED_SESSIONS)
            if not r or not r.get("timeline"):
                continue
            step = r["timeline_ms"] / 1000
            ops = [c / step for c in r["timeline"]]
            xs = [i * step for i in range(len(ops))]
            ax.step(xs + [xs[-1] + step], ops + [ops[-1]], where="post", color=colors[kind], linewidth=1.3,
                    label=f"{NAMES[kind]} (mean {r['ops_per_sec']:.0f} ops/s, p99 {r['p99_ms']:.1f} ms)")
        ax.set_title(f"{titles[workload]}, {MIXED_SESSIONS} sessions × {p.in_flight} in flight, 1 KiB", fontsize=10)
        ax.set_ylabel(f"ops/s ({TIMELINE_MS} ms buckets)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    axes[-1, 0].set_xlabel("seconds into the measured window")
    fig.suptitle("Throughput, 3-server ensembles, Apache ZooKeeper 3.8 vs zkrs", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="zk,zkrs", help="comma-separated: zk, zkrs")
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS))
    ap.add_argument("--smoke", action="store_true", help="CI: short runs, small counts, outputs in a temporary dir")
    ap.add_argument("--duration", type=float, help="seconds measured per load run")
    ap.add_argument("--sessions", help="comma-separated session counts of the load runs")
    ap.add_argument("--watchers", type=int, help="watch fan-out: watchers")
    ap.add_argument("--storm-sessions", type=int, help="session storm: sessions")
    ap.add_argument("--znodes", type=int, help="znodes loaded before measuring RSS and restarts")
    ap.add_argument("--trials", type=int, help="trials of watch fan-out, failover and reconfig")
    ap.add_argument("--json", help="raw results (default bench/results/perf.json)")
    ap.add_argument("--plot", help="throughput timelines (default docs/perf-timelines.png)")
    args = ap.parse_args()
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)  # a killed leader makes kazoo warn at length
    p = SimpleNamespace(**vars(SMOKE if args.smoke else FULL))
    if args.duration:
        p.duration = args.duration
    if args.sessions:
        p.sessions = [int(s) for s in args.sessions.split(",")]
    for key in ("watchers", "storm_sessions", "znodes"):
        if getattr(args, key):
            setattr(p, key, getattr(args, key))
    if args.trials:
        p.watch_trials = p.failover_trials = p.reconfig_trials = args.trials
    kinds = comma_list(ap, args.kinds, NAMES, "--kinds")
    parts = comma_list(ap, args.parts, PARTS, "--parts")
    out_dir = tempfile.mkdtemp(prefix="perf-smoke-") if args.smoke else None
    args.json = args.json or (os.path.join(out_dir, "perf.json") if args.smoke
                              else os.path.join(REPO, "bench", "results", "perf.json"))
    args.plot = args.plot or (os.path.join(out_dir, "perf-timelines.png") if args.smoke
                              else os.path.join(REPO, "docs", "perf-timelines.png"))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if not args.smoke:
            sys.exit("bench/perf.py: matplotlib is needed for the plot: apt-get install -y python3-matplotlib "
                     "(or pip install matplotlib)")
        args.plot = None

    nofile = raise_nofile_limit()
    if "storm" in parts and nofile < p.storm_sessions + 1000:
        sys.exit(f"bench/perf.py: RLIMIT_NOFILE hard limit {nofile} is too low for {p.storm_sessions} sessions "
                 f"(ulimit -Hn)")
    binary = pin_zkrs_binary()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_before = wait_for_quiet(0 if args.smoke else 300)
    t_start = time.monotonic()
    results = {"started": started, "machine": machine(), "load_before": load_before, "argv": sys.argv[1:],
               "smoke": args.smoke, "zkrs_binary": provenance(binary), "nofile_limit": nofile,
               "settings": {"tickTime": TICK_MS, "initLimit": INIT_LIMIT, "syncLimit": SYNC_LIMIT, **CFG,
                            **vars(p), "timeline_ms": TIMELINE_MS, "servers": SERVERS}}
    interleave = "load" in parts and p.fresh_runs and len(kinds) > 1
    loads = interleaved_load_runs(kinds, p) if interleave else {}
    for kind in kinds:
        results[kind] = bench_kind(kind, p, [x for x in parts if not (interleave and x == "load")])
        results[kind]["load"] = loads.get(kind, []) + results[kind]["load"]
    if "reconfig" in parts:
        results["reconfig"] = reconfig(kinds, p, args.smoke, out_dir)
    results["seconds"] = time.monotonic() - t_start
    results["load_after"] = os.getloadavg()[0]

    print(header(p, args, kinds))
    t = table(results, kinds, p)
    print(t.render())
    if results.get("reconfig"):
        rs = results["reconfig"]["settings"]
        print(f"\nreconfig rows: bench/reconfig.py's own ensembles (3 participants + a joiner, tickTime {rs['tickTime']}, "
              f"initLimit {rs['initLimit']}, syncLimit {rs['syncLimit']}, forceSync=yes; {rs['sessions']} sessions × "
              f"{rs['in_flight']} setData in flight; {rs['warmup']:g} s before the reconfig, {rs['run']:g} s after).")
    checked = [status for _, _, status in t.targets if status != "n/a"]
    if checked:
        print(f"Targets: {checked.count('met')} met, {len(checked) - checked.count('met')} missed (of {len(t.targets)}).")
    z = results["zkrs_binary"]
    print(f"\nzkrs: {z['binary']} built {z['binary_built']} (sha256 {z['sha256'][:12]}), repository at "
          f"{z['commit']}{' with uncommitted changes in crates/ or src/' if z['uncommitted_sources'] else ''}. "
          f"1-min load average {load_before:.2f} before, {results['load_after']:.2f} after; "
          f"{results['seconds']:.0f} s in all.")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    print(f"raw results: {os.path.relpath(args.json, REPO)}")
    if args.plot and plot(results, kinds, p, args.plot):
        print(f"plot: {os.path.relpath(args.plot, REPO)}")


if __name__ == "__main__":
    main()
