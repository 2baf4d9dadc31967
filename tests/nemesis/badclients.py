#!/usr/bin/env python3
"""Bad clients against one zkrs server under load (issue 8, part 4).

While a few well-behaved kazoo clients write and read in a loop (their latency and errors
measured throughout), the server is hit with:
  * SESSIONS idle sessions (real handshakes, kept alive with pings),
  * garbage: connections sending random bytes,
  * half-open connections: a partial length prefix or a partial ConnectRequest, then silence,
  * oversize packets: a 2 GiB length prefix before the handshake, and a 64 MiB request
    length from an established session,
  * slow readers: sessions pipelining getData of a 256 KiB znode and never reading a reply,
  * slow watchers (issue 17): sessions with a persistent recursive watch (addWatch mode 1) on a
    subtree that a pipelined writer changes as fast as it can, never reading a notification,
  * multiRead (issue 17): requests asking 1,000 times for a 1 MB znode (a 1 GB reply), read,
  * pre-handshake declarations (issue 17): connections that declare a ~1 MB ConnectRequest and
    send one byte, then nothing.
Checks: no well-behaved operation fails, their latency stays bounded, the server's RSS stays
bounded (before / peak / after printed) and it closes the garbage, oversize and pre-handshake
connections.

    python3 tests/nemesis/badclients.py [--sessions 2000] [--kind zkrs|zk]
"""
import argparse
import os
import random
import resource
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from servers import Server  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402

BIG = 256 * 1024
HUGE = 1_000_000                                   # a 1 MB znode (under jute.maxbuffer)
WATCH_NAMES = [f"{i}-" + "w" * 1000 for i in range(8)]   # long paths: big notifications
DECLARED = 1_000_000                               # a ConnectRequest length the server must wait for
# RSS growth: zkrs holds at most ~1.3 MiB of replies per slow reader (crates/server/src/outbox.rs)
# and a few KiB per idle session; measured 54 MB. ZooKeeper's heap is capped by -Xmx512m.
LIMITS = {"p99_ms": 500.0, "max_ms": 3000.0, "rss_growth_mb": 128.0}


def connect_request(timeout_ms=30000):
    body = struct.pack(">iqiqi16s?", 0, 0, timeout_ms, 0, 16, b"\0" * 16, False)
    return struct.pack(">i", len(body)) + body


def request(xid, op, body=b""):
    payload = struct.pack(">ii", xid, op) + body
    return struct.pack(">i", len(payload)) + payload


def jstr(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


PING = request(-2, 11)


def open_session(port, timeout_ms=30000, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:   # before connecting, so that the window stays small
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(connect_request(timeout_ms))
    need, buf = 4, b""
    while len(buf) < need:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed during handshake")
        buf += chunk
        if len(buf) >= 4:
            need = 4 + struct.unpack(">i", buf[:4])[0]
    return s


def watch_writer(port, parent, names, stop, counter):
    """Pipelined setData (64 in flight) on parent/<names> until `stop`; counts acknowledged writes."""
    try:
        s = open_session(port)
    except OSError:
        return
    xid, buf = 0, b""
    try:
        while not stop.is_set():
            batch = []
            for _ in range(64):
                xid += 1
                batch.append(request(xid, 5, jstr(f"{parent}/{names[xid % len(names)]}")
                                     + struct.pack(">i", 4) + b"%04d" % (xid % 10000) + struct.pack(">i", -1)))
            s.sendall(b"".join(batch))
            replies = 0
            while replies < 64:
                while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">i", buf[:4])[0]:
                    buf = buf[4 + struct.unpack(">i", buf[:4])[0]:]
                    replies += 1
                    counter[0] += 1
                if replies < 64:
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
    except OSError:
        return
    finally:
        s.close()


def drain(s, seconds):
    """Reads and discards what `s` receives for up to `seconds`; returns the byte count."""
    total, deadline = 0, time.monotonic() + seconds
    buf = bytearray(1 << 20)
    try:
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            n = s.recv_into(buf)
            if not n:
                break
            total += n
    except OSError:
        pass
    return total


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


class Good(threading.Thread):
    def __init__(self, port, i, stop):
        super().__init__(daemon=True)
        self.zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10)
        self.i, self.stop = i, stop
        self.lat = []   # (t, seconds)
        self.errors = []

    def run(self):
        self.zk.start(timeout=30)
        path = f"/good/{self.i}"
        self.zk.ensure_path(path)
        n = 0
        while not self.stop.is_set():
            n += 1
            t = time.monotonic()
            try:
                self.zk.set_async(path, str(n).encode()).get(timeout=10)
                data, _ = self.zk.get_async(path).get(timeout=10)
                assert data == str(n).encode(), (data, n)
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
            self.lat.append((t, time.monotonic() - t))
            time.sleep(0.002)
        self.zk.stop()
        self.zk.close()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--garbage", type=int, default=300)
    ap.add_argument("--halfopen", type=int, default=300)
    ap.add_argument("--oversize", type=int, default=50)
    ap.add_argument("--slow", type=int, default=20)
    ap.add_argument("--slow-requests", type=int, default=200)
    ap.add_argument("--watchers", type=int, default=20, help="recursive watchers that never read")
    ap.add_argument("--multiread", type=int, default=2, help="multiRead requests of 1000 x a 1 MB znode")
    ap.add_argument("--declared", type=int, default=500, help="pre-handshake 1 MB declarations + 1 byte")
    ap.add_argument("--abuse-seconds", type=float, default=20)
    ap.add_argument("--kind", default="zkrs", choices=("zkrs", "zk"))
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the server too
    t_start = time.monotonic()
    rng = random.Random(8)
    server = Server(args.kind, extra_cfg={"maxClientCnxns": "0"})
    server.start()
    pid = server.proc.pid
    stop = threading.Event()
    held = []
    failures = []
    try:
        setup = KazooClient(hosts=server.connect_string, timeout=10)
        setup.start(timeout=30)
        setup.create("/bad-big", b"x" * BIG)
        setup.create("/bad-huge", b"h" * HUGE)
        for name in WATCH_NAMES:
            setup.create(f"/bad-watch/{name}", b"", makepath=True)
        setup.stop()
        setup.close()
        good = [Good(server.port, i, stop) for i in range(4)]
        for g in good:
            g.start()
        time.sleep(4)
        rss_before = rss_mb(pid)
        t_abuse = time.monotonic()
        peak = [rss_before]

        def sample():
            while not stop.is_set():
                try:
                    peak.append(rss_mb(pid))
                except OSError:
                    return
                time.sleep(0.25)
        threading.Thread(target=sample, daemon=True).start()

        # idle sessions, kept alive by a pinger that also drains their replies
        sessions = []
        for i in range(args.sessions):
            try:
                sessions.append(open_session(server.port))
            except OSError as e:
                failures.append(f"session {i} handshake failed: {e!r}")
                break
        t_sessions = time.monotonic() - t_abuse
        for s in sessions:
            s.setblocking(False)

        def pinger():
            while not stop.is_set():
                for s in sessions:
                    try:
                        s.send(PING)
                        while s.recv(65536):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                stop.wait(3)
        threading.Thread(target=pinger, daemon=True).start()

        # garbage
        garbage = []
        for i in range(args.garbage):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
            # a whole frame of junk (a ConnectRequest that does not decode), or a negative length
            frame = struct.pack(">i", len(junk)) + junk if i % 2 else b"\xff" + junk
            try:
                s.sendall(frame)
            except OSError:
                pass
            garbage.append(s)
        # half-open: a partial prefix or a partial connect request, then silence
        for i in range(args.halfopen):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(connect_request()[: (2 if i % 2 else 20)])
            held.append(s)
        # oversize: a 2 GiB prefix before the handshake; a 64 MiB request in a session
        oversize = []
        for i in range(args.oversize):
            if i % 2:
                s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                s.sendall(struct.pack(">i", 0x7FFFFFFF) + b"\0" * 1024)
            else:
                s = open_session(server.port)
                s.sendall(struct.pack(">iii", 64 << 20, 1, 5) + jstr("/bad-big") + b"\0" * 4096)
            oversize.append(s)
        # slow readers: pipelined reads of the big node, replies never read
        slow = []
        for i in range(args.slow):
            s = open_session(server.port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setblocking(False)
            req = b"".join(request(x + 1, 4, jstr("/bad-big") + b"\0") for x in range(args.slow_requests))
            sent = 0
            deadline = time.monotonic() + 2
            while sent < len(req) and time.monotonic() < deadline:
                try:
                    sent += s.send(req[sent:])
                except BlockingIOError:
                    time.sleep(0.01)
                except OSError:
                    break
            slow.append(s)
        # slow watchers: a persistent recursive watch on /bad-watch, notifications never read
        watchers = []
        for i in range(args.watchers):
            try:
                s = open_session(server.port, rcvbuf=4096)
                s.sendall(request(1, 106, jstr("/bad-watch") + struct.pack(">i", 1)))
            except OSError as e:
                failures.append(f"watcher {i}: handshake failed: {e!r}")
                break
            watchers.append(s)
        watch_writes = [0]
        if args.watchers:
            threading.Thread(target=watch_writer, args=(server.port, "/bad-watch", WATCH_NAMES, stop, watch_writes),
                             daemon=True).start()
        # multiRead of 1000 x the 1 MB znode: a 1 GB reply unless the server refuses it
        multiread_bytes = []

        def multiread():
            try:
                s = open_session(server.port)
            except OSError:
                return
            ops = b"".join(struct.pack(">i?i", 4, False, -1) + jstr("/bad-huge") + b"\0" for _ in range(1000))
            s.sendall(request(7, 22, ops + struct.pack(">i?i", -1, True, -1)))
            multiread_bytes.append(drain(s, 10))
            s.close()
        mr_threads = [threading.Thread(target=multiread, daemon=True) for _ in range(args.multiread)]
        for t in mr_threads:
            t.start()
        # pre-handshake: a ~1 MB ConnectRequest declared, one byte sent
        declared = []
        t_declared = time.monotonic()
        for i in range(args.declared):
            try:
                s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                s.sendall(struct.pack(">i", DECLARED) + b"\0")
            except OSError as e:
                failures.append(f"pre-handshake connection {i} failed: {e!r}")
                break
            declared.append(s)
        remaining = args.abuse_seconds - (time.monotonic() - t_abuse)
        if remaining > 0:
            time.sleep(remaining)

        def closed_by_server(socks, wait=5.0):
            n = 0
            deadline = time.monotonic() + wait
            for s in socks:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    while True:
                        if not s.recv(65536):
                            n += 1
                            break
                except socket.timeout:
                    pass
                except OSError:
                    n += 1
            return n
        garbage_closed = closed_by_server(garbage)
        oversize_closed = closed_by_server(oversize)
        declared_closed = closed_by_server(declared, wait=1.0)
        declared_age = time.monotonic() - t_declared
        for t in mr_threads:
            t.join(timeout=15)
        t_end_abuse = time.monotonic()
        rss_peak = max((p for p in peak if p is not None), default=0.0)
        for s in sessions + garbage + held + oversize + slow + watchers + declared:
            s.close()
        time.sleep(5)
        rss_after = rss_mb(pid) if server.proc.poll() is None else float("nan")
        stop.set()
        for g in good:
            g.join(timeout=20)
        base = [lat for g in good for (t, lat) in g.lat if t < t_abuse]
        during = [lat for g in good for (t, lat) in g.lat if t_abuse <= t < t_end_abuse]
        after = [lat for g in good for (t, lat) in g.lat if t >= t_end_abuse]
        errors = [e for g in good for e in g.errors]
        alive = server.proc.poll() is None
        print(f"bad clients vs {args.kind}: {len(sessions)} idle sessions (opened in {t_sessions:.1f} s), "
              f"{args.garbage} garbage, {args.halfopen} half-open, {args.oversize} oversize, {args.slow} slow "
              f"readers x {args.slow_requests} reads of {BIG // 1024} KiB, {args.watchers} unread recursive watchers "
              f"({watch_writes[0]} writes under them), {args.multiread} multiRead of 1000 x 1 MB, "
              f"{args.declared} pre-handshake 1 MB declarations")
        print(f"  well-behaved ops: {len(base)} before (p50 {pct(base, .5):.1f} ms, p99 {pct(base, .99):.1f} ms), "
              f"{len(during)} during (p50 {pct(during, .5):.1f} ms, p99 {pct(during, .99):.1f} ms, "
              f"max {pct(during, 1):.1f} ms), {len(after)} after (p99 {pct(after, .99):.1f} ms); errors {len(errors)}")
        print(f"  server RSS: {rss_before:.1f} MB before, {rss_peak:.1f} MB peak, {rss_after:.1f} MB after "
              f"closing the bad connections")
        print(f"  multiRead replies received: {', '.join(f'{b / 1e6:.1f} MB' for b in multiread_bytes) or 'none'}")
        print(f"  closed by the server: {garbage_closed}/{len(garbage)} garbage, "
              f"{oversize_closed}/{len(oversize)} oversize, {declared_closed}/{len(declared)} pre-handshake "
              f"declarations (after {declared_age:.0f} s); server alive: {alive}; "
              f"wall {time.monotonic() - t_start:.0f} s")
        if errors:
            failures.append(f"{len(errors)} well-behaved operations failed, e.g. {errors[:3]}")
        if not alive:
            failures.append("the server died")
        if len(during) < 50:
            failures.append(f"only {len(during)} well-behaved operations completed during the abuse")
        if pct(during, .99) > LIMITS["p99_ms"] or pct(during, 1) > LIMITS["max_ms"]:
            failures.append(f"well-behaved latency not bounded: p99 {pct(during, .99):.0f} ms, max "
                            f"{pct(during, 1):.0f} ms (limits {LIMITS['p99_ms']:.0f} / {LIMITS['max_ms']:.0f})")
        if rss_peak - rss_before > LIMITS["rss_growth_mb"]:
            failures.append(f"RSS grew by {rss_peak - rss_before:.0f} MB (limit {LIMITS['rss_growth_mb']:.0f})")
        if garbage_closed < len(garbage) or oversize_closed < len(oversize):
            failures.append("the server left garbage or oversize connections open")
        if declared_closed < len(declared):
            failures.append(f"the server left {len(declared) - declared_closed} connections that never completed "
                            f"their handshake open for {declared_age:.0f} s")
    finally:
        stop.set()
        for s in held:
            try:
                s.close()
            except OSError:
                pass
        server.cleanup()
    for f in failures:
        print(f"  FAIL: {f}")
    print("bad clients:", "FAILED" if failures else "ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
