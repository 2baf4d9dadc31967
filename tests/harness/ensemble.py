"""Start, stop, kill and partition a replicated ensemble of Apache ZooKeeper 3.8 ("zk") or zkrs
("zkrs") servers on loopback.

Each server is a separate process with its own directory (zoo.cfg, dataDir/myid, logs),
configured the way ZooKeeper documents it:

    server.N=127.0.0.1:quorumPort:electionPort[:observer];127.0.0.1:clientPort

plus peerType=observer in an observer's own zoo.cfg. zkrs runs as `$ZKRS_BIN server zoo.cfg`
with the very same files.

With partitionable=True every server-to-server link goes through a LinkProxy (see
linkproxy.py): in server A's zoo.cfg the other servers' quorum and election addresses are
proxy listeners dedicated to A's links, so the proxy can cut any set of servers off from the
rest. Only A's own line names its real ports (the ones it binds). This relies on
reconfigEnabled=false (the default): a server then neither adopts the leader's config text
nor any other server's, so each keeps its own view of the addresses.
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
from signal import SIGCONT, SIGINT, SIGKILL, SIGTERM

from linkproxy import LinkProxy
from servers import ZK_CLASSPATH, Server, four_letter_word, free_port, zkrs_binary

SERVING_MODES = ("leader", "follower", "observer", "standalone")


def check_prerequisites(kind):
    """Fails with a clear message when a server of `kind` cannot be started here."""
    if kind == "zk":
        missing = [jar for jar in ZK_CLASSPATH.split(":") if not os.path.exists(jar)]
        if shutil.which("java") is None or missing:
            raise RuntimeError("Apache ZooKeeper 3.8 is not installed (need java and "
                               f"{', '.join(missing) or 'the zookeeper jars'}): "
                               "apt-get install -y zookeeper zookeeper-bin")
    elif kind == "zkrs":
        binary = zkrs_binary()  # raises with instructions when there is none
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"zkrs binary {binary} is not executable")
    else:
        raise ValueError(f"unknown server kind {kind!r} (zk or zkrs)")


class Member(Server):
    """One server of an ensemble. Reuses Server's settings and its Java command line; only
    starting differs: a member does not serve until a quorum is up, so launch() does not wait."""

    def __init__(self, kind, sid, observer, workdir, java_heap):
        super().__init__(kind, port=free_port(), workdir=workdir, java_heap=java_heap)
        self.sid = sid
        self.observer = observer
        self.quorum_port = free_port()
        self.election_port = free_port()
        if kind == "zkrs":
            # the ZK side gets this as -Dznode.container.checkIntervalMs (see Server.command)
            self.cfg["znode.container.checkIntervalMs"] = str(self.container_check_ms)

    @property
    def data_dir(self):
        return self.cfg["dataDir"]

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def launch(self):
        cfg_path = self.write_config()  # also creates dataDir
        with open(os.path.join(self.data_dir, "myid"), "w") as f:
            f.write(f"{self.sid}\n")
        if getattr(self, "log", None):
            self.log.close()  # of the previous run
        self.log = open(os.path.join(self.workdir, "server.out"), "ab")
        env = dict(os.environ, NO_COLOR="1")  # plain log files (zkrs logs through tracing)
        self.proc = subprocess.Popen(self.command(cfg_path), stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, env=env)

    def stop(self):
        if self.running:
            self.proc.send_signal(SIGCONT)  # a SIGSTOPped server could not act on SIGTERM
        super().stop()

    def mode(self):
        """"leader", "follower", "observer" or "standalone" while serving clients, else None."""
        try:
            reply = four_letter_word(self.port, "srvr", timeout=1.0)
        except OSError:
            return None
        match = re.search(r"^Mode: (\w+)", reply, re.MULTILINE)
        return match.group(1) if match else None

    def log_files(self):
        names = ("server.out", "server.log4j.log")
        return [os.path.join(self.workdir, n) for n in names if os.path.exists(os.path.join(self.workdir, n))]


class Ensemble:
    """n participants (sids 1..n) and `observers` observers (sids n+1..) of one kind."""

    def __init__(self, kind, n, observers=0, extra_cfg=None, tick_ms=2000, init_limit=10, sync_limit=5,
                 partitionable=False, java_heap="256m"):
        check_prerequisites(kind)
        self.kind = kind
        self.tick_ms = tick_ms
        self.workdir = tempfile.mkdtemp(prefix=f"ensemble-{kind}-")
        self.members = {}
        for sid in range(1, n + observers + 1):
            self.members[sid] = Member(kind, sid, observer=sid > n,
                                       workdir=os.path.join(self.workdir, f"server{sid}"), java_heap=java_heap)
        self.proxy = LinkProxy() if partitionable else None
        shared = {
            "tickTime": str(tick_ms),
            "initLimit": str(init_limit),
            "syncLimit": str(sync_limit),
        }
        for member in self.members.values():
            member.cfg.update(shared)
            if member.observer:
                member.cfg["peerType"] = "observer"
            for sid, peer in self.members.items():
                member.cfg[f"server.{sid}"] = self._server_line(member, peer)
            member.cfg.update(extra_cfg or {})

    def _server_line(self, viewer, peer):
        """server.N's value in `viewer`'s zoo.cfg: real ports for itself, else (when
        partitionable) the proxy's listeners for viewer->peer."""
        quorum, election = peer.quorum_port, peer.election_port
        if self.proxy and viewer is not peer:
            quorum = self.proxy.add_route(viewer.sid, peer.sid, "quorum", peer.quorum_port)
            election = self.proxy.add_route(viewer.sid, peer.sid, "election", peer.election_port)
        role = ":observer" if peer.observer else ""
        return f"127.0.0.1:{quorum}:{election}{role};127.0.0.1:{peer.port}"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout=90.0):
        for member in self.members.values():
            member.launch()
        self.wait_for_quorum(timeout)
        return self

    def stop(self):
        for member in self.members.values():
            member.stop()
        if self.proxy:
            self.proxy.close()

    def cleanup(self):
        self.stop()
        if not os.environ.get("KEEP_SERVER_DIRS"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def kill(self, sid, signal=SIGKILL):
        """Sends `signal` to server `sid` (e.g. SIGSTOP to freeze it); waits for the process
        to end if the signal ends it."""
        member = self.members[sid]
        if not member.running:
            raise RuntimeError(f"server {sid} is not running")
        member.proc.send_signal(signal)
        if signal in (SIGKILL, SIGTERM, SIGINT):
            member.proc.wait(timeout=30)

    def restart(self, sid, wait=True, timeout=90.0):
        """Stops server `sid` if it runs (SIGTERM), starts it again with the same dataDir and,
        with wait, waits until it serves clients."""
        member = self.members[sid]
        member.stop()
        member.launch()
        if wait:
            self.wait_until_serving(sid, timeout)

    def wipe_and_restart(self, sid, wait=True, timeout=90.0):
        """Restarts server `sid` with an empty dataDir (its myid kept), so it has to catch up
        from a snapshot."""
        member = self.members[sid]
        member.stop()
        shutil.rmtree(os.path.join(member.data_dir, "version-2"), ignore_errors=True)
        self.restart(sid, wait, timeout)

    # -- partitions -----------------------------------------------------------------------------

    def partition(self, group, mode="close"):
        """Cuts the servers in `group` off from all the others (quorum and election links)."""
        if not self.proxy:
            raise RuntimeError("this ensemble was created without partitionable=True")
        others = [sid for sid in self.members if sid not in group]
        self.proxy.cut(group, others, mode)

    def heal(self):
        self.proxy.heal()

    # -- observation ----------------------------------------------------------------------------

    def sids(self, running_only=False):
        return [sid for sid, m in self.members.items() if m.running or not running_only]

    def participants(self):
        return [sid for sid, m in self.members.items() if not m.observer]

    def connect_string(self, sids=None):
        return ",".join(self.members[sid].connect_string for sid in (sids or self.members))

    def client_port(self, sid):
        return self.members[sid].port

    def pid(self, sid):
        member = self.members[sid]
        return member.proc.pid if member.running else None

    def mode(self, sid):
        return self.members[sid].mode()

    def modes(self, sids=None):
        return {sid: self.mode(sid) for sid in (sids or self.members)}

    def leader(self, sids=None):
        """The sid of the one server (among `sids`) reporting Mode: leader, else None."""
        leaders = [sid for sid, mode in self.modes(sids).items() if mode == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_until_serving(self, sid, timeout=90.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.mode(sid) in SERVING_MODES:
                return
            self._check_alive([sid])
            time.sleep(0.1)
        raise TimeoutError(f"server {sid} did not serve within {timeout}s\n{self.log_tail(sid)}")

    def wait_for_quorum(self, timeout=90.0, sids=None):
        """Waits until every server in `sids` (default: all running) serves, exactly one of them
        as leader; returns the leader's sid."""
        sids = sids or self.sids(running_only=True)
        deadline = time.monotonic() + timeout
        modes = {}
        while time.monotonic() < deadline:
            self._check_alive(sids)
            modes = self.modes(sids)
            leaders = [sid for sid, mode in modes.items() if mode == "leader"]
            if len(leaders) == 1 and all(mode in SERVING_MODES for mode in modes.values()):
                return leaders[0]
            time.sleep(0.1)
        tails = "\n".join(self.log_tail(sid, 15) for sid in sids)
        raise TimeoutError(f"no quorum among servers {sids} within {timeout}s; modes {modes}\n{tails}")

    def _check_alive(self, sids):
        for sid in sids:
            member = self.members[sid]
            if member.proc is not None and member.proc.poll() is not None:
                raise RuntimeError(f"server {sid} ({self.kind}) exited with {member.proc.returncode}\n"
                                   f"{self.log_tail(sid)}")

    def log_tail(self, sid, lines=40):
        """The last `lines` lines of each of server `sid`'s log files, headed by their paths."""
        parts = []
        for path in self.members[sid].log_files():
            with open(path, "rb") as f:
                tail = f.read().decode(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path}\n" + "\n".join(tail))
        return "\n".join(parts) or f"--- server {sid}: no log files"
