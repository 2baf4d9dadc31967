"""`zkrs cli` against zkCli.sh 3.8: the same command scripts through both shells, each against
a fresh server of the same kind (Apache ZooKeeper 3.8 and zkrs), give the same output (up to
session ids, times and ports) and the same exit codes. Covers every command, one-shot mode,
and config/reconfig against reconfigEnabled 3-server ensembles.

Run: python3 -m pytest tests/cli (CLI_KINDS=zk,zkrs by default; ZKRS_BIN for the binary).
"""
import os
import re
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
sys.path.insert(0, os.path.join(REPO, "tests", "reconfig"))

from servers import Server, zkrs_binary  # noqa: E402
from ensemble import check_prerequisites  # noqa: E402
from cluster import Cluster, zkcli_env  # noqa: E402

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
KINDS = [k for k in os.environ.get("CLI_KINDS", "zk,zkrs").split(",") if k]
SCRIPTS = ["znodes", "acl", "watches", "session", "config_standalone"]
# the connection event: zkCli's event thread prints it wherever it happens to be
CONNECTED = ["", "WATCHER::", "", "WatchedEvent state:SyncConnected type:None path:null"]


def prerequisites(kind):
    if not os.access(ZKCLI, os.X_OK):
        pytest.fail("zkCli.sh (ZooKeeper 3.8) is missing: apt-get install -y zookeeper zookeeper-bin")
    check_prerequisites(kind)


def run_cli(which, server, script=None, args=(), timeout=90):
    """Runs zkCli.sh or `zkrs cli` against `server` (host:port); returns (exit code, output)."""
    if which == "zkcli":
        cmd, env = [ZKCLI, "-server", server, *args], zkcli_env()
    else:
        cmd, env = [zkrs_binary(), "cli", "-server", server, *args], dict(os.environ, TZ="UTC")
    proc = subprocess.run(cmd, input=script if script is not None else "", stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env)
    return proc.returncode, proc.stdout


def normalize(output, replacements=()):
    """zkCli's event thread prints "\nWATCHER::\n\n<event>" while the main thread prints
    command output, and the two interleave at random (even inside a block). So the events are
    compared as their own sequence, after the other lines; and the first connection event,
    printed wherever it lands, is dropped."""
    lines = [line for line in output.splitlines() if not line.startswith("SLF4J")]
    events = [line for line in lines if line.startswith("WatchedEvent ")]
    if "WatchedEvent state:SyncConnected type:None path:null" in events:
        events.remove("WatchedEvent state:SyncConnected type:None path:null")
    # each block brings two blank lines: the nearest ones before and after its "WATCHER::"
    drop = set()
    for i, line in enumerate(lines):
        if line != "WATCHER::":
            continue
        drop.add(i)
        for rng in (range(i - 1, -1, -1), range(i + 1, len(lines))):
            for j in rng:
                if lines[j] == "" and j not in drop:
                    drop.add(j)
                    break
    lines = [line for i, line in enumerate(lines) if i not in drop and not line.startswith("WatchedEvent ")]
    lines += ["-- events --"] + events
    out = []
    for line in lines:
        line = re.sub(r"^Connecting to .*", "Connecting to SERVER", line)
        line = re.sub(r"^([cm]time) = .*", r"\1 = TIME", line)
        line = re.sub(r"^ephemeralOwner = 0x[0-9a-f]{6,}$", "ephemeralOwner = SESSION", line)
        for old, new in replacements:
            line = line.replace(old, new)
        out.append(line)
    return out


def compare(name, zk_result, rs_result, replacements=()):
    (zk_code, zk_out), (rs_code, rs_out) = zk_result, rs_result
    want, got = normalize(zk_out, replacements), normalize(rs_out, replacements)
    if want != got:
        import difflib
        diff = "\n".join(difflib.unified_diff(want, got, "zkCli.sh", "zkrs cli", lineterm=""))
        pytest.fail(f"{name}: outputs differ\n{diff}")
    assert zk_code == rs_code, f"{name}: exit code zkCli.sh {zk_code}, zkrs cli {rs_code}"


def fresh_server(kind):
    return Server(kind, extra_cfg={"standaloneEnabled": "true"}).start()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("script", SCRIPTS)
def test_script(kind, script):
    prerequisites(kind)
    with open(os.path.join(HERE, "scripts", f"{script}.txt")) as f:
        template = f.read()
    results = {}
    for which in ("zkcli", "zkrs"):
        server = fresh_server(kind)
        try:
            text = template.replace("{server}", server.connect_string)
            results[which] = run_cli(which, server.connect_string, text)
        finally:
            server.cleanup()
    compare(f"{script} on {kind}", results["zkcli"], results["zkrs"])


ONE_SHOT = [
    ["ls", "/"],
    ["ls", "-s", "/zookeeper"],
    ["create", "/one", "x"],
    ["get", "/nope"],
    ["stat", "/"],
    ["ls"],
    ["ls", "-x", "/"],
    ["get"],
    ["whoami"],
    ["getAllChildrenNumber", "/"],
    ["config"],
    ["bogus"],
]


@pytest.mark.parametrize("kind", KINDS)
def test_one_shot(kind):
    """`CLI -server H:P CMD ARGS`: output and exit code (0 ok, 1 error, 127 unknown)."""
    prerequisites(kind)
    server = fresh_server(kind)
    try:
        for args in ONE_SHOT:
            zk = run_cli("zkcli", server.connect_string, args=args)
            if args[0] == "create":
                # the same starting point for the second shell
                run_cli("zkrs", server.connect_string, args=["delete", "/one"])
            rs = run_cli("zkrs", server.connect_string, args=args)
            if args[0] == "bogus":
                # same message and code; the command list differs (zkrs has no quota commands)
                assert zk[0] == rs[0] == 127, (zk, rs)
                assert rs[1].rstrip().endswith("Command not found: Command not found bogus"), rs[1]
                continue
            compare(" ".join(args) + f" on {kind}", zk, rs)
    finally:
        server.cleanup()


def ensemble_run(kind, which, template):
    cluster = Cluster(kind, 3).start()
    try:
        leader = cluster.leader()
        r = max(sid for sid in cluster.members if sid != leader)
        members = ",".join(cluster.spec(sid) for sid in sorted(cluster.members))
        tmp = tempfile.mkdtemp(prefix="cli-reconfig-")
        good = os.path.join(tmp, "members.cfg")
        with open(good, "w") as f:
            f.write("\n".join(cluster.spec(sid) for sid in sorted(cluster.members)) + "\n")
        bad = os.path.join(tmp, "bad.cfg")
        with open(bad, "w") as f:
            f.write("server.1=garbage\n")
        script = (template.replace("{r}", str(r)).replace("{spec_r}", cluster.spec(r))
                  .replace("{members}", members).replace("{file}", good).replace("{bad_file}", bad)
                  .replace("{missing}", os.path.join(tmp, "missing.cfg")))
        result = run_cli(which, f"127.0.0.1:{cluster.members[leader].port}", script)
        replacements = [(tmp, "TMP"), ("\n", "")]
        for sid, m in cluster.members.items():
            for port, name in ((m.port, f"C{sid}"), (m.quorum_port, f"Q{sid}"), (m.election_port, f"E{sid}")):
                replacements.append((f":{port}", f":{name}"))
        return result, replacements, (leader, r)
    finally:
        cluster.cleanup()


@pytest.mark.parametrize("kind", KINDS)
def test_config_and_reconfig(kind):
    prerequisites(kind)
    with open(os.path.join(HERE, "scripts", "reconfig.txt")) as f:
        template = f.read()
    zk, zk_repl, zk_roles = ensemble_run(kind, "zkcli", template)
    rs, rs_repl, rs_roles = ensemble_run(kind, "zkrs", template)
    assert zk_roles == rs_roles, f"leader and removed server differ between runs: {zk_roles} {rs_roles}"
    (zk_code, zk_out), (rs_code, rs_out) = zk, rs
    want, got = normalize(zk_out, zk_repl), normalize(rs_out, rs_repl)
    if want != got:
        import difflib
        diff = "\n".join(difflib.unified_diff(want, got, "zkCli.sh", "zkrs cli", lineterm=""))
        pytest.fail(f"reconfig on {kind}: outputs differ\n{diff}")
    assert zk_code == rs_code


@pytest.mark.parametrize("kind", KINDS)
def test_reconfig_wait_extension(kind):
    """zkrs-only `reconfig … -wait`: the same output as a plain reconfig, and it returns once
    a quorum write after the reconfig has committed (one more txn on the leader)."""
    prerequisites(kind)
    cluster = Cluster(kind, 3).start()
    try:
        leader = cluster.leader()
        r = max(sid for sid in cluster.members if sid != leader)
        port = cluster.members[leader].port
        # a first write, so that the leader's zxid counts from here
        assert run_cli("zkrs", f"127.0.0.1:{port}", args=["create", "/before"])[0] == 0
        before = int(re.search(r"Zxid: 0x([0-9a-f]+)", cluster.four(leader, "srvr")).group(1), 16)
        code, out = run_cli("zkrs", f"127.0.0.1:{port}", "addauth digest super:zkref\n"
                            f"reconfig -wait -remove {r}\n")
        assert code == 0, out
        lines = normalize(out)
        assert "Committed new configuration:" in lines, out
        assert not any(line.startswith(f"server.{r}=") for line in lines), out
        after = int(re.search(r"Zxid: 0x([0-9a-f]+)", cluster.four(leader, "srvr")).group(1), 16)
        # createSession, reconfig, the barrier (a multi of one check), closeSession
        assert after - before == 4, (hex(before), hex(after))
    finally:
        cluster.cleanup()
