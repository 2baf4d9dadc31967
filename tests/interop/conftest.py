"""Fixtures for the zkCli.sh and C-client interop tests (zkcli_test.py, cclient_test.py).

One standalone server of kind $ZK_KIND (zk|zkrs, default zkrs) serves the whole pytest
session; every test works under its own top-level znode so tests stay independent.
"""
import re

import pytest

import common


@pytest.fixture(scope="session")
def server():
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
