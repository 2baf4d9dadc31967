#!/usr/bin/env python3
"""Differential test: one seeded random operation sequence, run against two servers, compared reply by reply.

    python3 tests/diff/difftest.py --seed N --steps K [--kinds zk,zkrs]
        [--max-mismatches M] [--skip kind,...|exotic] [--trace-dir DIR] [--expiries E]

Both servers (by default Apache ZooKeeper 3.8 and zkrs) run side by side and every step
goes to both, through the same kazoo connection code but with our own request records,
so raw reply headers (zxid, error code) and bodies are visible.  Each reply is normalized
(no times; zxids relative to the test root's czxid; session ids as ordinals s0, s1 ...;
child lists sorted) and recorded with the watch events each session received.  The first
differing step is printed with the seed, the operation and both replies; exit status 1.
`--kinds zk,zk` compares ZooKeeper with itself, which proves the trace is deterministic.

Determinism rules this file relies on:
- one client request at a time; after every step, one round trip on every live session
  (a barrier), so all events caused by that step have arrived before they are read;
- the container/TTL reaper never runs during the main phase (its interval is set to an
  hour); reaping is checked in a separate phase by outcome only, not by timing;
- the generator draws only from its seeded RNG and from the first server's replies,
  which equal the second's up to the first mismatch.
"""
import argparse
import hashlib
import json
import logging
import os
import random
import socket
import struct
import sys
import threading
import time
from collections import namedtuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

from kazoo.client import KazooClient  # noqa: E402
from kazoo.security import make_digest_acl_credential  # noqa: E402
from servers import Server  # noqa: E402

OP_TIMEOUT = 15.0          # seconds for one reply; far above any legitimate latency
SESSION_TIMEOUT = 30.0     # long, so that kazoo never drops a connection on a slow machine
SHORT_TIMEOUT = 4.0        # the session that expires by timeout (ZK's minimum with tickTime 2000)
EXPIRY_WAIT = 40.0
NO_REAPING_MS = 3_600_000  # reaper interval during the main phase: never within a run
ROOT = "/t"
MARKERS = "/markers"
SESSION_ENDS = ("close", "reattach_close", "expire")

# ---------------------------------------------------------------- wire encoding

OPCODES = {
    "create": 1, "delete": 2, "exists": 3, "getData": 4, "setData": 5, "getACL": 6, "setACL": 7,
    "getChildren": 8, "sync": 9, "getChildren2": 12, "check": 13, "multi": 14, "create2": 15,
    "checkWatches": 17, "removeWatches": 18, "createContainer": 19, "deleteContainer": 20,
    "createTTL": 21, "multiRead": 22, "setWatches": 101, "getEphemerals": 103,
    "getAllChildrenNumber": 104, "setWatches2": 105, "addWatch": 106, "whoAmI": 107,
}
ERRORS = {
    0: "OK", -1: "SystemError", -2: "RuntimeInconsistency", -3: "DataInconsistency",
    -4: "ConnectionLoss", -5: "MarshallingError", -6: "Unimplemented", -7: "OperationTimeout",
    -8: "BadArguments", -12: "UnknownSession", -13: "NewConfigNoQuorum", -14: "ReconfigInProgress",
    -100: "APIError", -101: "NoNode", -102: "NoAuth", -103: "BadVersion",
    -108: "NoChildrenForEphemerals", -110: "NodeExists", -111: "NotEmpty", -112: "SessionExpired",
    -113: "InvalidCallback", -114: "InvalidACL", -115: "AuthFailed", -118: "SessionMoved",
    -119: "NotReadOnly", -120: "EphemeralOnLocalSession", -121: "NoWatcher", -122: "RequestTimeout",
    -123: "ReconfigDisabled", -124: "SessionClosedRequireSasl", -125: "QuotaExceeded", -127: "Throttled",
}
EVENTS = {-1: "None", 1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged", 4: "NodeChildrenChanged"}

Stat = namedtuple("Stat", "czxid mzxid ctime mtime version cversion aversion ephemeralOwner "
                          "dataLength numChildren pzxid")
STAT = struct.Struct("!qqqqiiiqiiq")


def e_int(v):
    return struct.pack("!i", v)


def e_long(v):
    return struct.pack("!q", v)


def e_bool(v):
    return b"\x01" if v else b"\x00"


def e_buf(b):
    return e_int(-1) if b is None else e_int(len(b)) + b


def e_str(s):
    # unlike kazoo's writer, "" goes out as an empty string and only None as null
    return e_buf(None if s is None else s.encode("utf-8"))


def e_strs(items):
    return e_int(len(items)) + b"".join(e_str(s) for s in items)


def e_acls(acls):
    return e_int(len(acls)) + b"".join(e_int(p) + e_str(sch) + e_str(i) for p, sch, i in acls)


class Reader:
    def __init__(self, buf, off):
        self.buf, self.off = bytes(buf), off

    def _unpack(self, st):
        (v,) = st.unpack_from(self.buf, self.off)
        self.off += st.size
        return v

    def int(self):
        return self._unpack(struct.Struct("!i"))

    def long(self):
        return self._unpack(struct.Struct("!q"))

    def bool(self):
        return self._unpack(struct.Struct("!B")) != 0

    def buffer(self):
        n = self.int()
        if n < 0:
            return None
        if self.off + n > len(self.buf):
            raise ValueError("buffer runs past the end of the reply")
        b = self.buf[self.off:self.off + n]
        self.off += n
        return b

    def str(self):
        b = self.buffer()
        return None if b is None else b.decode("utf-8", "backslashreplace")

    def strs(self):
        n = self.int()
        return None if n < 0 else [self.str() for _ in range(n)]

    def stat(self):
        s = Stat(*STAT.unpack_from(self.buf, self.off))
        self.off += STAT.size
        return s

    def acls(self):
        n = self.int()
        return None if n < 0 else [[self.int(), self.str(), self.str()] for _ in range(n)]

    def left(self):
        return len(self.buf) - self.off


def short_bytes(b):
    if len(b) <= 40:
        return repr(b)
    return f"<{len(b)} bytes sha1:{hashlib.sha1(b).hexdigest()[:12]}>"


def sorted_or_none(items):
    return None if items is None else sorted(items)


# reply parsers; child and ephemeral lists have no defined order, so they are sorted
P_NONE = None
P_PATH = lambda r: r.str()  # noqa: E731
P_PATH_STAT = lambda r: [r.str(), r.stat()]  # noqa: E731
P_STAT = lambda r: r.stat()  # noqa: E731
P_DATA = lambda r: [r.buffer(), r.stat()]  # noqa: E731
P_ACL = lambda r: [r.acls(), r.stat()]  # noqa: E731
P_CHILDREN = lambda r: sorted_or_none(r.strs())  # noqa: E731
P_CHILDREN2 = lambda r: [sorted_or_none(r.strs()), r.stat()]  # noqa: E731
P_INT = lambda r: r.int()  # noqa: E731
P_WHOAMI = lambda r: [[r.str(), r.str()] for _ in range(r.int())]  # noqa: E731


def P_MULTI(r):
    out = []
    while True:
        typ, done, err = r.int(), r.bool(), r.int()
        if done:
            return out
        if typ == 1:
            out.append(["create", r.str()])
        elif typ in (15, 19, 21):
            out.append(["create2", r.str(), r.stat()])
        elif typ in (2, 20):
            out.append(["delete"])
        elif typ == 13:
            out.append(["check"])
        elif typ == 5:
            out.append(["setData", r.stat()])
        elif typ == 4:
            out.append(["getData", r.buffer(), r.stat()])
        elif typ == 8:
            out.append(["getChildren", sorted_or_none(r.strs())])
        elif typ == -1:
            out.append(["error", ERRORS.get(err, err), ERRORS.get(r.int(), "?")])
        else:
            raise ValueError(f"unknown result type {typ} in multi reply")


class Req:
    """One request for kazoo's connection: kazoo adds the xid and opcode, we give the body.

    The reply header (zxid, err) is caught by Session's hook and stored here, the parsed
    body too; kazoo itself only ever gets an empty list back (which also satisfies its
    special treatment of multi replies)."""

    def __init__(self, opname, body, parse=P_NONE):
        self.type = OPCODES[opname]
        self.opname = opname
        self.body = bytes(body)
        self.parse = parse
        self.reply = None      # (zxid, err) from the reply header
        self.value = None
        self.left = 0          # bytes of the reply body we did not consume

    def serialize(self):
        return self.body

    def deserialize(self, buf, offset):
        if self.parse is not None:
            r = Reader(buf, offset)
            self.value = self.parse(r)
            self.left = r.left()
        else:
            self.left = len(buf) - offset
        return []

    def __repr__(self):
        return f"Req({self.opname})"


def create_req(path, data, acls, flags, opc="create", ttl=None):
    body = e_str(path) + e_buf(data) + e_acls(acls) + e_int(flags)
    if opc == "createTTL":
        body += e_long(ttl)
    return Req(opc, body, P_PATH if opc == "create" else P_PATH_STAT)


def path_watch_req(opname, path, watch, parse):
    return Req(opname, e_str(path) + e_bool(watch), parse)


def multi_body(ops):
    """ops: list of (opcode, body); MultiHeader(type, done=false, err=-1) before each."""
    out = b"".join(e_int(t) + e_bool(False) + e_int(-1) + body for t, body in ops)
    return out + e_int(-1) + e_bool(True) + e_int(-1)


# ---------------------------------------------------------------- ACLs and auth

READ, WRITE, CREATE, DELETE, ADMIN, ALL = 1, 2, 4, 8, 16, 31
CREDS = {"alice": "alice:pa", "bob": "bob:pb", "alice-wrong": "alice:nope", "super": "super:test"}


def digest(user):
    name, password = CREDS[user].split(":")
    return make_digest_acl_credential(name, password)


ACLS = {
    "open": [(ALL, "world", "anyone")],
    "read": [(READ, "world", "anyone")],
    "creator": [(ALL, "auth", "")],
    "alice": [(ALL, "digest", digest("alice"))],
    "bob-rw": [(READ | WRITE, "digest", digest("bob"))],
    "alice+read": [(ALL, "digest", digest("alice")), (READ, "world", "anyone")],
    "alice+bob": [(ALL, "digest", digest("alice")), (READ | CREATE | DELETE, "digest", digest("bob"))],
    "no-delete": [(ALL & ~DELETE, "world", "anyone")],
    "no-create": [(ALL & ~CREATE, "world", "anyone")],
    "ip-local": [(ALL, "ip", "127.0.0.1")],
    "ip-other": [(ALL, "ip", "10.1.0.0/16")],
    "dup": [(ALL, "world", "anyone"), (ALL, "world", "anyone")],
    "zero-perms": [(0, "world", "anyone")],
    "empty": [],
    "bad-digest": [(ALL, "digest", "alice")],
    "bad-scheme": [(ALL, "nosuch", "x")],
    "bad-ip": [(ALL, "ip", "300.1.2.3")],
}
ACL_WEIGHTS = {"open": 60, "read": 3, "creator": 4, "alice": 4, "bob-rw": 3, "alice+read": 3,
               "alice+bob": 3, "no-delete": 3, "no-create": 3, "ip-local": 2, "ip-other": 2,
               "dup": 1, "zero-perms": 1, "empty": 1, "bad-digest": 1, "bad-scheme": 1, "bad-ip": 1}


class RunnerError(Exception):
    pass


# ---------------------------------------------------------------- sessions

class Session:
    """A kazoo client whose watch events and reply headers are recorded raw, in arrival order."""

    def __init__(self, server, name, timeout=SESSION_TIMEOUT, client_id=None):
        self.name = name
        self.server_gone = lambda: server.proc is None or server.proc.poll() is not None
        connect_string = server.connect_string
        self.events = []
        self.taken = 0
        self.retired = False
        self.cond = threading.Condition()
        client = KazooClient(hosts=connect_string, timeout=timeout, client_id=client_id)
        conn = client._connection
        conn._read_watch_event = self._on_watch
        original = conn._read_response

        def read_response(header, buffer, offset):
            # the head of _pending is the request this reply answers (kazoo checks the xid)
            if client._pending:
                req = client._pending[0][0]
                if isinstance(req, Req):
                    req.reply = (header.zxid, header.err)
            return original(header, buffer, offset)

        conn._read_response = read_response
        client.start(timeout=20)
        client.add_listener(self._on_state)
        self.client = client
        self.sid, self.passwd = client.client_id

    def _on_watch(self, buffer, offset):
        typ, state = struct.unpack_from("!ii", buffer, offset)
        path = Reader(buffer, offset + 8).str()
        with self.cond:
            self.events.append([EVENTS.get(typ, typ), state, path])
            self.cond.notify_all()

    def _on_state(self, state):
        # a connection drop we did not ask for loses watches: make it visible in the trace
        if not self.retired:
            with self.cond:
                self.events.append(["STATE", str(state)])
                self.cond.notify_all()

    def submit(self, req):
        result = self.client.handler.async_result()
        self.client._call(req, result)
        return result

    def wait(self, req, result):
        deadline = time.monotonic() + OP_TIMEOUT
        while True:
            try:
                result.get(timeout=0.5)
                return None
            except self.client.handler.timeout_exception:
                if self.server_gone():
                    raise RunnerError(f"{self.name}: server process exited (waiting for {req.opname})")
                if time.monotonic() > deadline:
                    raise RunnerError(f"{self.name}: no reply to {req.opname} within {OP_TIMEOUT}s")
            except Exception as e:  # a server error reply; the header tells which
                if req.reply is None:
                    return {"client-error": type(e).__name__}
                return None

    def take_events(self):
        with self.cond:
            new = self.events[self.taken:]
            self.taken = len(self.events)
        return new

    def wait_event(self, event, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while event not in self.events:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RunnerError(f"{self.name}: event {event} not seen within {timeout}s")
                self.cond.wait(left)

    def close(self):
        """Close the session (closeSession from this connection)."""
        self.retired = True
        self.client.stop()
        self.client.close()

    def freeze(self):
        """Drop the TCP connection without closing the session; kazoo must not reconnect."""
        self.retired = True
        client = self.client
        client._stopped.set()
        sock = client._connection._socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        client._safe_close()
        client.close()


# ---------------------------------------------------------------- one server under test

class Runner:
    NSLOTS = 4

    def __init__(self, kind, label, container_check_ms=NO_REAPING_MS):
        self.kind, self.label = kind, label
        self.server = Server(kind, container_check_ms=container_check_ms)
        self.sessions = []        # slot -> Session
        self.names = {}           # session id -> ordinal name
        self.pending = []         # retired sessions whose last events are not collected yet
        self.base = None
        self.control = None
        self.stash = None         # result of begin() for two-phase steps
        self.trace = []

    # -- lifecycle

    def start(self):
        self.server.start()
        self.control = Session(self.server, "control")
        for _ in range(self.NSLOTS):
            self.sessions.append(self.new_session())

    def stop(self):
        for s in self.sessions + [self.control]:
            if s is not None and not s.retired:
                try:
                    s.close()
                except Exception:
                    pass
        self.server.cleanup()

    def new_session(self, timeout=SESSION_TIMEOUT):
        name = f"s{len(self.names)}"
        s = Session(self.server, name, timeout)
        self.names[s.sid] = name
        return s

    def live(self):
        return [s for s in self.sessions if not s.retired]

    # -- normalization

    def z(self, zxid):
        if self.base is None or zxid < self.base:
            return f"pre{zxid}"
        return zxid - self.base

    def owner(self, sid):
        if sid == 0:
            return 0
        return self.names.get(sid, f"unknown:{sid & 0xFFFFFFFFFFFFFFFF:#x}")

    def norm(self, v):
        if isinstance(v, Stat):
            return {"czxid": self.z(v.czxid), "mzxid": self.z(v.mzxid), "pzxid": self.z(v.pzxid),
                    "version": v.version, "cversion": v.cversion, "aversion": v.aversion,
                    "owner": self.owner(v.ephemeralOwner), "dataLength": v.dataLength,
                    "numChildren": v.numChildren}
        if isinstance(v, (list, tuple)):
            return [self.norm(x) for x in v]
        if isinstance(v, bytes):
            return short_bytes(v)
        return v

    # -- requests

    def call(self, session, req):
        problem = session.wait(req, session.submit(req))
        return problem if problem is not None else self.result(req)

    def result(self, req):
        zxid, err = req.reply
        out = {"zxid": self.z(zxid)}
        if err:
            out["err"] = ERRORS.get(err, err)
        else:
            out["ok"] = self.norm(req.value)
        if req.left:
            out["unread-bytes"] = req.left
        return out

    def barrier(self):
        """One round trip per live session: every event caused so far is then in its list."""
        sent = []
        for s in self.live() + ([self.control] if not self.control.retired else []):
            req = path_watch_req("exists", "/", False, P_STAT)
            sent.append((s, req, s.submit(req)))
        for s, req, result in sent:
            s.wait(req, result)
        events = {}
        for s in self.live() + self.pending:
            new = s.take_events()
            if new:
                events[s.name] = new
        self.pending = []
        return events

    # -- steps

    def setup(self):
        s0 = self.sessions[0]
        root = create_req(ROOT, b"root", ACLS["open"], 0, "create2")
        problem = s0.wait(root, s0.submit(root))
        if problem is not None or root.reply[1] != 0:
            raise RunnerError(f"cannot create {ROOT}: {problem or root.reply}")
        # the test root's czxid is the zero point of all zxids in the trace
        self.base = root.value[1].czxid
        res = [self.result(root), self.call(s0, create_req(MARKERS, b"", ACLS["open"], 0, "create2"))]
        entry = {"op": {"k": "setup"}, "res": res, "ev": self.barrier()}
        self.trace.append(entry)
        return entry

    def begin(self, op):
        self.stash = None
        if op["k"] == "expire":
            try:
                self.stash = self.begin_expire(op)
            except Exception as e:
                self.stash = {"runner-error": f"{type(e).__name__}: {e}"}

    def finish(self, op):
        try:
            if self.stash and "runner-error" in self.stash:
                raise RunnerError(self.stash["runner-error"])
            res = getattr(self, "op_" + op["k"])(op)
            ev = self.barrier()
            if op["k"] in SESSION_ENDS:
                # a closing session's ephemerals go in hash-set order in ZooKeeper: not a contract
                ev = {name: sorted(evs, key=json.dumps) for name, evs in ev.items()}
        except Exception as e:  # the server died, hung or broke the connection
            res, ev = {"runner-error": f"{type(e).__name__}: {e}"}, {}
        entry = {"op": op, "res": res, "ev": ev}
        self.trace.append(entry)
        return entry

    def log_tail(self, lines=15):
        try:
            with open(os.path.join(self.server.workdir, "server.out"), errors="replace") as f:
                return f.readlines()[-lines:]
        except OSError:
            return []

    def slot(self, op):
        return self.sessions[op["s"]]

    def op_create(self, op):
        acls = ACLS[op["acl"]]
        return self.call(self.slot(op), create_req(op["path"], op["data"], acls, op["mode"],
                                                   op["opc"], op.get("ttl")))

    def op_delete(self, op):
        return self.call(self.slot(op), Req("delete", e_str(op["path"]) + e_int(op["ver"])))

    def op_exists(self, op):
        return self.call(self.slot(op), path_watch_req("exists", op["path"], op["watch"], P_STAT))

    def op_get(self, op):
        return self.call(self.slot(op), path_watch_req("getData", op["path"], op["watch"], P_DATA))

    def op_children(self, op):
        if op["stat"]:
            req = path_watch_req("getChildren2", op["path"], op["watch"], P_CHILDREN2)
        else:
            req = path_watch_req("getChildren", op["path"], op["watch"], P_CHILDREN)
        return self.call(self.slot(op), req)

    def op_set(self, op):
        body = e_str(op["path"]) + e_buf(op["data"]) + e_int(op["ver"])
        return self.call(self.slot(op), Req("setData", body, P_STAT))

    def op_getacl(self, op):
        return self.call(self.slot(op), Req("getACL", e_str(op["path"]), P_ACL))

    def op_setacl(self, op):
        body = e_str(op["path"]) + e_acls(ACLS[op["acl"]]) + e_int(op["ver"])
        return self.call(self.slot(op), Req("setACL", body, P_STAT))

    def op_sync(self, op):
        return self.call(self.slot(op), Req("sync", e_str(op["path"]), P_PATH))

    def op_allchildren(self, op):
        return self.call(self.slot(op), Req("getAllChildrenNumber", e_str(op["path"]), P_INT))

    def op_ephemerals(self, op):
        return self.call(self.slot(op), Req("getEphemerals", e_str(op["prefix"]), P_CHILDREN))

    def op_whoami(self, op):
        return self.call(self.slot(op), Req("whoAmI", b"", P_WHOAMI))

    def op_addwatch(self, op):
        return self.call(self.slot(op), Req("addWatch", e_str(op["path"]) + e_int(op["mode"]), P_INT))

    def op_checkwatches(self, op):
        return self.call(self.slot(op), Req("checkWatches", e_str(op["path"]) + e_int(op["type"])))

    def op_removewatches(self, op):
        return self.call(self.slot(op), Req("removeWatches", e_str(op["path"]) + e_int(op["type"])))

    def op_setwatches(self, op):
        rel = self.base + op["rel"]
        body = e_long(rel) + e_strs(op["data"]) + e_strs(op["exist"]) + e_strs(op["child"])
        if op["v"] == 2:
            body += e_strs(op["persistent"]) + e_strs(op["recursive"])
        return self.call(self.slot(op), Req("setWatches" if op["v"] == 1 else "setWatches2", body))

    def op_deletecontainer(self, op):
        # ZooKeeper reads the whole request body of deleteContainer as the path
        body = op["path"].encode() if op["raw"] else e_str(op["path"]) + e_int(-1)
        return self.call(self.slot(op), Req("deleteContainer", body))

    def op_multi(self, op):
        parts = []
        for sub in op["ops"]:
            t = sub["t"]
            if t == "create":
                body = e_str(sub["path"]) + e_buf(sub["data"]) + e_acls(ACLS[sub["acl"]]) + e_int(sub["mode"])
                if sub["opc"] == "createTTL":
                    body += e_long(sub["ttl"])
                parts.append((OPCODES[sub["opc"]], body))
            elif t == "delete":
                parts.append((2, e_str(sub["path"]) + e_int(sub["ver"])))
            elif t == "set":
                parts.append((5, e_str(sub["path"]) + e_buf(sub["data"]) + e_int(sub["ver"])))
            elif t == "check":
                parts.append((13, e_str(sub["path"]) + e_int(sub["ver"])))
        return self.call(self.slot(op), Req("multi", multi_body(parts), P_MULTI))

    def op_multiread(self, op):
        parts = [(4 if sub["t"] == "get" else 8, e_str(sub["path"]) + e_bool(sub.get("watch", False)))
                 for sub in op["ops"]]
        return self.call(self.slot(op), Req("multiRead", multi_body(parts), P_MULTI))

    def op_auth(self, op):
        s = self.slot(op)
        try:
            s.client.add_auth_async("digest", CREDS[op["user"]]).get(timeout=OP_TIMEOUT)
            return {"ok": True}
        except s.client.handler.timeout_exception:
            raise RunnerError(f"{s.name}: no reply to auth within {OP_TIMEOUT}s")
        except Exception as e:
            return {"err": type(e).__name__}

    def replace(self, slot, session):
        self.pending.append(self.sessions[slot])
        self.sessions[slot] = session

    def op_close(self, op):
        old = self.slot(op)
        old.close()
        self.replace(op["s"], self.new_session())
        return {"ok": f"{old.name} closed, slot now {self.sessions[op['s']].name}"}

    def op_reattach(self, op):
        """The session moves to a new TCP connection: no auth, no watches on the new one."""
        old = self.slot(op)
        old.freeze()
        new = Session(self.server, old.name, SESSION_TIMEOUT, (old.sid, old.passwd))
        self.replace(op["s"], new)
        return {"ok": "same session" if new.sid == old.sid else "new session id"}

    def op_reattach_close(self, op):
        """Expire a session at once: attach a second connection to it and close from there."""
        old = self.slot(op)
        old.freeze()
        other = Session(self.server, old.name + "'", SESSION_TIMEOUT, (old.sid, old.passwd))
        same = other.sid == old.sid
        other.close()
        self.replace(op["s"], self.new_session())
        return {"ok": f"{'same' if same else 'new'} session closed, slot now {self.sessions[op['s']].name}"}

    def begin_expire(self, op):
        """A short-timeout session creates ephemerals, others watch them, then it goes silent."""
        t = self.new_session(SHORT_TIMEOUT)
        marker = f"{MARKERS}/{t.name}"
        res = [self.call(t, create_req(marker, b"", ACLS["open"], 1, "create"))]
        for c in op["creates"]:
            res.append(self.call(t, create_req(c["path"], c["data"], ACLS["open"], c["mode"], "create2")))
        for slot, path in op["watch"]:
            res.append(self.call(self.sessions[slot], path_watch_req("exists", path, True, P_STAT)))
        watched = self.call(self.control, path_watch_req("exists", marker, True, P_STAT))
        if "ok" not in watched:
            raise RunnerError(f"marker {marker}: {watched}")
        res.append(self.call(t, Req("getEphemerals", e_str("/"), P_CHILDREN)))
        t.freeze()
        self.pending.append(t)
        return {"session": t.name, "marker": marker, "setup": res}

    def op_expire(self, op):
        if self.stash is None:
            raise RunnerError("expire without begin")
        self.control.wait_event(["NodeDeleted", 3, self.stash["marker"]], EXPIRY_WAIT)
        self.control.take_events()
        # the expired session's ephemerals must be gone
        created = [r["ok"][0] for r in self.stash["setup"][1:1 + len(op["creates"])] if "ok" in r]
        after = [self.call(self.sessions[0], path_watch_req("exists", p, False, P_STAT)) for p in created]
        return dict(self.stash, after=after)


# ---------------------------------------------------------------- the operation generator

L1, L2, L3 = ["a", "b", "c", "é"], ["x", "y"], ["p", "q"]
UNIVERSE = [ROOT] + [f"{ROOT}/{a}" for a in L1] + [f"{ROOT}/{a}/{b}" for a in L1 for b in L2] \
    + [f"{ROOT}/{a}/{b}/{c}" for a in L1 for b in L2 for c in L3]
SYSTEM_PATHS = ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota", MARKERS]
BAD_PATHS = ["", "t", f"{ROOT}/", f"{ROOT}//a", f"{ROOT}/./a", f"{ROOT}/../t", f"{ROOT}/a\u0000b",
             f"{ROOT}/a/.", "/zookeeper/x", "//", f"{ROOT}/\u0001"]

WEIGHTS = {
    "create": 22, "create_container": 3, "create_ttl": 4, "create_odd": 1,
    "get": 8, "exists": 8, "children": 7, "allchildren": 2, "ephemerals": 2,
    "set": 10, "delete": 10, "getacl": 3, "setacl": 3,
    "multi": 8, "multiread": 3, "sync": 2, "auth": 2, "whoami": 1,
    "addwatch": 4, "removewatches": 2, "checkwatches": 1, "setwatches": 1,
    "close": 1, "reattach": 1, "reattach_close": 1,
    "sys": 1, "badpath": 1, "deletecontainer": 1,
}
# kinds that only cover corner cases of the wire protocol; `--skip exotic` drops them all
EXOTIC = ["create_odd", "badpath", "deletecontainer", "setwatches"]
# Not generated: a successful standalone `check` (opcode 13 outside a multi) gets no reply at
# all from ZooKeeper 3.8.0 (it fails to serialize a null stat), so it cannot be compared.


def in_tree(path):
    """Only valid paths of the test tree become candidates for later operations."""
    return isinstance(path, str) and (path == ROOT or path.startswith(ROOT + "/")) \
        and path not in BAD_PATHS


class Generator:
    def __init__(self, seed, steps, expiries, skip):
        self.rng = random.Random(seed)
        self.weights = {k: w for k, w in WEIGHTS.items() if k not in skip}
        self.kinds = sorted(self.weights)
        self.known = {ROOT}          # nodes believed to exist (from replies; a hint only)
        self.versions = {}           # path -> (version, cversion, aversion) last seen
        self.seq = []                # sequential names seen in replies
        self.max_zxid = 0
        lo = max(1, steps // 10)
        n = min(expiries, max(0, steps - lo)) if "expire" not in skip else 0
        # a separate RNG, so that a shorter --steps replays a prefix of the same sequence
        self.expire_at = set(random.Random(f"{seed}/expire").sample(range(lo, steps), n)) if n else set()

    # -- random choices

    def known_list(self):
        # the root stays a candidate even when deleted: then creating it again is likely
        return sorted(self.known | {ROOT})

    def pick_path(self):
        r = self.rng.random()
        if r < 0.45:
            return self.rng.choice(self.known_list())
        if r < 0.85 or not self.seq:
            return self.rng.choice(UNIVERSE)
        return self.rng.choice(self.seq[-30:])

    def pick_new_path(self):
        r = self.rng.random()
        if r < 0.02:
            return ROOT
        if r < 0.6:
            parent = self.rng.choice(self.known_list())
            depth = parent.count("/") - ROOT.count("/")
            names = [L1, L2, L3, L3][min(depth, 3)]
            return f"{parent}/{self.rng.choice(names)}"
        return self.rng.choice(UNIVERSE[1:])

    def pick_seq_prefix(self):
        parent = self.rng.choice(self.known_list())
        return parent + "/" + self.rng.choice(["s-", "", "q"])

    def pick_data(self):
        r = self.rng.random()
        if r < 0.1:
            return None
        if r < 0.2:
            return b""
        if r < 0.8:
            return f"d{self.rng.randrange(1000)}".encode()
        if r < 0.95:
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 40)))
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(500, 3000)))

    def pick_version(self, path, field=0):
        known = self.versions.get(path, (0, 0, 0))[field]
        r = self.rng.random()
        if r < 0.3:
            return -1
        if r < 0.7:
            return known
        if r < 0.8:
            return known + 1
        if r < 0.95:
            return self.rng.randrange(4)
        return self.rng.choice([-2, 2**31 - 1])

    def pick_acl(self):
        names = sorted(ACL_WEIGHTS)
        return self.rng.choices(names, [ACL_WEIGHTS[n] for n in names])[0]

    def slot(self):
        return self.rng.randrange(Runner.NSLOTS)

    def create_op(self, s):
        mode = self.rng.choice([0, 0, 0, 1, 1, 2, 3])
        path = self.pick_seq_prefix() if mode & 2 else self.pick_new_path()
        return {"k": "create", "s": s, "path": path, "data": self.pick_data(), "acl": self.pick_acl(),
                "mode": mode, "opc": self.rng.choice(["create", "create2"])}

    # -- operations

    def next_op(self, step):
        if step in self.expire_at:
            return self.expire_op(step)
        kind = self.rng.choices(self.kinds, [self.weights[k] for k in self.kinds])[0]
        rng, s = self.rng, self.slot()
        if kind == "create":
            return self.create_op(s)
        if kind == "create_container":
            return {"k": "create", "s": s, "path": self.pick_new_path(), "data": self.pick_data(),
                    "acl": self.pick_acl(), "mode": 4, "opc": "createContainer"}
        if kind == "create_ttl":
            mode = rng.choice([5, 6])
            path = self.pick_seq_prefix() if mode == 6 else self.pick_new_path()
            ttl = rng.choice([1, 1000, 10**9, 2**40 - 1]) if rng.random() < 0.9 else rng.choice([0, -1, 2**40])
            return {"k": "create", "s": s, "path": path, "data": self.pick_data(), "acl": "open",
                    "mode": mode, "opc": "createTTL", "ttl": ttl}
        if kind == "create_odd":
            opc, mode, ttl = rng.choice([("create", 4, None), ("create2", 4, None), ("create", 5, None),
                                         ("create2", 6, None), ("createTTL", 0, 1000), ("createTTL", 1, 1000),
                                         ("createContainer", 0, None), ("create", 7, None),
                                         ("create2", -1, None)])
            return {"k": "create", "s": s, "path": self.pick_new_path(), "data": b"odd", "acl": "open",
                    "mode": mode, "opc": opc, "ttl": ttl}
        if kind in ("get", "exists"):
            return {"k": kind, "s": s, "path": self.pick_path(), "watch": rng.random() < 0.5}
        if kind == "children":
            return {"k": "children", "s": s, "path": self.pick_path(), "watch": rng.random() < 0.5,
                    "stat": rng.random() < 0.5}
        if kind == "allchildren":
            return {"k": "allchildren", "s": s, "path": self.pick_path()}
        if kind == "ephemerals":
            return {"k": "ephemerals", "s": s,
                    "prefix": rng.choice(["/", "", f"{ROOT}/a", ROOT, f"{ROOT}/b/", "/nothing", self.pick_path()])}
        if kind == "set":
            path = self.pick_path()
            return {"k": "set", "s": s, "path": path, "data": self.pick_data(), "ver": self.pick_version(path)}
        if kind == "delete":
            path = self.pick_path()
            return {"k": "delete", "s": s, "path": path, "ver": self.pick_version(path)}
        if kind == "getacl":
            return {"k": "getacl", "s": s, "path": self.pick_path()}
        if kind == "setacl":
            # a closed ACL on the root would starve the rest of the run
            path = self.pick_path()
            while path == ROOT:
                path = self.pick_path()
            return {"k": "setacl", "s": s, "path": path, "acl": self.pick_acl(), "ver": self.pick_version(path, 2)}
        if kind == "multi":
            return {"k": "multi", "s": s, "ops": [self.multi_sub() for _ in range(rng.choice([0, 1, 2, 2, 3, 4]))]}
        if kind == "multiread":
            return {"k": "multiread", "s": s,
                    "ops": [{"t": rng.choice(["get", "children"]), "path": self.pick_path()}
                            for _ in range(rng.randrange(1, 5))]}
        if kind == "sync":
            return {"k": "sync", "s": s, "path": rng.choice([self.pick_path(), "/"])}
        if kind == "auth":
            return {"k": "auth", "s": s, "user": rng.choices(["alice", "bob", "alice-wrong", "super"], [5, 5, 2, 1])[0]}
        if kind == "whoami":
            return {"k": "whoami", "s": s}
        if kind == "addwatch":
            path = ROOT if rng.random() < 0.2 else self.pick_path()
            return {"k": "addwatch", "s": s, "path": path, "mode": rng.choice([0, 1])}
        if kind in ("removewatches", "checkwatches"):
            return {"k": kind, "s": s, "path": self.pick_path(), "type": rng.choice([1, 2, 3, 3])}
        if kind == "setwatches":
            paths = lambda: [self.pick_path() for _ in range(rng.randrange(3))]  # noqa: E731
            return {"k": "setwatches", "s": s, "v": rng.choice([1, 2]),
                    "rel": rng.choice([0, max(0, self.max_zxid - rng.randrange(10)), self.max_zxid + 1000]),
                    "data": paths(), "exist": paths(), "child": paths(), "persistent": paths(), "recursive": paths()}
        if kind in ("close", "reattach", "reattach_close"):
            return {"k": kind, "s": s}
        if kind == "sys":
            what = rng.choice(["get", "exists", "children", "getacl", "allchildren"])
            op = {"k": what, "s": s, "path": rng.choice(SYSTEM_PATHS), "watch": False, "stat": True}
            return op
        if kind == "badpath":
            what = rng.choice(["create", "get", "exists", "children", "set", "delete", "getacl"])
            path = rng.choice(BAD_PATHS)
            if what == "create":
                op = self.create_op(s)
                op["path"] = path
                return op
            return {"k": what, "s": s, "path": path, "watch": False, "stat": True, "data": b"x", "ver": -1,
                    "acl": "open"}
        if kind == "deletecontainer":
            return {"k": "deletecontainer", "s": s, "path": self.pick_path(), "raw": rng.random() < 0.5}
        raise AssertionError(kind)

    def multi_sub(self):
        t = self.rng.choice(["create", "create", "delete", "set", "check"])
        if t == "create":
            op = self.create_op(0)
            sub = {"t": "create", "path": op["path"], "data": op["data"], "acl": op["acl"], "mode": op["mode"],
                   "opc": op["opc"]}
            r = self.rng.random()
            if r < 0.1:
                sub.update(path=self.pick_new_path(), mode=4, opc="createContainer")
            elif r < 0.2:
                sub.update(path=self.pick_new_path(), mode=5, opc="createTTL", ttl=10**9)
            return sub
        path = self.pick_path()
        if t == "delete":
            return {"t": "delete", "path": path, "ver": self.pick_version(path)}
        if t == "set":
            return {"t": "set", "path": path, "data": self.pick_data(), "ver": self.pick_version(path)}
        return {"t": "check", "path": path, "ver": self.pick_version(path)}

    def expire_op(self, step):
        # one ephemeral that is likely to be created, then random ones
        creates = [{"path": f"{ROOT}/exp{step}", "data": b"", "mode": 1}]
        for _ in range(self.rng.randrange(3)):
            mode = self.rng.choice([1, 3])
            creates.append({"path": self.pick_seq_prefix() if mode == 3 else self.pick_new_path(),
                            "data": self.pick_data(), "mode": mode})
        watch = [[self.slot(), c["path"]] for c in creates if c["mode"] == 1 and self.rng.random() < 0.7]
        return {"k": "expire", "creates": creates, "watch": watch}

    # -- learning from the (first server's) replies

    def observe(self, op, res):
        self._zxids(res)
        k = op["k"]
        if k == "create":
            self._learn_create(op["path"], op["mode"], res)
        elif k == "delete":
            if "ok" in res or res.get("err") == "NoNode":
                self.known.discard(op["path"])
        elif k in ("exists", "get", "set", "children", "getacl", "setacl"):
            if res.get("err") == "NoNode":
                self.known.discard(op["path"])
            elif "ok" in res and res["ok"] is not None and in_tree(op["path"]):
                self.known.add(op["path"])
                ok = res["ok"]
                stat = ok if isinstance(ok, dict) else ok[-1] if ok and isinstance(ok[-1], dict) else None
                if stat is not None:
                    self.versions[op["path"]] = (stat["version"], stat["cversion"], stat["aversion"])
        elif k == "multi" and "ok" in res:
            results = res["ok"]
            if all(r[0] != "error" for r in results):
                for sub, r in zip(op["ops"], results):
                    if sub["t"] == "create":
                        self._add_created(r[1], sub["mode"])
                    elif sub["t"] == "delete":
                        self.known.discard(sub["path"])
        elif k == "expire":
            for r in res.get("setup", []):
                self._zxids(r)

    def _learn_create(self, path, mode, res):
        if "ok" in res:
            created = res["ok"] if isinstance(res["ok"], str) else res["ok"][0]
            self._add_created(created, mode)
        elif res.get("err") == "NodeExists" and in_tree(path):
            self.known.add(path)

    def _add_created(self, path, mode):
        if not in_tree(path):
            return
        self.known.add(path)
        if mode in (2, 3, 6):
            self.seq.append(path)

    def _zxids(self, res):
        if isinstance(res, dict) and isinstance(res.get("zxid"), int):
            self.max_zxid = max(self.max_zxid, res["zxid"])


# ---------------------------------------------------------------- reaping (outcome only)

def reap_scenario(runner):
    """Containers and TTL nodes are reaped by a timer; compare only what is left and which
    deletions were seen, not when."""
    # The TTLs are long enough (2 s, reaper every 1 s) that no node can be reaped before every
    # watch below is set: a 1 ms TTL raced the reaper and lost NodeDeleted events on both servers.
    s0, s1, ctl = runner.sessions[0], runner.sessions[1], runner.control
    r = "/r"
    plan = [(r, 0, None), (f"{r}/c1", 4, None), (f"{r}/c1/x", 0, None), (f"{r}/c2", 4, None),
            (f"{r}/t1", 5, 2_000), (f"{r}/t2", 5, 2_000), (f"{r}/t2/k", 0, None),
            (f"{r}/t3", 5, 3_600_000),
            (f"{r}/c3", 4, None)]
    out = []
    for path, mode, ttl in plan:
        opc = {0: "create2", 4: "createContainer", 5: "createTTL"}[mode]
        out.append(runner.call(s0, create_req(path, b"", ACLS["open"], mode, opc, ttl)))
    out.append(runner.call(s1, create_req(f"{r}/c3/e", b"", ACLS["open"], 1, "create")))
    paths = [p for p, _, _ in plan]
    for p in paths:
        runner.call(s0, path_watch_req("exists", p, True, P_STAT))
    runner.call(s0, path_watch_req("getChildren", r, True, P_CHILDREN))
    for p in ("/r/c1", "/r/t1", "/r/c3"):
        runner.call(ctl, path_watch_req("exists", p, True, P_STAT))
    out.append(runner.call(s0, Req("delete", e_str(f"{r}/c1/x") + e_int(-1))))
    runner.sessions[1].close()
    for p in ("/r/c1", "/r/t1", "/r/c3"):
        ctl.wait_event(["NodeDeleted", 3, p], EXPIRY_WAIT)
    runner.sessions[1] = runner.new_session()
    runner.barrier()
    remaining = []
    for p in paths:
        res = runner.call(s0, path_watch_req("exists", p, False, P_STAT))
        remaining.append([p, "err" not in res])
    children = runner.call(s0, path_watch_req("getChildren", r, False, P_CHILDREN)).get("ok")
    return {"creates": [x.get("err", "ok") for x in out], "exists": remaining, "children": children,
            "s0-events": sorted(s0.events, key=json.dumps), "s1-events": sorted(s1.events, key=json.dumps)}


# ---------------------------------------------------------------- driver

def show(x):
    return json.dumps(x, sort_keys=True, ensure_ascii=False, default=short_bytes)


def report(seed, step, op, runners, entries, history):
    print(f"MISMATCH seed={seed} step={step}")
    print(f"  op: {show(op)}")
    for r, e in zip(runners, entries):
        print(f"  {r.label:8} reply:  {show(e['res'])}")
        print(f"  {r.label:8} events: {show(e['ev'])}")
    if history:
        print("  preceding ops:")
        for i, h in history:
            print(f"    [{i}] {show(h)}")
    for r, e in zip(runners, entries):
        if "runner-error" in e["res"]:
            print(f"  last lines of {r.label}'s output ({r.server.workdir}/server.out):")
            for line in r.log_tail():
                print("    " + line.rstrip())


def start_runners(kinds, container_check_ms):
    runners = []
    try:
        for i, kind in enumerate(kinds):
            r = Runner(kind, f"{kind}#{i}" if kinds.count(kind) > 1 else kind, container_check_ms)
            runners.append(r)
            r.start()
    except Exception:
        for r in runners:
            r.stop()
        raise
    return runners


def run_main(seed, steps, kinds, expiries, skip, verbose, trace_dir, max_mismatches=1):
    runners = start_runners(kinds, NO_REAPING_MS)
    gen = Generator(seed, steps, expiries, skip)
    history = []
    mismatches = 0
    try:
        setups = []
        for r in runners:
            try:
                setups.append(r.setup())
            except Exception as e:
                setups.append({"res": {"runner-error": f"{type(e).__name__}: {e}"}, "ev": {}})
        if setups[0] != setups[1]:
            report(seed, "setup", {"k": "setup"}, runners, setups, [])
            return 1
        for step in range(steps):
            op = gen.next_op(step)
            for r in runners:
                r.begin(op)
            entries = [r.finish(op) for r in runners]
            if entries[0]["res"] != entries[1]["res"] or entries[0]["ev"] != entries[1]["ev"]:
                report(seed, step, op, runners, entries, history[-8:])
                mismatches += 1
                # going on follows the first server; later differences may be consequences
                if mismatches >= max_mismatches or any("runner-error" in e["res"] for e in entries):
                    return 1
            elif "runner-error" in entries[0]["res"]:
                print(f"ERROR seed={seed} step={step}: both servers failed alike: {show(entries[0]['res'])}")
                return 2
            gen.observe(op, entries[0]["res"])
            history.append((step, op))
            if verbose and step % 100 == 0:
                print(f"  step {step}: {op['k']}", flush=True)
        return 1 if mismatches else 0
    finally:
        if trace_dir:
            os.makedirs(trace_dir, exist_ok=True)
            for r in runners:
                with open(os.path.join(trace_dir, f"seed{seed}-{r.label}.jsonl"), "w") as f:
                    for i, e in enumerate(r.trace):
                        f.write(show({"i": i - 1, **e}) + "\n")
        for r in runners:
            r.stop()


def run_reap(seed, kinds):
    runners = start_runners(kinds, 1000)
    try:
        outs = []
        for r in runners:
            try:
                outs.append(reap_scenario(r))
            except Exception as e:
                outs.append({"runner-error": f"{type(e).__name__}: {e}"})
        if outs[0] != outs[1]:
            report(seed, "reap", {"k": "reap-scenario"}, runners,
                   [{"res": o, "ev": {}} for o in outs], [])
            return 1
        if "runner-error" in outs[0]:
            print(f"ERROR reap phase: {outs[0]}")
            return 2
        return 0
    finally:
        for r in runners:
            r.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--kinds", default="zk,zkrs", help="two server kinds, e.g. zk,zkrs or zk,zk")
    ap.add_argument("--expiries", type=int, default=1, help="timeout-based session expiries per run")
    ap.add_argument("--skip", default="", help="comma-separated op kinds to leave out ('exotic' = "
                    + ",".join(EXOTIC) + "; also 'expire', 'reap')")
    ap.add_argument("--trace-dir", help="write both normalized traces there as JSON lines")
    ap.add_argument("--max-mismatches", type=int, default=1,
                    help="report up to N mismatching steps before stopping (default 1)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    kinds = args.kinds.split(",")
    if len(kinds) != 2:
        ap.error("--kinds needs exactly two kinds")
    skip = set(filter(None, args.skip.split(",")))
    unknown = skip - set(WEIGHTS) - {"exotic", "expire", "reap"}
    if unknown:
        ap.error(f"unknown kinds in --skip: {', '.join(sorted(unknown))}; known: {', '.join(sorted(WEIGHTS))}")
    if "exotic" in skip:
        skip |= set(EXOTIC)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kazoo").setLevel(logging.WARNING if args.verbose else logging.CRITICAL)

    t0 = time.monotonic()
    try:
        rc = run_main(args.seed, args.steps, kinds, args.expiries, skip, args.verbose, args.trace_dir,
                      args.max_mismatches)
        if rc == 0 and "reap" not in skip:
            rc = run_reap(args.seed, kinds)
    except Exception as e:  # typically: a server that does not start
        print(f"ERROR: {type(e).__name__}: {e}")
        rc = 2
    took = time.monotonic() - t0
    verdict = "OK" if rc == 0 else "FAILED"
    print(f"{verdict}: seed={args.seed} steps={args.steps} kinds={args.kinds} in {took:.1f}s")
    if rc:
        print(f"reproduce: python3 tests/diff/difftest.py --seed {args.seed} --steps {args.steps} "
              f"--kinds {args.kinds}" + (f" --skip {args.skip}" if args.skip else ""))
    return rc


if __name__ == "__main__":
    sys.exit(main())
