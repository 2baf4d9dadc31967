"""A reconfigEnabled ensemble of real zkrs or Apache ZooKeeper processes, one per network
namespace (see net.py), with kill -9 / restart, SIGSTOP / SIGCONT and reconfig helpers.

Each server N listens on 10.77.0.N (client port 2181, quorum 2888, election 3888) and is
started as `ip netns exec znemN <zkrs server zoo.cfg | java ... QuorumPeerMain zoo.cfg>`
(ip netns exec execs the server, so the Popen pid is the server's own). zoo.cfg is written
once; restarts reuse the files as the server left them (reconfig rewrites them). Without
namespaces, servers run on 127.0.0.N behind proxynet.py's TCP proxy instead.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from signal import SIGCONT, SIGKILL, SIGSTOP

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))

from ensemble import Member, check_prerequisites  # noqa: E402

import net  # noqa: E402
from proxynet import ProxyNetwork  # noqa: E402

SUPER_DIGEST = "super:pRrI+8tARV2hNsXgQkXL5qvmGJY="  # generateDigest("super:zkref")
SUPER = ("digest", "super:zkref")
CLIENT_PORT, QUORUM_PORT, ELECTION_PORT = 2181, 2888, 3888
TICK_MS, INIT_LIMIT, SYNC_LIMIT = 500, 10, 5      # a follower gives up on its leader after 2.5 s
SERVING = ("leader", "follower", "observer", "standalone")


def four_letter_word(host, word, timeout=1.0):
    with socket.create_connection((host, CLIENT_PORT), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(word.encode())
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


class NsMember(Member):
    def __init__(self, kind, sid, workdir, network, java_heap="160m"):
        super().__init__(kind, sid, observer=False, workdir=workdir, java_heap=java_heap)
        self.network = network
        self.host = network.addr(sid)
        self.port = CLIENT_PORT
        self.quorum_port, self.election_port = QUORUM_PORT, ELECTION_PORT
        self.paused = False
        self.launched = False

    def spec(self, role="participant"):
        return f"server.{self.sid}={self.host}:{QUORUM_PORT}:{ELECTION_PORT}:{role};{self.host}:{CLIENT_PORT}"

    def command(self, cfg_path):
        cmd = super().command(cfg_path)
        if self.kind == "zk":
            cmd.insert(1, "-Djava.net.preferIPv4Stack=true")
        return self.network.command_prefix(self.sid) + cmd

    def launch(self):
        """First start: writes zoo.cfg (and myid); later starts keep the files the server rewrote."""
        if not self.launched:
            self.write_config()
            with open(os.path.join(self.data_dir, "myid"), "w") as f:
                f.write(f"{self.sid}\n")
            self.launched = True
        if getattr(self, "log", None):
            self.log.close()
        self.log = open(os.path.join(self.workdir, "server.out"), "ab")
        env = dict(os.environ, NO_COLOR="1", **self.network.env())
        self.proc = subprocess.Popen(self.command(os.path.join(self.workdir, "zoo.cfg")), stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.workdir, env=env)
        self.paused = False

    def mode(self):
        if not self.running or self.paused:
            return None
        try:
            reply = four_letter_word(self.host, "srvr", timeout=1.0)
        except OSError:
            return None
        m = re.search(r"^Mode: (\w+)", reply, re.MULTILINE)
        return m.group(1) if m else None

    def rss_kb(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, AttributeError):
            pass
        return None


class NsCluster:
    def __init__(self, kind, n, workdir=None, proxy=False):
        """proxy: use the TCP-proxy network (proxynet.py) even where namespaces work."""
        check_prerequisites(kind)
        self.kind, self.n = kind, n
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"nemesis-{kind}-")
        reason = "asked for with --proxy" if proxy else net.unavailable_reason()
        if reason:
            self.network = ProxyNetwork(range(1, n + 1), self.workdir, reason)
        else:
            self.network = net.Network(range(1, n + 1))
        self.members = {sid: NsMember(kind, sid, os.path.join(self.workdir, f"server{sid}"), self.network)
                        for sid in range(1, n + 1)}
        for m in self.members.values():
            m.cfg = {
                "tickTime": str(TICK_MS), "initLimit": str(INIT_LIMIT), "syncLimit": str(SYNC_LIMIT),
                "dataDir": os.path.join(m.workdir, "data"),
                "reconfigEnabled": "true", "standaloneEnabled": "false",
                "4lw.commands.whitelist": "*", "admin.enableServer": "false", "maxClientCnxns": "0",
                "DigestAuthenticationProvider.superDigest": SUPER_DIGEST,
            }
            for other in self.members.values():
                key, value = other.spec().split("=", 1)
                m.cfg[key] = value

    DISK = "512m"   # each dataDir is a tmpfs of this size, so that one can be filled up

    @staticmethod
    def clean_stale_mounts():
        """Unmounts the dataDir tmpfs of an earlier run that was killed before its cleanup."""
        with open("/proc/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "tmpfs" and "/nemesis-" in fields[1] \
                        and fields[1].endswith("/data"):
                    subprocess.run(["umount", "-l", fields[1]], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)

    def start(self, timeout=90):
        self.network.setup()  # also removes the namespaces of an earlier run killed midway
        self.clean_stale_mounts()
        self.mounts = []
        for m in self.members.values():
            os.makedirs(m.data_dir, exist_ok=True)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.DISK}", "tmpfs", m.data_dir],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"cannot mount a tmpfs on {m.data_dir}: {r.stdout.strip()}")
            self.mounts.append(m.data_dir)
        for m in self.members.values():
            m.launch()
        return self.wait_for_quorum(timeout)

    def stop(self):
        for m in self.members.values():
            if m.running:
                m.proc.send_signal(SIGCONT)
                m.proc.send_signal(SIGKILL)
                m.proc.wait()
            if getattr(m, "log", None):
                m.log.close()
        for path in getattr(self, "mounts", []):
            subprocess.run(["umount", "-l", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.mounts = []
        self.network.teardown()

    # -- a full disk -------------------------------------------------------------------------

    def fill_disk(self, sid):
        """Fills server sid's dataDir filesystem (a tmpfs) to the last byte; returns the
        filler's size."""
        path = os.path.join(self.members[sid].data_dir, ".nemesis-filler")
        written = 0
        with open(path, "wb", buffering=0) as f:
            for chunk in (1 << 20, 4096, 1):
                block = b"\0" * chunk
                try:
                    while True:
                        written += f.write(block)
                except OSError:
                    pass
        return written

    def free_disk(self, sid):
        try:
            os.unlink(os.path.join(self.members[sid].data_dir, ".nemesis-filler"))
        except FileNotFoundError:
            pass

    def cleanup(self, keep=False):
        self.stop()
        if not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- observation -------------------------------------------------------------------------

    def hosts(self, sids=None):
        return ",".join(f"{self.members[s].host}:{CLIENT_PORT}" for s in (sids or self.members))

    def modes(self):
        return {sid: m.mode() for sid, m in self.members.items()}

    def leader(self):
        leaders = [sid for sid, mode in self.modes().items() if mode == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_for_quorum(self, timeout=90, sids=None):
        deadline = time.monotonic() + timeout
        modes = {}
        while time.monotonic() < deadline:
            modes = {sid: self.members[sid].mode() for sid in (sids or self.members)}
            leaders = [s for s, md in modes.items() if md == "leader"]
            if len(leaders) == 1 and all(md in SERVING for md in modes.values()):
                return leaders[0]
            for sid, m in self.members.items():
                if m.proc is not None and m.proc.poll() is not None:
                    raise RuntimeError(f"server {sid} exited with {m.proc.returncode}:\n{self.log_tail(sid)}")
            time.sleep(0.2)
        raise TimeoutError(f"no quorum within {timeout}s: modes {modes}")

    def log_tail(self, sid, lines=30):
        out = []
        for path in self.members[sid].log_files():
            with open(path, "rb") as f:
                out.append(f"--- {path}\n" + "\n".join(f.read().decode(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    def log_files(self):
        return [p for m in self.members.values() for p in m.log_files()]

    # -- process faults ----------------------------------------------------------------------

    def kill(self, sid):
        m = self.members[sid]
        if m.running:
            m.proc.send_signal(SIGKILL)
            m.proc.wait(timeout=30)
        m.paused = False

    def restart(self, sid):
        m = self.members[sid]
        if m.running:
            self.kill(sid)
        m.launch()

    def pause(self, sid):
        m = self.members[sid]
        if m.running:
            m.proc.send_signal(SIGSTOP)
            m.paused = True

    def resume(self, sid):
        m = self.members[sid]
        if m.running:
            m.proc.send_signal(SIGCONT)
        m.paused = False
