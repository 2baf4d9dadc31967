#!/usr/bin/env python3
"""Crash test with real processes: clients write under load, zkrs is killed with SIGKILL at
random moments and restarted on the same dataDir; every acknowledged write must be there with
its value and version, and no multi may be half-applied.

    python3 tests/storage/crash_test.py [--kills 20] [--seed 1]
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from servers import Server  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import NoNodeError, NodeExistsError, BadVersionError  # noqa: E402
from kazoo.retry import KazooRetry  # noqa: E402

WORKERS = 6


class Register:
    """What we know of one register: acknowledged (value, version) and a possibly applied
    later value (an operation whose reply was lost)."""

    def __init__(self, path):
        self.path = path
        self.acked = None          # (value, version) last acknowledged
        self.maybe = []            # values written without a reply


class Worker(threading.Thread):
    def __init__(self, wid, connect, rng, state):
        super().__init__(daemon=True)
        self.wid, self.connect, self.rng, self.state = wid, connect, rng, state
        self.error = None
        # names stay unique across restarts
        self.tag = f"k{len(state['rounds'])}-w{wid}"
        self.stop = False
        self.ops = 0

    def run(self):
        try:
            self.work()
        except AssertionError as e:
            self.error = e

    def work(self):
        no_retry = KazooRetry(max_tries=0)
        zk = KazooClient(self.connect, timeout=4.0, connection_retry=no_retry, command_retry=no_retry)
        try:
            zk.start(timeout=5)
        except Exception:
            return
        st = self.state
        try:
            while not self.stop:
                choice = self.rng.random()
                if choice < 0.6:
                    # each worker owns its registers: a BadVersion then means a lost write
                    mine = st["registers"][self.wid::WORKERS]
                    reg = mine[self.rng.randrange(len(mine))]
                    if reg.maybe:
                        continue  # its version is unknown until the next restart settles it
                    value, version = reg.acked
                    new = f"{self.tag}-{self.ops}".encode()
                    try:
                        stat = zk.set(reg.path, new, version=version)
                        reg.acked = (new, stat.version)
                    except BadVersionError:
                        raise AssertionError(f"{reg.path}: version {version} was acknowledged but is not current")
                    except Exception:
                        reg.maybe.append(new)
                        return
                elif choice < 0.8:
                    path = f"/crash/created/{self.tag}-{self.ops}"
                    try:
                        zk.create(path, path.encode())
                        st["created"].append(path)
                    except Exception:
                        st["maybe_created"].append(path)
                        return
                else:
                    a = f"/crash/pairs/a-{self.tag}-{self.ops}"
                    b = f"/crash/pairs/b-{self.tag}-{self.ops}"
                    st["pairs"].append((a, b))
                    try:
                        t = zk.transaction()
                        t.create(a, b"a")
                        t.create(b, b"b")
                        results = t.commit()
                        if any(isinstance(r, Exception) for r in results):
                            raise AssertionError(f"multi failed: {results}")
                        st["acked_pairs"].append((a, b))
                    except AssertionError:
                        raise
                    except Exception:
                        return
                self.ops += 1
        finally:
            try:
                zk.stop()
                zk.close()
            except Exception:
                pass


def verify(connect, state):
    zk = KazooClient(connect, timeout=10.0)
    zk.start(timeout=30)
    try:
        for reg in state["registers"]:
            data, stat = zk.get(reg.path)
            value, version = reg.acked
            if (data, stat.version) == (value, version):
                reg.maybe.clear()
                continue
            # an unacknowledged write may have been applied: it must be the next version
            assert data in reg.maybe and stat.version == version + 1, (
                f"{reg.path}: acknowledged {(value, version)} but found {(data, stat.version)} "
                f"(unacknowledged candidates {reg.maybe})")
            reg.acked = (data, stat.version)
            reg.maybe.clear()
        for path in state["created"]:
            data, _ = zk.get(path)
            assert data == path.encode(), f"{path}: acknowledged create lost or wrong ({data!r})"
        for a, b in state["pairs"]:
            ea, eb = zk.exists(a) is not None, zk.exists(b) is not None
            assert ea == eb, f"multi half-applied: {a} exists={ea}, {b} exists={eb}"
            if (a, b) in state["acked_pairs"]:
                assert ea, f"acknowledged multi lost: {a}, {b}"
    finally:
        zk.stop()
        zk.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kind", default="zkrs", choices=["zkrs", "zk"])
    args = ap.parse_args()
    rng = random.Random(args.seed)
    workdir = tempfile.mkdtemp(prefix="zkrs-crash-")
    server = Server(args.kind, {"snapCount": "400", "preAllocSize": "256"}, workdir=workdir)
    server.start()
    zk = KazooClient(server.connect_string)
    zk.start()
    state = {"registers": [], "created": [], "maybe_created": [], "pairs": [], "acked_pairs": [], "rounds": []}
    for p in ("/crash", "/crash/created", "/crash/pairs", "/crash/reg"):
        zk.ensure_path(p)
    for i in range(20):
        path = f"/crash/reg/r{i}"
        zk.create(path, b"init")
        reg = Register(path)
        reg.acked = (b"init", 0)
        state["registers"].append(reg)
    zk.stop()
    zk.close()
    total_ops = 0
    try:
        for kill in range(args.kills):
            workers = [Worker(w, server.connect_string, random.Random(rng.random()), state) for w in range(WORKERS)]
            for w in workers:
                w.start()
            time.sleep(rng.uniform(0.2, 1.2))
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait()
            for w in workers:
                w.stop = True
            for w in workers:
                w.join(timeout=15)
                total_ops += w.ops
                if w.error:
                    raise w.error
            state["rounds"].append(kill)
            server.start()
            verify(server.connect_string, state)
            print(f"kill {kill + 1}/{args.kills}: ok ({total_ops} acknowledged ops so far, "
                  f"{len(state['created'])} creates, {len(state['acked_pairs'])} multis)", flush=True)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"crash test passed: {args.kills} SIGKILLs, {total_ops} acknowledged operations, none lost")


if __name__ == "__main__":
    main()
