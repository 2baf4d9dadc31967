#!/usr/bin/env python3
"""Hostile-input suite (issue 17): every client opcode (valid, truncated, oversized, garbage
fields) to the leader, a follower, an observer and a standalone server; pre-handshake garbage;
impostor and garbage traffic on the quorum and election ports; memory shapes (slow recursive
watchers, a 1 GB multiRead, 1 MB pre-handshake declarations). After every probe every server
must be alive and serving (a fresh kazoo session and a create through each), the leader and
its epoch unchanged, no panic/OutOfMemoryError in the logs, and RSS under 512 MB.

    python3 tests/hostile/hostile.py --kind zkrs|zk [--topology ensemble|standalone|both] [--quick]

Exit status: 1 if any zkrs probe failed; a ZooKeeper run (--kind zk) only reports where
ZooKeeper fails. See tests/hostile/README.md.
"""
import argparse
import json
import os
import random
import re
import resource
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import client_probes  # noqa: E402
import mem_probes  # noqa: E402
import peer_probes  # noqa: E402
import wire  # noqa: E402
from ensemble import check_prerequisites  # noqa: E402
from world import RSS_LIMIT_MB, Deployment, RssSampler  # noqa: E402

ROLE_ORDER = ["leader", "follower", "observer", "standalone"]
EVIDENCE = r"^(?!\s*(at |\d+: )).*(panicked|ERROR|FATAL|OutOfMemory|Exception|WARN)"


class Suite:
    def __init__(self, args):
        self.args = args
        self.kind = args.kind
        self.deps = []
        self.results = []
        self.sampler = None
        self.rng = random.Random(args.seed)
        self.k = 0
        self.only = re.compile(args.only) if args.only else None
        self.t_start = time.monotonic()
        self.unrecoverable = []

    def selected(self, name):
        return not self.only or self.only.search(name)

    # -- one probe and its checks -----------------------------------------------------------

    def run(self, dep, role, name, fn, settle=0.0, leader_check=True):
        """Runs fn(sid) -> answer against the server in `role`, then the checks."""
        sid = dep.role_sid(role)
        if sid is None:
            self.recover(dep, ["no server in role " + role])
            sid = dep.role_sid(role)
        offsets = dep.log_offsets()
        self.sampler.window()
        t0 = time.monotonic()
        try:
            answer = fn(sid)
        except Exception as e:  # noqa: BLE001
            answer = f"probe-exception {type(e).__name__}: {str(e)[:60]}"
            if self.args.verbose:
                traceback.print_exc()
        if settle:
            time.sleep(settle)
        self.check(dep, {role: sid}, name, {role: answer}, offsets, t0, leader_check)

    def check(self, dep, role_sids, name, answers, offsets, t0, leader_check=True, extra=None, peaks=None):
        problems = dep.session_problems()
        if problems and not dep.new_log_lines(offsets, r"panicked", limit=1) \
                and all(dep.alive(sid) for sid in dep.sids()):
            time.sleep(1.0)   # a server that was only slow gets a second chance
            problems = dep.session_problems()
        if leader_check:
            problems += dep.leader_problems()
        during_check = self.sampler.window()
        peaks = {k: max(v, during_check.get(k, 0.0)) for k, v in (peaks or during_check).items()}
        for sid in dep.sids():
            peak = peaks.get((dep.name, sid))
            if peak is not None and peak > RSS_LIMIT_MB:
                problems.append(f"server {sid}: peak RSS {peak:.0f} MB > {RSS_LIMIT_MB:.0f} MB")
        for line in dep.new_log_lines(offsets, r"panicked|OutOfMemoryError", limit=3):
            problems.append(("panic logged: " if "panicked" in line else "OOM logged: ") + line[:200])
        problems += (extra or [])
        evidence = dep.new_log_lines(offsets, EVIDENCE, limit=10) if problems else []
        bg = sum(len(c.errors_between(t0, time.monotonic())) for c in dep.load)
        for role, sid in role_sids.items():
            self.results.append({
                "probe": name, "role": role, "sid": sid, "deployment": dep.name,
                "answer": answers.get(role, ""), "ok": not problems, "problems": problems,
                "evidence": evidence, "bg_errors": bg,
                "rss_peak_mb": round(peaks.get((dep.name, sid), 0.0), 1),
            })
        if problems:
            print(f"  FAIL {name} @ {','.join(role_sids)}: {'; '.join(problems)[:300]}", flush=True)
            self.recover(dep, problems, name)
        elif self.args.verbose:
            print(f"  ok   {name} @ {','.join(role_sids)}: {answers}", flush=True)

    def recover(self, dep, problems, probe="-"):
        """Restarts the servers that died or stopped serving; waits until the deployment serves;
        takes the leader/epoch baseline anew."""
        bad = set()
        for p in problems:
            # dead, not serving, over the RSS limit (memory not returned would be charged to the
            # next probes), a panic or an OutOfMemoryError logged: start that server afresh
            m = re.match(r"(?:panic logged: |OOM logged: )?server (\d+)(?::| exited)", p)
            if m:
                bad.add(int(m.group(1)))
        for sid in dep.sids():
            if not dep.alive(sid):
                bad.add(sid)
        try:
            for sid in sorted(bad):
                print(f"    restarting {dep.kind} server {sid} ({'alive' if dep.alive(sid) else 'dead'})", flush=True)
                dep.relaunch(sid)
            dep.wait_ready(60)
        except Exception as e:  # noqa: BLE001
            dead = [sid for sid in dep.sids() if not dep.alive(sid)] or sorted(bad)
            print(f"    {dep.kind} {dep.name} did not recover ({str(e).splitlines()[0][:120]}); "
                  f"wiping the data of server(s) {dead}", flush=True)
            self.unrecoverable.append(f"{dep.name}: server(s) {dead} could not restart on their own data "
                                      f"after probe '{probe}': {str(e).splitlines()[0][:160]}")
            try:
                for sid in dead:
                    dep.wipe(sid)
                dep.wait_ready(60)
            except Exception as e2:  # noqa: BLE001
                print(f"    still not serving ({str(e2).splitlines()[0][:120]}); starting a fresh {dep.name}",
                      flush=True)
                dep.rebuild()
        dep.ensure_fixtures()
        dep.rebaseline()

    # -- phases -----------------------------------------------------------------------------

    def client_phase(self):
        for dep in self.deps:
            for role in dep.roles():
                for op in client_probes.ALL_OPS:
                    for variant in client_probes.variants(op, self.args.quick):
                        name = f"op {op:>4} {wire.OPS[op]}: {variant}"
                        if not self.selected(name):
                            continue
                        self.k += 1
                        k, rng = self.k, random.Random(self.k)
                        self.run(dep, role, name,
                                 lambda sid, op=op, variant=variant, k=k, rng=rng, dep=dep:
                                 client_probes.run_client_probe(dep.port(sid), op, variant, k, rng))
                print(f"  client probes on {dep.kind} {role} done ({self.elapsed()})", flush=True)

    def pre_phase(self):
        probes = client_probes.pre_handshake_probes(self.args.quick)
        for dep in self.deps:
            for role in dep.roles():
                for name, payload in probes.items():
                    if self.selected(name):
                        self.run(dep, role, name,
                                 lambda sid, payload=payload, dep=dep: client_probes.run_pre_probe(dep.port(sid), payload))
        print(f"  pre-handshake probes done ({self.elapsed()})", flush=True)

    def peer_phase(self):
        for dep in self.deps:
            if dep.topology != "ensemble":
                continue
            qprobes = peer_probes.quorum_probes(self.args.quick)
            eprobes = peer_probes.election_probes(self.args.quick)
            for role in ("leader", "follower"):
                for name, fn in qprobes.items():
                    if not self.selected(name):
                        continue

                    def q(sid, fn=fn, dep=dep):
                        leader = dep.role_sid("leader")
                        _, zxid = peer_probes_srvr(dep, leader)
                        try:
                            return fn(dep.members[sid].quorum_port, zxid >> 32, zxid, None)
                        except ConnectionRefusedError:
                            return "refused"
                    self.run(dep, role, name, q, settle=self.args.settle)
                for name, fn in eprobes.items():
                    if not self.selected(name):
                        continue

                    def e(sid, fn=fn, dep=dep):
                        try:
                            return fn(dep.members[sid].election_port, sid, None)
                        except ConnectionRefusedError:
                            return "refused"
                    self.run(dep, role, name, e, settle=self.args.settle)
            print(f"  quorum/election probes done ({self.elapsed()})", flush=True)

    def mem_phase(self):
        quick = self.args.quick
        # 1. pre-handshake connections declaring 1 MB, held
        name = f"mem {self.args.hold_conns} conns declare 1 MB, send 1 byte, held {self.args.hold:g}s"
        if self.selected(name):
            self.shared(name, lambda: self._hold(), hold=True)
        # 2. recursive watchers that never read
        name = f"mem 20 unread recursive watchers/server, 2 writers, {self.args.watch_seconds:g}s"
        if self.selected(name):
            self.shared(name, lambda: self._watch())
        # 3. multiRead of 1,000 x 1 MB
        name = "mem multiRead 1000 x getData(1 MB znode)"
        if self.selected(name):
            for dep in self.deps:
                mem_probes.ensure_big(dep)
                for role in dep.roles():
                    self.run(dep, role, name, lambda sid, dep=dep: mem_probes.multiread_probe(dep.port(sid)))
        print(f"  memory probes done ({self.elapsed()}){' (quick)' if quick else ''}", flush=True)

    def restart_phase(self):
        """Every server stopped and started again on its own data: no probe may have left
        anything behind (a txn in the log, a snapshot) that stops a server from starting."""
        name = "final: every server restarted on its data"
        if not self.selected(name):
            return
        for dep in self.deps:
            offsets = dep.log_offsets()
            roles = {role: dep.role_sid(role) for role in dep.roles()}
            self.sampler.window()
            t0 = time.monotonic()
            problems = []
            for sid in dep.sids():
                dep.members[sid].stop()
            for sid in dep.sids():
                try:
                    dep.relaunch(sid)
                except Exception as e:  # noqa: BLE001
                    problems.append(f"server {sid} exited ({str(e).splitlines()[0][:100]})")
            try:
                dep.wait_ready(60)
                answer = f"serving again after {time.monotonic() - t0:.1f}s"
            except Exception as e:  # noqa: BLE001
                answer = "not serving"
                problems.append(str(e).splitlines()[0][:200])
            dep.rebaseline()
            rs = {role: sid for role, sid in roles.items() if sid is not None}
            self.check(dep, rs, name, {role: answer for role in rs}, offsets, t0, leader_check=False,
                       extra=problems)

    def _hold(self):
        targets = {(dep.name, sid): dep.port(sid) for dep in self.deps for sid in dep.sids()}
        out = mem_probes.hold_probe(targets, self.args.hold_conns, self.args.hold)
        answers, extra = {}, {}
        for key, (summary, text) in out.items():
            answers[key] = text
            open_now = sum(total - closed for closed, total, _ in summary.values())
            if self.args.hold >= 15 and open_now:
                extra[key] = [f"server {key[1]}: {open_now} pre-handshake connections still open after "
                              f"{self.args.hold:g}s"]
        return answers, extra

    def _watch(self):
        spec = []
        for dep in self.deps:
            if dep.topology == "ensemble":
                ports = [dep.port(dep.role_sid("leader")), dep.port(dep.role_sid("follower"))]
            else:
                ports = [dep.port(0), dep.port(0)]
            spec.append((dep, dep.sids(), ports))
        return mem_probes.recursive_watch_probe(spec, self.args.watch_seconds), {}

    def shared(self, name, fn, hold=False):
        """A probe run against every server of every deployment at once; checked per deployment."""
        offsets = {dep.name: dep.log_offsets() for dep in self.deps}
        roles = {dep.name: {role: dep.role_sid(role) for role in dep.roles()} for dep in self.deps}
        self.sampler.window()
        t0 = time.monotonic()
        try:
            answers, extra = fn()
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            answers, extra = {}, {}
            for dep in self.deps:
                for sid in dep.sids():
                    extra[(dep.name, sid)] = [f"probe exception {e!r}"]
        peaks = self.sampler.window()
        for dep in self.deps:
            rs = {role: sid for role, sid in roles[dep.name].items() if sid is not None}
            ans = {role: f"peak {peaks.get((dep.name, sid), 0):.0f} MB; {answers.get((dep.name, sid), '')}"
                   for role, sid in rs.items()}
            more = [p for sid in rs.values() for p in extra.get((dep.name, sid), [])]
            self.check(dep, rs, name, ans, offsets[dep.name], t0, extra=more, peaks=peaks)

    def elapsed(self):
        return f"{time.monotonic() - self.t_start:.0f}s"

    # -- report -----------------------------------------------------------------------------

    def report(self):
        roles = [r for r in ROLE_ORDER if any(x["role"] == r for x in self.results)]
        names = []
        for r in self.results:
            if r["probe"] not in names:
                names.append(r["probe"])
        cell = {(r["probe"], r["role"]): r for r in self.results}
        width = self.args.cell_width
        name_w = min(62, max(len(n) for n in names)) if names else 10
        print()
        print(f"== {self.kind}: probe x role -> answer (FAIL = a check failed after the probe) ==")
        print(f"{'probe':<{name_w}} | " + " | ".join(f"{r:<{width}}" for r in roles))
        print("-" * (name_w + 3 + (width + 3) * len(roles)))
        for n in names:
            cells = []
            for r in roles:
                x = cell.get((n, r))
                text = "" if x is None else (("FAIL " if not x["ok"] else "") + x["answer"])
                cells.append(f"{text[:width]:<{width}}")
            print(f"{n[:name_w]:<{name_w}} | " + " | ".join(cells))
        failed = [r for r in self.results if not r["ok"]]
        print()
        print(f"{len(self.results)} probe runs, {len(failed)} failed; peak RSS per server over the run: "
              + ", ".join(f"{d}/{s}: {v:.0f} MB" for (d, s), v in sorted(self.sampler.overall.items())))
        if failed:
            title = ("Where ZooKeeper fails (recorded; does not fail a --kind zk run)" if self.kind == "zk"
                     else "zkrs failures")
            print(f"\n== {title} ==")
            for r in failed:
                print(f"* {r['probe']} -> {r['role']} (server {r['sid']}, {r['deployment']}): answer {r['answer']}")
                for p in r["problems"]:
                    print(f"    problem: {p}")
                for line in r["evidence"][:8]:
                    print(f"    log: {line}")
                if r["bg_errors"]:
                    print(f"    background write errors during the probe: {r['bg_errors']}")
        for u in self.unrecoverable:
            print(f"! recovery: {u}")
        bg = [r for r in self.results if r["ok"] and r["bg_errors"]]
        if bg:
            print(f"\n(passing probes with background write errors: "
                  + ", ".join(f"{r['probe']}@{r['role']}:{r['bg_errors']}" for r in bg[:20]) + ")")
        if self.args.json:
            with open(self.args.json, "w") as f:
                json.dump({"kind": self.kind, "quick": self.args.quick, "results": self.results}, f, indent=1)
            print(f"results written to {self.args.json}")
        return failed


def peer_probes_srvr(dep, sid):
    from world import srvr
    mode, zxid = srvr(dep.port(sid))
    if zxid is None:
        raise RuntimeError(f"no srvr answer from server {sid}")
    return mode, zxid


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", required=True, choices=("zkrs", "zk"))
    ap.add_argument("--topology", default="both", choices=("ensemble", "standalone", "both"))
    ap.add_argument("--quick", action="store_true", help="fewer variants, shorter memory probes")
    ap.add_argument("--phases", default="client,pre,peer,mem,restart",
                    help="comma list of client,pre,peer,mem,restart")
    ap.add_argument("--only", help="regex: run only the probes whose name matches")
    ap.add_argument("--json", help="write every probe's result to this file")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--settle", type=float, default=0.5, help="wait after a quorum/election probe (s)")
    ap.add_argument("--cell-width", type=int, default=30)
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    args.hold = 8.0 if args.quick else 15.0
    args.hold_conns = 100 if args.quick else 500
    args.watch_seconds = 8.0 if args.quick else 20.0
    check_prerequisites(args.kind)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)   # so that the servers are stopped and directories removed
    suite = Suite(args)
    topologies = ["ensemble", "standalone"] if args.topology == "both" else [args.topology]
    phases = args.phases.split(",")
    failed = []
    try:
        for topo in topologies:
            dep = Deployment(args.kind, topo)
            suite.deps.append(dep)
            dep.start()
        suite.sampler = RssSampler(suite.deps)
        suite.sampler.start()
        print(f"hostile: {args.kind} {'+'.join(topologies)} up ({suite.elapsed()}); "
              + "; ".join(f"{d.name}: " + ", ".join(f"{sid}={d.port(sid)}" for sid in d.sids()) for d in suite.deps),
              flush=True)
        if "client" in phases:
            suite.client_phase()
        if "pre" in phases:
            suite.pre_phase()
        if "peer" in phases:
            suite.peer_phase()
        if "mem" in phases:
            suite.mem_phase()
        if "restart" in phases:
            suite.restart_phase()
    except BaseException:  # noqa: BLE001  (KeyboardInterrupt too: report what ran, then clean up)
        traceback.print_exc()
        suite.results.append({"probe": "suite aborted", "role": "leader", "sid": None, "deployment": "-",
                              "answer": "exception", "ok": False, "problems": [traceback.format_exc(limit=3)],
                              "evidence": [], "bg_errors": 0, "rss_peak_mb": 0})
    finally:
        if suite.sampler:
            suite.sampler.halt.set()
        if suite.results:
            failed = suite.report()
        for dep in suite.deps:
            dep.cleanup()
    print(f"hostile {args.kind}: {'FAILED' if failed else 'ok'} ({len(failed)} failed probe runs), "
          f"wall {suite.elapsed()}")
    if args.kind == "zkrs" and failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
