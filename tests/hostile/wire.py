"""Byte layouts the hostile probes need: client jute frames (requests built field by field so
that any length field can be corrupted), replies, and the server-to-server framing of
docs/ZAB-WIRE.md (quorum packets, the election port's initial message and notifications).

All integers are big-endian (jute). Client frames: `int length` + payload; quorum packets have
no length prefix; election frames after the initial message do.
"""
import os
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
sys.path.insert(0, os.path.join(HERE, "..", "nemesis"))
from badclients import connect_request, jstr, request  # noqa: E402,F401  (shared framing helpers)

JUTE_MAXBUFFER = 0xFFFFF  # jute.maxbuffer default (1 MiB - 1), both servers

OPS = {
    1: "create", 2: "delete", 3: "exists", 4: "getData", 5: "setData", 6: "getACL", 7: "setACL",
    8: "getChildren", 9: "sync", 11: "ping", 12: "getChildren2", 13: "check", 14: "multi",
    15: "create2", 16: "reconfig", 17: "checkWatches", 18: "removeWatches", 19: "createContainer",
    20: "deleteContainer", 21: "createTTL", 22: "multiRead", 100: "setAuth", 101: "setWatches",
    102: "sasl", 103: "getEphemerals", 104: "getAllChildrenNumber", 105: "setWatches2",
    106: "addWatch", 107: "whoAmI", -11: "closeSession", -10: "createSession", -1: "error",
    0: "notification", 10: "unused10", 999: "unknown999", -999: "unknown-999",
}

ERRORS = {
    0: "ok", -1: "SystemError", -2: "RuntimeInconsistency", -3: "DataInconsistency",
    -4: "ConnectionLoss", -5: "MarshallingError", -6: "Unimplemented", -7: "OperationTimeout",
    -8: "BadArguments", -12: "UnknownSession", -13: "NewConfigNoQuorum", -14: "ReconfigInProgress",
    -100: "APIError", -101: "NoNode", -102: "NoAuth", -103: "BadVersion",
    -108: "NoChildrenForEphemerals", -110: "NodeExists", -111: "NotEmpty", -112: "SessionExpired",
    -113: "InvalidCallback", -114: "InvalidACL", -115: "AuthFailed", -118: "SessionMoved",
    -119: "NotReadOnly", -120: "EphemeralOnLocalSession", -121: "NoWatcher", -122: "RequestTimeout",
    -123: "ReconfigDisabled", -124: "SessionClosedRequireSaslAuth", -125: "QuotaExceeded",
    -127: "Throttled",
}

# ---------------------------------------------------------------------------------------------
# client records as field lists
#
# A field is (kind, value): "i" int, "l" long, "b" bool, "s" ustring (str/bytes/None), "B" buffer
# (bytes/None), "acl" vector<ACL> of (perms, scheme, id), "vs" vector<ustring>, "raw" bytes.
# "s", "B", "acl" and "vs" start with an int length/count: those are the "length fields" a
# mutation can corrupt.

LENGTH_KINDS = ("s", "B", "acl", "vs")
OPEN_ACL = [(31, "world", "anyone")]
BAD_UTF8 = b"/\xc3\x28\xff\xfe\xed\xa0\x80"


def _b(v):
    return v.encode() if isinstance(v, str) else v


def _enc_len_value(kind, value):
    """(length int, content bytes) of a length field."""
    if kind in ("s", "B"):
        if value is None:
            return -1, b""
        data = _b(value)
        return len(data), data
    if kind == "acl":
        if value is None:
            return -1, b""
        return len(value), b"".join(struct.pack(">i", p) + jstr(s) + jstr(i) for p, s, i in value)
    if kind == "vs":
        if value is None:
            return -1, b""
        return len(value), b"".join(jstr(x) for x in value)
    raise ValueError(kind)


def encode(fields, mutate=None):
    """Encodes `fields`; mutate = (length-field index, "neglen" | "hugelen" | "badutf8" |
    "badpath") corrupts that length field (its content is still written after it)."""
    out = []
    n_len = -1
    for kind, value in fields:
        if kind == "i":
            out.append(struct.pack(">i", value))
        elif kind == "l":
            out.append(struct.pack(">q", value))
        elif kind == "b":
            out.append(struct.pack(">?", value))
        elif kind == "raw":
            out.append(value)
        elif kind in LENGTH_KINDS:
            n_len += 1
            length, content = _enc_len_value(kind, value)
            if mutate and mutate[0] == n_len:
                what = mutate[1]
                if what == "neglen":
                    length = -5
                elif what == "hugelen":
                    length = 0x7FFFFFF0
                elif what == "badutf8":
                    content = BAD_UTF8
                    length = len(content)
                elif what == "badpath":
                    content = b"no-slash//x/"
                    length = len(content)
            out.append(struct.pack(">i", length) + content)
        else:
            raise ValueError(kind)
    return b"".join(out)


def length_fields(fields):
    """Kinds of the length fields of `fields`, in order."""
    return [kind for kind, _ in fields if kind in LENGTH_KINDS]


def multi_header(op, done=False, err=-1):
    return [("i", op), ("b", done), ("i", err)]


MULTI_END = multi_header(-1, True, -1)

# ---------------------------------------------------------------------------------------------
# client connections


class Closed(Exception):
    pass


class Conn:
    """A socket with a receive buffer and deadline-based frame reads."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    @classmethod
    def dial(cls, port, timeout=3.0, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        return cls(s)

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError as e:
            raise Closed("reset") from e
        except OSError as e:
            if isinstance(e, socket.timeout):
                raise
            raise Closed(repr(e)) from e
        if not chunk:
            raise Closed("eof")
        self.buf += chunk

    def read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self, deadline):
        """One length-prefixed frame; raises socket.timeout or Closed."""
        (n,) = struct.unpack(">i", self.read_exact(4, deadline))
        if n < 0 or n > 64 << 20:
            raise Closed(f"bad frame length {n}")
        return self.read_exact(n, deadline)

    def wait_closed(self, timeout):
        """Seconds until the peer closed (reading and discarding), or None if still open."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        try:
            while True:
                self.buf = b""
                self._fill(deadline)
        except Closed:
            return time.monotonic() - t0
        except socket.timeout:
            return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def open_session(port, timeout_ms=4000, timeout=3.0):
    """A handshaken client session: (Conn, session id)."""
    c = Conn.dial(port, timeout)
    c.send(connect_request(timeout_ms))
    body = c.read_frame(time.monotonic() + timeout)
    _proto, _to, sid = struct.unpack(">iiq", body[:16])
    if sid == 0:
        c.close()
        raise Closed("session refused (id 0)")
    return c, sid


def parse_reply(frame):
    """(xid, zxid, err, body) of a reply frame."""
    if len(frame) < 16:
        return None
    xid, zxid, err = struct.unpack(">iqi", frame[:16])
    return xid, zxid, err, frame[16:]


# ---------------------------------------------------------------------------------------------
# quorum port (docs/ZAB-WIRE.md section 2; crates/zab/src/wire.rs RawPacket)

REQUEST, PROPOSAL, ACK, COMMIT, PING, REVALIDATE, SYNC, INFORM = 1, 2, 3, 4, 5, 6, 7, 8
COMMITANDACTIVATE, NEWLEADER, FOLLOWERINFO, UPTODATE, DIFF, TRUNC, SNAP = 9, 10, 11, 12, 13, 14, 15
OBSERVERINFO, LEADERINFO, ACKEPOCH, INFORMANDACTIVATE = 16, 17, 18, 19
LEARNER_PROTOCOL_VERSION = 0x10000


def qpacket(ptype, zxid, data=None, authinfo=None):
    """QuorumPacket: int type, long zxid, buffer data (-1 null), vector<Id> authinfo (-1 null)."""
    out = struct.pack(">iq", ptype, zxid)
    out += struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data
    if authinfo is None:
        out += struct.pack(">i", -1)
    else:
        out += struct.pack(">i", len(authinfo)) + b"".join(jstr(s) + jstr(i) for s, i in authinfo)
    return out


def learner_info(sid, config_version=0, protocol=LEARNER_PROTOCOL_VERSION):
    return struct.pack(">qiq", sid, protocol, config_version)


def read_qpacket(conn, deadline, max_buffer=4 << 20):
    """(type, zxid, data) of the next quorum packet."""
    ptype, zxid, n = struct.unpack(">iqi", conn.read_exact(16, deadline))
    if n > max_buffer:
        raise Closed(f"data length {n}")
    data = conn.read_exact(n, deadline) if n >= 0 else None
    (count,) = struct.unpack(">i", conn.read_exact(4, deadline))
    for _ in range(max(count, 0)):
        for _ in range(2):
            (m,) = struct.unpack(">i", conn.read_exact(4, deadline))
            if m > 0:
                conn.read_exact(m, deadline)
    return ptype, zxid, data


def txn_junk_proposal(zxid):
    """PROPOSAL data: TxnHeader(clientId, cxid, zxid, time, type=create) + a CreateTxn whose
    path length is absurd."""
    return struct.pack(">qiqqi", 0x99, 1, zxid, int(time.time() * 1000), 1) + struct.pack(">i", 0x7FFFFFF0) + b"/x"


# ---------------------------------------------------------------------------------------------
# election port (docs/ZAB-WIRE.md section 1)

PROTOCOL_VERSION_V1 = -65536


def initial_message(sid, address="127.0.0.1:1", version=PROTOCOL_VERSION_V1, n=None):
    a = address.encode()
    return struct.pack(">qqi", version, sid, len(a) if n is None else n) + a


def notification(state, leader, zxid, election_epoch, peer_epoch, config=b"", version=2):
    return struct.pack(">iqqqqii", state, leader, zxid, election_epoch, peer_epoch, version, len(config)) + config


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def parse_notification(payload):
    if len(payload) < 28:
        return None
    state, leader, zxid, eepoch = struct.unpack(">iqqq", payload[:28])
    peer_epoch = struct.unpack(">q", payload[28:36])[0] if len(payload) >= 36 else None
    return {"state": state, "leader": leader, "zxid": zxid, "electionEpoch": eepoch, "peerEpoch": peer_epoch}
