"""The servers under attack and the checks run after every probe.

A Deployment is either a 3-server ensemble plus one observer (roles leader, follower,
observer) or a standalone server, of one kind ("zk" or "zkrs"), with a background write load
(two kazoo clients through different servers, errors counted), a sampler of every server's RSS
(/proc/<pid>/status VmRSS every 100 ms) and the health check:

  * every server process is alive,
  * a fresh kazoo session through every server, and a create through it, succeed,
  * (ensemble) the leader is the same server with the same epoch (zxid >> 32 from `srvr`)
    as before the probe,
  * no server logged a panic (zkrs) or an OutOfMemoryError (ZooKeeper) meanwhile,
  * peak RSS of every server during the probe stays under the limit.

A server that failed is restarted (killed first if it is alive but not serving) so that the
next probe starts from a healthy deployment again, and the leader/epoch baseline is taken anew.
"""
import logging
import os
import re
import shutil
import struct
import sys
import threading
import time
from signal import SIGKILL

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from ensemble import Ensemble  # noqa: E402
from servers import Server, four_letter_word  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import NodeExistsError  # noqa: E402
from writes import connect  # noqa: E402

import wire  # noqa: E402

logging.getLogger("kazoo").setLevel(logging.CRITICAL + 1)

RSS_LIMIT_MB = 512.0
EXTRA_CFG = {"4lw.commands.whitelist": "*"}


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def srvr(port, timeout=2.0):
    """(mode, zxid) from the `srvr` four-letter word, or (None, None)."""
    try:
        reply = four_letter_word(port, "srvr", timeout=timeout)
    except OSError:
        return None, None
    mode = re.search(r"^Mode: (\w+)", reply, re.MULTILINE)
    zxid = re.search(r"^Zxid: (0x[0-9a-fA-F]+|-?\d+)", reply, re.MULTILINE)
    return (mode.group(1) if mode else None), (int(zxid.group(1), 0) if zxid else None)


class Deployment:
    """An ensemble (3 participants + 1 observer) or a standalone server of one kind."""

    def __init__(self, kind, topology):
        self.kind, self.topology = kind, topology
        self.name = topology
        if topology == "ensemble":
            self.ens = Ensemble(kind, 3, observers=1, extra_cfg=EXTRA_CFG, java_heap="256m")
            self.members = self.ens.members
        else:
            self.ens = None
            self.members = {0: Server(kind, extra_cfg=EXTRA_CFG, java_heap="256m")}
        self.baseline = None   # (leader sid, epoch)
        self.load = []
        self.health_counter = 0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self):
        if self.ens:
            self.ens.start()
        else:
            self.members[0].start()
        self.ensure_fixtures()
        self.load = [LoadClient(self, i, sid) for i, sid in enumerate(self.load_sids())]
        for client in self.load:
            client.start()
        deadline = time.monotonic() + 30
        while not all(c.ok for c in self.load) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.rebaseline()
        return self

    def ensure_fixtures(self):
        self.ensure_nodes([(p, b"") for p in ("/hostile", "/hostile/acl", "/hostile-quiet", "/hostile-load",
                                               "/hostile-health")])

    def ensure_nodes(self, nodes, tries=5):
        """Creates the (path, data) nodes that do not exist yet, through a short-lived kazoo
        client (every operation with a timeout: a sync kazoo call can wait forever)."""
        last = None
        for _ in range(tries):
            zk = KazooClient(hosts=self.connect_string(), timeout=10.0)
            try:
                zk.start(timeout=10)
                for path, data in nodes:
                    try:
                        zk.create_async(path, data, makepath=True).get(timeout=20)
                    except NodeExistsError:
                        pass
                return
            except Exception as e:  # noqa: BLE001
                last = e
                time.sleep(1)
            finally:
                try:
                    zk.stop()
                    zk.close()
                except Exception:  # noqa: BLE001
                    pass
        raise RuntimeError(f"could not create the fixtures on {self.kind} {self.name}: {last!r}")

    def rebuild(self):
        """Throws the deployment away and starts a fresh one (new ports and directories)."""
        self.cleanup()
        self.__init__(self.kind, self.topology)
        self.start()

    def load_sids(self):
        if not self.ens:
            return [0, 0]
        return [self.role_sid("follower"), self.role_sid("observer")]

    def cleanup(self):
        for client in self.load:
            client.stop()
        for client in self.load:
            client.join(timeout=15)
        if self.ens:
            self.ens.cleanup()
        else:
            self.members[0].cleanup()

    # -- servers ----------------------------------------------------------------------------

    def sids(self):
        return list(self.members)

    def port(self, sid):
        return self.members[sid].port

    def connect_string(self):
        return ",".join(f"127.0.0.1:{m.port}" for m in self.members.values())

    def proc(self, sid):
        return self.members[sid].proc

    def pid(self, sid):
        p = self.proc(sid)
        return p.pid if p is not None and p.poll() is None else None

    def alive(self, sid):
        p = self.proc(sid)
        return p is not None and p.poll() is None

    def log_files(self, sid):
        m = self.members[sid]
        names = ("server.out", "server.log4j.log")
        return [os.path.join(m.workdir, n) for n in names if os.path.exists(os.path.join(m.workdir, n))]

    def role_sid(self, role):
        """The sid now in `role`: leader, follower (lowest-numbered), observer, standalone."""
        if role == "standalone":
            return 0
        if role == "observer":
            return max(self.members)
        modes = {sid: srvr(self.port(sid))[0] for sid in self.members}
        for sid in sorted(modes):
            if modes[sid] == role:
                return sid
        return None

    def roles(self):
        return ["standalone"] if not self.ens else ["leader", "follower", "observer"]

    def relaunch(self, sid):
        m = self.members[sid]
        if self.ens:
            if m.running:
                m.proc.send_signal(SIGKILL)
                m.proc.wait(timeout=30)
            m.launch()
        else:
            if m.proc and m.proc.poll() is None:
                m.proc.kill()
                m.proc.wait(timeout=30)
            m.proc = None
            m.log.close()
            m.start()

    def wipe(self, sid):
        """Restarts server `sid` with an empty data directory (its myid kept)."""
        m = self.members[sid]
        if m.proc and m.proc.poll() is None:
            m.proc.kill()
            m.proc.wait(timeout=30)
        shutil.rmtree(os.path.join(m.cfg["dataDir"], "version-2"), ignore_errors=True)
        self.relaunch(sid)

    def wait_ready(self, timeout=90.0):
        if self.ens:
            self.ens.wait_for_quorum(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.session_problems():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{self.kind} {self.name} does not serve after recovery: {self.session_problems()}")

    def leader_and_epoch(self):
        if not self.ens:
            return None, None
        for sid in self.members:
            mode, zxid = srvr(self.port(sid))
            if mode == "leader":
                return sid, (zxid >> 32) if zxid is not None else None
        return None, None

    def rebaseline(self):
        if self.ens:
            # the epoch shows in the leader's zxid once a write of this epoch was applied
            self.session_problems()
            self.baseline = self.leader_and_epoch()

    # -- checks -----------------------------------------------------------------------------

    def session_problems(self, timeout=3.0):
        """A fresh kazoo session and an ephemeral create through every server."""
        problems = []
        for sid in self.members:
            if not self.alive(sid):
                rc = self.proc(sid).returncode if self.proc(sid) else None
                problems.append(f"server {sid} exited (rc {rc})")
                continue
            self.health_counter += 1
            zk = KazooClient(hosts=f"127.0.0.1:{self.port(sid)}", timeout=4.0)
            try:
                try:
                    zk.start(timeout=timeout)
                except Exception as e:  # noqa: BLE001
                    problems.append(f"server {sid}: no new session ({type(e).__name__})")
                    continue
                try:
                    zk.create_async("/hostile-health/c-", b"", ephemeral=True, sequence=True,
                                    makepath=True).get(timeout=timeout)
                except Exception as e:  # noqa: BLE001
                    problems.append(f"server {sid}: create failed ({type(e).__name__})")
                    continue
                try:
                    zk.get_children_async("/hostile-health").get(timeout=timeout)
                except Exception as e:  # noqa: BLE001
                    problems.append(f"server {sid}: read failed ({type(e).__name__})")
            finally:
                try:
                    zk.stop()
                    zk.close()
                except Exception:  # noqa: BLE001
                    pass
        return problems

    def leader_problems(self):
        if not self.ens or not self.baseline:
            return []
        leader, epoch = self.leader_and_epoch()
        b_leader, b_epoch = self.baseline
        if leader != b_leader or epoch != b_epoch:
            return [f"leader/epoch changed: server {b_leader} epoch {b_epoch} -> server {leader} epoch {epoch}"]
        return []

    def log_offsets(self):
        out = {}
        for sid in self.members:
            for path in self.log_files(sid):
                try:
                    out[path] = os.path.getsize(path)
                except OSError:
                    out[path] = 0
        return out

    def new_log_lines(self, offsets, pattern, limit=6):
        """Lines matching `pattern` written since `offsets`, as 'server N: line'."""
        found = []
        for sid in self.members:
            for path in self.log_files(sid):
                try:
                    with open(path, "rb") as f:
                        f.seek(offsets.get(path, 0))
                        text = f.read(8 << 20).decode(errors="replace")
                except OSError:
                    continue
                for line in text.splitlines():
                    if re.search(pattern, line):
                        found.append(f"server {sid}: {line.strip()[:300]}")
                        if len(found) >= limit:
                            return found
        return found


class LoadClient(threading.Thread):
    """Background writes through one server: create, setData, delete in a loop."""

    def __init__(self, dep, i, sid):
        super().__init__(daemon=True, name=f"load-{dep.name}-{i}")
        self.dep, self.i, self.sid = dep, i, sid
        self.halt = threading.Event()
        self.ok = 0
        self.errors = []   # (monotonic time, repr)
        self.zk = None

    def run(self):
        try:
            self.zk = connect(f"127.0.0.1:{self.dep.port(self.sid)}", timeout=10.0)
        except Exception as e:  # noqa: BLE001
            self.errors.append((time.monotonic(), f"connect: {e!r}"))
            return
        n = 0
        while not self.halt.is_set():
            n += 1
            path = f"/hostile-load/{self.i}-{n}"
            try:
                self.zk.create_async(path, b"v").get(timeout=10)
                self.zk.set_async(path, b"w").get(timeout=10)
                self.zk.delete_async(path).get(timeout=10)
                self.ok += 1
            except Exception as e:  # noqa: BLE001
                self.errors.append((time.monotonic(), repr(e)[:120]))
                self.halt.wait(0.1)
            self.halt.wait(0.02)
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:  # noqa: BLE001
            pass

    def stop(self):
        self.halt.set()

    def errors_between(self, t0, t1):
        return [e for t, e in list(self.errors) if t0 <= t <= t1]


class RssSampler(threading.Thread):
    """Samples VmRSS of every server of every deployment every 100 ms; keeps the peak of the
    current window per (deployment, sid)."""

    def __init__(self, deployments):
        super().__init__(daemon=True, name="rss")
        self.deps = deployments
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.peak = {}
        self.overall = {}

    def run(self):
        while not self.halt.is_set():
            for dep in self.deps:
                for sid in dep.sids():
                    pid = dep.pid(sid)
                    if pid is None:
                        continue
                    mb = rss_mb(pid)
                    if mb is None:
                        continue
                    key = (dep.name, sid)
                    with self.lock:
                        self.peak[key] = max(self.peak.get(key, 0.0), mb)
                        self.overall[key] = max(self.overall.get(key, 0.0), mb)
            self.halt.wait(0.1)

    def window(self):
        """Starts a new window: returns the peaks of the previous one."""
        with self.lock:
            old, self.peak = self.peak, {}
        return old

    def current(self, dep):
        out = {}
        for sid in dep.sids():
            pid = dep.pid(sid)
            out[sid] = rss_mb(pid) if pid else None
        return out


def raw_create(port, path, flags=0, data=b""):
    """Creates `path` through the server on `port` with a raw session (flags 4 = container)."""
    conn, _ = wire.open_session(port)
    try:
        body = wire.encode([("s", path), ("B", data), ("acl", wire.OPEN_ACL), ("i", flags)])
        conn.send(wire.request(1, 19 if flags == 4 else 1, body))
        deadline = time.monotonic() + 5
        while True:
            reply = wire.parse_reply(conn.read_frame(deadline))
            if reply and reply[0] == 1:
                return reply[2]
    finally:
        try:
            conn.send(wire.request(2, -11))
        except OSError:
            pass
        conn.close()


def close_session_quietly(conn):
    try:
        conn.send(struct.pack(">iii", 8, 9, -11))
    except OSError:
        pass
    conn.close()
