#!/usr/bin/env python3
"""Run kazoo's own test suite against one server and check it against Apache ZooKeeper's
results.

    tests/interop/run_kazoo.py zk|zkrs [--update-expected] [extra pytest args]

Two passes, each with a server of its own (see kazoo_plugin.py):
  1. the whole suite but TestReconfig against one standalone server;
  2. TestReconfig against a quorum of one participant (standaloneEnabled=false): a standalone
     server answers reconfig with "unimplemented".
Writes results/kazoo-KIND{,-reconfig}.{xml,log} and results/kazoo-KIND.txt, whose first
line is "kazoo KIND: N passed, F failed, S skipped" (both passes merged).

kazoo-expected.txt holds the status of every kazoo test on Apache ZooKeeper (produce it with
`run_kazoo.py zk --update-expected`).  The rule checked: every test that passes on Apache
ZooKeeper passes here too.  Exit status 1 when some do not (they are listed), 2 when a pass
produced no results.
"""
import os
import signal
import subprocess
import sys
import time

import common
from junit_summary import summary_line, test_results

EXPECTED = os.path.join(common.HERE, "kazoo-expected.txt")
PER_TEST_TIMEOUT = 30    # seconds; the slowest kazoo tests take ~10 s on Apache ZooKeeper
WHOLE_RUN_TIMEOUT = 600  # a hung pass must still end (normal: ~1.5 min)

# (name suffix, KAZOO_SERVER_MODE, what pytest runs)
# Both select with -k over the whole package so that test ids are the same in both; a test
# whose pass produced no results then shows as "missing".
PASSES = [
    ("", "standalone", ["--pyargs", "kazoo.tests", "-k", "not TestReconfig"]),
]
# TestReconfig needs a quorum server (one participant, standaloneEnabled=false): zkrs gets
# replicated mode and reconfig in later milestones; until then this pass is opt-in.
QUORUM_PASS = ("-reconfig", "single_quorum", ["--pyargs", "kazoo.tests", "-k", "TestReconfig"])
if os.environ.get("KAZOO_QUORUM_PASS") == "1":
    PASSES.append(QUORUM_PASS)
# --ensemble: the whole suite but TestReconfig against a 3-server ensemble, checked against
# kazoo-expected-ensemble.txt (Apache ZooKeeper's results with the same 3-server setup)
ENSEMBLE_PASSES = [("-ensemble", "ensemble", ["--pyargs", "kazoo.tests", "-k", "not TestReconfig"])]


def timeout_args():
    # faulthandler dumps every thread's stack into the log when a test hangs: pytest-timeout's
    # signal cannot always interrupt a test (e.g. one blocked inside eventlet's hub)
    args = ["-o", f"faulthandler_timeout={PER_TEST_TIMEOUT + 15}"]
    try:
        import pytest_timeout  # noqa: F401
        args += ["--timeout", str(PER_TEST_TIMEOUT)]
    except ImportError:
        pass  # WHOLE_RUN_TIMEOUT still ends a hung run
    return args


def run_pytest(kind, mode, selection, xml, log, extra):
    env = dict(os.environ, ZK_KIND=kind, KAZOO_SERVER_MODE=mode,
               PYTHONPATH=os.pathsep.join(filter(None, [common.HERE, os.environ.get("PYTHONPATH")])))
    cmd = ([sys.executable, "-m", "pytest"] + selection +
           ["-p", "kazoo_plugin", "-p", "no:cacheprovider", "-v", "-rfEs", f"--junitxml={xml}"] +
           timeout_args() + extra)
    with open(log, "w") as out:
        # own process group, so that a timeout can stop pytest and the server it started
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=common.RESULTS, start_new_session=True)
        try:
            return proc.wait(timeout=WHOLE_RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            # Ctrl-C first: pytest then stops and still writes the junit file for the tests
            # that ran (the others count as not passed); kill whatever remains after 30 s
            out.write(f"\nrun_kazoo: interrupted after {WHOLE_RUN_TIMEOUT}s\n")
            out.flush()
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return None


def read_expected():
    expected = {}
    if not os.path.exists(EXPECTED):
        return expected
    with open(EXPECTED) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                status, test_id = line.split(None, 1)
                expected[test_id.strip()] = status
    return expected


def write_expected(results):
    with open(EXPECTED, "w") as f:
        setup = ("a 3-server ensemble" if EXPECTED.endswith("-ensemble.txt") else
                 "one standalone server;\n# TestReconfig against a single-participant quorum")
        f.write(f"# kazoo 2.11.0 test results against Apache ZooKeeper 3.8 ({setup}), written by\n"
                "# tests/interop/run_kazoo.py zk [--ensemble] --update-expected. Every test marked\n"
                "# passed here must pass against zkrs too.\n")
        for test_id in sorted(results):
            f.write(f"{results[test_id]:8} {test_id}\n")


def main():
    args = sys.argv[1:]
    if not args or args[0] not in ("zk", "zkrs"):
        sys.exit(__doc__)
    kind, extra = args[0], args[1:]
    update = "--update-expected" in extra
    global PASSES, EXPECTED, QUORUM_PASS
    label = kind
    if "--ensemble" in extra:
        PASSES = ENSEMBLE_PASSES
        EXPECTED = os.path.join(common.HERE, "kazoo-expected-ensemble.txt")
        label = f"{kind}-ensemble"
    extra = [a for a in extra if a not in ("--update-expected", "--ensemble")]

    os.makedirs(common.RESULTS, exist_ok=True)
    summary = os.path.join(common.RESULTS, f"kazoo-{label}.txt")
    started = time.time()
    results, problems = {}, []
    for suffix, mode, selection in PASSES:
        xml = os.path.join(common.RESULTS, f"kazoo-{kind}{suffix}.xml")
        log = os.path.join(common.RESULTS, f"kazoo-{kind}{suffix}.log")
        if os.path.exists(xml):
            os.remove(xml)
        rc = run_pytest(kind, mode, selection, xml, log, extra)
        if os.path.exists(xml):
            results.update(test_results(xml))
        else:
            problems.append(f"pass {mode}: no results (pytest exit {rc}); see {log}")
    elapsed = time.time() - started

    notes = []
    if update and not problems:
        write_expected(results)
        notes.append(f"wrote {EXPECTED}")
    expected = read_expected()
    if QUORUM_PASS not in PASSES:
        expected = {t: r for t, r in expected.items() if "TestReconfig" not in t}
    # a test that should have run but has no result (its pass crashed or was cut short)
    # counts as failed
    missing = set(expected) - set(results)
    counted = dict(results, **{t: "failed" for t in missing})
    lines = [summary_line(f"kazoo {label}", counted),
             f"run time {elapsed:.0f}s, logs results/kazoo-{kind}*.log"] + problems + notes
    regressions = sorted(t for t, s in expected.items() if s == "passed" and results.get(t) != "passed")
    if regressions:
        lines.append(f"{len(regressions)} test(s) pass on Apache ZooKeeper but not on {kind}:")
        lines += [f"  {'missing' if t in missing else results[t]:8} {t}" for t in regressions]
    gained = sorted(t for t, s in results.items() if s == "passed" and expected.get(t) != "passed")
    if gained:
        lines.append(f"{len(gained)} test(s) pass on {kind} but not on Apache ZooKeeper:")
        lines += [f"  {t}" for t in gained]
    with open(summary, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if problems:
        return 2
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
