"""Quorum-port and election-port probes (framing: docs/ZAB-WIRE.md, crates/zab/src/wire.rs).

Every probe takes the target server's ports and the leader's current zxid and returns a short
text of what the server did (packets it sent back, whether it closed the connection).
"""
import random
import socket
import struct
import threading
import time

import wire
from wire import (ACK, ACKEPOCH, COMMIT, FOLLOWERINFO, LEADERINFO, NEWLEADER, OBSERVERINFO,
                  PROPOSAL, REQUEST, SNAP, UPTODATE)

IMPOSTOR = 99
PKT_NAMES = {1: "REQ", 2: "PROP", 3: "ACK", 4: "COMMIT", 5: "PING", 6: "REVAL", 7: "SYNC", 8: "INFORM",
             9: "CAA", 10: "NL", 11: "FINFO", 12: "UTD", 13: "DIFF", 14: "TRUNC", 15: "SNAP",
             16: "OINFO", 17: "LI", 18: "ACKEPOCH", 19: "IAA"}
LIVE = ("PROP", "COMMIT", "PING", "INFORM")


def _signed64(v):
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _dial(port, timeout=3.0):
    return wire.Conn.dial(port, timeout)


def _closed_within(conn, seconds):
    waited = conn.wait_closed(seconds)
    return f"closed@{waited * 1000:.0f}ms" if waited is not None else f"open>{seconds:g}s"


class Impostor:
    """A learner that registers as server `sid` and, with join(), completes the handshake as a
    non-voting follower (or observer) would."""

    def __init__(self, port, epoch, zxid, sid=IMPOSTOR, info=FOLLOWERINFO, accepted_epoch=None,
                 config_version=0):
        self.conn = _dial(port)
        self.seen = []
        self.epoch = epoch
        self.zxid = zxid
        acc = epoch if accepted_epoch is None else accepted_epoch
        self.conn.send(wire.qpacket(info, _signed64(acc << 32), wire.learner_info(sid, config_version)))

    def read(self, until, seconds=3.0):
        deadline = time.monotonic() + seconds
        while True:
            ptype, zxid, data = wire.read_qpacket(self.conn, deadline)
            self.seen.append(PKT_NAMES.get(ptype, str(ptype)))
            if ptype == SNAP:
                raise RuntimeError("SNAP (snapshot stream not parsed)")
            if ptype in until:
                return ptype, zxid, data

    def join(self):
        """LEADERINFO -> ACKEPOCH -> ... NEWLEADER -> ACK -> UPTODATE -> ACK."""
        _, zxid, _ = self.read({LEADERINFO})
        new_epoch = zxid >> 32
        self.new_epoch = new_epoch
        cur = -1 if new_epoch == self.epoch else self.epoch
        self.conn.send(wire.qpacket(ACKEPOCH, self.zxid, struct.pack(">i", cur)))
        self.read({NEWLEADER})
        self.conn.send(wire.qpacket(ACK, new_epoch << 32))
        self.read({UPTODATE})
        self.conn.send(wire.qpacket(ACK, new_epoch << 32))
        return self

    def summary(self):
        """The packets the leader sent, live broadcast (PROP/COMMIT/PING/INFORM) shown as '+'."""
        names = []
        for n in self.seen:
            n = "+" if n in LIVE else n
            if not names or names[-1] != n:
                names.append(n)
        return ",".join(names[:8]) or "nothing"

    def close(self):
        self.conn.close()


def _after(imp, packets, seconds=0.5):
    """Sends the hostile packets on a registered/joined impostor; answer: whether the server
    then closed the connection, and the packets it had sent."""
    try:
        for p in packets:
            imp.conn.send(p)
    except OSError:
        return f"send failed (closed); got {imp.summary()}"
    return f"{_closed_within(imp.conn, seconds)}; got {imp.summary()}"


def quorum_probes(quick):
    """name -> function(port, epoch, zxid, ctx) returning an answer string."""

    def garbage(port, epoch, zxid, ctx):
        c = _dial(port)
        rng = random.Random(5)
        try:
            c.send(bytes(rng.getrandbits(8) for _ in range(4096)))
        except OSError:
            pass
        return _closed_within(c, 1.0)

    def trunc(port, epoch, zxid, ctx):
        c = _dial(port)
        c.send(wire.qpacket(FOLLOWERINFO, epoch << 32, wire.learner_info(IMPOSTOR))[:10])
        return _closed_within(c, 2.0)

    def data_len(n):
        def probe(port, epoch, zxid, ctx):
            c = _dial(port)
            try:
                c.send(struct.pack(">iqi", FOLLOWERINFO, epoch << 32, n) + b"\0" * 1024)
            except OSError:
                pass
            return _closed_within(c, 1.0)
        return probe

    def authinfo_huge(port, epoch, zxid, ctx):
        c = _dial(port)
        p = wire.qpacket(FOLLOWERINFO, epoch << 32, wire.learner_info(IMPOSTOR))[:-4]
        c.send(p + struct.pack(">i", 0x7FFFFFFF) + b"\0" * 256)
        return _closed_within(c, 1.0)

    def learnerinfo_short(port, epoch, zxid, ctx):
        c = _dial(port)
        c.send(wire.qpacket(FOLLOWERINFO, epoch << 32, b"\1\2\3"))
        return _closed_within(c, 1.0)

    def first_commit(port, epoch, zxid, ctx):
        c = _dial(port)
        c.send(wire.qpacket(COMMIT, zxid + 1))
        return _closed_within(c, 1.0)

    def commit_early(port, epoch, zxid, ctx):
        imp = Impostor(port, epoch, zxid)
        try:
            return _after(imp, [wire.qpacket(COMMIT, zxid + 1), wire.qpacket(ACK, zxid + 1000)])
        finally:
            imp.close()

    def joined(packets_fn, info=FOLLOWERINFO):
        def probe(port, epoch, zxid, ctx):
            imp = Impostor(port, epoch, zxid, info=info)
            try:
                try:
                    imp.join()
                except Exception as e:  # noqa: BLE001
                    return f"join stopped ({type(e).__name__} {str(e)[:30]}); got {imp.summary()}"
                return _after(imp, packets_fn(imp, epoch, zxid))
            finally:
                imp.close()
        return probe

    def epoch_repeat(accepted, seconds, info=FOLLOWERINFO):
        def probe(port, epoch, zxid, ctx):
            n, infos = 0, set()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                n += 1
                try:
                    imp = Impostor(port, epoch, zxid, info=info, accepted_epoch=accepted)
                except OSError:
                    infos.add("refused")
                    time.sleep(0.05)
                    continue
                try:
                    _, lz, _ = imp.read({LEADERINFO}, 0.5)
                    infos.add(f"LEADERINFO e={lz >> 32:#x}")
                    imp.conn.send(wire.qpacket(ACKEPOCH, _signed64((accepted << 32) | 5),
                                               struct.pack(">I", accepted & 0xFFFFFFFF)))
                    imp.read({NEWLEADER}, 0.2)
                    infos.add("NEWLEADER")
                except wire.Closed:
                    infos.add("closed")
                except Exception:  # noqa: BLE001
                    pass
                finally:
                    imp.close()
            return f"{n} registrations: {', '.join(sorted(infos))[:60]}"
        return probe

    def config_ahead(port, epoch, zxid, ctx):
        imp = Impostor(port, epoch, zxid, config_version=0x7FFFFFFFFFFFFFFF)
        try:
            try:
                imp.read({LEADERINFO}, 1.0)
                return f"{_closed_within(imp.conn, 1.0)}; got {imp.summary()}"
            except wire.Closed:
                return f"closed; got {imp.summary()}"
            except OSError:
                return f"open>1s; got {imp.summary()}"
        finally:
            imp.close()

    repeat_s = 2.0 if quick else 4.0
    probes = {
        "q garbage 4 KiB": garbage,
        "q truncated FOLLOWERINFO, held": trunc,
        "q data length 0x7fffffff": data_len(0x7FFFFFFF),
        "q data length -5": data_len(-5),
        "q authinfo count 0x7fffffff": authinfo_huge,
        "q LearnerInfo 3 bytes": learnerinfo_short,
        "q COMMIT as first packet": first_commit,
        "q sid 99: FOLLOWERINFO, COMMIT at once": commit_early,
        "q sid 99 joined: COMMIT": joined(lambda imp, e, z: [wire.qpacket(COMMIT, z + 1)]),
        "q sid 99 joined: ACK future zxid": joined(lambda imp, e, z: [
            wire.qpacket(ACK, z + 1000), wire.qpacket(ACK, ((e + 1) << 32) | 1)]),
        "q sid 99 joined: PROPOSAL": joined(lambda imp, e, z: [
            wire.qpacket(PROPOSAL, z + 1, wire.txn_junk_proposal(z + 1))]),
        "q sid 99 joined: REQUEST junk": joined(lambda imp, e, z: [
            wire.qpacket(REQUEST, -1, struct.pack(">qii", 0x99, 1, 1) + b"\xff" * 9, [])]),
        "q sid 99 joined: type 77": joined(lambda imp, e, z: [wire.qpacket(77, z)]),
        "q sid 99 joined: FOLLOWERINFO+NEWLEADER again": joined(lambda imp, e, z: [
            wire.qpacket(FOLLOWERINFO, (e + 5) << 32, wire.learner_info(IMPOSTOR)),
            wire.qpacket(NEWLEADER, (e + 5) << 32, b"")]),
        "q sid 99 observer joined: COMMIT, ACK": joined(lambda imp, e, z: [
            wire.qpacket(COMMIT, z + 1), wire.qpacket(ACK, z + 1000)], info=OBSERVERINFO),
        f"q epoch 0x7fffffff registrations {repeat_s:g}s": epoch_repeat(0x7FFFFFFF, repeat_s),
        "q epoch 0xffffffff registrations 1s": epoch_repeat(0xFFFFFFFF, 1.0),
        "q configVersion 2^63-1": config_ahead,
    }
    if quick:
        for name in ("q data length -5", "q LearnerInfo 3 bytes", "q sid 99 joined: type 77",
                     "q sid 99 joined: REQUEST junk", "q authinfo count 0x7fffffff"):
            probes.pop(name)
    return probes


# ---------------------------------------------------------------------------------------------
# election port

LOOKING, FOLLOWING, LEADING = 0, 1, 2
BIG = 0x7FFFFFFFFFFFFFFF


class DialBackListener:
    """Accepts connections (a server dialing back a smaller sid) and records their first bytes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.halt.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            c.settimeout(1.0)
            try:
                data = c.recv(64)
                if len(data) >= 16:
                    version, sid = struct.unpack(">qq", data[:16])
                    self.got.append(f"dialed back as sid {sid}")
                else:
                    self.got.append(f"dialed back ({len(data)} B)")
            except OSError:
                self.got.append("dialed back")
            c.close()

    def close(self):
        self.halt.set()
        self.thread.join(timeout=2)
        self.sock.close()


def _read_votes(conn, seconds):
    """Reads election frames for `seconds`; returns a summary of the first reply and whether
    the connection was closed."""
    deadline = time.monotonic() + seconds
    first, n = None, 0
    try:
        while True:
            payload = conn.read_frame(deadline)
            n += 1
            if first is None:
                first = wire.parse_notification(payload)
    except wire.Closed:
        state = "closed"
    except OSError:
        state = "open"
    names = {0: "LOOKING", 1: "FOLLOWING", 2: "LEADING", 3: "OBSERVING"}
    if first:
        return f"{n} votes, first {names.get(first['state'], first['state'])} leader {first['leader']}; {state}"
    return f"no vote; {state}"


def election_probes(quick):
    config_99 = b"server.99=127.0.0.1:1:2:participant;127.0.0.1:3\nversion=7fffffffffffffff"

    def raw(data, wait=1.0):
        def probe(port, own_sid, ctx):
            c = _dial(port)
            try:
                c.send(data)
            except OSError:
                pass
            try:
                return _closed_within(c, wait)
            finally:
                c.close()
        return probe

    def vote(frames, sid=IMPOSTOR, legacy=False):
        def probe(port, own_sid, ctx):
            c = _dial(port)
            try:
                head = struct.pack(">q", sid) if legacy else wire.initial_message(sid)
                c.send(head + b"".join(frames))
                return _read_votes(c, 0.7)
            except OSError as e:
                return f"send failed ({type(e).__name__})"
            finally:
                c.close()
        return probe

    def dial_back(sid_fn):
        def probe(port, own_sid, ctx):
            lst = DialBackListener()
            c = _dial(port)
            try:
                c.send(wire.initial_message(sid_fn(own_sid), f"127.0.0.1:{lst.port}")
                       + wire.frame(wire.notification(LOOKING, IMPOSTOR, BIG, BIG, 0x7FFFFFFF)))
                answer = _read_votes(c, 0.7)
                time.sleep(0.3)
                return f"{answer}; {', '.join(lst.got[:2]) or 'no dial-back'}"
            finally:
                c.close()
                lst.close()
        return probe

    def trunc_initial(port, own_sid, ctx):
        c = _dial(port)
        c.send(wire.initial_message(IMPOSTOR)[:8])
        try:
            return _closed_within(c, 2.0)
        finally:
            c.close()

    def flood(port, own_sid, ctx):
        rng = random.Random(11)
        frames = []
        for i in range(300):
            frames.append(wire.frame(wire.notification(rng.choice([0, 1, 2, 3]), rng.choice([IMPOSTOR, 1, 2, 3, -1]),
                                                       rng.getrandbits(63), rng.getrandbits(63),
                                                       rng.getrandbits(31), b"" if i % 3 else config_99)))
        return vote(frames)(port, own_sid, ctx)

    huge_vote = wire.notification(LOOKING, IMPOSTOR, BIG, BIG, 0x7FFFFFFF)
    probes = {
        "e garbage 4 KiB": raw(bytes(random.Random(6).getrandbits(8) for _ in range(4096))),
        "e sid 99 LOOKING huge vote/epoch": vote([wire.frame(huge_vote)]),
        "e sid 99 vote + config of version 2^63-1": vote([wire.frame(
            wire.notification(LOOKING, IMPOSTOR, BIG, BIG, 0x7FFFFFFF, config_99))]),
        "e sid 99 claims LEADING, epoch 0x7fffffff": vote([wire.frame(
            wire.notification(LEADING, IMPOSTOR, BIG, 5, 0x7FFFFFFF)), wire.frame(
            wire.notification(FOLLOWING, IMPOSTOR, BIG, 5, 0x7FFFFFFF))]),
        "e sid 99 flood of 300 votes": flood,
        "e legacy sid 99 + huge vote": vote([wire.frame(huge_vote)], legacy=True),
        "e sid Long.MAX (old observer id) + vote": vote([wire.frame(huge_vote)], sid=BIG),
        "e sid 0 (smaller), dial-back address": dial_back(lambda own: 0),
        "e own sid + huge vote": dial_back(lambda own: own),
        "e protocol version -7": raw(struct.pack(">qq", -7, IMPOSTOR) + b"\0" * 32),
        "e address length 100000": raw(wire.initial_message(IMPOSTOR, "x" * 100, n=100000)),
        "e address length -1": raw(wire.initial_message(IMPOSTOR, "", n=-1)),
        "e address not host:port": raw(wire.initial_message(IMPOSTOR, "not-an-address") + wire.frame(huge_vote)),
        "e truncated initial message, held": trunc_initial,
        "e frame length 0x7fffffff": raw(wire.initial_message(IMPOSTOR) + struct.pack(">i", 0x7FFFFFFF) + b"\0" * 1024),
        "e frame length 0": raw(wire.initial_message(IMPOSTOR) + struct.pack(">i", 0)),
        "e frame length -1": raw(wire.initial_message(IMPOSTOR) + struct.pack(">i", -1)),
        "e frame truncated (100 declared, 30 sent)": raw(wire.initial_message(IMPOSTOR) + struct.pack(">i", 100) + b"\1" * 30, 0.3),
        "e notification of 20 bytes": vote([wire.frame(huge_vote[:20])]),
        "e notification state 77": vote([wire.frame(wire.notification(77, IMPOSTOR, BIG, BIG, 7))]),
        "e notification configLength 0x7fffffff": vote([wire.frame(huge_vote[:40] + struct.pack(">i", 0x7FFFFFFF))]),
        "e notification configLength -5": vote([wire.frame(huge_vote[:40] + struct.pack(">i", -5) + b"abc")]),
    }
    if quick:
        for name in ("e legacy sid 99 + huge vote", "e sid Long.MAX (old observer id) + vote", "e frame length 0",
                     "e notification state 77", "e notification configLength -5", "e address length -1",
                     "e notification of 20 bytes"):
            probes.pop(name)
    return probes
