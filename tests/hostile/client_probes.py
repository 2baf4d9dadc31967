"""Client-port probes: every opcode of the 3.8 protocol (and unknown ones), valid, truncated,
oversized and with garbage fields, each on an established session; plus pre-handshake probes.

Each probe returns the server's answer as `reply/connection`:
  reply:       ok | e<code> (the error code of the reply with the probe's xid) | none | other
  connection:  open (a ping sent after the probe was answered) | closed | hung (neither within
               the probe timeout)
"""
import random
import struct
import time

import wire
from world import close_session_quietly, raw_create

PROBE_XID = 7
FENCE = wire.request(-2, 11)
REPLY_WAIT = 2.0
CLOSE_WAIT = 1.0

ALL_OPS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
           100, 101, 102, 103, 104, 105, 106, 107, -11, -10, -1, 0, 10, 999, -999]


def _create(path, flags=0):
    return [("s", path), ("B", b"x"), ("acl", wire.OPEN_ACL), ("i", flags)]


def op_fields(op, k):
    """(fields of a valid request body, fixture) for opcode `op`; fixture = (path, flags) to
    create through the target before the probe, or None. `k` makes paths unique."""
    h = "/hostile"
    if op in (1, 15):
        return _create(f"{h}/c{k}"), None
    if op == 2:
        return [("s", f"{h}/d{k}"), ("i", -1)], (f"{h}/d{k}", 0)
    if op in (3, 4):
        return [("s", h), ("b", False)], None
    if op == 5:
        return [("s", h), ("B", b"v"), ("i", -1)], None
    if op == 6:
        return [("s", h)], None
    if op == 7:
        return [("s", f"{h}/acl"), ("acl", wire.OPEN_ACL), ("i", -1)], None
    if op in (8, 12):
        return [("s", "/hostile-quiet"), ("b", False)], None
    if op == 9:
        return [("s", "/")], None
    if op in (11, 107, -11):
        return [], None
    if op == 13:
        return [("s", h), ("i", -1)], None
    if op == 14:
        return (wire.multi_header(1) + _create(f"{h}/m{k}") + wire.multi_header(5)
                + [("s", h), ("B", b"m"), ("i", -1)] + wire.multi_header(13) + [("s", h), ("i", -1)]
                + wire.MULTI_END), None
    if op == 16:
        return [("s", ""), ("s", "99"), ("s", None), ("l", -1)], None
    if op in (17, 18):
        return [("s", h), ("i", 3)], None
    if op == 19:
        return _create(f"{h}/ct{k}", 4), None
    if op == 20:
        return [("s", f"{h}/dc{k}")], (f"{h}/dc{k}", 4)
    if op == 21:
        return [("s", f"{h}/ttl{k}"), ("B", b""), ("acl", wire.OPEN_ACL), ("i", 5), ("l", 60000)], None
    if op == 22:
        return (wire.multi_header(4) + [("s", h), ("b", False)] + wire.multi_header(8)
                + [("s", "/hostile-quiet"), ("b", False)] + wire.MULTI_END), None
    if op == 100:
        return [("i", 0), ("s", "digest"), ("B", b"hostile:pw")], None
    if op == 101:
        return [("l", 0), ("vs", ["/hostile-quiet"]), ("vs", []), ("vs", [])], None
    if op == 105:
        return [("l", 0), ("vs", ["/hostile-quiet"]), ("vs", []), ("vs", []), ("vs", []), ("vs", [])], None
    if op == 102:
        return [("B", b"not-a-sasl-token")], None
    if op == 103:
        return [("s", "/")], None
    if op == 104:
        return [("s", "/hostile-quiet")], None
    if op == 106:
        return [("s", "/hostile-quiet"), ("i", 1)], None
    if op == -10:
        return [("i", 4000)], None
    return [("s", h)], None   # -1, 0, 10, 999, -999


def variants(op, quick):
    """Names of the probes for `op`."""
    fields, _ = op_fields(op, 0)
    names = ["valid", "trunc", "empty", "oversize", "garbage"]
    nlen = len(wire.length_fields(fields))
    for i in range(min(nlen, 1 if quick else 3)):
        names += [f"neglen@{i}", f"hugelen@{i}"]
    kinds = wire.length_fields(fields)
    if "s" in kinds:
        names += ["badutf8", "badpath"] if not quick else ["badutf8"]
    if op in (14, 22):
        names += ["multi-junk-type", "multi-no-end", "multi-nested", "multi-mixed"]
        if not quick:
            names += ["multi-random-hdrs", "multi-1000-ops"]
    if not fields:
        names.remove("empty")
    return names


def _first_s_index(fields):
    for n, kind in enumerate(wire.length_fields(fields)):
        if kind == "s":
            return n
    return 0


def build(op, variant, k, rng):
    """(payload bytes to send, fixture, wait for close instead of a reply)."""
    fields, fixture = op_fields(op, k)
    xid = -2 if op == 11 else PROBE_XID
    body = wire.encode(fields)
    if variant == "valid":
        return wire.request(xid, op, body), fixture, False
    if variant == "trunc":
        if body:
            return wire.request(xid, op, body[: len(body) // 2]), fixture, False
        payload = struct.pack(">i", xid) + struct.pack(">i", op)[:2]   # header cut inside the opcode
        return struct.pack(">i", len(payload)) + payload, fixture, False
    if variant == "empty":
        return wire.request(xid, op), fixture, False
    if variant == "oversize":
        declared = 4 << 20   # beyond jute.maxbuffer (0xfffff)
        head = struct.pack(">ii", xid, op) + body
        return struct.pack(">i", declared) + head + b"\0" * 4096, fixture, True
    if variant == "garbage":
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 160)))
        return wire.request(xid, op, junk), fixture, False
    if variant.startswith(("neglen@", "hugelen@")):
        what, idx = variant.split("@")
        return wire.request(xid, op, wire.encode(fields, (int(idx), what))), fixture, False
    if variant in ("badutf8", "badpath"):
        return wire.request(xid, op, wire.encode(fields, (_first_s_index(fields), variant))), fixture, False
    # multi / multiRead shapes
    h = "/hostile"
    if variant == "multi-junk-type":
        junk = bytes(rng.getrandbits(8) for _ in range(24))
        body = wire.encode(wire.multi_header(12345) + [("raw", junk)] + wire.MULTI_END)
    elif variant == "multi-no-end":
        body = wire.encode(wire.multi_header(4) + [("s", h), ("b", False)])
    elif variant == "multi-nested":
        inner = wire.multi_header(4) + [("s", h), ("b", False)] + wire.MULTI_END
        body = wire.encode(wire.multi_header(op) + inner + wire.MULTI_END)
    elif variant == "multi-mixed":
        if op == 14:   # a read inside a write multi
            body = wire.encode(wire.multi_header(4) + [("s", h), ("b", False)] + wire.MULTI_END)
        else:          # a write inside multiRead
            body = wire.encode(wire.multi_header(1) + _create(f"{h}/mr{k}") + wire.MULTI_END)
    elif variant == "multi-random-hdrs":
        parts = []
        for _ in range(6):
            parts += [("i", rng.choice([rng.randint(-2**31, 2**31 - 1), 1, 2, 5, 13, 20, -11, 101]))]
            parts += [("b", rng.random() < 0.2), ("i", rng.randint(-200, 5))]
            parts += [("raw", bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 12))))]
        body = wire.encode(parts)
    elif variant == "multi-1000-ops":
        sub = [("s", h), ("i", -1)] if op == 14 else [("s", h), ("b", False)]
        ops = []
        for _ in range(1000):
            ops += wire.multi_header(13 if op == 14 else 4) + sub
        body = wire.encode(ops + wire.MULTI_END)
    else:
        raise ValueError(variant)
    return wire.request(xid, op, body), fixture, False


def run_client_probe(port, op, variant, k, rng):
    """Sends one probe on a fresh session through the server on `port`; returns its answer."""
    payload, fixture, expect_close = build(op, variant, k, rng)
    if fixture:
        try:
            err = raw_create(port, fixture[0], fixture[1])
        except Exception as e:  # noqa: BLE001
            return f"fixture-failed({type(e).__name__})"
        if err != 0:
            return f"fixture-failed(e{err})"
    try:
        conn, _ = wire.open_session(port)
    except Exception as e:  # noqa: BLE001
        return f"no-session({type(e).__name__})"
    try:
        conn.send(payload)
        if expect_close:
            waited = conn.wait_closed(CLOSE_WAIT)
            return "none/closed" if waited is not None else f"none/open>{CLOSE_WAIT:.0f}s"
        conn.send(FENCE)
        return _read_answer(conn, op)
    except (OSError, wire.Closed) as e:
        return f"send-failed({type(e).__name__})"
    finally:
        close_session_quietly(conn)


def _read_answer(conn, op):
    deadline = time.monotonic() + REPLY_WAIT
    reply = None
    pings_needed = 2 if op == 11 else 1
    pings = 0
    other = 0
    state = "hung"
    try:
        while True:
            frame = conn.read_frame(deadline)
            parsed = wire.parse_reply(frame)
            if parsed is None:
                other += 1
                continue
            xid, _zxid, err, _body = parsed
            if xid == -2:
                pings += 1
                if op == 11 and reply is None:
                    reply = "ok" if err == 0 else f"e{err}"
                if pings >= pings_needed:
                    state = "open"
                    break
            elif xid == PROBE_XID and reply is None:
                reply = "ok" if err == 0 else f"e{err}"
            elif xid == -1:
                continue   # a watch notification
            else:
                other += 1
    except wire.Closed:
        state = "closed"
    except OSError:   # socket.timeout
        state = "hung"
    if reply is None:
        reply = "other" if other else "none"
    return f"{reply}/{state}"


# ---------------------------------------------------------------------------------------------
# pre-handshake probes: bytes sent instead of (or in) the ConnectRequest

def _connect_fields(passwd_len=16, timeout=4000, session=0, proto=0):
    return (struct.pack(">iqiq", proto, 0, timeout, session) + struct.pack(">i", passwd_len)
            + b"\0" * 16 + b"\0")


def pre_handshake_probes(quick):
    rng = random.Random(3)
    garbage = bytes(rng.getrandbits(8) for _ in range(256))
    probes = {
        "pre garbage 256 B": garbage,
        "pre len 0x7fffffff": struct.pack(">i", 0x7FFFFFFF) + b"\0" * 64,
        "pre len 4 MiB": struct.pack(">i", 4 << 20) + b"\0" * 64,
        "pre len -1": struct.pack(">i", -1) + b"\0" * 64,
        "pre len 0": struct.pack(">i", 0),
        "pre connect garbage": struct.pack(">i", 45) + bytes(rng.getrandbits(8) for _ in range(45)),
        "pre connect passwd len -5": struct.pack(">i", 45) + _connect_fields(passwd_len=-5),
        "pre connect passwd len huge": struct.pack(">i", 45) + _connect_fields(passwd_len=0x7FFFFFF0),
        "pre connect unknown session": wire.frame(_connect_fields(session=0x5EED0000DEAD)),
        "pre connect timeout -1": wire.frame(_connect_fields(timeout=-1)),
        "pre connect proto 0x7fffffff": wire.frame(_connect_fields(proto=0x7FFFFFFF)),
        "pre connect short (20 B)": wire.frame(_connect_fields()[:20]),
        "pre connect + garbage": wire.connect_request(4000) + garbage,
        "pre 4lw zzzz": b"zzzz",
    }
    if quick:
        for name in ("pre len 0", "pre connect proto 0x7fffffff", "pre 4lw zzzz", "pre connect short (20 B)"):
            probes.pop(name)
    return probes


def run_pre_probe(port, payload, wait=2.0):
    """Sends `payload` on a new connection; answer: whether a frame came back and whether and
    when the server closed the connection."""
    try:
        conn = wire.Conn.dial(port)
    except OSError as e:
        return f"refused({type(e).__name__})"
    t0 = time.monotonic()
    got = "none"
    try:
        conn.send(payload)
        deadline = t0 + wait
        try:
            frame = conn.read_frame(deadline)
            got = f"reply{len(frame)}B"
            if len(frame) >= 16:
                _proto, to, sid = struct.unpack(">iiq", frame[:16])
                got = f"connresp(sid={'0' if sid == 0 else 'new'},to={to})"
            while True:
                conn.read_frame(deadline)
        except wire.Closed:
            return f"{got}/closed@{(time.monotonic() - t0) * 1000:.0f}ms"
        except OSError:
            return f"{got}/open>{wait:.0f}s"
    except OSError as e:
        return f"{got}/send-failed({type(e).__name__})"
    finally:
        conn.close()
