"""What the benchmark scripts share: running `zkrs bench` against a server, and describing
the machine in the table header."""
import json
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "harness"))
from servers import zkrs_binary  # noqa: E402


def zkrs_bench(server, *args, timeout=3600):
    """Runs `zkrs bench` with `args` against `server`; returns its JSON result."""
    out = subprocess.run([zkrs_binary(), "bench", "--server", server.connect_string, "--label", server.kind,
                          *[str(a) for a in args]],
                         check=True, capture_output=True, text=True, timeout=timeout)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine():
    """e.g. `x86_64, 2 cores, 24 GiB RAM`."""
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem_gib:.0f} GiB RAM"
