"""Fixtures for the replicated-ensemble tests.

ENSEMBLE_KINDS (comma-separated, default "zk") selects the server kinds every test runs
against. Measured durations go to results/timings.txt (see the `timing` fixture).
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
RESULTS = os.path.join(HERE, "results")
TIMINGS = os.path.join(RESULTS, "timings.txt")

from ensemble import Ensemble  # noqa: E402
from writes import connect  # noqa: E402


def kinds():
    requested = [k.strip() for k in os.environ.get("ENSEMBLE_KINDS", "zk").split(",") if k.strip()]
    unknown = [k for k in requested if k not in ("zk", "zkrs")]
    if unknown:
        raise pytest.UsageError(f"ENSEMBLE_KINDS: unknown kind(s) {unknown}; use zk and/or zkrs")
    return requested


def pytest_configure(config):
    # a hung election must fail the test, not the whole CI job
    if not config.pluginmanager.hasplugin("timeout"):
        raise pytest.UsageError("the ensemble tests need pytest-timeout: pip install pytest-timeout")


def pytest_report_header(config):
    return f"ensemble kinds: {','.join(kinds())}"


def pytest_generate_tests(metafunc):
    if "kind" in metafunc.fixturenames:
        metafunc.parametrize("kind", kinds())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        # the servers' own account of what happened, next to the assertion
        for ensemble in getattr(item, "ensembles", []):
            for sid in ensemble.members:
                report.sections.append((f"{ensemble.kind} server {sid} (mode {ensemble.mode(sid)})",
                                        ensemble.log_tail(sid, 60)))


@pytest.fixture
def ensembles(request):
    """ensembles(kind, n, ...) starts an Ensemble (same arguments) and waits for its quorum;
    every ensemble a test started is removed after it."""
    request.node.ensembles = []

    def start(*args, **kwargs):
        ensemble = Ensemble(*args, **kwargs)
        request.node.ensembles.append(ensemble)
        return ensemble.start()

    yield start
    for ensemble in request.node.ensembles:
        ensemble.cleanup()


@pytest.fixture
def clients():
    """clients(hosts, **kazoo options) returns a started KazooClient, stopped after the test."""
    started = []

    def start(hosts, **kwargs):
        client = connect(hosts, **kwargs)
        started.append(client)
        return client

    yield start
    for client in started:
        try:
            client.stop()
            client.close()
        except Exception:
            pass  # a client of a dead ensemble may not stop cleanly; the test is over


@pytest.fixture
def timing(request, kind):
    """timing(what, seconds) records a measured duration in results/timings.txt and in the
    junit report."""
    os.makedirs(RESULTS, exist_ok=True)

    def record(what, seconds):
        request.node.user_properties.append((what, f"{seconds:.3f}"))
        with open(TIMINGS, "a") as f:
            f.write(f"{kind}\t{request.node.name}\t{what}\t{seconds:.3f} s\n")

    return record
