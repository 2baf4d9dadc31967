"""Apache ZooKeeper's C client shell, cli_mt (package zookeeper-bin), against the server under
test (ZK_KIND=zk|zkrs).

cli_mt sends most commands asynchronously and prints the results (on stderr) from its
completion thread, in request order; at end of input it closes the session at once, dropping
pending replies.  So we drive it in lockstep: after each command we send
`delete /__cli_mark_N` (asynchronous too, prints one line "/__cli_mark_N: rc = -101") and
wait for that line before sending the next command.  That splits the output per command.
(`exists` would not do as a marker: it is synchronous and its reply skips the completion
queue.)  Watch events ("Watcher ...") are collected apart.

Result codes are the C client's: 0 ok, -101 no node, -102 no auth, -108 no children for ephemerals, -110 node exists, -111 not empty.
"""
import base64
import collections
import hashlib
import queue
import re
import subprocess
import threading

CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"
MARK = "/__cli_mark_"
# lines that depend on time or on the session, or are C library log lines
NOISE = re.compile(r"^(time = -?\d+ msec|Got a new session id: .*|.*:ZOO_(ERROR|WARN|INFO|DEBUG)@.*|bye)$")

Session = collections.namedtuple("Session", "outputs events stdout transcript")


def cli_mt(server, commands, timeout=20):
    proc = subprocess.Popen([CLI_MT, "-h", server.connect_string], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    lines = queue.Queue()  # stderr lines, then None at end of output

    def read_stderr():
        for line in proc.stderr:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read_stderr, daemon=True).start()
    outputs, events, transcript = [], [], []
    try:
        for i, command in enumerate(commands):
            proc.stdin.write(f"{command}\ndelete {MARK}{i}\n")
            proc.stdin.flush()
            current = []
            while True:
                line = lines.get(timeout=timeout)
                assert line is not None, "cli_mt exited early:\n" + "\n".join(transcript)
                transcript.append(line)
                if line == f"{MARK}{i}: rc = -101":
                    break
                m = re.match(r"Watcher (\w+) state = (\w+)(?: for path (\S+))?$", line)
                if m:
                    if m.group(1) != "SESSION_EVENT":
                        events.append((m.group(1), m.group(3)))
                elif line.strip() and not NOISE.match(line):
                    current.append(line)
            outputs.append(current)
        proc.stdin.write("quit\n")  # closes the session
        proc.stdin.close()
        stdout = proc.stdout.read()
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Session(outputs, events, stdout, "\n".join(transcript))


def parse_stat(lines):
    """dumpStat's lines: ctime, czxid, mtime, mzxid, version, aversion, ephemeralOwner."""
    text = "\n".join(lines)
    stat = dict(re.findall(r"\b(czxid|mzxid|version|aversion)=([0-9a-f]+)", text))
    owner = re.search(r"ephemeralOwner = ([0-9a-f]+)", text)
    assert len(stat) == 4 and owner, f"incomplete Stat in {lines}"
    stat["ephemeralOwner"] = owner.group(1)
    return stat


def test_create_modes(server, root):
    r = root
    s = cli_mt(server, [
        f"create {r}",                # 0
        f"create {r}",                # 1
        f"create +s {r}/s-",          # 2
        f"create +e {r}/e",           # 3
        f"create +es {r}/es-",        # 4
        f"create +c {r}/c",           # 5
        f"create +t=600000 {r}/t",    # 6
        f"create +st=600000 {r}/ts-",  # 7
        f"create {r}/e/kid",          # 8
        f"create {r}/none/kid",       # 9
        f"create +ce {r}/bad",        # 10 rejected by the client
        f"create2 {r}/c2",            # 11 create2 also returns the Stat
        f"ls {r}",                    # 12
    ])
    o = s.outputs
    assert o[0] == [f"Creating [{r}] node (mode: 0)", f"[{r}]: rc = 0", f"\tname = {r}"]
    assert o[1] == [f"Creating [{r}] node (mode: 0)", f"[{r}]: rc = -110"]
    assert o[2] == [f"Creating [{r}/s-] node (mode: 2)", f"[{r}/s-]: rc = 0", f"\tname = {r}/s-0000000000"]
    assert o[3] == [f"Creating [{r}/e] node (mode: 1)", f"[{r}/e]: rc = 0", f"\tname = {r}/e"]
    assert o[4] == [f"Creating [{r}/es-] node (mode: 3)", f"[{r}/es-]: rc = 0",
                    f"\tname = {r}/es-0000000002"]
    assert o[5] == [f"Creating [{r}/c] node (mode: 4)", f"[{r}/c]: rc = 0", f"\tname = {r}/c"]
    assert o[6] == [f"Creating [{r}/t] node (mode: 5)", f"[{r}/t]: rc = 0", f"\tname = {r}/t"]
    assert o[7] == [f"Creating [{r}/ts-] node (mode: 6)", f"[{r}/ts-]: rc = 0",
                    f"\tname = {r}/ts-0000000005"]
    assert o[8] == [f"Creating [{r}/e/kid] node (mode: 0)", f"[{r}/e/kid]: rc = -108"]
    assert o[9] == [f"Creating [{r}/none/kid] node (mode: 0)", f"[{r}/none/kid]: rc = -101"]
    assert o[10] == ["Invalid mode."]
    assert o[11][:3] == [f"Creating [{r}/c2] node (mode: 0)", f"[{r}/c2]: rc = 0", f"\tname = {r}/c2"]
    c2 = parse_stat(o[11][3:])
    assert c2["czxid"] == c2["mzxid"] and (c2["version"], c2["aversion"], c2["ephemeralOwner"]) == ("0", "0", "0")
    assert o[12][0] == f"{r}: rc = 0"
    assert sorted(o[12][1:]) == sorted("\t" + n for n in ["s-0000000000", "e", "es-0000000002", "c", "t",
                                                        "ts-0000000005", "c2"])

    # quit closed the session: its ephemerals are gone
    s = cli_mt(server, [f"ls {r}"])
    assert sorted(s.outputs[0][1:]) == sorted("\t" + n for n in ["s-0000000000", "c", "t", "ts-0000000005", "c2"])


def test_get_set_exists_delete(server, root):
    r = root
    s = cli_mt(server, [
        f"create {r}",            # 0 the C shell always writes the data "new"
        f"get {r}",               # 1
        f"set {r} hello",         # 2
        f"get {r}",               # 3
        f"exists {r}",            # 4 silent when the node exists
        f"exists {r}/nope",       # 5
        f"get {r}/nope",          # 6
        f"set {r}/nope x",        # 7
        f"create {r}/a",          # 8
        f"create {r}/b",          # 9
        f"ls2 {r}",               # 10
        f"delete {r}",            # 11 not empty
        f"delete {r}/a",          # 12
        f"delete {r}/a",          # 13
        f"sync {r}",              # 14
        f"ls {r}",                # 15
        f"ls {r}/nope",           # 16
        "get /zookeeper/config",  # 17
    ])
    o = s.outputs
    assert o[1][:3] == [f"{r}: rc = 0", " value_len = 3", "new"]
    created = parse_stat(o[1][3:])
    assert (created["version"], created["aversion"], created["ephemeralOwner"]) == ("0", "0", "0")
    assert o[2][0] == f"{r}: rc = 0 Stat:"
    after_set = parse_stat(o[2][1:])
    assert after_set["version"] == "1" and after_set["czxid"] == created["czxid"]
    assert int(after_set["mzxid"], 16) > int(created["mzxid"], 16)
    assert o[3][:3] == [f"{r}: rc = 0", " value_len = 5", "hello"]
    assert parse_stat(o[3][3:]) == after_set
    assert o[4] == []
    assert o[5] == [f"Error -101 for {r}/nope"]
    assert o[6] == [f"{r}/nope: rc = -101", "Stat:", "null"]
    assert o[7] == [f"{r}/nope: rc = -101 Stat:", "null"]
    assert o[10][0] == f"{r}: rc = 0"
    assert sorted(o[10][1:3]) == ["\ta", "\tb"]
    assert parse_stat(o[10][3:])["version"] == "1"
    assert o[11] == [f"{r}: rc = -111"]
    assert o[12] == [f"{r}/a: rc = 0"]
    assert o[13] == [f"{r}/a: rc = -101"]
    assert o[14] == [f"[{r}]: rc = 0", f"\tname = {r}"]
    assert o[15] == [f"{r}: rc = 0", "\tb"]
    assert o[16] == [f"{r}/nope: rc = -101"]
    assert o[17][0] == "/zookeeper/config: rc = 0"


def test_watches(server, root):
    r = root
    s = cli_mt(server, [
        f"create {r}",
        f"wexists {r}/w",     # 1 watch a missing node (prints the -101 of exists)
        f"create {r}/w",
        f"get {r}/w",         # 3 get, ls and ls2 of this shell always leave a watch
        f"set {r}/w x",
        f"set {r}/w y",       # the data watch was used up
        f"ls {r}",
        f"create {r}/k",
        f"create {r}/k2",     # the child watch was used up
        f"exists {r}/k",      # exists also watches (silent: the node exists)
        f"delete {r}/k",
    ])
    assert s.outputs[1] == [f"Error -101 for {r}/w"]
    assert s.events == [
        ("CREATED_EVENT", f"{r}/w"),
        ("CHANGED_EVENT", f"{r}/w"),
        ("CHILD_EVENT", r),
        ("DELETED_EVENT", f"{r}/k"),
    ], s.transcript


def test_auth_and_myid(server, root):
    r = root
    # the shell creates nodes with an open ACL; a digest-protected node comes from zkCli
    hashed = base64.b64encode(hashlib.sha1(b"u:p").digest()).decode()
    subprocess.run(["/usr/share/zookeeper/bin/zkCli.sh", "-server", server.connect_string,
                    "create", r, "secret", f"digest:u:{hashed}:cdrwa"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=True)
    s = cli_mt(server, [
        f"get {r}",                 # 0
        f"set {r} x",               # 1
        "addauth digest u:p",       # 2
        f"get {r}",                 # 3
        "myid",                     # 4 printed on stdout
    ])
    o = s.outputs
    assert o[0] == [f"{r}: rc = -102", "Stat:", "null"]
    assert o[1] == [f"{r}: rc = -102 Stat:", "null"]
    assert o[3][:3] == [f"{r}: rc = 0", " value_len = 6", "secret"]
    assert re.search(r"^session Id = [0-9a-f]+$", s.stdout, re.M), s.stdout
