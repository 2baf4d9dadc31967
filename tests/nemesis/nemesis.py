"""The nemesis: a seeded schedule of faults, and reconfigurations running during them.

Faults (one at a time, each held for 4-9 s, then healed, then a 2-4 s calm gap; every kind
once per round of seven, in a seeded order):
  partition     a random minority cut off from the majority
  isolate-leader the current leader cut off from everyone else
  bridge        two halves that cannot talk, joined by one server that sees both
  netem         a bad link on every server's egress: tc netem delay 50ms +-40ms and 10% loss,
                or where the kernel lacks sch_netem a tbf throttle (see net.degrade)
  kill          kill -9 a server (the leader half of the time), restarted when healed
  pause         SIGSTOP a server (the leader half of the time) for longer than the session
                timeout, then SIGCONT
  disk-full     fill a server's dataDir (a 512 MB tmpfs) to the last byte (the leader half
                of the time); healed by deleting the filler, and restarting the server if
                it exited meanwhile (recorded)

Reconfigurations (a thread of their own, every few seconds, through kazoo as the super
user): remove a follower, remove the leader, turn a participant into an observer; the next
one brings the server back as a participant. Errors a reconfig may legitimately return under
faults (NewConfigNoQuorum, ReconfigInProgress, ConnectionLoss, timeouts...) are recorded as
failed or indeterminate; the committed configuration is read back before each step.
"""
import random
import threading
import time

from kazoo.client import KazooClient

from cluster import CLIENT_PORT, ELECTION_PORT, QUORUM_PORT, SUPER
from workloads import FAST_RECONNECT, SESSION_TIMEOUT, classify

FAULTS = ("partition", "isolate-leader", "bridge", "netem", "kill", "pause", "disk-full")


class Coordinator:
    """Keeps the fault thread and the reconfig thread off the same server."""

    def __init__(self):
        self.lock = threading.Lock()
        self.faulted = set()     # killed or paused by the nemesis
        self.reconfigured = set()  # removed or demoted by the reconfig thread


class Nemesis(threading.Thread):
    def __init__(self, cluster, seed, coord, history_now):
        super().__init__(name="nemesis", daemon=True)
        self.c, self.rng, self.coord, self.now = cluster, random.Random(seed), coord, history_now
        self.stop_event = threading.Event()
        self.events = []
        self.crashes = []
        self.error = None

    def run(self):
        try:
            self.wait(2, 3)
            cycle = []
            while not self.stop_event.is_set():
                if not cycle:  # every kind once per round, in a seeded order
                    cycle = list(FAULTS)
                    self.rng.shuffle(cycle)
                self.check_crashes()
                self.inject(cycle.pop())
                self.wait(2, 4)
            self.check_crashes()
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)

    def wait(self, lo, hi):
        self.stop_event.wait(self.rng.uniform(lo, hi))

    def check_crashes(self):
        """A server that exited although no fault of ours ended it: recorded, restarted."""
        with self.coord.lock:
            faulted = set(self.coord.faulted)
        for sid, m in self.c.members.items():
            if sid not in faulted and m.proc is not None and m.proc.poll() is not None:
                self.crashes.append({"server": sid, "t": self.now(), "exit": m.proc.returncode})
                self.c.restart(sid)

    def pick(self, prefer_leader):
        with self.coord.lock:
            candidates = [s for s in self.c.members if s not in self.coord.reconfigured
                          and s not in self.coord.faulted]
            leader = self.c.leader() if prefer_leader and self.rng.random() < 0.5 else None
            sid = leader if leader in candidates else (self.rng.choice(candidates) if candidates else None)
            if sid is not None:
                self.coord.faulted.add(sid)
            return sid

    def inject(self, fault):
        sids = list(self.c.members)
        n = len(sids)
        ev = {"fault": fault, "start": self.now()}
        net = self.c.network
        hold = self.rng.uniform(4, 9)
        if fault == "partition":
            self.rng.shuffle(sids)
            minority = set(sids[:(n - 1) // 2])
            ev["groups"] = [sorted(minority), sorted(set(sids) - minority)]
            net.partition([minority, set(sids) - minority])
        elif fault == "isolate-leader":
            leader = self.c.leader() or self.rng.choice(sids)
            ev["leader"] = leader
            net.partition([{leader}, set(sids) - {leader}])
        elif fault == "bridge":
            self.rng.shuffle(sids)
            half = (n - 1) // 2
            a, b = set(sids[:half]), set(sids[half + 1:])
            ev["groups"], ev["bridge"] = [sorted(a), sorted(b)], sids[half]
            net.partition([a, b])
        elif fault == "netem":
            ev["link"] = net.degrade(sids)
        elif fault in ("kill", "pause", "disk-full"):
            sid = self.pick(prefer_leader=True)
            if sid is None:
                return
            ev["server"] = sid
            ev["was_leader"] = self.c.members[sid].mode() == "leader"
            if fault == "kill":
                self.c.kill(sid)
            elif fault == "disk-full":
                ev["filler_bytes"] = self.c.fill_disk(sid)
            else:
                self.c.pause(sid)
                hold = SESSION_TIMEOUT + self.rng.uniform(1, 3)
        ev["hold"] = round(hold, 2)
        self.events.append(ev)
        self.stop_event.wait(hold)
        self.heal(ev)

    def heal(self, ev):
        fault = ev["fault"]
        if fault in ("partition", "isolate-leader", "bridge", "netem"):
            self.c.network.heal()
        elif fault == "kill":
            self.c.restart(ev["server"])
        elif fault == "pause":
            self.c.resume(ev["server"])
        elif fault == "disk-full":
            sid = ev["server"]
            self.c.free_disk(sid)
            m = self.c.members[sid]
            if not m.running:  # the server gave up on its full disk: note how, restart it
                ev["server_exited"] = m.proc.returncode
                self.c.restart(sid)
        if "server" in ev:
            with self.coord.lock:
                self.coord.faulted.discard(ev["server"])
        ev["end"] = self.now()

    def stop(self):
        self.stop_event.set()
        self.join(timeout=60)


def parse_config(data):
    """{sid: role} of the committed configuration's server lines, and its version."""
    roles, version = {}, None
    for line in data.decode().split("\n"):
        if line.startswith("server."):
            key, value = line.split("=", 1)
            roles[int(key[len("server."):])] = value.split(";")[0].split(":")[3]
        elif line.startswith("version="):
            version = line[len("version="):]
    return roles, version


def quorum_ports(data):
    """{sid: quorum port} of the committed configuration's server lines."""
    ports = {}
    for line in data.decode().split("\n"):
        if line.startswith("server."):
            key, value = line.split("=", 1)
            ports[int(key[len("server."):])] = int(value.split(";")[0].split(":")[1])
    return ports


# "move-ports" flips a server's quorum and election ports between the usual ones and these
MOVED_QUORUM_PORT, MOVED_ELECTION_PORT = QUORUM_PORT + 100, ELECTION_PORT + 100


class Reconfigurer(threading.Thread):
    def __init__(self, cluster, seed, coord, history_now, interval=(3, 6)):
        super().__init__(name="reconfig", daemon=True)
        self.c, self.rng, self.coord, self.now = cluster, random.Random(seed * 7919 + 1), coord, history_now
        self.interval = interval
        self.stop_event = threading.Event()
        self.events = []
        self.error = None
        self.ports = {}
        self.zk = KazooClient(hosts=cluster.hosts(), timeout=SESSION_TIMEOUT, auth_data=[SUPER],
                              connection_retry=FAST_RECONNECT)

    def config(self):
        self.zk.sync_async("/zookeeper/config").get(timeout=5)
        data, _ = self.zk.get_async("/zookeeper/config").get(timeout=5)
        self.ports = quorum_ports(data)
        return parse_config(data)

    def run(self):
        try:
            self.zk.start(timeout=30)
            while not self.stop_event.is_set():
                self.stop_event.wait(self.rng.uniform(*self.interval))
                if self.stop_event.is_set():
                    break
                self.step()
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)

    def step(self, restore_only=False):
        try:
            roles, version = self.config()
        except Exception as e:  # noqa: BLE001
            self.events.append({"action": "read-config", "t": self.now(), "type": "info", "error": repr(e)})
            return None
        out = sorted(s for s in self.c.members if roles.get(s) != "participant")
        with self.coord.lock:
            self.coord.reconfigured = set(out)
        if out:
            target, action = out[0], "re-add"
            kwargs = {"joining": self.c.members[target].spec("participant"), "leaving": None}
        elif restore_only:
            return True
        else:
            leader = self.c.leader()
            with self.coord.lock:
                free = [s for s in self.c.members if s not in self.coord.faulted]
            action = self.rng.choice(("remove-follower", "remove-leader", "to-observer", "move-ports"))
            if action == "remove-leader":
                target = leader if leader in free else None
            else:
                followers = [s for s in free if s != leader]
                target = self.rng.choice(followers) if followers else None
            if target is None:
                return None
            with self.coord.lock:
                self.coord.reconfigured.add(target)
            if action == "to-observer":
                kwargs = {"joining": self.c.members[target].spec("observer"), "leaving": None}
            elif action == "move-ports":
                # the same server with other quorum and election ports, live (the manual's
                # "Modifying server parameters"); the client port stays, for the workloads
                moved = self.ports.get(target) == QUORUM_PORT
                q, e = (MOVED_QUORUM_PORT, MOVED_ELECTION_PORT) if moved else (QUORUM_PORT, ELECTION_PORT)
                host = self.c.members[target].host
                kwargs = {"joining": f"server.{target}={host}:{q}:{e}:participant;{host}:{CLIENT_PORT}",
                          "leaving": None}
            else:
                kwargs = {"joining": None, "leaving": str(target)}
        ev = {"action": action, "server": target, "from_version": version, "invoke": self.now()}
        if action == "move-ports":
            ev["to_ports"] = kwargs["joining"].split("=", 1)[1].split(":")[1:3]
        try:
            data, _ = self.zk.reconfig_async(new_members=None, from_config=-1, **kwargs).get(timeout=15)
        except Exception as e:  # noqa: BLE001
            kind, name = classify(e)
            ev.update(type="fail" if kind == "fail" or name in (
                "NewConfigNoQuorumError", "ReconfigInProgressError", "BadArgumentsError") else "info",
                error=name, complete=self.now())
        else:
            ev.update(type="ok", complete=self.now(), to_version=parse_config(data)[1])
        self.events.append(ev)
        return ev["type"] == "ok"

    def restore(self, timeout=60):
        """After the run: brings every removed or demoted server back as a participant."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.step(restore_only=True) is True:
                try:
                    roles, _ = self.config()
                except Exception:  # noqa: BLE001
                    roles = {}
                if all(roles.get(s) == "participant" for s in self.c.members):
                    return True
            time.sleep(1)
        return False

    def stop(self):
        self.stop_event.set()
        self.join(timeout=30)

    def close(self):
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:  # noqa: BLE001
            pass
