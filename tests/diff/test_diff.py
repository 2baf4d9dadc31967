"""pytest wrapper for the differential test (difftest.py).

DIFF_SEEDS (default "1,2") and DIFF_STEPS (default 1500) choose the runs against zkrs;
the ZooKeeper-against-itself run checks that the trace is deterministic.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "harness"))

import difftest  # noqa: E402
import servers  # noqa: E402

SEEDS = [int(s) for s in os.environ.get("DIFF_SEEDS", "1,2").split(",") if s]
STEPS = os.environ.get("DIFF_STEPS", "1500")


def zkrs_available():
    try:
        servers.zkrs_binary()
        return True
    except RuntimeError:
        return False


def test_zookeeper_against_itself():
    assert difftest.main(["--seed", "1", "--steps", "500", "--kinds", "zk,zk"]) == 0


@pytest.mark.skipif(not zkrs_available(), reason="zkrs binary not built")
@pytest.mark.parametrize("seed", SEEDS)
def test_zookeeper_against_zkrs(seed):
    assert difftest.main(["--seed", str(seed), "--steps", STEPS, "--kinds", "zk,zkrs"]) == 0
