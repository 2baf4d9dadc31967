"""Memory probes (issue 17): shapes of client that made a server's memory grow without bound.

  * hold: connections that declare a ~1 MB ConnectRequest and send one byte (plus some that
    send half a length prefix, half a ConnectRequest, or nothing), held open; when the server
    closes each of them is recorded,
  * recursive watch: clients with a persistent recursive watch on a busy subtree that never
    read their socket, while writers change the subtree as fast as they can,
  * multiRead: one request asking 1,000 times for a 1 MB znode.

The RSS sampler (world.RssSampler) records each server's peak during the probe; the caller
checks it against the limit.
"""
import selectors
import socket
import struct
import threading
import time

import wire
from world import close_session_quietly

DECLARED = 1_000_000          # a ConnectRequest length under jute.maxbuffer: must be waited for
MEM_PARENT = "/hostile-mem"
LONG_NAMES = [f"{i}-" + "n" * 1000 for i in range(10)]
BIG_PATH = "/hostile-big"
BIG_SIZE = 1_000_000


# ---------------------------------------------------------------------------------------------

class HeldConnections:
    """Connections to many servers, each of a category; records when the server closed each."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.conns = []     # [sock, key, category, t_open, t_closed]
        self.t0 = time.monotonic()

    def add(self, port, key, category, payload):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            if payload:
                s.sendall(payload)
        except OSError:
            s.close()
            self.conns.append([None, key, category, time.monotonic(), time.monotonic()])
            return
        s.setblocking(False)
        rec = [s, key, category, time.monotonic(), None]
        self.conns.append(rec)
        self.sel.register(s, selectors.EVENT_READ, rec)

    def poll(self, seconds):
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            for skey, _ in self.sel.select(timeout=min(remaining, 0.2)):
                rec = skey.data
                try:
                    data = rec[0].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    rec[4] = time.monotonic()
                    self.sel.unregister(rec[0])

    def summary(self, key):
        """category -> (closed, total, max seconds to close)"""
        out = {}
        for sock, k, cat, t_open, t_closed in self.conns:
            if k != key:
                continue
            closed, total, worst = out.get(cat, (0, 0, 0.0))
            if t_closed is not None:
                closed += 1
                worst = max(worst, t_closed - t_open)
            out[cat] = (closed, total + 1, worst)
        return out

    def close(self):
        for rec in self.conns:
            if rec[0] is not None:
                try:
                    rec[0].close()
                except OSError:
                    pass
        self.sel.close()


def hold_probe(targets, n_declared, hold_s):
    """targets: {key: port}. Returns {key: (summary dict, text)}."""
    held = HeldConnections()
    partial_connect = wire.connect_request(4000)[:20]
    try:
        for key, port in targets.items():
            for _ in range(n_declared):
                held.add(port, key, "1MB-decl", struct.pack(">i", DECLARED) + b"\0")
            for _ in range(20):
                held.add(port, key, "half-prefix", b"\0\0")
                held.add(port, key, "half-connect", partial_connect)
                held.add(port, key, "silent", b"")
        held.poll(hold_s)
        out = {}
        for key in targets:
            summ = held.summary(key)
            parts = []
            slowest = 0.0
            for cat in ("1MB-decl", "half-prefix", "half-connect", "silent"):
                closed, total, worst = summ.get(cat, (0, 0, 0.0))
                parts.append(f"{cat} {closed}/{total}")
                slowest = max(slowest, worst)
            out[key] = (summ, f"closed by the server (last after {slowest:.1f}s): " + ", ".join(parts))
        return out
    finally:
        held.close()


# ---------------------------------------------------------------------------------------------

def _handshake(port, rcvbuf=None):
    conn = wire.Conn.dial(port, 5.0, rcvbuf=rcvbuf)
    conn.send(wire.connect_request(4000))
    conn.read_frame(time.monotonic() + 5)
    return conn


class Writer(threading.Thread):
    """Pipelined setData on the long-named children of MEM_PARENT through one server."""

    def __init__(self, port, window=64):
        super().__init__(daemon=True)
        self.port, self.window = port, window
        self.halt = threading.Event()
        self.writes = 0
        self.errors = 0
        self.failure = None

    def run(self):
        try:
            conn, _ = wire.open_session(self.port, 10000, timeout=5)
        except Exception as e:  # noqa: BLE001
            self.failure = repr(e)
            return
        xid = 0
        try:
            while not self.halt.is_set():
                batch = []
                for _ in range(self.window):
                    xid += 1
                    path = f"{MEM_PARENT}/{LONG_NAMES[xid % len(LONG_NAMES)]}"
                    batch.append(wire.request(xid, 5, wire.encode([("s", path), ("B", b"d%d" % xid), ("i", -1)])))
                conn.send(b"".join(batch))
                deadline = time.monotonic() + 15
                for _ in range(self.window):
                    reply = wire.parse_reply(conn.read_frame(deadline))
                    if reply and reply[2] == 0:
                        self.writes += 1
                    else:
                        self.errors += 1
        except Exception as e:  # noqa: BLE001
            self.failure = f"{type(e).__name__} after {self.writes} writes"
        finally:
            close_session_quietly(conn)


def recursive_watch_probe(deps, seconds, watchers=20):
    """deps: [(dep, [sids the watchers connect to], [ports the writers use])].
    Returns {(dep name, sid): text}."""
    for dep, _, _ in deps:
        dep.ensure_nodes([(f"{MEM_PARENT}/{name}", b"") for name in LONG_NAMES])
    socks = []
    out = {}
    writers = {}
    try:
        for dep, sids, _ in deps:
            for sid in sids:
                n = 0
                for _ in range(watchers):
                    try:
                        c = _handshake(dep.port(sid), rcvbuf=4096)
                        c.send(wire.request(1, 106, wire.encode([("s", MEM_PARENT), ("i", 1)])))
                        socks.append(c)
                        n += 1
                    except Exception:  # noqa: BLE001
                        pass
                out[(dep.name, sid)] = f"{n} watchers"
        for dep, _, ports in deps:
            writers[dep.name] = [Writer(p) for p in ports]
            for w in writers[dep.name]:
                w.start()
        time.sleep(seconds)
    finally:
        for ws in writers.values():
            for w in ws:
                w.halt.set()
        for ws in writers.values():
            for w in ws:
                w.join(timeout=20)
        for c in socks:
            c.close()
    for dep, sids, _ in deps:
        ws = writers.get(dep.name, [])
        total = sum(w.writes for w in ws)
        fails = [w.failure for w in ws if w.failure]
        for sid in sids:
            out[(dep.name, sid)] += f", {total} writes in {seconds:g}s" + (f", writer: {fails[0]}" if fails else "")
    return out


def ensure_big(dep):
    dep.ensure_nodes([(BIG_PATH, b"b" * BIG_SIZE)])


def multiread_probe(port, count=1000, wait=10.0):
    """One multiRead of `count` getData of the 1 MB znode; reads (and discards) the reply."""
    ops = []
    for _ in range(count):
        ops += wire.multi_header(4) + [("s", BIG_PATH), ("b", False)]
    body = wire.encode(ops + wire.MULTI_END)
    try:
        conn, _ = wire.open_session(port, 10000)
    except Exception as e:  # noqa: BLE001
        return f"no-session({type(e).__name__})"
    t0 = time.monotonic()
    deadline = t0 + wait
    try:
        conn.send(wire.request(7, 22, body))
        try:
            (n,) = struct.unpack(">i", conn.read_exact(4, deadline))
            head = conn.read_exact(min(16, n), deadline)
            xid, _zxid, err = struct.unpack(">iqi", head) if len(head) == 16 else (None, None, None)
            remaining = n - len(head) - len(conn.buf)
            conn.buf = b""
            buf = bytearray(1 << 20)
            sock = conn.sock
            while remaining > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return f"e{err}, reply of {n / 1e6:.0f} MB: {(n - remaining) / 1e6:.0f} MB read in {wait:g}s"
                sock.settimeout(left)
                got = sock.recv_into(buf)
                if not got:
                    return f"e{err}, reply of {n / 1e6:.0f} MB, closed after {(n - remaining) / 1e6:.0f} MB"
                remaining -= got
            what = "ok" if err == 0 else f"e{err}"
            size = f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} B"
            return f"{what}, reply of {size} in {time.monotonic() - t0:.1f}s"
        except wire.Closed:
            return f"closed after {time.monotonic() - t0:.1f}s"
        except OSError:
            return f"no reply within {wait:g}s"
    finally:
        close_session_quietly(conn)
