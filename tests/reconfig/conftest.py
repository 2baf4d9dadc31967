"""Fixtures for the dynamic-reconfiguration tests.

RECONFIG_KINDS (comma-separated, default "zk") selects the server kinds every test runs
against. Measured durations go to results/timings.txt (see the `timing` fixture).
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
RESULTS = os.path.join(HERE, "results")
TIMINGS = os.path.join(RESULTS, "timings.txt")

from cluster import FIRST_VERSION, ZKCLI, Cluster, config_text  # noqa: E402
from ensemble import check_prerequisites as check_server  # noqa: E402


def check_prerequisites(kind):
    """Fails with a clear message when a server of `kind` or the Java CLI is missing."""
    check_server(kind)
    if not os.access(ZKCLI, os.X_OK):
        raise RuntimeError(f"{ZKCLI} (the ZooKeeper 3.8 Java CLI, used against both kinds) is missing: "
                           "apt-get install -y zookeeper zookeeper-bin")


def kinds():
    requested = [k.strip() for k in os.environ.get("RECONFIG_KINDS", "zk").split(",") if k.strip()]
    unknown = [k for k in requested if k not in ("zk", "zkrs")]
    if unknown:
        raise pytest.UsageError(f"RECONFIG_KINDS: unknown kind(s) {unknown}; use zk and/or zkrs")
    return requested


def pytest_configure(config):
    # a hung election or a reconfig that never commits must fail the test, not the whole run
    if not config.pluginmanager.hasplugin("timeout"):
        raise pytest.UsageError("the reconfig tests need pytest-timeout: pip install pytest-timeout")


def pytest_report_header(config):
    return f"reconfig kinds: {','.join(kinds())}"


def pytest_generate_tests(metafunc):
    if "kind" in metafunc.fixturenames:
        # module scope: the shared read-only ensembles are started once per kind
        metafunc.parametrize("kind", kinds(), scope="module")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when in ("setup", "call") and report.failed:
        # the servers' own account of what happened, next to the assertion
        for cluster in getattr(item, "clusters", []):
            for sid, member in cluster.members.items():
                if not member.log_files():
                    continue
                try:
                    mode = cluster.mode(sid)
                except Exception:  # noqa: BLE001 - a report must not fail
                    mode = "?"
                report.sections.append((f"{cluster.kind} server {sid} (mode {mode}, workdir {member.workdir})",
                                        cluster.ens.log_tail(sid, 60)))


@pytest.fixture
def cluster(request, kind):
    """cluster(n, **Cluster options, stagger=True) starts a Cluster of `kind` and waits for its
    quorum; every cluster a test started is stopped and removed after it (also on failure)."""
    request.node.clusters = getattr(request.node, "clusters", [])
    started = []

    def start(n, stagger=True, **kwargs):
        check_prerequisites(kind)
        c = Cluster(kind, n, **kwargs)
        started.append(c)
        request.node.clusters.append(c)
        return c.start(stagger=stagger)

    yield start
    for c in started:
        c.cleanup()


def _shared_cluster(kind, n=3):
    check_prerequisites(kind)
    c = Cluster(kind, n)
    try:
        c.start()
    except BaseException:
        c.cleanup()
        raise
    return c


def _intact(c, lines):
    """True when every server of the shared cluster still serves the initial config."""
    try:
        if sorted(c.modes([1, 2, 3]).values()) != ["follower", "follower", "leader"]:
            return False
        return all(c.read_config(sid).raw == config_text(lines, FIRST_VERSION) for sid in (1, 2, 3))
    except Exception:  # noqa: BLE001 - any trouble: start a new one
        return False


@pytest.fixture(scope="module")
def _shared(kind):
    holder = {}
    yield holder
    if holder.get("cluster"):
        holder["cluster"].cleanup()


@pytest.fixture
def fresh3(request, _shared):
    """A 3-participant ensemble that still has its first config (version 100000000), shared by
    the tests that only read or whose reconfigs fail. If a previous test left it changed (a
    failure that should not have happened), a new one is started, so tests stay independent."""
    kind = request.getfixturevalue("kind")
    c = _shared.get("cluster")
    if c is None or not _intact(c, c.initial_lines):
        if c is not None:
            c.cleanup()
            _shared["cluster"] = None
        c = _shared["cluster"] = _shared_cluster(kind)
    request.node.clusters = getattr(request.node, "clusters", []) + [c]
    return c


@pytest.fixture
def clients():
    """clients(cluster, sids=None, auth=True, **kazoo options): a started KazooClient on those
    servers (super user unless auth=False), stopped after the test."""
    started = []

    def start(c, sids=None, auth=True, **kwargs):
        client = c.client(sids, auth=auth, **kwargs)
        started.append(client)
        return client

    yield start
    for client in started:
        try:
            client.stop()
            client.close()
        except Exception:  # noqa: BLE001 - a client of a dead ensemble may not stop cleanly
            pass


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

