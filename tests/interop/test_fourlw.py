"""zkrs's four-letter words against Apache ZooKeeper 3.8's, by line shape.

The reference is tests/interop/fourlw-reference (recorded from Apache ZooKeeper by
fourlw_capture.py). This test runs the same workload against a fresh server of kind $ZK_KIND
(default zkrs; ZK_KIND=zk checks the normalisation against a live ZooKeeper) and compares each
word's output after replacing what legitimately differs between runs and servers: numbers,
hex ids, dates, the version string and the server's working directory.

    python3 -m pytest -q tests/interop/test_fourlw.py
"""
import os
import re

import pytest

import common  # noqa: F401  (puts tests/harness on sys.path)
import fourlw_capture

REFERENCE = os.path.join(common.HERE, "fourlw-reference")

# Words ZooKeeper prints that zkrs leaves out because it has no truthful value for them.
ENVI_OMITTED = {"os.memory.free", "os.memory.max", "os.memory.total"}  # JVM heap sizes
# The mntr keys zkrs must print (the classic set monitoring tools read, plus uptime/sessions).
MNTR_REQUIRED = [
    "zk_version", "zk_server_state", "zk_ephemerals_count", "zk_num_alive_connections",
    "zk_avg_latency", "zk_outstanding_requests", "zk_znode_count", "zk_global_sessions",
    "zk_packets_sent", "zk_packets_received", "zk_watch_count", "zk_min_latency",
    "zk_max_file_descriptor_count", "zk_approximate_data_size", "zk_open_file_descriptor_count",
    "zk_local_sessions", "zk_uptime", "zk_max_latency",
]

VERSION = re.compile(r"3\.8\.0-\S*, built on .*$")
DATE = re.compile(r"\b(Sun|Mon|Tue|Wed|Thu|Fri|Sat) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                  r"\d\d \d\d:\d\d:\d\d [A-Z]+ \d{4}\b")
WORKDIR = re.compile(r"/\S*?/zk(rs)?-\d+-[A-Za-z0-9_]+")
HEX = re.compile(r"0x[0-9a-f]+")
NUMBER = re.compile(r"\d+")


def shape(line):
    line = VERSION.sub("<VERSION>", line)
    line = DATE.sub("<DATE>", line)
    line = WORKDIR.sub("<WORKDIR>", line)
    line = HEX.sub("0xH", line)
    return NUMBER.sub("N", line)


def shapes(text):
    return [shape(line) for line in text.split("\n")]


def pairs(text, sep):
    return [tuple(line.split(sep, 1)) for line in text.splitlines() if sep in line]


@pytest.fixture(scope="module")
def outputs():
    return fourlw_capture.run(common.kind())


def reference(word):
    with open(os.path.join(REFERENCE, f"{word}.txt")) as f:
        return f.read()


@pytest.mark.parametrize("word", ["ruok", "isro", "gtmk", "stmk", "hash", "crst", "srst"])
def test_fixed_answers_are_identical(outputs, word):
    assert outputs[word] == reference(word)


@pytest.mark.parametrize("word", ["srvr", "stat", "conf", "dirs", "wchs"])
def test_line_shapes_are_identical(outputs, word):
    assert shapes(outputs[word]) == shapes(reference(word))


@pytest.mark.parametrize("word", ["cons", "wchc", "wchp"])
def test_line_shapes_are_identical_up_to_order(outputs, word):
    # ZooKeeper lists connections and watchers in hash order; zkrs sorts them
    assert sorted(shapes(outputs[word])) == sorted(shapes(reference(word)))


def test_dump_has_zookeepers_line_shapes(outputs):
    # zkrs lists only connections that have a session (those are the ones with a deadline),
    # so the connection count differs; the set of line shapes does not
    got, want = shapes(outputs["dump"]), shapes(reference("dump"))
    assert set(got) == set(want)
    headers = [s for s in got if not s.startswith("\t") and "expire at" not in s]
    assert headers == [s for s in want if not s.startswith("\t") and "expire at" not in s]


def test_envi_has_zookeepers_keys(outputs):
    got, want = outputs["envi"], reference("envi")
    assert got.startswith("Environment:\n")
    assert [k for k, _ in pairs(got, "=")] == [k for k, _ in pairs(want, "=") if k not in ENVI_OMITTED
                                               or common.kind() == "zk"]
    version = dict(pairs(got, "="))["zookeeper.version"]
    assert version.startswith("3.8.0")
    assert shape(version) == "<VERSION>"


def test_mntr_keys_are_zookeepers_in_zookeepers_order(outputs):
    got, want = pairs(outputs["mntr"], "\t"), pairs(reference("mntr"), "\t")
    assert all(len(line.split("\t")) == 2 for line in outputs["mntr"].splitlines())
    want_keys = [k for k, _ in want]
    got_keys = [k for k, _ in got]
    assert [k for k in want_keys if k in got_keys] == got_keys, "zkrs prints a key ZooKeeper does not"
    assert set(MNTR_REQUIRED) <= set(got_keys)
    want_values = dict(want)
    for key, value in got:
        assert shape(value) == shape(want_values[key]), key
