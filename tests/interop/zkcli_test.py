"""Apache ZooKeeper's Java shell, zkCli.sh, against the server under test (ZK_KIND=zk|zkrs).

Commands are piped on stdin (JLine is disabled, so the output is plain text).  To tell the
output of one command from the next without relying on timing, a marker command
`stat /__zkcli_mark_N` follows every command: it prints "Node does not exist: /__zkcli_mark_N"
once command N is done (zkCli runs commands one at a time).  Watch notifications are printed
by another thread at any moment, so they are collected apart from the per-command output.

The assertions hold for Apache ZooKeeper 3.8 and leave out timestamps, zxid values and
session ids.
"""
import base64
import collections
import hashlib
import re
import subprocess
import time

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
MARK = "/__zkcli_mark_"
BANNER = ("Connecting to ", "Welcome to ZooKeeper!", "JLine support is disabled")
STAT_FIELDS = ["cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion", "dataVersion",
               "aclVersion", "ephemeralOwner", "dataLength", "numChildren"]

Session = collections.namedtuple("Session", "outputs events transcript")


def zkcli(server, commands, timeout=60):
    """Run `commands` in one zkCli session; return each command's output lines and the
    watch events (type, path) seen, connection state events left out."""
    script = []
    for i, command in enumerate(commands):
        script += [command, f"stat {MARK}{i}"]
    script.append("quit")  # close the session (at EOF zkCli exits and leaves it to expire)
    proc = subprocess.run([ZKCLI, "-server", server.connect_string], input="\n".join(script) + "\n",
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    outputs, events, current = [], [], []
    for line in proc.stdout.splitlines():
        if not line.strip() or line == "WATCHER::" or line.startswith(("SLF4J:",) + BANNER):
            continue
        m = re.match(r"WatchedEvent state:(\w+) type:(\w+) path:(\S+)$", line)
        if m:
            if m.group(2) != "None":
                events.append((m.group(2), m.group(3)))
            continue
        if line == f"Node does not exist: {MARK}{len(outputs)}":
            outputs.append(current)
            current = []
            continue
        current.append(line)
    assert len(outputs) == len(commands), "zkCli stopped early:\n" + proc.stdout
    return Session(outputs, events, proc.stdout)


def parse_stat(lines):
    """The `name = value` lines zkCli prints for a Stat, as an ordered dict."""
    stat = collections.OrderedDict()
    for line in lines:
        m = re.match(r"(\w+) = (.*)$", line)
        if m and m.group(1) in STAT_FIELDS:
            stat[m.group(1)] = m.group(2)
    assert list(stat) == STAT_FIELDS, f"incomplete Stat in {lines}"
    return stat


def digest(user, password):
    """The id of a digest ACL, user:base64(sha1(user:password))."""
    hashed = base64.b64encode(hashlib.sha1(f"{user}:{password}".encode()).digest()).decode()
    return f"{user}:{hashed}"


def whoami(lines):
    """whoami's identities, sorted: the server keeps them in no particular order."""
    assert lines[0] == "Auth scheme: User"
    return sorted(lines[1:])


def test_create_modes(server, root):
    r = root
    s = zkcli(server, [
        f"create {r}",                       # 0
        f"create {r}",                       # 1
        f"create {r}/data hello",            # 2
        f"get {r}/data",                     # 3
        f"create -s {r}/seq- a",             # 4  sequence = parent's cversion (1)
        f"create -s {r}/seq- b",             # 5
        f"create -e {r}/eph",                # 6
        f"create {r}/eph/kid",               # 7
        f"create -s -e {r}/eseq-",           # 8
        f"create -c {r}/cont",               # 9
        f"create -t 600000 {r}/ttl",         # 10
        f"create -s -t 600000 {r}/tseq-",    # 11
        f"create -c -s {r}/bad",             # 12 rejected by the client
        f"create -e -t 1000 {r}/bad",        # 13 rejected by the client
        f"create -t 0 {r}/bad",              # 14 rejected by the client
        f"create {r}/missing/kid",           # 15
        f"stat {r}/eph",                     # 16
        f"stat {r}/cont",                    # 17
        f"stat {r}/ttl",                     # 18
        f"ls {r}",                           # 19
        f"getEphemerals {r}",                # 20
        f"stat {r}",                         # 21
    ])
    o = s.outputs
    assert o[0] == [f"Created {r}"]
    assert o[1] == [f"Node already exists: {r}"]
    assert o[2] == [f"Created {r}/data"]
    assert o[3] == ["hello"]
    assert o[4] == [f"Created {r}/seq-0000000001"]
    assert o[5] == [f"Created {r}/seq-0000000002"]
    assert o[6] == [f"Created {r}/eph"]
    assert o[7] == [f"Ephemerals cannot have children: {r}/eph/kid"]
    assert o[8] == [f"Created {r}/eseq-0000000004"]
    assert o[9] == [f"Created {r}/cont"]
    assert o[10] == [f"Created {r}/ttl"]
    assert o[11] == [f"Created {r}/tseq-0000000007"]
    assert o[12] == ["-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential."]
    assert o[13] == ["TTLs cannot be used with Ephemeral znodes"]
    assert o[14] == ["ttl must be positive and cannot be larger than: 1099511627775"]
    assert o[15] == [f"Node does not exist: {r}/missing/kid"]
    eph = parse_stat(o[16])
    assert eph["ephemeralOwner"] != "0x0" and eph["dataLength"] == "0"
    # containers and TTL nodes report ephemeralOwner 0 to clients
    assert parse_stat(o[17])["ephemeralOwner"] == "0x0"
    assert parse_stat(o[18])["ephemeralOwner"] == "0x0"
    assert o[19] == ["[cont, data, eph, eseq-0000000004, seq-0000000001, seq-0000000002, "
                     "tseq-0000000007, ttl]"]
    assert sorted(o[20][0].strip("[]").split(", ")) == [f"{r}/eph", f"{r}/eseq-0000000004"]
    parent = parse_stat(o[21])
    assert parent["numChildren"] == "8" and parent["cversion"] == "8"
    assert parent["pZxid"] != parent["cZxid"]


def test_get_set_versions(server, root):
    r = root
    s = zkcli(server, [
        f"create {r} v0",          # 0
        f"get -s {r}",             # 1
        f"set -v 0 {r} v1",        # 2 right version: silent
        f"set -v 0 {r} v2",        # 3 stale version
        f"set -s {r} v22",         # 4 any version, print the Stat
        f"get -s {r}",             # 5
        f"set {r}/nope x",         # 6
        f"get {r}/nope",           # 7
        f"get -s /zookeeper",      # 8
        f"ls /zookeeper",          # 9
    ])
    o = s.outputs
    assert o[0] == [f"Created {r}"]
    assert o[1][0] == "v0"
    before = parse_stat(o[1][1:])
    assert (before["dataVersion"], before["dataLength"], before["cversion"], before["aclVersion"],
            before["numChildren"], before["ephemeralOwner"]) == ("0", "2", "0", "0", "0", "0x0")
    assert before["cZxid"] == before["mZxid"] == before["pZxid"]
    assert o[2] == []
    assert o[3] == [f"version No is not valid : {r}"]
    after_set = parse_stat(o[4])
    assert after_set["dataVersion"] == "2" and after_set["dataLength"] == "3"
    assert o[5][0] == "v22"
    after = parse_stat(o[5][1:])
    assert after == after_set
    assert after["cZxid"] == before["cZxid"]
    assert int(after["mZxid"], 16) > int(before["mZxid"], 16)
    assert after["pZxid"] == before["pZxid"]
    assert o[6] == [f"Node does not exist: {r}/nope"]
    assert o[7] == [f"Node does not exist: {r}/nope"]
    zk = parse_stat(o[8])
    # /zookeeper is built in: zxid 0, two children (config, quota); Apache ZooKeeper
    # reports its cversion as -2
    assert (zk["cZxid"], zk["mZxid"], zk["numChildren"], zk["cversion"]) == ("0x0", "0x0", "2", "-2")
    assert o[9] == ["[config, quota]"]


def test_ls_stat_delete(server, root):
    r = root
    s = zkcli(server, [
        f"create {r}",             # 0
        f"create {r}/b",           # 1
        f"create {r}/a x",         # 2
        f"create {r}/a/y",         # 3
        f"create {r}/a/x",         # 4
        f"create {r}/b/z",         # 5
        f"ls {r}",                 # 6
        f"ls -R {r}",              # 7
        f"ls -s {r}",              # 8
        f"stat {r}",               # 9
        f"delete {r}/a",           # 10 not empty
        f"delete -v 5 {r}/a/x",    # 11 bad version
        f"delete -v 0 {r}/a/x",    # 12
        f"stat {r}/a/x",           # 13
        f"delete {r}/nope",        # 14
        f"ls {r}/nope",            # 15
        f"deleteall {r}",          # 16
        f"stat {r}",               # 17
        f"delete {r}",             # 18
        f"ls {r}/a",               # 19
    ])
    o = s.outputs
    assert o[6] == ["[a, b]"]
    # ls -R walks the tree from the top; the order within a level is the server's
    assert o[7][0] == r
    assert sorted(o[7]) == sorted([r, f"{r}/a", f"{r}/b", f"{r}/a/x", f"{r}/a/y", f"{r}/b/z"])
    assert o[8][0] == "[a, b]"
    ls_stat = parse_stat(o[8][1:])
    assert ls_stat["numChildren"] == "2" and ls_stat["cversion"] == "2"
    assert parse_stat(o[9]) == ls_stat
    assert o[10] == [f"Node not empty: {r}/a"]
    assert o[11] == [f"version No is not valid : {r}/a/x"]
    assert o[12] == []
    assert o[13] == [f"Node does not exist: {r}/a/x"]
    assert o[14] == [f"Node does not exist: {r}/nope"]
    assert o[15] == [f"Node does not exist: {r}/nope"]
    assert o[16] == []
    assert o[17] == [f"Node does not exist: {r}"]
    assert o[18] == [f"Node does not exist: {r}"]
    assert o[19] == [f"Node does not exist: {r}/a"]


def test_acl_and_auth(server, root):
    r = root
    u = digest("u", "p")
    s = zkcli(server, [
        f"create {r}",                                   # 0
        f"create {r}/secret data digest:{u}:cdrwa",      # 1
        f"getAcl {r}/secret",                            # 2 getAcl needs READ (3.8)
        f"get {r}/secret",                               # 3 no auth yet
        "whoami",                                        # 4
        "addauth digest u:p",                            # 5
        "whoami",                                        # 6
        f"get {r}/secret",                               # 7
        f"create {r}/open x",                            # 8
        f"getAcl {r}/open",                              # 9
        f"setAcl -v 5 {r}/open world:anyone:r",          # 10 stale aclVersion
        f"setAcl {r}/open world:anyone:r",               # 11
        f"getAcl -s {r}/open",                           # 12
        f"create {r}/open/kid",                          # 13 no CREATE
        f"set {r}/open y",                               # 14 no WRITE
        f"get {r}/open",                                 # 15 READ is there
        f"create {r}/mine x auth::cdrwa",                # 16
        f"getAcl {r}/mine",                              # 17
        f"create {r}/ip x ip:127.0.0.1:rw",              # 18
        f"getAcl {r}/ip",                                # 19
        f"get {r}/ip",                                   # 20
        f"getAcl {r}/nope",                              # 21
        f"getAcl {r}/secret",                            # 22
    ])
    o = s.outputs
    assert o[1] == [f"Created {r}/secret"]
    assert o[2] == [f"Insufficient permission : {r}/secret"]
    assert o[3] == [f"Insufficient permission : {r}/secret"]
    assert whoami(o[4]) == ["ip: 127.0.0.1"]
    assert o[5] == []
    assert whoami(o[6]) == ["digest: u", "ip: 127.0.0.1"]
    assert o[7] == ["data"]
    assert o[9] == ["'world,'anyone", ": cdrwa"]
    assert o[10] == [f"version No is not valid : {r}/open"]
    assert o[11] == []
    assert o[12][:2] == ["'world,'anyone", ": r"]
    acl_stat = parse_stat(o[12][2:])
    assert acl_stat["aclVersion"] == "1" and acl_stat["dataVersion"] == "0"
    assert o[13] == [f"Insufficient permission : {r}/open/kid"]
    assert o[14] == [f"Insufficient permission : {r}/open"]
    assert o[15] == ["x"]
    assert o[16] == [f"Created {r}/mine"]
    assert o[17] == [f"'digest,'{u}", ": cdrwa"]
    assert o[19] == ["'ip,'127.0.0.1", ": rw"]
    assert o[20] == ["x"]
    assert o[21] == [f"Node does not exist: {r}/nope"]
    assert o[22] == [f"'digest,'{u}", ": cdrwa"]

    # a new session has no digest identity; the super user (super:test) may do anything
    s = zkcli(server, [
        f"get {r}/secret",
        f"get {r}/mine",
        "addauth digest super:test",
        f"get {r}/secret",
        f"set {r}/open z",
        f"get {r}/open",
        "addauth digest u:wrong",
        "whoami",
    ])
    o = s.outputs
    assert o[0] == [f"Insufficient permission : {r}/secret"]
    assert o[1] == [f"Insufficient permission : {r}/mine"]
    assert o[2] == []
    assert o[3] == ["data"]
    assert o[4] == []
    assert o[5] == ["z"]
    assert o[6] == []  # a digest with a wrong password is simply another identity
    # the super user also gets the identity super:"" (printed as "super: ")
    assert whoami(o[7]) == ["digest: super", "digest: u", "ip: 127.0.0.1", "super: "]


def test_watches(server, root):
    r = root
    s = zkcli(server, [
        f"create {r}",
        f"create {r}/rec",
        f"create {r}/per",
        f"create {r}/once",
        f"addWatch -m PERSISTENT_RECURSIVE {r}/rec",
        f"addWatch -m PERSISTENT {r}/per",
        f"addWatch {r}/dflt",                       # no -m: PERSISTENT (whatever the usage says)
        f"addWatch -m BOGUS {r}",                   # 7: usage text
        f"create {r}/rec/a",
        f"create {r}/rec/a/b",
        f"set {r}/rec/a/b x",
        f"delete {r}/rec/a/b",
        f"create {r}/per/x",
        f"create {r}/per/x/y",                      # grandchild: not seen by PERSISTENT
        f"set {r}/per d",
        f"set {r}/per/x d",                         # child data: not seen by PERSISTENT
        f"create {r}/dflt",
        f"create {r}/dflt/z",
        f"get -w {r}/once",                         # 18: one-shot data watch
        f"set {r}/once 1",
        f"set {r}/once 2",
        f"ls -w {r}/per",                           # 21: one-shot child watch
        f"delete {r}/per/x/y",
        f"delete {r}/per/x",
        f"stat -w {r}/gone",                        # 24: exists watch on a missing node
        f"create {r}/gone",
        f"sync {r}",                                # 26
    ])
    o = s.outputs
    assert o[4] == [] and o[5] == [] and o[6] == []
    assert o[7] and o[7][0].startswith("addWatch [-m mode] path")
    assert o[18] == ["null"]
    assert o[21] == ["[x]"]
    assert o[24] == [f"Node does not exist: {r}/gone"]
    assert o[26] == ["Sync is OK"]
    expected = collections.Counter([
        ("NodeCreated", f"{r}/rec/a"),
        ("NodeCreated", f"{r}/rec/a/b"),
        ("NodeDataChanged", f"{r}/rec/a/b"),
        ("NodeDeleted", f"{r}/rec/a/b"),
        ("NodeChildrenChanged", f"{r}/per"),  # create per/x
        ("NodeDataChanged", f"{r}/per"),
        # delete per/x: the persistent watch and the one-shot child watch of ls -w fire
        # together, one notification (both watches belong to zkCli's default watcher)
        ("NodeChildrenChanged", f"{r}/per"),
        ("NodeCreated", f"{r}/dflt"),
        ("NodeChildrenChanged", f"{r}/dflt"),
        ("NodeDataChanged", f"{r}/once"),     # only once: get -w is one-shot
        ("NodeCreated", f"{r}/gone"),
    ])
    assert collections.Counter(s.events) == expected, s.transcript


def test_ephemerals_counts_sync(server, root):
    r = root
    s = zkcli(server, [
        f"create {r}",
        f"create {r}/a",
        f"create {r}/a/b",
        f"create {r}/c",
        f"create -e {r}/e1",
        f"create -e {r}/c/e2",
        f"getAllChildrenNumber {r}",     # 6
        f"getAllChildrenNumber {r}/a",   # 7
        f"getAllChildrenNumber {r}/a/b",  # 8
        f"getEphemerals {r}",            # 9
        f"getEphemerals {r}/c",          # 10
        f"getEphemerals {r}/a",          # 11
        f"sync {r}",                     # 12
        f"sync {r}/a",                   # 13
        f"getAllChildrenNumber {r}/nope",  # 14
    ])
    o = s.outputs
    assert o[6] == ["5"]
    assert o[7] == ["1"]
    assert o[8] == ["0"]
    assert sorted(o[9][0].strip("[]").split(", ")) == [f"{r}/c/e2", f"{r}/e1"]
    assert o[10] == [f"[{r}/c/e2]"]
    assert o[11] == ["[]"]
    assert o[12] == ["Sync is OK"]
    assert o[13] == ["Sync is OK"]
    assert o[14] == [f"Node does not exist: {r}/nope"]

    # the ephemerals went away with the session that owned them
    s = zkcli(server, [f"ls {r}", f"ls {r}/c", f"getEphemerals {r}", f"getAllChildrenNumber {r}"])
    assert s.outputs == [["[a, c]"], ["[]"], ["[]"], ["3"]]


def test_container_and_ttl_reaping(server, root):
    # the servers run with a container/TTL check interval of 1 s
    r = root
    s = zkcli(server, [
        f"create {r}",
        f"create -c {r}/cont",
        f"create {r}/cont/kid",
        f"delete {r}/cont/kid",          # now an empty container that had children: reaped
        f"create -c {r}/fresh",          # never had a child: kept
        f"create -t 500 {r}/ttl",        # expires 0.5 s after its last change: reaped
        f"create -t 500 {r}/ttlparent",  # has a child: kept
        f"create {r}/ttlparent/kid",
        f"create -t 600000 {r}/ttllong",  # not expired yet: kept
    ])
    assert s.outputs[-1] == [f"Created {r}/ttllong"]
    deadline = time.time() + 20
    while True:
        listing = zkcli(server, [f"ls {r}"]).outputs[0]
        if listing == ["[fresh, ttllong, ttlparent]"] or time.time() > deadline:
            break
        time.sleep(0.5)
    assert listing == ["[fresh, ttllong, ttlparent]"]


def test_one_shot_command_line(server):
    # zkCli.sh -server H:P CMD ARGS runs one command and exits
    out = subprocess.run([ZKCLI, "-server", server.connect_string, "ls", "/zookeeper"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=60).stdout
    assert "[config, quota]" in out.splitlines()
    out = subprocess.run([ZKCLI, "-server", server.connect_string, "get", "/no/such/node"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=60).stdout
    assert "Node does not exist: /no/such/node" in out.splitlines()
