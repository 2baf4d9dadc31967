"""A replicated ensemble under failures, seen through kazoo clients.

Every test runs against each kind in ENSEMBLE_KINDS (default "zk": Apache ZooKeeper 3.8;
"zk,zkrs" once zkrs runs ensembles). Servers are real processes on loopback, killed with
SIGKILL; partitions go through the link proxy (tests/harness/linkproxy.py).
"""
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import EventType, KazooState

from servers import four_letter_word
from writes import SequentialWriter, create_many, read_children_data

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness")


def followers(ensemble, leader):
    return [sid for sid in ensemble.participants() if sid != leader]


def counters_on(client, parent):
    return [int(data) for data in read_children_data(client, parent).values()]


def assert_nothing_acknowledged_lost(writer, present, where):
    duplicated = sorted(c for c, n in Counter(present).items() if n > 1)
    assert not duplicated, f"{where}: writes applied twice: {duplicated[:10]}"
    missing = sorted(set(writer.acked) - set(present))
    assert not missing, (f"{where}: {len(missing)} acknowledged writes lost, e.g. {missing[:10]} "
                         f"(of {len(writer.acked)} acknowledged)")
    invented = sorted(set(present) - set(range(writer.attempted)))
    assert not invented, f"{where}: writes nobody issued: {invented[:10]}"


def assert_every_server_has_acknowledged_writes(ensemble, clients, writer, parent, sids):
    for sid in sids:
        only_this_server = clients(ensemble.connect_string([sid]))
        assert_nothing_acknowledged_lost(writer, counters_on(only_this_server, parent), f"server {sid}")


def wait_until(predicate, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s")


class StateLog:
    """Records a kazoo client's state changes (its listeners run on kazoo's own thread)."""

    def __init__(self):
        self.states = []
        self.changed = threading.Condition()

    def record(self, state):
        with self.changed:
            self.states.append(state)
            self.changed.notify_all()

    def wait_for(self, sequence, timeout):
        """Waits until `sequence` (e.g. [SUSPENDED, CONNECTED]) occurred in order."""
        def occurred():
            it = iter(self.states)
            return all(any(s == wanted for s in it) for wanted in sequence)
        with self.changed:
            if not self.changed.wait_for(occurred, timeout):
                raise AssertionError(f"client states {self.states}, expected {sequence} within {timeout}s")


@pytest.mark.timeout(240)
def test_leader_killed_while_writing_loses_no_acknowledged_write(kind, ensembles, clients, timing):
    ensemble = ensembles(kind, 3)
    leader = ensemble.leader()
    client = clients(ensemble.connect_string())
    client.ensure_path("/writes")
    writer = SequentialWriter(client, "/writes").start()
    try:
        writer.wait_for_acks(time.monotonic(), count=100)
        killed_at = time.monotonic()
        ensemble.kill(leader)
        resumed_at = writer.wait_for_acks(killed_at, count=1, timeout=60)
        timing("kill -9 leader -> first acknowledged write", resumed_at - killed_at)
        new_leader = ensemble.wait_for_quorum(timeout=60)
        assert new_leader != leader
        writer.wait_for_acks(resumed_at, count=100)
    finally:
        writer.stop()
    # the survivors have every acknowledged write, and so has the old leader once back
    ensemble.restart(leader)
    assert ensemble.mode(leader) == "follower"
    assert_every_server_has_acknowledged_writes(ensemble, clients, writer, "/writes", ensemble.sids())


@pytest.mark.timeout(180)
def test_follower_killed_writes_continue(kind, ensembles, clients, timing):
    ensemble = ensembles(kind, 3)
    leader = ensemble.leader()
    victim = followers(ensemble, leader)[0]
    client = clients(ensemble.connect_string())
    client.ensure_path("/writes")
    writer = SequentialWriter(client, "/writes").start()
    try:
        writer.wait_for_acks(time.monotonic(), count=100)
        killed_at = time.monotonic()
        ensemble.kill(victim)
        resumed_at = writer.wait_for_acks(killed_at, count=1, timeout=30)
        timing("kill -9 follower -> first acknowledged write", resumed_at - killed_at)
        writer.wait_for_acks(killed_at, count=200, timeout=60)
        assert ensemble.leader() == leader, "losing a follower must not change the leader"
    finally:
        writer.stop()
    survivors = [sid for sid in ensemble.sids() if sid != victim]
    assert_every_server_has_acknowledged_writes(ensemble, clients, writer, "/writes", survivors)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("restart", ["same-datadir", "wiped-datadir"])
def test_server_that_missed_thousands_of_txns_catches_up(kind, restart, ensembles, clients, timing):
    missed = 3000
    ensemble = ensembles(kind, 3)
    leader = ensemble.leader()
    lagging = followers(ensemble, leader)[0]
    ensemble.kill(lagging, signal.SIGTERM)
    others = [sid for sid in ensemble.sids() if sid != lagging]
    create_many(clients(ensemble.connect_string(others)), "/catchup", missed)

    started_at = time.monotonic()
    if restart == "wiped-datadir":
        ensemble.wipe_and_restart(lagging)  # nothing in common with the leader: SNAP
    else:
        ensemble.restart(lagging)           # its log ends 3000 txns back: DIFF or SNAP
    timing(f"restart ({restart}) -> serving, {missed} txns behind", time.monotonic() - started_at)
    assert ensemble.mode(lagging) == "follower"
    assert os.path.exists(os.path.join(ensemble.members[lagging].data_dir, "myid"))

    only_lagging = clients(ensemble.connect_string([lagging]))
    data = read_children_data(only_lagging, "/catchup")
    assert data == {f"n-{i}": str(i).encode() for i in range(missed)}


@pytest.mark.timeout(180)
def test_observer_serves_reads_and_receives_every_write(kind, ensembles, clients):
    ensemble = ensembles(kind, 3, observers=1)
    observer = 4
    assert ensemble.mode(observer) == "observer"
    assert sorted(ensemble.modes(ensemble.participants()).values()) == ["follower", "follower", "leader"]
    at_observer = clients(ensemble.connect_string([observer]))
    at_participants = clients(ensemble.connect_string(ensemble.participants()))

    # a watch set at the observer fires for a write made through a participant
    at_participants.create("/observed", b"0")
    at_observer.sync("/observed")
    fired = threading.Event()
    assert at_observer.get("/observed", watch=lambda event: fired.set())[0] == b"0"
    at_participants.set("/observed", b"1")
    assert fired.wait(10), "the observer's watch did not fire"

    # every write made through the participants reaches the observer
    create_many(at_participants, "/observed/items", 500)
    assert read_children_data(at_observer, "/observed/items") == {f"n-{i}": str(i).encode() for i in range(500)}

    # a write sent to the observer is forwarded to the leader and applied everywhere
    at_observer.create("/observed/from-observer", b"via observer")
    at_participants.sync("/observed/from-observer")
    assert at_participants.get("/observed/from-observer")[0] == b"via observer"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("role", ["follower", "leader"])
def test_session_and_ephemerals_survive_failover(kind, role, ensembles, clients, timing):
    ensemble = ensembles(kind, 3)
    leader = ensemble.leader()
    target = leader if role == "leader" else followers(ensemble, leader)[0]
    others = [sid for sid in ensemble.sids() if sid != target]
    # the client connects to `target` first and fails over to the others in order
    client = clients(ensemble.connect_string([target] + others), randomize_hosts=False)
    session_id = client.client_id[0]
    session = f"sid=0x{session_id:x}"
    assert session in four_letter_word(ensemble.client_port(target), "cons")
    client.create("/failover-ephemeral", b"mine", ephemeral=True)
    states = StateLog()
    client.add_listener(states.record)

    killed_at = time.monotonic()
    ensemble.kill(target)
    states.wait_for([KazooState.SUSPENDED, KazooState.CONNECTED], timeout=60)
    timing(f"kill -9 {role} -> session reconnected", time.monotonic() - killed_at)

    assert KazooState.LOST not in states.states, "the session expired during failover"
    assert client.client_id[0] == session_id
    assert any(session in four_letter_word(ensemble.client_port(sid), "cons") for sid in others)
    stat = client.exists("/failover-ephemeral")
    assert stat is not None and stat.ephemeralOwner == session_id
    bystander = clients(ensemble.connect_string(others))
    bystander.sync("/failover-ephemeral")
    assert bystander.exists("/failover-ephemeral").ephemeralOwner == session_id


@pytest.mark.timeout(300)
@pytest.mark.parametrize("minority_has,cut_mode", [("leader", "close"), ("followers", "close"),
                                                   ("leader", "blackhole")])
def test_partitioned_minority_stops_serving_and_catches_up(kind, minority_has, cut_mode, ensembles, clients,
                                                            timing):
    ensemble = ensembles(kind, 5, partitionable=True)
    leader = ensemble.leader()
    others = followers(ensemble, leader)
    minority = [leader, others[0]] if minority_has == "leader" else others[:2]
    majority = [sid for sid in ensemble.sids() if sid not in minority]
    at_minority = clients(ensemble.connect_string(minority))
    at_majority = clients(ensemble.connect_string(majority))
    at_majority.ensure_path("/writes")
    writer = SequentialWriter(at_majority, "/writes").start()
    try:
        writer.wait_for_acks(time.monotonic(), count=50)
        cut_at = time.monotonic()
        ensemble.partition(minority, mode=cut_mode)

        # the majority keeps (or, without the old leader, resumes) accepting writes
        resumed_at = writer.wait_for_acks(cut_at, count=1, timeout=90)
        timing(f"partition ({minority_has} in minority, {cut_mode}) -> first write on majority",
               resumed_at - cut_at)
        new_leader = ensemble.wait_for_quorum(timeout=60, sids=majority)
        if minority_has == "followers":
            assert new_leader == leader

        # the minority stops serving: its servers leave broadcast, its clients lose the
        # connection and cannot write
        wait_until(lambda: all(ensemble.mode(sid) is None for sid in minority), 60,
                   f"minority {minority} to stop serving")
        wait_until(lambda: at_minority.state != KazooState.CONNECTED, 30, "minority client to disconnect")
        with pytest.raises((KazooException, KazooTimeoutError)):
            at_minority.create_async("/written-in-minority", b"").get(timeout=5)
        at_minority.stop()  # drop the queued write: it must not land after healing either
        writer.wait_for_acks(resumed_at, count=100, timeout=60)

        ensemble.heal()
        healed_at = time.monotonic()
        ensemble.wait_for_quorum(timeout=120)
        timing(f"heal ({cut_mode}) -> all 5 serving", time.monotonic() - healed_at)
        writer.wait_for_acks(time.monotonic(), count=50)
    finally:
        writer.stop()
    assert_every_server_has_acknowledged_writes(ensemble, clients, writer, "/writes", minority)
    assert at_majority.exists("/written-in-minority") is None


SESSION_HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from writes import connect
client = connect(sys.argv[1], timeout=4.0)
client.create("/expiry/ephemeral", b"", ephemeral=True)
session_id, password = client.client_id
print(session_id, password.hex(), client._session_timeout, flush=True)
time.sleep(600)
"""


@pytest.mark.timeout(180)
def test_session_expiry_is_global(kind, ensembles, clients, timing):
    ensemble = ensembles(kind, 3)
    leader = ensemble.leader()
    holder_server = followers(ensemble, leader)[0]  # its pings reach the leader only through a follower
    at = {sid: clients(ensemble.connect_string([sid])) for sid in ensemble.sids()}
    at[leader].ensure_path("/expiry")
    cversion_before = at[leader].get("/expiry")[1].cversion

    # a session in another process that disappears without closing (kill -9)
    holder = subprocess.Popen([sys.executable, "-c", SESSION_HOLDER, ensemble.connect_string([holder_server]),
                               HARNESS], stdout=subprocess.PIPE, text=True)
    try:
        session_id, password_hex, negotiated_ms = holder.stdout.readline().split()
    finally:
        if holder.poll() is not None:
            pytest.fail(f"the session-holding client exited with {holder.returncode}")
    session_id, password = int(session_id), bytes.fromhex(password_hex)
    deleted = {}
    for sid, client in at.items():
        client.sync("/expiry/ephemeral")
        deleted[sid] = threading.Event()
        watch = (lambda done: lambda event: event.type == EventType.DELETED and done.set())(deleted[sid])
        assert client.exists("/expiry/ephemeral", watch=watch).ephemeralOwner == session_id

    killed_at = time.monotonic()
    holder.kill()
    holder.wait()
    for sid, event in deleted.items():
        assert event.wait(int(negotiated_ms) / 1000 + 30), f"ephemeral still on server {sid}"
    timing(f"kill -9 of a client (session timeout {negotiated_ms} ms) -> ephemeral gone everywhere",
           time.monotonic() - killed_at)

    # one closeSession txn removed it: the same parent history on every server
    parents = {}
    for sid, client in at.items():
        client.sync("/expiry")
        parents[sid] = client.get("/expiry")[1]
    assert {(stat.cversion, stat.pzxid) for stat in parents.values()} == {
        (cversion_before + 2, parents[leader].pzxid)}, parents

    # and no server lets anyone resume the session
    for sid in ensemble.sids():
        # refused as expired, kazoo starts a new session instead
        resumer = clients(ensemble.connect_string([sid]), client_id=(session_id, password))
        assert resumer.client_id[0] != session_id, f"server {sid} accepted the expired session"
