"""Run kazoo's own test suite against one standalone server and check it against Apache
ZooKeeper's results.

    tests/interop/run_kazoo.py zk|zkrs [--update-expected] [extra pytest args]

Writes results/kazoo-KIND.xml (junit), results/kazoo-KIND.log (pytest output) and
results/kazoo-KIND.txt, whose first line is "kazoo KIND: N passed, F failed, S skipped".

kazoo-expected.txt holds the status of every kazoo test on Apache ZooKeeper (produce it with
`run_kazoo.py zk --update-expected`).  The rule checked: every test that passes on Apache
ZooKeeper passes here too.  The exit status is 1 when some do not (they are listed), 2 when
the run produced no results.
"""
import os
import signal
import subprocess
import sys
import time

import common
from junit_summary import summary_line, test_results

EXPECTED = os.path.join(common.HERE, "kazoo-expected.txt")
PER_TEST_TIMEOUT = 60   # seconds; the slowest kazoo tests take ~15 s
WHOLE_RUN_TIMEOUT = 900  # a hung run must still end (normal: ~1.5 min)


def timeout_args():
    try:
        import pytest_timeout  # noqa: F401
        return ["--timeout", str(PER_TEST_TIMEOUT)]
    except ImportError:
        # without pytest-timeout: dump the stacks of a hung test; WHOLE_RUN_TIMEOUT ends the run
        return ["-o", f"faulthandler_timeout={PER_TEST_TIMEOUT}"]


def run_pytest(kind, xml, log, extra):
    env = dict(os.environ, ZK_KIND=kind,
               PYTHONPATH=os.pathsep.join(filter(None, [common.HERE, os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "kazoo.tests", "-p", "kazoo_plugin",
           "-p", "no:cacheprovider", "-q", "-rfEs", f"--junitxml={xml}"] + timeout_args() + extra
    with open(log, "w") as out:
        # own process group, so that a timeout can stop pytest and the server it started
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=common.RESULTS, start_new_session=True)
        try:
            return proc.wait(timeout=WHOLE_RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            time.sleep(5)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            out.write(f"\nrun_kazoo: killed after {WHOLE_RUN_TIMEOUT}s\n")
            return None


def read_expected():
    expected = {}
    with open(EXPECTED) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                status, test_id = line.split(None, 1)
                expected[test_id.strip()] = status
    return expected


def write_expected(results):
    with open(EXPECTED, "w") as f:
        f.write("# kazoo 2.11.0 test results against one standalone Apache ZooKeeper 3.8 server\n"
                "# (tests/interop/run_kazoo.py zk --update-expected). Every test marked passed\n"
                "# here must pass against zkrs too.\n")
        for test_id in sorted(results):
            f.write(f"{results[test_id]:8} {test_id}\n")


def main():
    args = sys.argv[1:]
    if not args or args[0] not in ("zk", "zkrs"):
        sys.exit(__doc__)
    kind, extra = args[0], args[1:]
    update = "--update-expected" in extra
    extra = [a for a in extra if a != "--update-expected"]

    os.makedirs(common.RESULTS, exist_ok=True)
    xml = os.path.join(common.RESULTS, f"kazoo-{kind}.xml")
    log = os.path.join(common.RESULTS, f"kazoo-{kind}.log")
    summary = os.path.join(common.RESULTS, f"kazoo-{kind}.txt")
    if os.path.exists(xml):
        os.remove(xml)

    started = time.time()
    rc = run_pytest(kind, xml, log, extra)
    elapsed = time.time() - started
    if not os.path.exists(xml):
        line = f"kazoo {kind}: no results (pytest exit {rc}); see {log}"
        with open(summary, "w") as f:
            f.write(line + "\n")
        print(line)
        return 2

    results = test_results(xml)
    lines = [summary_line(f"kazoo {kind}", results), f"run time {elapsed:.0f}s, log {log}"]
    if update:
        write_expected(results)
        lines.append(f"wrote {EXPECTED}")
    expected = read_expected()
    regressions = sorted(t for t, s in expected.items() if s == "passed" and results.get(t) != "passed")
    if regressions:
        lines.append(f"{len(regressions)} test(s) pass on Apache ZooKeeper but not on {kind}:")
        lines += [f"  {results.get(t, 'missing'):8} {t}" for t in regressions]
    gained = sorted(t for t, s in results.items() if s == "passed" and expected.get(t) != "passed")
    if gained:
        lines.append(f"{len(gained)} test(s) pass on {kind} but not on Apache ZooKeeper:")
        lines += [f"  {t}" for t in gained]
    with open(summary, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
