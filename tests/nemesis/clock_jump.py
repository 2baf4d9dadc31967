#!/usr/bin/env python3
"""Wall-clock jumps must not expire sessions, nor keep dead ones alive (issue 8's
clock-independent timeouts).

A standalone server runs under libfaketime (LD_PRELOAD, only CLOCK_REALTIME faked: the
monotonic clock stays true), its wall clock steered through a timestamp file. A kazoo session
with a 4 s timeout is opened; the server's wall clock jumps 2 hours forward, then 3 hours back;
the session must live through both, pinging as usual. Then a second session is abandoned
without closing it (its client stops sending pings) while the clock is 3 hours behind: it must
still expire about 4 s later. The libfaketime package is installed if missing (root).

    tests/nemesis/clock_jump.py [--kind zkrs|zk]
"""
import argparse
import glob
import logging
import os
import subprocess
import sys
import struct
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from servers import Server  # noqa: E402
from badclients import jstr, open_session, request  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.protocol.states import KazooState  # noqa: E402

TIMEOUT_S = 4.0


def libfaketime():
    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not found and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "faketime"], stdout=subprocess.DEVNULL)
        found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not found:
        raise SystemExit("libfaketime is missing: apt-get install faketime")
    return found[0]


def run(kind):
    stamp = tempfile.NamedTemporaryFile("w", suffix=".faketime", delete=False)
    stamp.write("+0\n")
    stamp.close()
    env = {"LD_PRELOAD": libfaketime(), "FAKETIME_TIMESTAMP_FILE": stamp.name, "FAKETIME_NO_CACHE": "1",
           "DONT_FAKE_MONOTONIC": "1"}

    def jump(offset):
        with open(stamp.name, "w") as f:
            f.write(offset + "\n")

    server = Server(kind, extra_env=env)
    server.start()
    events = []
    try:
        zk = KazooClient(hosts=server.connect_string, timeout=TIMEOUT_S)
        zk.add_listener(lambda state: events.append(state))
        zk.start(timeout=30)
        session = zk.client_id[0]
        zk.create("/clock", b"0")
        problems = []
        for offset in ("+2h", "-3h"):
            jump(offset)
            for i in range(6):   # 6 s > the timeout, while the clock stands shifted
                time.sleep(1)
                zk.set("/clock", str(i).encode())
            if zk.client_id[0] != session or KazooState.LOST in events:
                problems.append(f"the session was lost after a {offset} jump")
        # an abandoned session must still expire on time with the clock 3 h behind: a raw
        # client creates an ephemeral, then closes its socket (no closeSession, no pings)
        gone = open_session(server.port, int(TIMEOUT_S * 1000))
        acl = struct.pack(">i", 1) + struct.pack(">i", 31) + jstr("world") + jstr("anyone")
        gone.sendall(request(1, 1, jstr("/clock-eph") + struct.pack(">i", 0) + acl + struct.pack(">i", 1)))
        reply = gone.recv(4096)
        if len(reply) < 20 or struct.unpack(">i", reply[16:20])[0] != 0:
            raise RuntimeError(f"the raw create failed: {reply!r}")
        gone.close()
        abandoned_at = time.monotonic()
        expired_after = None
        while time.monotonic() - abandoned_at < 30:
            if zk.exists("/clock-eph") is None:
                expired_after = time.monotonic() - abandoned_at
                break
            time.sleep(0.2)
        if expired_after is None:
            problems.append("an abandoned session did not expire within 30 s")
        print(f"clock jumps vs {kind}: session lived through +2 h and -3 h jumps: "
              f"{'yes' if not any('jump' in p for p in problems) else 'NO'}; abandoned session "
              + (f"expired after {expired_after:.1f} s (timeout {TIMEOUT_S:.0f} s)" if expired_after else "never expired"))
        zk.stop()
        zk.close()
        for p in problems:
            print("  FAIL: " + p)
        return not problems
    finally:
        server.stop()
        os.unlink(stamp.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", default="zkrs", choices=("zkrs", "zk"))
    args = ap.parse_args()
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    ok = run(args.kind)
    print("clock jumps: " + ("ok" if ok else "FAIL"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
