#!/usr/bin/env python3
"""Reconfiguration benchmark (the reconfig paper's Figures 6-8): write throughput over time,
in 100 ms buckets, while a server is added, while a follower is removed and while the leader
is removed — Apache ZooKeeper 3.8 and zkrs on this machine, one after the other, same load.

Each trial of each scenario runs on a fresh ensemble built by tests/reconfig/cluster.py (the
reconfig suite's machinery): 3 participants plus a joiner (server 4, started with the current
configuration plus itself as an observer, so that it follows as a non-voting follower), with
reconfigEnabled=true, standaloneEnabled=false, the super user's digest (reconfig is sent as
super), forceSync=yes, tickTime 500 / initLimit 20 / syncLimit 10, 4lw whitelist *, all on
loopback. A closed-loop write load — `--sessions` sessions of a small raw-protocol client
(asyncio, one thread), each keeping `--in-flight` setData requests of 1 KiB in flight on its
own znode — runs against the servers that stay in the configuration (session i starts on the
i-th of them and, when its connection drops, resumes its session on the next one). After a
warm-up the reconfig is issued (t0) through a kazoo client on a follower that stays:

    add       reconfig -add server.4=...:participant  (the joiner becomes a voter)
    follower  reconfig -remove <a follower>           (it stays up as a non-voting follower)
    leader    reconfig -remove <the leader>           (it hands off to a designated successor)

Figures per trial (times relative to t0): acks per 100 ms bucket; the pre-event level, the
median bucket of the last 2 s before t0 (at most the second half of the warm-up: before it,
sessions connect and ZooKeeper's JIT warms up); the longest gap between consecutive acks (any
session) from the gap that spans t0 to the end of the run (a stall lasting to the end counts
up to the end), and the longest one before t0 for reference (noise); the time back to 90%:
the earliest s >= 0 from which three consecutive 100 ms windows [s, s + 0.3 s) each hold >= 90%
of the pre-event level (s on a 10 ms grid; 0 when throughput never drops), and the same
against the lower of the levels before and after (adding a voter lowers the level for good);
the dip: the smallest bucket in the 2 s after t0 / the lower of the levels before and after
(and the smallest bucket in the 2 s before t0 / the pre-event level, for the noise: windows of
equal length, since the minimum of more buckets is lower by chance alone); ops/s before and after (median bucket of the last 2 s). Medians over the trials,
with zkrs / ZooKeeper ratios. Usage:

    python3 bench/reconfig.py [--kinds zk,zkrs] [--trials 3] [--warmup 4] [--run 5]
                              [--sessions 8] [--in-flight 4] [--json bench/results/reconfig.json]
                              [--plot docs/reconfig-timelines.png] [--quick]

--quick (CI smoke run): 1 trial, 1 s warm-up, 1 s run, no quiet-machine wait, no plot and
no JSON unless asked for; it only checks that everything runs and prints the table.
"""
import argparse
import asyncio
import bisect
import json
import logging
import os
import statistics
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# the harness first (its ensemble.py, not bench/ensemble.py), then the reconfig suite's cluster.py
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
sys.path.insert(0, os.path.join(REPO, "tests", "reconfig"))

from cluster import INIT_LIMIT, SYNC_LIMIT, TICK_MS, Cluster  # noqa: E402
from common import comma_list, machine, pin_zkrs_binary, provenance, wait_for_quiet  # noqa: E402

NAMES = {"zk": "ZooKeeper", "zkrs": "zkrs"}
SCENARIOS = {
    "add": "add server 4 (joiner → participant)",
    "follower": "remove a follower",
    "leader": "remove the leader",
}
BUCKET = 0.1          # seconds
GRID = 0.01           # step of the sliding windows of the time back to 90%
RECOVERED = 0.9       # "back" = at least this share of the pre-event median
STAY_BUCKETS = 3      # ... in this many consecutive windows
JOINER = 4


# -- the load: a minimal ZooKeeper client speaking the wire protocol ------------------------

OP_SETDATA, OP_PING = 5, 11
PING = struct.pack(">iii", 8, -2, OP_PING)


class Session:
    """One client session: connects (or resumes its session) on hosts[start], keeps `in_flight`
    setData requests outstanding, records the monotonic time of every successful reply, and on
    a lost connection resumes on the next host, as ZooKeeper's clients do."""

    def __init__(self, idx, hosts, path, value, in_flight, timeout_ms):
        self.hosts = hosts
        self.host = idx % len(hosts)
        self.path = path.encode()
        self.request_body = (struct.pack(">i", len(self.path)) + self.path
                             + struct.pack(">i", len(value)) + value + struct.pack(">i", -1))
        self.in_flight = in_flight
        self.timeout_ms = timeout_ms
        self.session_id, self.passwd, self.last_zxid, self.xid = 0, b"\0" * 16, 0, 0
        self.acks, self.errors, self.connects, self.expired = [], 0, 0, 0

    async def run(self):
        while True:
            try:
                await self._connection(*self.hosts[self.host])
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                pass
            self.host = (self.host + 1) % len(self.hosts)
            await asyncio.sleep(0.01)

    async def _connection(self, host, port):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
        try:
            req = (struct.pack(">iqiq", 0, self.last_zxid, self.timeout_ms, self.session_id)
                   + struct.pack(">i", len(self.passwd)) + self.passwd + b"\0")
            writer.write(struct.pack(">i", len(req)) + req)
            n, = struct.unpack(">i", await asyncio.wait_for(reader.readexactly(4), 2.0))
            body = await asyncio.wait_for(reader.readexactly(n), 2.0)
            _, timeout, sid = struct.unpack_from(">iiq", body, 0)
            plen, = struct.unpack_from(">i", body, 16)
            if timeout <= 0 or sid == 0:  # the session expired: start a new one
                self.session_id, self.passwd = 0, b"\0" * 16
                self.expired += 1
                return
            self.session_id, self.passwd = sid, body[20:20 + plen]
            self.connects += 1
            last_rx = [time.monotonic()]
            keeper = asyncio.ensure_future(self._keepalive(writer, last_rx, timeout * 2 / 3 / 1000))
            try:
                for _ in range(self.in_flight):
                    self._send_set(writer)
                while True:
                    n, = struct.unpack(">i", await reader.readexactly(4))
                    body = await reader.readexactly(n)
                    now = time.monotonic()
                    last_rx[0] = now
                    xid, zxid, err = struct.unpack_from(">iqi", body, 0)
                    if zxid > self.last_zxid:
                        self.last_zxid = zxid
                    if xid < 0:  # ping reply (-2) or watch event (-1)
                        continue
                    if err == 0:
                        self.acks.append(now)
                    else:
                        self.errors += 1
                    self._send_set(writer)
            finally:
                keeper.cancel()
        finally:
            writer.transport.abort()

    def _send_set(self, writer):
        self.xid += 1
        frame = struct.pack(">iii", 8 + len(self.request_body), self.xid, OP_SETDATA) + self.request_body
        writer.write(frame)

    @staticmethod
    async def _keepalive(writer, last_rx, read_timeout):
        """Pings once a second; drops the connection when nothing was read for 2/3 of the
        session timeout (the Java client's rule)."""
        while True:
            await asyncio.sleep(min(1.0, read_timeout / 2))
            if time.monotonic() - last_rx[0] > read_timeout:
                writer.transport.abort()
                return
            writer.write(PING)


class Load:
    """The sessions on an event loop in a thread of their own, until `end` (monotonic)."""

    def __init__(self, hosts, sessions, in_flight, value, timeout_ms=6000):
        self.sessions = [Session(i, hosts, f"/bench/s{i}", value, in_flight, timeout_ms) for i in range(sessions)]
        self.end = float("inf")
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="load", daemon=True)

    async def _main(self):
        tasks = [asyncio.ensure_future(s.run()) for s in self.sessions]
        while time.monotonic() < self.end:
            await asyncio.sleep(0.02)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def start(self):
        self.thread.start()
        return self

    def stop_at(self, end):
        self.end = end

    def join(self):
        self.thread.join()

    def acks(self):
        return sorted(t for s in self.sessions for t in s.acks)


# -- CPU accounting: how much did processes other than ours use during a trial --------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def busy_jiffies():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def process_jiffies(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError):
        return 0


class CpuMeter:
    def __init__(self, pids):
        self.pids = pids
        self.t = time.monotonic()
        self.busy = busy_jiffies()
        self.ours = self._ours()

    def _ours(self):
        own = os.times()
        return sum(process_jiffies(p) for p in self.pids) + (own.user + own.system) * CLK_TCK

    def foreign_cores(self):
        """CPU used by every other process since construction, in cores."""
        elapsed = time.monotonic() - self.t
        foreign = (busy_jiffies() - self.busy) - (self._ours() - self.ours)
        return max(0.0, foreign / CLK_TCK / elapsed)


# -- one trial --------------------------------------------------------------------------------

class BenchCluster(Cluster):
    """The reconfig suite's ensemble, with forceSync explicit (yes is the default of both)."""

    def static_cfg(self, member):
        cfg = super().static_cfg(member)
        cfg["forceSync"] = "yes"
        return cfg


def issue_reconfig(admin, joining, leaving, box):
    """Sends the reconfig; records when (and whether) its reply came back. Runs in a thread so
    that the run goes on whatever the admin client's connection does."""
    try:
        admin.reconfig_async(joining, leaving, None, -1).get(timeout=30)
        box["reply_at"] = time.monotonic()
    except Exception as e:  # noqa: BLE001 - e.g. ConnectionLoss when the leader leaves; checked after
        box["error"] = repr(e)


def voters_seen(c, sids):
    """{sid: voters of the committed config as read (sync + get) on each server in sids}."""
    out = {}
    for sid in sids:
        try:
            out[sid] = c.read_config(sid).voters()
        except Exception as e:  # noqa: BLE001
            out[sid] = repr(e)
    return out


def run_trial(kind, scenario, args):
    c = BenchCluster(kind, 3)
    try:
        c.start()
        leader = c.wait_for_leader(timeout=60)
        c.add_joiner(JOINER, role="observer")
        c.wait_for_mode(JOINER, ("follower", "observer"), 60)
        followers = sorted(sid for sid in (1, 2, 3) if sid != leader)
        if scenario == "add":
            stays, joining, leaving = [1, 2, 3], c.spec(JOINER), None
            expected = [1, 2, 3, JOINER]
        elif scenario == "follower":
            removed = followers[-1]
            stays, joining, leaving = [leader, followers[0]], None, str(removed)
            expected = sorted(stays)
        else:
            stays, joining, leaving = followers, None, str(leader)
            expected = followers
        admin = c.client([followers[0]], auth=True)
        try:
            admin.ensure_path("/bench")
            for i in range(args.sessions):
                admin.ensure_path(f"/bench/s{i}")
            hosts = [("127.0.0.1", c.members[sid].port) for sid in sorted(stays)]
            load = Load(hosts, args.sessions, args.in_flight, b"x" * args.value_size).start()
            cpu = CpuMeter([m.proc.pid for m in c.members.values() if m.running])
            time.sleep(args.warmup)
            box = {}
            t0 = time.monotonic()
            load.stop_at(t0 + args.run)
            sender = threading.Thread(target=issue_reconfig, args=(admin, joining, leaving, box), daemon=True)
            sender.start()
            load.join()
            foreign = cpu.foreign_cores()
            sender.join(timeout=30)
        finally:
            admin.stop()
            admin.close()
        seen = voters_seen(c, sorted(stays))
        new_leader = c.wait_for_leader(sids=sorted(stays) + ([JOINER] if scenario == "add" else []), timeout=30)
        ok = all(v == expected for v in seen.values())
        if not ok:
            raise RuntimeError(f"{kind} {scenario}: the reconfig did not commit as expected: voters {seen}, "
                               f"expected {expected}; reconfig {box}\n{c.log_tails(lines=20)}")
        acks = load.acks()
        result = {
            "kind": kind, "scenario": scenario, "leader_before": leader, "leader_after": new_leader,
            "removed": None if scenario == "add" else int(leaving), "sessions_on": sorted(stays),
            "reconfig_reply_s": box["reply_at"] - t0 if "reply_at" in box else None,
            "reconfig_error": box.get("error"),
            "errors": sum(s.errors for s in load.sessions),
            "connects": sum(s.connects for s in load.sessions),
            "expired": sum(s.expired for s in load.sessions),
            "foreign_cpu_cores": round(foreign, 3), "loadavg_after": os.getloadavg()[0],
            "workdir": c.workdir if os.environ.get("KEEP_SERVER_DIRS") else None,
        }
        result.update(metrics(acks, t0, args.warmup, args.run))
        return result
    finally:
        c.cleanup()


# -- figures ----------------------------------------------------------------------------------

def count_between(acks, a, b):
    return bisect.bisect_left(acks, b) - bisect.bisect_left(acks, a)


def metrics(acks, t0, warmup, run):
    nb_pre, nb_post = round(warmup / BUCKET), round(run / BUCKET)
    buckets = [count_between(acks, t0 + k * BUCKET, t0 + (k + 1) * BUCKET) for k in range(-nb_pre, nb_post)]
    # the pre-event window: the last 2 s before t0 (at most the second half of the warm-up);
    # before it, sessions connect and ZooKeeper's JIT warms up (about 1.5 s on this machine)
    skip = max(nb_pre - 20, nb_pre // 2)
    pre = buckets[skip:nb_pre]
    after = buckets[nb_pre:]
    pre_median = statistics.median(pre)
    post = after[-min(20, max(1, len(after) * 2 // 5)):]
    window = min(len(pre), len(after))  # of the dip

    def longest_gap(times):
        gaps = [(b - a, a) for a, b in zip(times, times[1:])]
        return max(gaps) if gaps else (float("nan"), float("nan"))

    lo = bisect.bisect_left(acks, t0 - warmup + skip * BUCKET)
    at0 = bisect.bisect_left(acks, t0)
    hi = bisect.bisect_left(acks, t0 + run)
    # from the last ack before t0 to the end of the run (a stall that lasts to the end counts)
    gap, gap_from = longest_gap(acks[max(lo, at0 - 1):hi] + [t0 + run])
    censored = gap_from + gap >= t0 + run  # still stalled at the end: the gap is a lower bound
    pre_gap, _ = longest_gap(acks[lo:at0])
    post_ops = statistics.median(post) / BUCKET

    def time_back(level):
        need = RECOVERED * level
        steps = round((run - STAY_BUCKETS * BUCKET) / GRID)
        for i in range(steps + 1):
            s = t0 + i * GRID
            if all(count_between(acks, s + j * BUCKET, s + (j + 1) * BUCKET) >= need for j in range(STAY_BUCKETS)):
                return i * GRID
        return None

    return {
        "buckets_from_s": -nb_pre * BUCKET,
        "buckets": buckets,
        "pre_median_per_bucket": pre_median,
        "pre_ops_per_s": pre_median / BUCKET,
        "post_ops_per_s": post_ops,
        "longest_gap_s": gap,
        "longest_gap_from_s": gap_from - t0,
        "longest_gap_to_end": censored,
        "pre_longest_gap_s": pre_gap,
        "time_to_90_s": time_back(pre_median),
        # 90% of the lower of the levels before and after (adding a voter lowers the level for good)
        "time_to_90_settled_s": time_back(min(pre_median, post_ops * BUCKET)) if post_ops else None,
        # the dip: the smallest bucket of a window after t0 as long as the pre-event window
        # (the minimum of more buckets is lower by chance alone), against the lower of the
        # levels before and after, as for the settled time back to 90%
        "dip": min(after[:window]) / min(pre_median, post_ops * BUCKET) if pre_median and post_ops else None,
        "dip_bucket_s": min(range(window), key=lambda k: after[k]) * BUCKET,
        "pre_dip": min(pre) / pre_median if pre_median else None,
        "acks": len(acks),
    }


FIGURES = ["longest_gap_s", "time_to_90_s", "time_to_90_settled_s", "pre_ops_per_s", "post_ops_per_s", "dip", "pre_dip",
           "pre_longest_gap_s", "reconfig_reply_s", "foreign_cpu_cores"]


def median_of(trials, key):
    values = [t[key] for t in trials]
    if key in ("time_to_90_s", "time_to_90_settled_s"):  # never back within the run: counts as longer than any value
        values = [float("inf") if v is None else v for v in values]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# one-sided 95% quantiles of Student's t by degrees of freedom (beyond 10: the normal's)
T_95 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860, 9: 1.833, 10: 1.812}


def paired_dip(trials):
    """Whether throughput dips beyond noise after the reconfig: a one-sided paired t-test at 5%
    of each trial's lowest bucket after t0 against its lowest bucket before (windows of equal
    length, both as shares of the level). Comparing the medians alone would call a dip half the
    time when nothing happens, the two minima being equally likely to be the lower."""
    diffs = [t["dip"] - t["pre_dip"] for t in trials if t["dip"] is not None and t["pre_dip"] is not None]
    if len(diffs) < 2:
        return {"dip_paired_mean": None, "dip_paired_se": None, "dip_beyond_noise": None}
    mean = statistics.mean(diffs)
    se = statistics.stdev(diffs) / len(diffs) ** 0.5
    critical = T_95.get(len(diffs) - 1, 1.645)
    return {"dip_paired_mean": mean, "dip_paired_se": se, "dip_beyond_noise": mean < -critical * se}


def summarize(trials):
    out = {key: median_of(trials, key) for key in FIGURES}
    out.update(paired_dip(trials))
    # the median gap is a lower bound when at least half of the trials were still stalled at the end
    out["longest_gap_to_end"] = 2 * sum(t["longest_gap_to_end"] for t in trials) >= len(trials)
    out["stalls_over_1s"] = sum(t["longest_gap_s"] > 1.0 for t in trials)
    out["trials"] = len(trials)
    return out


def representative(trials):
    """The trial with the median longest gap (its timeline is the one plotted)."""
    ordered = sorted(trials, key=lambda t: t["longest_gap_s"])
    return ordered[(len(ordered) - 1) // 2]


# -- output -----------------------------------------------------------------------------------

def ms(v):
    if v is None:
        return "n/a"
    if v == float("inf"):
        return "not back"
    return f"{v * 1000:.0f}"


def ratio(new, old):
    if new is None or old is None or old == 0 or float("inf") in (new, old):
        return "n/a"
    return f"{new / old:.2f}x"


def tables(summary, kinds, args):
    compare = "zk" in kinds and "zkrs" in kinds
    out = []
    n = args.trials
    out.append(f"Medians of {n} trial(s) per scenario and kind, each on a fresh ensemble; {args.sessions} sessions × "
               f"{args.in_flight} setData of {args.value_size} B in flight on the servers that stay; "
               f"{args.warmup:g} s warm-up, reconfig at t0, {args.run:g} s after. Times in ms; ratios zkrs / ZooKeeper.\n")

    def table(header_groups, rows):
        header = ["scenario"]
        for title in header_groups:
            header += [f"{title}: {NAMES[k]}" for k in kinds] + (["ratio"] if compare else [])
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        for scenario in summary:
            cells = [SCENARIOS[scenario]]
            for key, fmt in rows:
                vals = {k: summary[scenario][k][key] for k in kinds}
                cells += [("≥ " if key == "longest_gap_s" and summary[scenario][k]["longest_gap_to_end"] else "")
                          + fmt(vals[k]) for k in kinds]
                if compare:
                    cells.append(ratio(vals["zkrs"], vals["zk"]))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")

    ops = lambda v: "n/a" if v is None else f"{v:.0f}"  # noqa: E731
    table(["longest gap ms", "time back to 90% ms", "time to 90% of the settled level ms"],
          [("longest_gap_s", ms), ("time_to_90_s", ms), ("time_to_90_settled_s", ms)])
    out.append("“not back”: not back within the run; “≥”: still stalled at the end of the run in at least half "
               "of the trials (the gap runs to the end).\n")
    table(["ops/s before", "ops/s after"], [("pre_ops_per_s", ops), ("post_ops_per_s", ops)])
    share = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    header = ["scenario"]
    for k in kinds:
        header += [f"{NAMES[k]} min bucket in the 2 s after t0 / lower level", f"{NAMES[k]} in the 2 s before / level (noise)",
                   f"{NAMES[k]} longest gap before t0 ms", f"{NAMES[k]} reconfig reply ms",
                   f"{NAMES[k]} trials with a gap > 1 s"]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---|" * len(header))
    for scenario in summary:
        cells = [SCENARIOS[scenario]]
        for k in kinds:
            s = summary[scenario][k]
            cells += [share(s["dip"]), share(s["pre_dip"]), ms(s["pre_longest_gap_s"]), ms(s["reconfig_reply_s"]),
                      f"{s['stalls_over_1s']} of {s['trials']}"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def plot(results, kinds, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"zk": "tab:orange", "zkrs": "tab:blue"}
    fig, axes = plt.subplots(len(SCENARIOS), 1, figsize=(10, 3.2 * len(SCENARIOS)), sharex=True)
    for ax, scenario in zip(axes, SCENARIOS):
        for kind in kinds:
            trials = [t for t in results["trials"] if t["kind"] == kind and t["scenario"] == scenario]
            if not trials:
                continue
            t = representative(trials)
            xs = [t["buckets_from_s"] + i * BUCKET for i in range(len(t["buckets"]))]
            label = (f"{NAMES[kind]} (gap {t['longest_gap_s'] * 1000:.0f} ms, back to 90% "
                     f"{ms(t['time_to_90_s'] if t['time_to_90_s'] is not None else float('inf'))} ms)")
            ax.step(xs + [xs[-1] + BUCKET], t["buckets"] + [t["buckets"][-1]], where="post",
                    color=colors[kind], label=label, linewidth=1.4)
            ax.axhline(RECOVERED * t["pre_median_per_bucket"], color=colors[kind], linestyle=":", linewidth=0.8)
            if t["reconfig_reply_s"] is not None:
                ax.axvline(t["reconfig_reply_s"], color=colors[kind], linestyle="--", linewidth=0.8)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(SCENARIOS[scenario] + " at t = 0 (dashed: reconfig reply; dotted: 90% of pre-event median)",
                     fontsize=10)
        ax.set_ylabel("writes per 100 ms")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    axes[-1].set_xlabel("seconds relative to the reconfig request")
    fig.suptitle("Write throughput during reconfiguration, 3 servers + joiner, "
                 "Apache ZooKeeper 3.8 vs zkrs (trial with the median gap)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="zk,zkrs", help="comma-separated: zk, zkrs")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    ap.add_argument("--trials", type=int, default=3, help="trials per scenario and kind (medians reported)")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds of load before the reconfig")
    ap.add_argument("--run", type=float, default=5.0, help="seconds of load after the reconfig")
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--in-flight", type=int, default=4, help="setData requests in flight per session")
    ap.add_argument("--value-size", type=int, default=1024)
    ap.add_argument("--json", help="raw results (default bench/results/reconfig.json; none with --quick)")
    ap.add_argument("--plot", help="timeline plot (default docs/reconfig-timelines.png; none with --quick)")
    ap.add_argument("--max-wait", type=float, default=300, help="seconds to wait for a 1-min load average < 1")
    ap.add_argument("--quick", action="store_true", help="CI smoke run: 1 trial, short runs, no plot, no JSON")
    args = ap.parse_args()
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    if args.quick:
        args.trials, args.warmup, args.run, args.max_wait = 1, 1.0, 1.0, 0
    else:
        args.json = args.json or os.path.join(REPO, "bench", "results", "reconfig.json")
        args.plot = args.plot or os.path.join(REPO, "docs", "reconfig-timelines.png")
    kinds = comma_list(ap, args.kinds, NAMES, "--kinds")
    scenarios = comma_list(ap, args.scenarios, SCENARIOS, "--scenarios")
    if args.trials < 1 or args.warmup < 1 or args.run < 1:
        ap.error("--trials, --warmup and --run must be at least 1")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.exit("bench/reconfig.py: matplotlib is needed for the plot: apt-get install -y python3-matplotlib "
                     "(or pip install matplotlib), or run with --quick")

    binary = pin_zkrs_binary() if "zkrs" in kinds else None
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_before = wait_for_quiet(args.max_wait)
    print(f"# {machine()}; 1-min load average before the run {load_before:.2f}", file=sys.stderr, flush=True)
    results = {"started": started, "machine": machine(), "load_before": load_before, "argv": sys.argv[1:],
               "zkrs": provenance(binary) if "zkrs" in kinds else None,
               "settings": {"tickTime": TICK_MS, "initLimit": INIT_LIMIT, "syncLimit": SYNC_LIMIT, "forceSync": "yes",
                            **{k: getattr(args, k) for k in ("trials", "warmup", "run", "sessions", "in_flight",
                                                             "value_size")}},
               "trials": []}
    # interleaved (trial, scenario, kind) so that both kinds see the same drift of the machine
    for trial in range(args.trials):
        for scenario in scenarios:
            for kind in kinds:
                r = run_trial(kind, scenario, args)
                r["trial"] = trial + 1
                results["trials"].append(r)
                back = "not back" if r["time_to_90_s"] is None else f"{r['time_to_90_s'] * 1000:.0f} ms"
                print(f"# trial {trial + 1} {scenario:8} {kind:4}: gap {r['longest_gap_s'] * 1000:.0f} ms "
                      f"(before t0 {r['pre_longest_gap_s'] * 1000:.0f} ms), back to 90% {back} "
                      f"(of the settled level {ms(r['time_to_90_settled_s'])} ms), "
                      f"{r['pre_ops_per_s']:.0f} -> {r['post_ops_per_s']:.0f} ops/s, dip {r['dip']:.2f} "
                      f"(noise {r['pre_dip']:.2f}), reply {ms(r['reconfig_reply_s'])} ms "
                      f"{r['reconfig_error'] or ''}, leader {r['leader_before']} -> {r['leader_after']}, "
                      f"other processes {r['foreign_cpu_cores']:.2f} cores, load {r['loadavg_after']:.2f}",
                      file=sys.stderr, flush=True)

    summary = {s: {k: summarize([t for t in results["trials"] if t["kind"] == k and t["scenario"] == s])
                   for k in kinds} for s in scenarios}
    results["summary"] = summary
    results["load_after"] = os.getloadavg()[0]
    print(tables(summary, kinds, args))
    print(f"\n{machine()}; 1-min load average {load_before:.2f} before, {results['load_after']:.2f} after "
          f"(with our own servers); other processes used at most "
          f"{max(t['foreign_cpu_cores'] for t in results['trials']):.2f} cores during a trial.")
    if results["zkrs"]:
        z = results["zkrs"]
        print(f"zkrs: {z['binary']} built {z['binary_built']} (sha256 {z['sha256'][:12]}), repository at "
              f"{z['commit']}{' with uncommitted changes in crates/ or src/' if z['uncommitted_sources'] else ''}.")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"raw results: {os.path.relpath(args.json, REPO)}")
    if args.plot:
        plot(results, kinds, args.plot)
        print(f"plot: {os.path.relpath(args.plot, REPO)}")


if __name__ == "__main__":
    main()
