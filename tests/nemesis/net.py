"""One network namespace per server, joined by a bridge in the root namespace.

    root namespace:  bridge znbr0 10.77.0.254/24  <- clients run here
    namespace znemN: eth0 10.77.0.N/24 (veth peer of zneN, enslaved to znbr0), lo up

Faults, all inside the servers' namespaces (so the clients' paths stay intact):
  * partitions: where the kernel has the u32 classifier and the gact action, an ingress qdisc on eth0 with u32 filters dropping packets *from* the peers
    cut off, installed on both sides, so that packets vanish silently in both directions
    (no RST, no ICMP: TCP only learns of it through its timeouts, as with a real partition);
    otherwise (as on this machine's kernel) blackhole routes to the cut-off peers in both
    namespaces: nothing gets through in either direction, though the sender's own stack sees
    its route fail (a connect() fails at once rather than timing out);
  * a bad link on eth0's egress: tc netem loss, delay, jitter where the kernel has sch_netem,
    else a tbf throttle (see degrade()).
"""
import atexit
import os
import shutil
import subprocess

PREFIX = "znem"          # namespaces znem1.., root-side veths zne1..
BRIDGE = "znbr0"
SUBNET = "10.77.0"
CLIENT_ADDR = f"{SUBNET}.254"


def sh(*args, check=True, ns=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def unavailable_reason():
    """None when namespaces can be used here, else why not."""
    if os.geteuid() != 0:
        return "not running as root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} (iproute2) is not installed"
    probe = f"{PREFIX}probe"
    sh("ip", "netns", "del", probe, check=False)
    r = sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()}"
    try:
        r = sh("ip", "link", "add", "zneprobe", "type", "veth", "peer", "name", "eth0", "netns", probe, check=False)
        if r.returncode != 0:
            return f"cannot create veth pairs: {r.stderr.strip()}"
        sh("ip", "link", "del", "zneprobe", check=False)
    finally:
        sh("ip", "netns", "del", probe, check=False)
    return None


def ns_name(sid):
    return f"{PREFIX}{sid}"


def addr(sid):
    return f"{SUBNET}.{sid}"


class Network:
    def __init__(self, sids):
        self.sids = list(sids)
        self.cut = set()          # frozenset({a, b}) pairs currently dropped
        self.netem = {}           # sid -> netem args
        self.partition_mode = None
        self.up = False

    # -- what the cluster needs to start a server ------------------------------------------------

    @staticmethod
    def addr(sid):
        return addr(sid)

    @staticmethod
    def command_prefix(sid):
        return ["ip", "netns", "exec", ns_name(sid)]

    @staticmethod
    def env():
        return {}

    # -- setup / teardown ----------------------------------------------------------------------

    @staticmethod
    def clean_stale():
        """Removes namespaces, veths and the bridge left by an earlier run that died."""
        out = sh("ip", "netns", "list", check=False).stdout
        for line in out.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(PREFIX):
                for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                    try:
                        os.kill(int(pid), 9)
                    except (OSError, ValueError):
                        pass
                sh("ip", "netns", "del", name, check=False)
        links = sh("ip", "-o", "link", "show", check=False).stdout
        for line in links.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            if name.startswith("zne") or name == BRIDGE:
                sh("ip", "link", "del", name, check=False)

    def setup(self):
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(f"network namespaces are unavailable here ({reason}): use proxynet.py")
        self.clean_stale()
        atexit.register(self.teardown)
        self.up = True
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{CLIENT_ADDR}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for sid in self.sids:
            self.add(sid)
        self.partition_mode = "tc-ingress" if self._ingress_works() else "blackhole-routes"
        return self

    def add(self, sid):
        ns = ns_name(sid)
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", f"zne{sid}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", f"zne{sid}", "master", BRIDGE)
        sh("ip", "link", "set", f"zne{sid}", "up")
        sh("ip", "addr", "add", f"{addr(sid)}/24", "dev", "eth0", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)

    def _ingress_works(self):
        ns = ns_name(self.sids[0])
        r = sh("tc", "qdisc", "add", "dev", "eth0", "ingress", ns=ns, check=False)
        if r.returncode != 0:
            return False
        r = sh("tc", "filter", "add", "dev", "eth0", "parent", "ffff:", "protocol", "ip", "prio", "1", "u32",
               "match", "ip", "src", "10.77.1.1/32", "action", "drop", ns=ns, check=False)
        sh("tc", "qdisc", "del", "dev", "eth0", "ingress", ns=ns, check=False)
        return r.returncode == 0

    def teardown(self):
        if not self.up:
            return
        self.up = False
        for sid in self.sids:
            ns = ns_name(sid)
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except (OSError, ValueError):
                    pass
            sh("ip", "link", "del", f"zne{sid}", check=False)
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", BRIDGE, check=False)

    # -- partitions ----------------------------------------------------------------------------

    def partition(self, groups):
        """Cuts every link between servers of different groups (a list of sets; servers in no
        group keep all their links, e.g. the bridge node)."""
        pairs = set()
        for i, g in enumerate(groups):
            for h in groups[i + 1:]:
                for a in g:
                    for b in h:
                        pairs.add(frozenset((a, b)))
        self.cut_pairs(pairs)

    def cut_pairs(self, pairs):
        self.heal_partitions()
        self.cut = set(pairs)
        peers = {sid: sorted(next(iter(p - {sid})) for p in self.cut if sid in p) for sid in self.sids}
        for sid, others in peers.items():
            if not others:
                continue
            ns = ns_name(sid)
            if self.partition_mode == "tc-ingress":
                sh("tc", "qdisc", "add", "dev", "eth0", "ingress", ns=ns)
                for o in others:
                    sh("tc", "filter", "add", "dev", "eth0", "parent", "ffff:", "protocol", "ip", "prio", "1",
                       "u32", "match", "ip", "src", f"{addr(o)}/32", "action", "drop", ns=ns)
            else:
                for o in others:
                    sh("ip", "route", "add", "blackhole", f"{addr(o)}/32", ns=ns)

    def heal_partitions(self):
        for sid in self.sids:
            ns = ns_name(sid)
            if self.partition_mode == "tc-ingress":
                sh("tc", "qdisc", "del", "dev", "eth0", "ingress", ns=ns, check=False)
            else:
                for o in self.sids:
                    sh("ip", "route", "del", "blackhole", f"{addr(o)}/32", ns=ns, check=False)
        self.cut = set()

    # -- netem ---------------------------------------------------------------------------------

    def degrade(self, sids):
        """A bad link on the egress of each server in `sids`: tc netem delay 50ms +-40ms and 10%
        loss where the kernel has sch_netem; otherwise (this machine's kernel has neither netem
        nor the gact drop action) a tbf throttle to 300 kbit/s with a 200 ms queue, which delays
        packets behind the queue and drops what overflows it. Returns what was applied."""
        applied = None
        for sid in sids:
            ns = ns_name(sid)
            r = sh("tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", "50ms", "40ms",
                   "loss", "10%", ns=ns, check=False)
            if r.returncode == 0:
                applied = "netem delay 50ms 40ms loss 10%"
            else:
                sh("tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", "300kbit", "burst", "4kb",
                   "latency", "200ms", ns=ns)
                applied = "tbf rate 300kbit burst 4kb latency 200ms (no sch_netem in this kernel)"
            self.netem[sid] = applied
        return applied

    def clear_netem(self):
        for sid in self.sids:
            sh("tc", "qdisc", "del", "dev", "eth0", "root", ns=ns_name(sid), check=False)
        self.netem = {}

    def heal(self):
        self.heal_partitions()
        self.clear_netem()
