"""Shared bits of the interop suite: which server kind to test and how to start it."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

from servers import Server, four_letter_word, free_port  # noqa: E402,F401  (path set above)

RESULTS = os.path.join(HERE, "results")


def kind():
    """ZK_KIND=zk|zkrs selects the server under test; zkrs is the default."""
    value = os.environ.get("ZK_KIND", "zkrs")
    if value not in ("zk", "zkrs"):
        raise SystemExit(f"ZK_KIND must be zk or zkrs, not {value!r}")
    return value


def start_server(single_quorum=False):
    """One server with the settings every interop test expects.

    servers.py already sets the super digest (super:test), extendedTypesEnabled (TTL nodes),
    all 4lw and a container/TTL reaping interval of 1 s.

    single_quorum=True: a quorum of one participant (standaloneEnabled=false) with
    reconfigEnabled, the smallest setup in which reconfig works (a standalone server answers
    reconfig with "unimplemented").
    """
    if not single_quorum:
        return Server(kind()).start()
    port = free_port()
    server = Server(kind(), port=port, extra_cfg={
        "initLimit": "10",
        "syncLimit": "5",
        "standaloneEnabled": "false",
        "reconfigEnabled": "true",
        "server.1": f"127.0.0.1:{free_port()}:{free_port()}:participant;127.0.0.1:{port}",
    })
    os.makedirs(server.cfg["dataDir"], exist_ok=True)
    with open(os.path.join(server.cfg["dataDir"], "myid"), "w") as f:
        f.write("1\n")
    return server.start(timeout=60)


def start_ensemble():
    """Three participants of the kind under test, with the settings of start_server (the
    members are Servers too), serving once a leader is elected."""
    from ensemble import Ensemble

    return Ensemble(kind(), 3, tick_ms=2000).start(timeout=90)
