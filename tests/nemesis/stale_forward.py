#!/usr/bin/env python3
"""A write held up in a partitioned follower's link must not be applied after its client
moved on (the cause of the nemesis run's "two holders of one lock", docs/RELIABILITY.md).

3 servers in network namespaces. Client A, connected to follower F, holds the ephemeral
/stale/lock and sends delete(/stale/lock, version 0) just after F is cut off from the leader:
F forwards it into the dead link, where F's kernel keeps retransmitting it. F gives up on the
leader, A's connection drops and A resumes its session on the leader, where it deletes the node
itself; client B then creates /stale/lock (version 0 again). F is paused, the network healed,
and F's kernel delivers the old delete to the leader. ZooKeeper refuses it (the leader closed
the silent follower's connection after syncLimit, and the session's owner is the leader now:
SessionMovedException); so must zkrs. Checked: B still holds /stale/lock.

    tests/nemesis/stale_forward.py [--kind zkrs|zk]     (needs root: ip netns)
"""
import argparse
import logging
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cluster import CLIENT_PORT, SYNC_LIMIT, TICK_MS, NsCluster  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from workloads import FAST_RECONNECT, SESSION_TIMEOUT  # noqa: E402

# F's kernel retransmits with exponential back-off: after a ~5 s cut the next try comes
# within ~6.4 s of the heal
RETRANSMIT_WAIT = 12.0


def connected_host(zk):
    return zk._connection._socket.getpeername()[0]


def run(kind):
    cluster = NsCluster(kind, 3)
    try:
        leader = cluster.start()
        follower = min(sid for sid in cluster.members if sid != leader)
        lead_host, f_host = cluster.members[leader].host, cluster.members[follower].host
        a = KazooClient(hosts=cluster.hosts([follower, leader]), randomize_hosts=False,
                        timeout=SESSION_TIMEOUT, connection_retry=FAST_RECONNECT)
        a.start(timeout=30)
        assert connected_host(a) == f_host, f"A is on {connected_host(a)}, wanted follower {f_host}"
        b = KazooClient(hosts=f"{lead_host}:{CLIENT_PORT}", timeout=SESSION_TIMEOUT)
        b.start(timeout=30)
        a.ensure_path("/stale")
        a.create("/stale/lock", b"a", ephemeral=True)

        cluster.network.cut_pairs({frozenset((follower, leader))})
        stale = a.delete_async("/stale/lock", version=0)   # into the dead link
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if a.connected and connected_host(a) == lead_host:
                    break
            except Exception:  # noqa: BLE001 (between connections)
                pass
            time.sleep(0.05)
        else:
            raise AssertionError("A did not move to the leader")
        moved_after = time.monotonic() - (deadline - 30)
        try:
            stale.get(timeout=5)
            stale_outcome = "ok"
        except Exception as e:  # noqa: BLE001
            stale_outcome = type(e).__name__
        # the delete's outcome is unknown to A: it cleans up as the lock recipe does
        if a.exists("/stale/lock") is not None:
            a.delete("/stale/lock", version=0)
        b.create("/stale/lock", b"b", ephemeral=True)
        owner_b = b.client_id[0]

        cluster.pause(follower)
        cluster.network.heal()
        time.sleep(RETRANSMIT_WAIT)
        cluster.resume(follower)
        cluster.wait_for_quorum(60)

        stat = b.exists("/stale/lock")
        held = stat is not None and stat.ephemeralOwner == owner_b
        print(f"stale write vs {kind}: leader {leader}, follower {follower}; A moved to the leader "
              f"{moved_after:.1f} s after the cut (syncLimit {SYNC_LIMIT * TICK_MS} ms), its delete "
              f"ended with {stale_outcome}; after the heal and {RETRANSMIT_WAIT:.0f} s: /stale/lock "
              + (f"held by B (0x{owner_b:x})" if held else
                 f"{'gone' if stat is None else f'owned by 0x{stat.ephemeralOwner:x}'} - B lost its lock"))
        for c in (a, b):
            c.stop()
            c.close()
        return held
    finally:
        cluster.stop()
        cluster.cleanup(keep=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", default="zkrs", choices=("zkrs", "zk"))
    args = ap.parse_args()
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    ok = run(args.kind)
    print("stale write: " + ("ok" if ok else "FAIL"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
