#!/usr/bin/env python3
"""A read after `sync` must not return a value older than a write that completed before the
sync was sent, even when it goes to a leader that was deposed without noticing (the cause of
the CI nemesis run's "register linearizability" anomaly of 2026-12-06, docs/RELIABILITY.md).

3 servers in network namespaces. The leader L is cut off from both followers and paused (a GC
pause, a stalled VM) while the followers elect a new leader and client W writes a new value
through it. L resumes, still cut off: its followers' connections are blackholed, not closed,
so it believes it leads until syncLimit passes without their pings. Client R, connected to L,
then calls sync + getData. A leader that answers a sync from its own state alone (ZooKeeper
does: Leader.processSync answers at once when nothing is outstanding) hands R the value from
before the write: a stale read after sync. zkrs answers a sync only once a quorum has answered
a ping sent after the sync arrived; cut off, L never gets that quorum and steps down, so R's
sync fails with ConnectionLoss instead. Checked: R never reads the old value.

    tests/nemesis/stale_sync.py [--kind zkrs|zk]     (needs root: ip netns)
"""
import argparse
import logging
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cluster import CLIENT_PORT, NsCluster  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.retry import KazooRetry  # noqa: E402
from workloads import FAST_RECONNECT, SESSION_TIMEOUT  # noqa: E402

PATH = "/stale-sync"
# R's session outlives L's pause, so that R is still connected to L when it resumes
R_SESSION_TIMEOUT = 30.0


def run(kind):
    cluster = NsCluster(kind, 3)
    try:
        leader = cluster.start()
        followers = sorted(sid for sid in cluster.members if sid != leader)
        w = KazooClient(hosts=cluster.hosts(followers), timeout=SESSION_TIMEOUT,
                        connection_retry=FAST_RECONNECT)
        w.start(timeout=30)
        r = KazooClient(hosts=f"{cluster.members[leader].host}:{CLIENT_PORT}",
                        timeout=R_SESSION_TIMEOUT)
        r.start(timeout=30)
        w.create(PATH, b"old")
        r.sync(PATH)
        assert r.get(PATH)[0] == b"old"

        cluster.network.partition([{leader}, set(followers)])
        cluster.pause(leader)
        cut = time.monotonic()
        retry = KazooRetry(max_tries=-1, delay=0.1, backoff=1.2, max_delay=0.5, deadline=60)
        retry(w.set, PATH, b"new")
        written = time.monotonic() - cut
        new_leader = cluster.wait_for_quorum(30, sids=followers)

        cluster.resume(leader)
        try:
            r.sync(PATH)
            value = r.get(PATH)[0].decode()
            outcome = f"sync + getData returned {value!r}"
        except Exception as e:  # noqa: BLE001
            value = None
            outcome = f"sync + getData failed with {type(e).__name__}"
        stale = value == "old"
        print(f"stale sync vs {kind}: leader {leader} cut off and paused; 'new' written through "
              f"leader {new_leader} {written:.1f} s later; L resumed, still cut off: {outcome}"
              + (" - a stale read after sync" if stale else ""))
        for c in (w, r):
            c.stop()
            c.close()
        return not stale
    finally:
        cluster.stop()
        cluster.cleanup(keep=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", default="zkrs", choices=("zkrs", "zk"))
    args = ap.parse_args()
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    ok = run(args.kind)
    print("stale sync: " + ("ok" if ok else "FAIL"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
