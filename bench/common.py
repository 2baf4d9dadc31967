"""What the benchmark scripts share: running `zkrs bench` against a server or an ensemble, a
one-shot read probe, resident memory, and describing the machine and the zkrs binary measured."""
import atexit
import hashlib
import json
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
from servers import zkrs_binary  # noqa: E402


def run_bench(connect_string, label, *args, timeout=3600):
    """Runs `zkrs bench --server connect_string` with `args`; returns its JSON result. With
    several servers in `connect_string`, session i uses the (i mod n)-th."""
    cmd = [zkrs_binary(), "bench", "--server", connect_string, "--label", label, *[str(a) for a in args]]
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"{' '.join(cmd)} failed: {e.stderr.strip()}") from e
    return json.loads(out.stdout.strip().splitlines()[-1])


def zkrs_bench(server, *args, timeout=3600):
    """`zkrs bench` against one standalone server (tests/harness/servers.py's Server)."""
    return run_bench(server.connect_string, server.kind, *args, timeout=timeout)


def ensemble_bench(ensemble, *args, timeout=3600):
    """`zkrs bench` against every server of an ensemble (tests/harness/ensemble.py's Ensemble),
    the sessions spread evenly over them."""
    return run_bench(ensemble.connect_string(), ensemble.kind, *args, timeout=timeout)


def rss_mib(pid, field="VmRSS"):
    """Resident memory (VmRSS), or its peak so far (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _frame(sock):
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("connection closed")
            data += chunk
        return data
    n, = struct.unpack(">i", exactly(4))
    return exactly(n)


def read_probe(port, path, timeout=1.0):
    """True when the server on 127.0.0.1:`port` answers a getData of `path` in a new session
    (closed again right after); False on any refusal, error or timeout."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
            req = struct.pack(">iqiqi", 0, 0, 10_000, 0, 16) + b"\0" * 16 + b"\0"
            s.sendall(struct.pack(">i", len(req)) + req)
            _, negotiated, session_id = struct.unpack_from(">iiq", _frame(s))
            if negotiated <= 0 or session_id == 0:
                return False
            p = path.encode()
            req = struct.pack(">iii", 1, 4, len(p)) + p + b"\0"  # xid 1, getData, no watch
            s.sendall(struct.pack(">i", len(req)) + req)
            xid, _, err = struct.unpack_from(">iqi", _frame(s))
            s.sendall(struct.pack(">iii", 8, 2, -11))  # closeSession
            return xid == 1 and err == 0
    except (OSError, struct.error):
        return False


def machine():
    """e.g. `x86_64, 2 cores (nproc), 23.5 GiB RAM (MemTotal)`."""
    with open("/proc/meminfo") as f:
        mem_kib = int(next(line for line in f if line.startswith("MemTotal:")).split()[1])
    return f"{platform.machine()}, {os.cpu_count()} cores (nproc), {mem_kib / 2**20:.1f} GiB RAM (MemTotal)"


def pin_zkrs_binary():
    """Runs every trial with one copy of the zkrs binary, taken now: target/release/zkrs may be
    rebuilt by someone else during the run. Returns the path of the binary copied ($ZKRS_BIN
    is set to the copy, $ZKRS_BIN_SOURCE to the original, so a child benchmark reuses both)."""
    if os.environ.get("ZKRS_BIN_SOURCE") and os.path.exists(os.environ.get("ZKRS_BIN", "")):
        return os.environ["ZKRS_BIN_SOURCE"]
    source = zkrs_binary()
    fd, copy = tempfile.mkstemp(prefix="zkrs-bench-")
    os.close(fd)
    shutil.copy2(source, copy)
    os.environ["ZKRS_BIN"] = copy
    os.environ["ZKRS_BIN_SOURCE"] = source
    atexit.register(os.unlink, copy)
    return source


def provenance(source):
    """Which zkrs was measured: the repository's commit, whether crates/ or src/ had changes,
    the binary's path, build time and sha256."""
    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    with open(os.environ["ZKRS_BIN"], "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted_sources": bool(git("status", "--porcelain", "--", "crates", "src", "Cargo.lock")),
            "binary": source, "sha256": digest,
            "binary_built": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(os.path.getmtime(source))) + " UTC"}


def wait_for_quiet(max_wait):
    """Waits (at most `max_wait` s) for a 1-min load average under 1; returns the last one."""
    load = os.getloadavg()[0]
    deadline = time.monotonic() + max_wait
    while load >= 1.0 and time.monotonic() < deadline:
        print(f"# load average {load:.2f} >= 1.0: waiting for a quiet machine", file=sys.stderr, flush=True)
        time.sleep(15)
        load = os.getloadavg()[0]
    if load >= 1.0:
        print(f"# WARNING: the machine is busy (1-min load average {load:.2f}); figures may be noisy",
              file=sys.stderr, flush=True)
    return load


def comma_list(ap, value, allowed, flag):
    """The comma-separated values given to `flag`, each one of `allowed` (else an argparse error)."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items or any(v not in allowed for v in items):
        ap.error(f"{flag}: choose among {', '.join(allowed)}")
    return items
