"""pytest plugin: run kazoo's own test suite (`pytest --pyargs kazoo.tests`) against one
standalone server started by tests/harness/servers.py instead of the Java ensemble that
kazoo.testing.harness would start itself.

    ZK_KIND=zk PYTHONPATH=tests/interop pytest -p kazoo_plugin --pyargs kazoo.tests

kazoo's tests only touch the cluster through `get_global_cluster()`: they read member
addresses, call start/terminate around test classes, and a few stop/restart members or need
a quorum.  We hand them a fake cluster over our single server; tests that need what a single
server cannot offer are skipped with the reason shown in the summary (-rs).

KAZOO_SERVER_MODE=single_quorum starts the server as a quorum of one participant instead
(see common.start_server); TestReconfig runs there (run_kazoo.py does that in a second pass).
KAZOO_SERVER_MODE=ensemble starts a 3-server ensemble (tests/harness/ensemble.py) and hands
kazoo a cluster of its three members: every client connects with all three addresses.
"""
import logging
import os

import pytest

import common

# Tests that cannot run against one standalone server, by (class, test) name; "*" = whole class.
# Keep the reasons short: they are printed in the pytest summary.
SKIPS = {
    ("TestClient", "test_update_host_list"):
        "needs a 3-member ensemble and member stop/restart",
    ("TestClient", "test_request_queuing_session_recovered"):
        "needs member stop/restart",
    ("TestClient", "test_request_queuing_session_expired"):
        "needs member stop/restart",
    ("TestReadOnlyMode", "*"):
        "needs a 3-member ensemble with readonlymode and member stop",
    ("TestReconfig", "*"):
        "needs quorum mode (run_kazoo.py runs it against a single-participant quorum)",
    ("TestSSLClient", "*"):
        "needs a TLS client port and kazoo's generated certificates",
    ("TestLegacySASLDigestAuthentication", "*"): "needs SASL (JAAS digest users)",
    ("TestSASLDigestAuthentication", "*"): "needs SASL (JAAS digest users)",
    ("TestSASLGSSAPIAuthentication", "*"): "needs SASL (Kerberos)",
}

MODE = os.environ.get("KAZOO_SERVER_MODE", "standalone")
SINGLE_QUORUM = MODE == "single_quorum"
ENSEMBLE = MODE == "ensemble"
if SINGLE_QUORUM:
    del SKIPS[("TestReconfig", "*")]

SERVER = None


class Member:
    """Stands in for kazoo.testing.common.ManagedZooKeeper: the one server we started."""

    def __init__(self, server):
        self.server = server

    @property
    def address(self):
        return self.server.connect_string

    @property
    def secure_address(self):
        pytest.skip("no TLS client port")

    @property
    def running(self):
        return True  # never let the harness try to (re)start it

    def stop(self):
        pytest.skip("member stop/restart is not available against a standalone server")

    run = stop

    def get_logs(self, num_lines=100):
        """Tail of the server's log, which kazoo's conftest prints when a test fails."""
        lines = []
        for name in ("server.out", "server.log4j.log"):  # zkrs logs to the first, zk to the second
            try:
                with open(os.path.join(self.server.workdir, name), errors="replace") as f:
                    lines += f.readlines()[-num_lines:]
            except OSError:
                pass
        return lines


class Cluster:
    """Stands in for kazoo.testing.common.ZookeeperCluster over our server(s)."""

    def __init__(self, servers):
        self.members = [Member(s) for s in servers]

    def __getitem__(self, k):
        if k >= len(self.members):
            pytest.skip("needs a 3-member ensemble")
        return self.members[k]

    def __iter__(self):
        return iter(self.members)

    # kazoo calls these around each test class; our server lives for the whole run
    def start(self):
        pass

    def stop(self):
        pass

    def terminate(self):
        pass

    def reset(self):
        pass

    def get_logs(self):
        return [line for m in self.members for line in m.get_logs()]

    def get_ssl_client_configuration(self):
        pytest.skip("no TLS client port")


def pytest_configure(config):
    global SERVER
    # kazoo.tests.util reads CI/ZOOKEEPER_VERSION at import; keep version checks on `envi`
    os.environ.pop("CI", None)
    os.environ.pop("ZOOKEEPER_VERSION", None)
    if ENSEMBLE:
        SERVER = common.start_ensemble()
        servers = list(SERVER.members.values())
    else:
        SERVER = common.start_server(single_quorum=SINGLE_QUORUM)
        servers = [SERVER]

    import kazoo.testing.harness as harness

    cluster = Cluster(servers)
    harness.get_global_cluster = lambda: cluster


def pytest_unconfigure(config):
    # clients some tests leave behind would log every reconnect attempt once the server stops
    logging.getLogger("kazoo").setLevel(logging.CRITICAL + 1)
    if SERVER is not None:
        SERVER.cleanup()


def pytest_report_header(config):
    where = SERVER.connect_string() if ENSEMBLE else SERVER.connect_string
    return f"kazoo interop: {SERVER.kind} at {where} ({SERVER.workdir})"


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.originalname or item.name
        # look at base classes too: gevent/eventlet variants subclass TestClient
        classes = [c.__name__ for c in item.cls.__mro__] if item.cls else []
        reason = next((SKIPS.get((c, n)) for c in classes for n in (name, "*")
                       if (c, n) in SKIPS), None)
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"standalone interop: {reason}"))
