"""Fixtures for the zkCli.sh and C-client interop tests (zkcli_test.py, cclient_test.py).

One standalone server of kind $ZK_KIND (zk|zkrs, default zkrs) serves the whole pytest
session — or, with ZK_TOPOLOGY=ensemble, a 3-server ensemble whose connect string names all
three; every test works under its own top-level znode so tests stay independent.
"""
import os
import re

import pytest

import common


class EnsembleServer:
    """What the tests use of a server (its connect string), over a whole ensemble."""

    def __init__(self, ensemble):
        self.ensemble = ensemble
        self.connect_string = ensemble.connect_string()

    def cleanup(self):
        self.ensemble.cleanup()


@pytest.fixture(scope="session")
def server():
    if os.environ.get("ZK_TOPOLOGY") == "ensemble":
        srv = EnsembleServer(common.start_ensemble())
    else:
        srv = common.start_server()
    try:
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture
def root(request):
    """A fresh top-level path named after the test, e.g. /zkcli_test_create_modes."""
    module = request.module.__name__.split(".")[-1]
    return "/" + re.sub(r"[^A-Za-z0-9_]", "_", f"{module}_{request.node.name}")


def pytest_report_header(config):
    return f"interop server kind: {common.kind()}"
