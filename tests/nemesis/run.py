#!/usr/bin/env python3
"""Nemesis runs: a zkrs (5 servers) or Apache ZooKeeper 3.8 (3 servers) ensemble of real
processes, one network namespace each, under seeded faults and reconfigurations, with
register / queue / lock / counter workloads checked afterwards (see checker.py).

    tests/nemesis/run.py --ci                  # bounded schedule: zkrs, seeds 1-3, 40 s each (~3 min)
    tests/nemesis/run.py --full                # the long schedule: seeds 1-20, 150 s each (~1 h)
    tests/nemesis/run.py --kind zk --seeds 1,2,3 --duration 60
    tests/nemesis/run.py --servers 3 --seeds 1,2,3         # zkrs at ZooKeeper's size
    tests/nemesis/run.py --seeds 7 --duration 120 --keep   # keep history and logs even when clean

Needs root (ip netns, veth, bridge, tc, tmpfs mounts); without namespaces (or with --proxy) the
servers run on 127.0.0.N behind a fault-injecting TCP proxy instead (proxynet.py), and the run
says so. Exit status 1 on any anomaly, lost acknowledged write
or an ensemble that did not recover; the history (JSON) and the server logs of such a run are
kept in the results directory and their paths printed.
"""
import argparse
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import checker  # noqa: E402
from cluster import NsCluster  # noqa: E402
from nemesis import Coordinator, Nemesis, Reconfigurer  # noqa: E402
from workloads import FAST_RECONNECT, INIT, SESSION_TIMEOUT, Workload  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402

CI_SEEDS, CI_DURATION = [1, 2, 3], 40
FULL_SEEDS, FULL_DURATION = list(range(1, 21)), 150


def log(msg):
    print(f"[nemesis {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def connect(hosts, **kw):
    zk = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT, connection_retry=FAST_RECONNECT, **kw)
    zk.start(timeout=30)
    return zk


def recover(cluster, timeout=90):
    """Heals the network, resumes paused and restarts dead servers, waits for a leader."""
    cluster.network.heal()
    for sid, m in cluster.members.items():
        if m.paused:
            cluster.resume(sid)
        if not m.running:
            cluster.restart(sid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = cluster.leader()
        if leader:
            return leader
        time.sleep(0.5)
    raise TimeoutError(f"no leader {timeout} s after healing: modes {cluster.modes()}")


def one_run(kind, seed, duration, results, keep, servers=None, proxy=False):
    n = servers or (5 if kind == "zkrs" else 3)
    started = time.monotonic()
    cluster = NsCluster(kind, n, proxy=proxy)
    summary = {"kind": kind, "seed": seed, "duration": duration, "servers": n}
    workload = nem = rec = None
    problems = []
    try:
        leader = cluster.start()
        summary["partition_mode"] = cluster.network.partition_mode
        where = "behind the TCP proxy" if cluster.network.partition_mode.startswith("tcp-proxy") else "in namespaces"
        log(f"{kind} seed {seed}: {n} servers up {where} (leader {leader}, partitions by "
            f"{cluster.network.partition_mode})")
        workload = Workload(cluster.hosts(), seed, duration)
        admin = connect(cluster.hosts())
        workload.setup(admin)
        coord = Coordinator()
        nem = Nemesis(cluster, seed, coord, workload.history.now)
        rec = Reconfigurer(cluster, seed, coord, workload.history.now)
        workload.start()
        nem.start()
        rec.start()
        time.sleep(duration)
        nem.stop()
        rec.stop()
        try:
            recover(cluster)
        except TimeoutError as e:
            problems.append(str(e))
        if not rec.restore(timeout=60):
            problems.append("the removed/demoted servers could not be re-added within 60 s after the run")
        workload.stop()
        end = workload.history.now()
        try:
            cluster.wait_for_quorum(timeout=60)
            admin.stop()
            admin.close()
            admin = connect(cluster.hosts())
            drained, counter = workload.final_reads(admin)
        except Exception as e:  # noqa: BLE001
            problems.append(f"the ensemble did not recover for the final reads: {e!r}")
            drained, counter = [], None
        finally:
            admin.stop()
            admin.close()
            rec.close()
        hist = workload.history.ops
        t_check = time.monotonic()
        reg = checker.check_registers(hist, INIT)
        queue = checker.check_queue(hist, drained) if counter is not None else {"anomalies": [], "lost_writes": 0}
        locks = checker.check_locks(hist, workload.suspensions(), end)
        cnt = checker.check_counter(hist, counter)
        anomalies = reg["anomalies"] + queue["anomalies"] + locks["anomalies"] + cnt["anomalies"]
        lost = reg["lost_writes"] + queue["lost_writes"] + cnt["lost_writes"]
        types = Counter(op["type"] for op in hist)
        recs = Counter(ev.get("type") for ev in rec.events if ev.get("action") != "read-config")
        client_errors = {c.name_: c.error for c in workload.clients if c.error}
        disk_exits = [e for e in nem.events if "server_exited" in e]
        summary["disk_full_exits"] = [(e["server"], e["server_exited"]) for e in disk_exits]
        if nem.crashes:
            problems.append(f"servers exited with no fault ending them: {nem.crashes}")
        if nem.error:
            problems.append(f"nemesis thread failed: {nem.error}")
        if rec.error:
            problems.append(f"reconfig thread failed: {rec.error}")
        if client_errors:
            problems.append(f"workload client errors: {client_errors}")
        summary.update({
            "ops": len(hist), "ok": types["ok"], "fail": types["fail"], "info": types["info"],
            "by_workload": {
                "registers": {"keys": reg["keys"], "ops": reg["ops"], "inconclusive": len(reg["inconclusive"])},
                "queue": {k: queue.get(k) for k in ("enqueued", "dequeued", "left")},
                "locks": {"acquisitions": locks["acquisitions"]},
                "counter": {k: cnt[k] for k in ("increments", "indeterminate", "final")},
            },
            "faults": len(nem.events), "fault_kinds": dict(Counter(e["fault"] for e in nem.events)),
            "reconfigs": sum(recs.values()), "reconfigs_ok": recs["ok"], "reconfigs_failed": recs["fail"],
            "reconfigs_indeterminate": recs["info"],
            "anomalies": len(anomalies), "lost_writes": lost, "inconclusive": reg["inconclusive"],
            "problems": problems, "check_s": round(time.monotonic() - t_check, 1),
            "wall_s": round(time.monotonic() - started, 1),
        })
        failed = bool(anomalies or lost or problems)
        summary["status"] = "FAIL" if failed else "ok"
        if failed or keep:
            rundir = os.path.join(results, f"{kind}{n}-seed{seed}")
            os.makedirs(rundir, exist_ok=True)
            hist_path = os.path.join(rundir, "history.json")
            with open(hist_path, "w") as f:
                json.dump({"summary": summary, "t0_utc": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(
                    workload.history.wall0)) + f".{int(workload.history.wall0 * 1e6) % 1000000:06d}Z",
                           "anomalies": anomalies, "faults": nem.events,
                           "reconfigs": rec.events, "suspensions": workload.suspensions(), "history": hist},
                          f, indent=1, default=str)
            for sid, m in cluster.members.items():
                for path in m.log_files():
                    shutil.copy(path, os.path.join(rundir, f"server{sid}-{os.path.basename(path)}"))
                # the transaction logs and snapshots (zkrs txnlog / snapshot print them)
                data = os.path.join(m.data_dir, "version-2")
                if os.path.isdir(data):
                    shutil.copytree(data, os.path.join(rundir, f"server{sid}-data"), dirs_exist_ok=True)
            summary["kept"] = rundir
            if anomalies:
                log(f"{len(anomalies)} anomalies, first ones:")
                for a in anomalies[:5]:
                    print("   ", json.dumps(a, default=str)[:1500])
            log(f"history: {hist_path}; server logs: {rundir}/server*")
        return summary
    finally:
        for t in (nem, rec):
            if t is not None:
                t.stop_event.set()
        if workload is not None:
            workload.stop_event.set()
        cluster.cleanup()


def main():
    logging.basicConfig(level=logging.CRITICAL)  # kazoo logs every dropped connection
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", default="zkrs", choices=("zkrs", "zk"))
    ap.add_argument("--seeds", default="1", help="comma-separated seeds")
    ap.add_argument("--duration", type=float, default=60, help="seconds of faults per seed")
    ap.add_argument("--ci", action="store_true", help=f"zkrs, seeds {CI_SEEDS}, {CI_DURATION} s each")
    ap.add_argument("--full", action="store_true", help=f"seeds {FULL_SEEDS[0]}-{FULL_SEEDS[-1]}, {FULL_DURATION} s each")
    ap.add_argument("--results", default=os.path.join(HERE, "results", time.strftime("%Y%m%d-%H%M%S")))
    ap.add_argument("--servers", type=int, help="ensemble size (default 5 for zkrs, 3 for zk)")
    ap.add_argument("--keep", action="store_true", help="keep history and logs of clean runs too")
    ap.add_argument("--proxy", action="store_true",
                    help="loopback servers behind the fault-injecting TCP proxy (proxynet.py), the fallback "
                         "used anyway where network namespaces are unavailable")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    duration = args.duration
    if args.ci:
        seeds, duration = CI_SEEDS, CI_DURATION
    if args.full:
        seeds, duration = FULL_SEEDS, FULL_DURATION

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)

    t0 = time.monotonic()
    summaries = []
    for seed in seeds:
        try:
            s = one_run(args.kind, seed, duration, args.results, args.keep, args.servers, args.proxy)
        except Exception as e:  # noqa: BLE001 - the ensemble did not even start, say, or a harness bug
            s = {"seed": seed, "status": "FAIL", "ops": 0, "ok": 0, "fail": 0, "info": 0, "faults": 0,
                 "fault_kinds": {}, "reconfigs": 0, "reconfigs_ok": 0, "reconfigs_failed": 0,
                 "reconfigs_indeterminate": 0, "anomalies": 0, "lost_writes": 0, "wall_s": 0,
                 "by_workload": {}, "inconclusive": [], "problems": [f"run failed: {e!r}"]}
        summaries.append(s)
        log(f"{args.kind} seed {seed}: {s['status']}: {s['ops']} ops ({s['ok']} ok, {s['fail']} fail, "
            f"{s['info']} indeterminate), {s['faults']} faults {s['fault_kinds']}, {s['reconfigs']} reconfigs "
            f"({s['reconfigs_ok']} ok, {s['reconfigs_failed']} failed, {s['reconfigs_indeterminate']} "
            f"indeterminate), anomalies {s['anomalies']}, lost writes {s['lost_writes']}, {s['wall_s']} s")
        log(f"    workloads: {json.dumps(s['by_workload'])}")
        if s.get("disk_full_exits"):
            log(f"    servers that exited on a full disk (restarted when freed): {s['disk_full_exits']}")
        for p in s["problems"]:
            log(f"    PROBLEM: {p}")
        if s["inconclusive"]:
            log(f"    inconclusive register checks: {s['inconclusive']}")
    total = {k: sum(s[k] for s in summaries) for k in ("ops", "faults", "reconfigs", "reconfigs_ok",
                                                       "reconfigs_failed", "reconfigs_indeterminate",
                                                       "anomalies", "lost_writes")}
    bad = [s["seed"] for s in summaries if s["status"] != "ok"]
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, f"summary-{args.kind}.json"), "w") as f:
        json.dump({"total": total, "runs": summaries, "wall_s": round(time.monotonic() - t0, 1)}, f, indent=1,
                  default=str)
    log(f"TOTAL {args.kind}: {total['ops']} ops, {total['faults']} faults, {total['reconfigs']} reconfigs "
        f"({total['reconfigs_ok']} ok, {total['reconfigs_failed']} failed, {total['reconfigs_indeterminate']} "
        f"indeterminate), anomalies {total['anomalies']}, lost acknowledged writes {total['lost_writes']}, "
        f"wall {time.monotonic() - t0:.0f} s" + (f"; FAILED seeds {bad}" if bad else ""))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
