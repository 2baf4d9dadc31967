"""An ensemble set up for dynamic reconfiguration, the zkCli.sh driver, and config parsing.

Built on tests/harness/ensemble.py (its Member: the per-kind command line, log files, srvr
mode). Every server's zoo.cfg is written the way the reference transcripts write it
(/work/shared/reference/zk38/ensemble.sh), in one file:

    tickTime, initLimit, syncLimit, dataDir, reconfigEnabled, standaloneEnabled,
    4lw.commands.whitelist=*, admin.enableServer=false,
    DigestAuthenticationProvider.superDigest=<digest of super:zkref>,
    server.N=127.0.0.1:Q:E:participant;127.0.0.1:C   (no clientPort line)
    [group.G=... weight.N=...]

so that both kinds get byte-identical input files (modulo ports and paths) and the files the
servers rewrite (static file, .bak, zoo.cfg.dynamic.<version>) can be compared.
"""
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))

from ensemble import Ensemble, Member  # noqa: E402
from servers import four_letter_word  # noqa: E402
from writes import connect  # noqa: E402

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
SUPER_DIGEST = "super:pRrI+8tARV2hNsXgQkXL5qvmGJY="  # generateDigest("super:zkref")
SUPER = ("digest", "super:zkref")
CONFIG_NODE = "/zookeeper/config"
FIRST_VERSION = 0x100000000  # zxid of the first NEWLEADER: epoch 1, counter 0

# Short ticks keep elections, hand-offs and syncLimit checks fast; the same for both kinds.
# initLimit x tick = 10 s, syncLimit x tick = 5 s.
TICK_MS = 500
INIT_LIMIT = 20
SYNC_LIMIT = 10
JAVA_HEAP = "192m"


# -- the dynamic configuration as text --------------------------------------------------------

@dataclass
class Config:
    """Parsed /zookeeper/config data: server/group/weight lines and the hex version."""
    lines: list
    version: int
    raw: bytes = b""

    @classmethod
    def parse(cls, data):
        if isinstance(data, bytes):
            raw, text = data, data.decode()
        else:
            raw, text = data.encode(), data
        lines = text.split("\n")
        if not lines or not lines[-1].startswith("version="):
            raise AssertionError(f"config data does not end with a version= line: {text!r}")
        return cls(lines[:-1], int(lines[-1][len("version="):], 16), raw)

    @property
    def servers(self):
        """{sid: value after 'server.N='}"""
        out = {}
        for line in self.lines:
            m = re.match(r"server\.(\d+)=(.*)$", line)
            if m:
                out[int(m.group(1))] = m.group(2)
        return out

    def role(self, sid):
        value = self.servers[sid]
        return value.split(";")[0].split(":")[3]

    def voters(self):
        return sorted(sid for sid in self.servers if self.role(sid) == "participant")


def config_text(lines, version):
    """The exact bytes of /zookeeper/config (and of a reconfig's reply): the lines, then
    version=<hex, no 0x>, no final newline."""
    return ("\n".join(list(lines) + [f"version={version:x}"])).encode()


# -- zkCli.sh ----------------------------------------------------------------------------------

# Lines zkCli prints around every command (connection banner and the connect event), and the
# SLF4J warnings of the Debian classpath; whatever remains is the commands' own output.
ZKCLI_NOISE = re.compile(r"^(SLF4J: .*|Connecting to .*|Welcome to ZooKeeper!|JLine support is disabled|"
                         r"WATCHER::|WatchedEvent state:SyncConnected type:None path:null|)$")


@dataclass
class CliResult:
    status: int
    lines: list          # output without the banner / connect-event noise
    raw: str = field(repr=False, default="")

    @property
    def text(self):
        return "\n".join(self.lines)

    def __str__(self):
        return f"zkCli exit status {self.status}, output:\n{self.raw}"


def zkcli_env():
    # C1 JIT only: the CLI runs one command, startup time is all that counts
    # (and UTC, so that Stat times print as in the reference: "Thu Jan 01 00:00:00 UTC 1970")
    return dict(os.environ, CLIENT_JVMFLAGS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto", TZ="UTC")


def clean_cli_output(raw):
    return [line for line in raw.splitlines() if not ZKCLI_NOISE.match(line)]


def zkcli(port, *commands, auth=True, timeout=60):
    """Runs the real Java CLI against 127.0.0.1:port with `commands` piped on stdin (the Debian
    package has no jline: no prompt, no echo), preceded by `addauth digest super:zkref` when
    auth is true (a string means that addauth line instead)."""
    script = []
    if auth is True:
        script.append("addauth digest super:zkref")
    elif auth:
        script.append(auth)
    script.extend(commands)
    proc = subprocess.run([ZKCLI, "-server", f"127.0.0.1:{port}"], input="\n".join(script) + "\n",
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                          env=zkcli_env())
    return CliResult(proc.returncode, clean_cli_output(proc.stdout), proc.stdout)


class BackgroundCli:
    """A zkCli session kept open (stdin not closed) so that watches it sets can fire."""

    def __init__(self, port, *commands):
        self.proc = subprocess.Popen([ZKCLI, "-server", f"127.0.0.1:{port}"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=zkcli_env())
        self.output = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.send(*commands)

    def _read(self):
        for line in self.proc.stdout:
            with self._changed:
                self.output.append(line.rstrip("\n"))
                self._changed.notify_all()

    def send(self, *commands):
        for command in commands:
            self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait_for_line(self, pattern, timeout):
        regex = re.compile(pattern)
        with self._changed:
            ok = self._changed.wait_for(lambda: any(regex.search(line) for line in self.output), timeout)
        if not ok:
            raise AssertionError(f"zkCli did not print /{pattern}/ within {timeout}s; output so far:\n"
                                 + "\n".join(self.output))

    def close(self, timeout=20):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        return CliResult(self.proc.returncode, clean_cli_output("\n".join(self.output)), "\n".join(self.output))


# -- the ensemble -------------------------------------------------------------------------------

def wait_until(predicate, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


class Cluster:
    """n participants (sids 1..n) started from one zoo.cfg each; joiners are added later with
    add_joiner(). Wraps a harness Ensemble (self.ens), whose members this class configures."""

    STYLES = ("new", "legacy", "redundant-client-port", "split", "hierarchical")

    def __init__(self, kind, n, reconfig_enabled=True, standalone_enabled=False, style="new"):
        """style: how the initial membership is written (ref ensemble.sh ZK_CFG_STYLE/ZK_HIER):
        "new" - server.N=...:participant;127.0.0.1:C lines in zoo.cfg (the 3.5+ format);
        "legacy" - clientPort=C and server.N=127.0.0.1:Q:E lines (manual 2.4);
        "redundant-client-port" - "new" plus clientPort/clientPortAddress (manual 2.3 example 2);
        "split" - zoo.cfg with dynamicConfigFile=<dir>/zoo.cfg.dynamic, unversioned (example 1);
        "hierarchical" - "new" plus group.1=1:..:n and weight.N=1."""
        assert style in self.STYLES, style
        self.kind = kind
        self.style = style
        self.reconfig_enabled = reconfig_enabled
        self.standalone_enabled = standalone_enabled
        self.ens = Ensemble(kind, n, tick_ms=TICK_MS, init_limit=INIT_LIMIT, sync_limit=SYNC_LIMIT,
                            java_heap=JAVA_HEAP)
        self.workdir = os.path.realpath(self.ens.workdir)
        sids = range(1, n + 1)
        if style == "legacy":
            written = [f"server.{sid}=127.0.0.1:{self.members[sid].quorum_port}:{self.members[sid].election_port}"
                       for sid in sids]
            # the config ZooKeeper reports: role made explicit, no client part
            self.initial_lines = [line + ":participant" for line in written]
        else:
            written = [self.spec(sid) for sid in sids]
            if style == "hierarchical":
                written.append("group.1=" + ":".join(str(sid) for sid in sids))
                written.extend(f"weight.{sid}=1" for sid in sids)
            self.initial_lines = list(written)
        self.split_files = {}  # sid -> text of the hand-written unversioned dynamic file
        for sid, member in self.members.items():
            cfg = self.static_cfg(member)
            if style == "legacy":
                cfg["clientPort"] = str(member.port)
            if style == "split":
                path = os.path.join(os.path.realpath(member.workdir), "zoo.cfg.dynamic")
                cfg["dynamicConfigFile"] = path
                self.split_files[sid] = "".join(line + "\n" for line in written)
            else:
                for line in written:
                    key, value = line.split("=", 1)
                    cfg[key] = value
            if style == "redundant-client-port":
                cfg["clientPort"] = str(member.port)
                cfg["clientPortAddress"] = "127.0.0.1"
            member.cfg = cfg

    def written_zoo_cfg(self, sid):
        """The bytes of zoo.cfg as written for server sid (Server.write_config's format)."""
        return "".join(f"{key}={value}\n" for key, value in self.members[sid].cfg.items()).encode()

    # -- layout ------------------------------------------------------------------------------

    @property
    def members(self):
        return self.ens.members

    def static_cfg(self, member):
        return {
            "tickTime": str(TICK_MS),
            "initLimit": str(INIT_LIMIT),
            "syncLimit": str(SYNC_LIMIT),
            "dataDir": os.path.join(member.workdir, "data"),
            "reconfigEnabled": "true" if self.reconfig_enabled else "false",
            "standaloneEnabled": "true" if self.standalone_enabled else "false",
            "4lw.commands.whitelist": "*",
            "admin.enableServer": "false",
            "DigestAuthenticationProvider.superDigest": SUPER_DIGEST,
        }

    def spec(self, sid, role="participant", client_port=None, prefix="server."):
        """server.N=127.0.0.1:Q:E:role;127.0.0.1:C for member sid (as ZooKeeper prints it)."""
        m = self.members[sid]
        client = client_port or m.port
        role_part = f":{role}" if role else ""
        return f"{prefix}{sid}=127.0.0.1:{m.quorum_port}:{m.election_port}{role_part};127.0.0.1:{client}"

    line = spec

    def conf_dir(self, sid):
        return os.path.realpath(self.members[sid].workdir)

    def config_files(self, sid):
        """{name: bytes} of the zoo.cfg* files in server sid's config directory."""
        d = self.conf_dir(sid)
        out = {}
        for name in sorted(os.listdir(d)):
            if name.startswith("zoo.cfg"):
                with open(os.path.join(d, name), "rb") as f:
                    out[name] = f.read()
        return out

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, timeout=90, stagger=True):
        """Starts every member. With stagger (as the reference ensemble.sh does), a smallest quorum
        of servers (1 and 2 of 3) starts first and elects a leader, then the others join one at a
        time; otherwise all at once."""
        sids = sorted(self.members)
        for sid, text in self.split_files.items():
            os.makedirs(self.members[sid].workdir, exist_ok=True)
            with open(os.path.join(self.members[sid].workdir, "zoo.cfg.dynamic"), "w") as f:
                f.write(text)
        if len(sids) == 1 and self.standalone_enabled:
            self.members[sids[0]].launch()
            self.ens.wait_until_serving(sids[0], timeout)
            return self
        first = len(sids) // 2 + 1  # the smallest quorum: 1 and 2 of 3 (2 then leads, as in the reference)
        if not stagger or first == len(sids):
            self.ens.start(timeout)
            return self
        for sid in sids[:first]:
            self.members[sid].launch()
        self.ens.wait_for_quorum(timeout, sids=sids[:first])
        for sid in sids[first:]:
            self.members[sid].launch()
            self.ens.wait_until_serving(sid, timeout)
        self.ens.wait_for_quorum(timeout, sids=sids)
        return self

    def cleanup(self):
        self.ens.cleanup()

    def add_joiner(self, sid, role="observer", listed=None, also=(), current=None, wait=True,
                   also_role="observer"):
        """Starts a new server `sid` whose initial config is the current committed membership
        (`current`, a Config, read from the ensemble if None; or only the sids in `listed`), plus
        itself with `role`, plus the joiners in `also` with `also_role` (observers: manual
        options 1-3; participants: the split-brain setup the manual warns of)."""
        member = self.members.get(sid)
        if member is None or member.running:
            # (a member from prepare_member keeps its ports: others' configs may list them)
            member = self.prepare_member(sid)
        member.cfg = self.static_cfg(member)
        if current is None:
            current = self.read_config()
        for other, value in current.servers.items():
            if other != sid and (listed is None or other in listed):
                member.cfg[f"server.{other}"] = value
        member.cfg[f"server.{sid}"] = self.spec(sid, role).split("=", 1)[1]
        for other in also:
            member.cfg[f"server.{other}"] = self.spec(other, also_role).split("=", 1)[1]
        member.launch()
        if wait:
            self.ens.wait_until_serving(sid, timeout=60)
        return member

    def prepare_member(self, sid):
        """A Member for sid with ports allocated but no process (its spec can be used in a
        reconfig for a server that never runs)."""
        member = Member(self.kind, sid, observer=False, workdir=os.path.join(self.ens.workdir, f"server{sid}"),
                        java_heap=JAVA_HEAP)
        self.members[sid] = member
        return member

    def relaunch(self, sid):
        """Starts server sid again with the config files as they are on disk (the server may
        have rewritten them): unlike Member.launch(), zoo.cfg is not rewritten."""
        member = self.members[sid]
        member.stop()
        cfg_path = os.path.join(member.workdir, "zoo.cfg")
        if getattr(member, "log", None):
            member.log.close()
        member.log = open(os.path.join(member.workdir, "server.out"), "ab")
        env = dict(os.environ, NO_COLOR="1")
        member.proc = subprocess.Popen(member.command(cfg_path), stdout=member.log, stderr=subprocess.STDOUT,
                                       cwd=member.workdir, env=env)

    def stop(self, sid):
        self.members[sid].stop()

    # -- observation ---------------------------------------------------------------------------

    def mode(self, sid):
        return self.ens.mode(sid)

    def modes(self, sids=None):
        return self.ens.modes(sids)

    def running(self):
        return [sid for sid, m in self.members.items() if m.running]

    def leader(self):
        return self.ens.leader(self.running())

    def wait_for_leader(self, sids=None, timeout=60):
        return self.ens.wait_for_quorum(timeout=timeout, sids=sids or self.running())

    def wait_for_mode(self, sid, modes, timeout=60):
        modes = (modes,) if isinstance(modes, str) else tuple(modes)
        deadline = time.monotonic() + timeout
        mode = None
        while time.monotonic() < deadline:
            mode = self.mode(sid)
            if mode in modes:
                return mode
            self.ens._check_alive([sid])
            time.sleep(0.1)
        raise AssertionError(f"server {sid} is {mode!r}, expected {modes} within {timeout}s\n"
                             f"{self.ens.log_tail(sid, 30)}")

    def hosts(self, sids=None):
        return ",".join(f"127.0.0.1:{self.members[sid].port}" for sid in (sids or self.running()))

    def client(self, sids=None, auth=True, **kwargs):
        """A started kazoo client on `sids` (default: every running server), authenticated as the
        super user when auth is true."""
        if auth:
            kwargs.setdefault("auth_data", [SUPER])
        return connect(self.hosts(sids), **kwargs)

    def read_config(self, sid=None, client=None):
        """sync + get /zookeeper/config on server sid (or through `client`)."""
        own = client is None
        if own:
            client = connect(self.hosts([sid] if sid else None))
        try:
            client.sync(CONFIG_NODE)
            data, stat = client.get(CONFIG_NODE)
        finally:
            if own:
                client.stop()
                client.close()
        config = Config.parse(data)
        config.stat = stat
        return config

    def four(self, sid, word):
        return four_letter_word(self.members[sid].port, word)

    def log_text(self, sid):
        parts = []
        for path in self.members[sid].log_files():
            with open(path, "rb") as f:
                parts.append(f.read().decode(errors="replace"))
        return "\n".join(parts)

    def log_tails(self, sids=None, lines=40):
        return "\n".join(self.ens.log_tail(sid, lines) for sid in (sids or self.members))
