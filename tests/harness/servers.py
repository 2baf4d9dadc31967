"""Start and stop a standalone Apache ZooKeeper 3.8 (Debian package) or zkrs server on loopback.

Shared by the interop suite, the differential test and the benchmarks, so that both servers
always run with the same settings.
"""
import os
import shutil
import random
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZK_CLASSPATH = ":".join(
    "/usr/share/java/" + jar
    for jar in ("zookeeper.jar", "slf4j-log4j12.jar", "log4j-1.2.jar", "servlet-api.jar")
)
# digest of super:test, the super user kazoo's tests expect
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = map(int, f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


_handed_out = set()


def free_port():
    """A free loopback port outside the kernel's ephemeral range: a port from that range can
    be taken by any outgoing connection (of a client, a proxy, another server) between the
    moment we pick it and the moment the server binds it."""
    low, high = _ephemeral_range()
    candidates = list(range(10000, low)) if low > 11000 else list(range(high + 1, 65535))
    for _ in range(200):
        port = random.choice(candidates)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zkrs_binary():
    explicit = os.environ.get("ZKRS_BIN")
    if explicit:
        return explicit
    for profile in ("release", "debug"):
        path = os.path.join(REPO, "target", profile, "zkrs")
        if os.path.exists(path):
            return path
    raise RuntimeError("zkrs binary not found: build it (cargo build --release) or set ZKRS_BIN")


def four_letter_word(port, word, timeout=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


class Server:
    """One standalone server of `kind` ("zk" or "zkrs") on a free loopback port."""

    def __init__(self, kind, extra_cfg=None, port=None, workdir=None, container_check_ms=1000,
                 java_heap="512m", extra_env=None):
        self.java_heap = java_heap
        self.extra_env = extra_env or {}
        assert kind in ("zk", "zkrs"), kind
        self.kind = kind
        # interval of the container/TTL reaper; the differential test raises it so that
        # reaping never happens behind its back
        self.container_check_ms = int(container_check_ms)
        self.port = port or free_port()
        self.owns_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"{kind}-{self.port}-")
        self.cfg = {
            "tickTime": "2000",
            "dataDir": os.path.join(self.workdir, "data"),
            "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1",
            "maxClientCnxns": "0",
            "4lw.commands.whitelist": "*",
            "extendedTypesEnabled": "true",
            "DigestAuthenticationProvider.superDigest": SUPER_DIGEST,
            "admin.enableServer": "false",
        }
        self.cfg.update(extra_cfg or {})
        self.proc = None

    @property
    def connect_string(self):
        return f"127.0.0.1:{self.port}"

    def write_config(self):
        os.makedirs(self.cfg["dataDir"], exist_ok=True)
        path = os.path.join(self.workdir, "zoo.cfg")
        with open(path, "w") as f:
            for key, value in self.cfg.items():
                f.write(f"{key}={value}\n")
        return path

    def command(self, cfg_path):
        if self.kind == "zkrs":
            return [zkrs_binary(), "server", cfg_path]
        log4j = os.path.join(self.workdir, "log4j.properties")
        with open(log4j, "w") as f:
            f.write(
                "log4j.rootLogger=INFO, FILE\n"
                "log4j.appender.FILE=org.apache.log4j.FileAppender\n"
                f"log4j.appender.FILE.File={self.workdir}/server.log4j.log\n"
                "log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n"
                "log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} %-5p [%t] %c{1} - %m%n\n"
            )
        return [
            "java", f"-Xmx{self.java_heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            f"-Dlog4j.configuration=file:{log4j}",
            f"-Dznode.container.checkIntervalMs={self.container_check_ms}",
            "-Dzookeeper.admin.enableServer=false",
            "-cp", ZK_CLASSPATH,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg_path,
        ]

    def start(self, timeout=30.0):
        cfg_path = self.write_config()
        if self.kind == "zkrs":
            # containers and TTL nodes are reaped at the same interval as the ZK side gets by -D
            with open(cfg_path, "a") as f:
                f.write(f"znode.container.checkIntervalMs={self.container_check_ms}\n")
        self.log = open(os.path.join(self.workdir, "server.out"), "ab")
        self.proc = subprocess.Popen(self.command(cfg_path), stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, env={**os.environ, **self.extra_env})
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}; see {self.workdir}/server.out")
            try:
                if "Mode:" in four_letter_word(self.port, "srvr", timeout=1.0):
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not start serving on {self.port} within {timeout}s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        if self.owns_workdir and not os.environ.get("KEEP_SERVER_DIRS"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
