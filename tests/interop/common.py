"""Shared bits of the interop suite: which server kind to test and how to start it."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

from servers import Server, four_letter_word  # noqa: E402  (path set just above)

RESULTS = os.path.join(HERE, "results")


def kind():
    """ZK_KIND=zk|zkrs selects the server under test; zkrs is the default."""
    value = os.environ.get("ZK_KIND", "zkrs")
    if value not in ("zk", "zkrs"):
        raise SystemExit(f"ZK_KIND must be zk or zkrs, not {value!r}")
    return value


def start_server():
    """One standalone server with the settings every interop test expects.

    servers.py already sets the super digest (super:test), extendedTypesEnabled (TTL nodes),
    all 4lw and a container/TTL reaping interval of 1 s.
    """
    return Server(kind()).start()
