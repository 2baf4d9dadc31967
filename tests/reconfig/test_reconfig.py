"""Dynamic reconfiguration (ZooKeeper 3.8 admin manual, "ZooKeeper Dynamic Reconfiguration"),
checked against real server processes through kazoo and the real Java CLI (zkCli.sh).

Every test runs against each kind in RECONFIG_KINDS (default "zk": Apache ZooKeeper 3.8, the
oracle; "zkrs": ours). Expected values come from the manual and from the reference transcripts
recorded against ZooKeeper 3.8 (/work/shared/reference/zk38/transcripts/*.txt, noted as
"ref a_config" etc.). Assertions are about what a client, an operator or the files on disk can
observe, so that another implementation can pass them unchanged.
"""
import json
import os
import re
import shutil
import socket
import threading
import time
from collections import Counter
from signal import SIGCONT, SIGKILL, SIGSTOP

import pytest
from kazoo.exceptions import (BadArgumentsError, BadVersionError, ConnectionLoss, KazooException,
                              MarshallingError, NewConfigNoQuorumError, NoAuthError, ReconfigDisabledError,
                              ReconfigInProcessError, SessionExpiredError, UnimplementedError)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import EventType
from kazoo.security import ACL, Id, Permissions

from cluster import (CONFIG_NODE, FIRST_VERSION, SYNC_LIMIT, TICK_MS, BackgroundCli, Config, config_text,
                     wait_until, zkcli)
from servers import four_letter_word, free_port
from writes import SequentialWriter, read_children_data

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")

# zkCli texts for the KeeperException codes (CliWrapperException; ref README error table)
CLI_NOAUTH = "Insufficient permission : "
CLI_BADARGS = "Arguments are not valid : "
CLI_BADVERSION = "version No is not valid : "
CLI_NOQUORUM = ("No quorum of new config is connected and up-to-date with the leader of last committed config - "
                "try invoking reconfiguration after new servers are connected and synced")
CLI_MARSHALLING = "KeeperErrorCode = MarshallingError"
CLI_DISABLED = "KeeperErrorCode = Reconfig is disabled"


# -- helpers ------------------------------------------------------------------------------------

def reconfig(client, joining=None, leaving=None, members=None, version=-1, timeout=30):
    """kazoo reconfig with a bound on the wait; returns the new Config (its stat attached)."""
    data, stat = client.reconfig_async(joining, leaving, members, version).get(timeout=timeout)
    config = Config.parse(data)
    config.stat = stat
    return config


def reconfig_fails(client, expected, what, joining=None, leaving=None, members=None, version=-1):
    """Asserts that the reconfig request fails with the exception class `expected`."""
    try:
        data, _ = client.reconfig_async(joining, leaving, members, version).get(timeout=30)
    except expected:
        return
    except (KazooException, KazooTimeoutError) as e:
        raise AssertionError(f"{what}: expected {expected.__name__} (code {expected.code}), got {e!r}") from e
    raise AssertionError(f"{what}: expected {expected.__name__} (code {expected.code}), but the reconfig "
                         f"committed:\n{data.decode()}")


def reconfig_through_handoff(c, client, expected_lines, timeout=60, **kwargs):
    """A reconfig that changes the leader (removal, demotion) or the role of the server the
    client is connected to. The client may get ConnectionLoss although the reconfig committed
    (ref README note 13): then the outcome is read back."""
    try:
        return reconfig(client, **kwargs)
    except (ConnectionLoss, SessionExpiredError, KazooTimeoutError):
        pass

    def committed():
        for sid in c.running():
            try:
                config = c.read_config(sid)
            except Exception:  # noqa: BLE001 - the server may be between leaders
                continue
            if config.lines == expected_lines:
                return config
        return None
    return wait_until(committed, timeout, f"reconfig {kwargs} to be visible after a ConnectionLoss")


def assert_config(c, sid, lines, version, what=""):
    """sync + get /zookeeper/config on server sid is exactly `lines` + version=<hex>."""
    config = c.read_config(sid)
    expected = config_text(lines, version)
    assert config.raw == expected, (f"{what}: /zookeeper/config on server {sid}:\n{config.raw.decode()}\n"
                                    f"--- expected:\n{expected.decode()}")
    return config


def assert_committed(config, lines, previous_version, what=""):
    """The reply of a successful reconfig: the new config, with a version above the previous one
    equal to the Stat's mzxid (the reconfig's own zxid)."""
    assert config.lines == lines, f"{what}: new config\n" + "\n".join(config.lines) + "\n--- expected\n" + \
        "\n".join(lines)
    assert config.version > previous_version, f"{what}: version {config.version:x} not above {previous_version:x}"
    assert config.stat.mzxid == config.version, (f"{what}: Stat mzxid {config.stat.mzxid:x} != "
                                                 f"version {config.version:x}")


def config_or_error(c, sid):
    """The raw /zookeeper/config of server sid after a sync, or the error reading it."""
    try:
        return c.read_config(sid).raw
    except Exception as e:  # noqa: BLE001 - e.g. a server restarting its role after a reconfig
        return repr(e)


def wait_config_everywhere(c, lines, version, sids=None, timeout=20):
    expected = config_text(lines, version)
    for sid in sids or c.running():
        wait_until(lambda: config_or_error(c, sid) == expected, timeout,
                   f"server {sid} to have config version {version:x}:\n{expected.decode()}")


def mntr(c, sid):
    """The mntr four-letter word of server sid as a dict."""
    lines = c.four(sid, "mntr").splitlines()
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


def followers(c, leader, sids=None):
    return [sid for sid in (sids or c.running()) if sid != leader and c.mode(sid) == "follower"]


def write_and_check_everywhere(c, clients, path, sids, through=None):
    """Creates `path` through server `through` (default: any), then checks each of `sids` has it."""
    writer = clients(c, [through] if through else None)
    writer.create(path, b"payload", makepath=True)
    for sid in sids:
        at = clients(c, [sid])
        at.sync(path)
        assert at.exists(path) is not None, f"{path} written through {through} is missing on server {sid}"


def cli_committed(result, lines, what):
    """zkCli output of a successful reconfig: 'Committed new configuration:' then the config."""
    assert result.status == 0, f"{what}: {result}"
    assert result.lines and result.lines[0] == "Committed new configuration:", f"{what}: {result}"
    config = Config.parse("\n".join(result.lines[1:]))
    assert config.lines == lines, f"{what}: {result}"
    return config


def cli_failed(result, text, what):
    assert result.status == 1 and result.lines == [text], f"{what}: expected exit status 1 and {text!r}; {result}"


# -- reading the configuration (ref a_config) -----------------------------------------------------

@pytest.mark.timeout(120)
def test_config_node_holds_membership_and_first_version(kind, fresh3):
    c = fresh3
    expected = config_text(c.initial_lines, FIRST_VERSION)
    assert expected.decode().splitlines()[0].endswith(f":participant;127.0.0.1:{c.members[1].port}")
    for sid in (1, 2, 3):
        config = assert_config(c, sid, c.initial_lines, FIRST_VERSION, "fresh ensemble")
        assert config.voters() == [1, 2, 3]


@pytest.mark.timeout(120)
def test_config_node_stat_and_acl(kind, fresh3, clients):
    c = fresh3
    client = clients(c, [1], auth=False)
    client.sync(CONFIG_NODE)
    data, stat = client.get(CONFIG_NODE)
    assert (stat.czxid, stat.ctime, stat.mzxid, stat.version, stat.aversion, stat.cversion,
            stat.ephemeralOwner, stat.numChildren, stat.pzxid, stat.dataLength) == \
        (0, 0, FIRST_VERSION, -1, -1, 0, 0, 0, 0, len(data)), stat
    acls, acl_stat = client.get_acls(CONFIG_NODE)
    assert acls == [ACL(Permissions.READ, Id("world", "anyone"))], acls
    assert acl_stat == stat
    assert "config" in client.get_children("/zookeeper")
    # world:anyone:r - an ordinary client can neither write it nor reconfigure
    with pytest.raises(NoAuthError):
        client.set(CONFIG_NODE, b"x")
    reconfig_fails(client, NoAuthError, "reconfig without auth", leaving="3")
    assert client.get(CONFIG_NODE) == (data, stat)


@pytest.mark.timeout(120)
def test_zkcli_config_commands_print_the_config(kind, fresh3):
    c = fresh3
    text_lines = config_text(c.initial_lines, FIRST_VERSION).decode().splitlines()
    port = c.members[1].port
    for command in ("config", "get /zookeeper/config", "config /zookeeper/config"):
        result = zkcli(port, command, auth=False)
        assert result.status == 0 and result.lines == text_lines, f"{command}: {result}"

    # config -c: "<hex version> <client host:port,...>" (the order is the CLI's HashSet order)
    result = zkcli(port, "config -c", auth=False)
    assert result.status == 0 and len(result.lines) == 1, result
    version, hosts = result.lines[0].split(" ")
    assert version == "100000000", result
    assert sorted(hosts.split(",")) == sorted(f"127.0.0.1:{c.members[sid].port}" for sid in (1, 2, 3)), result

    stat_lines = ["cZxid = 0x0", "ctime = Thu Jan 01 00:00:00 UTC 1970", "mZxid = 0x100000000",
                  "pZxid = 0x0", "cversion = 0", "dataVersion = -1", "aclVersion = -1", "ephemeralOwner = 0x0",
                  f"dataLength = {len(config_text(c.initial_lines, FIRST_VERSION))}", "numChildren = 0"]
    result = zkcli(port, "config -s", auth=False)
    assert result.status == 0, result
    assert result.lines[:len(text_lines)] == text_lines, result
    assert [line for line in result.lines[len(text_lines):] if not line.startswith("mtime = ")] == stat_lines, result

    result = zkcli(port, "getAcl /zookeeper/config", auth=False)
    assert result.status == 0 and result.lines == ["'world,'anyone", ": r"], result


@pytest.mark.timeout(120)
def test_conf_four_letter_word_ends_with_membership(kind, fresh3):
    c = fresh3
    for sid in (1, 2, 3):
        reply = c.four(sid, "conf")
        tail = "membership: \n" + config_text(c.initial_lines, FIRST_VERSION).decode()
        assert reply.endswith(tail) or reply.endswith(tail + "\n"), f"conf on server {sid}:\n{reply}"


@pytest.mark.timeout(120)
def test_config_watch_fires_on_reconfig_and_sync_makes_follower_current(kind, cluster, clients):
    c = cluster(3)
    leader = c.leader()
    f1, f2 = followers(c, leader)
    # a kazoo watch and a zkCli 'config -w', both on follower f1
    fired = []
    event_seen = threading.Event()
    watcher = clients(c, [f1], auth=False)
    watcher.get(CONFIG_NODE, watch=lambda event: (fired.append(event), event_seen.set()))
    cli = BackgroundCli(c.members[f1].port, "config -w")
    try:
        cli.wait_for_line(r"^version=100000000$", 30)
        # re-adding server f2 with identical parameters still makes a new version (ref a_config)
        result = zkcli(c.members[leader].port, "reconfig -add " + c.spec(f2))
        new = cli_committed(result, c.initial_lines, "reconfig -add (identical parameters)")
        assert new.version > FIRST_VERSION, result
        cli.wait_for_line(r"^WatchedEvent state:SyncConnected type:NodeDataChanged path:/zookeeper/config$", 30)
    finally:
        output = cli.close()
    assert output.status == 0, output
    assert event_seen.wait(30), "the kazoo watch on /zookeeper/config did not fire"
    assert [(e.type, e.path) for e in fired] == [(EventType.CHANGED, CONFIG_NODE)], fired
    # sync + get through the other follower (which the reconfig did not go through) is current
    at_f2 = clients(c, [f2], auth=False)
    at_f2.sync(CONFIG_NODE)
    data, stat = at_f2.get(CONFIG_NODE)
    assert data == config_text(c.initial_lines, new.version), data
    assert stat.mzxid == new.version


# -- incremental mode (ref b_incremental) -----------------------------------------------------------

@pytest.mark.timeout(180)
def test_removed_follower_keeps_serving_but_no_longer_votes(kind, cluster, clients):
    c = cluster(3)
    leader = c.leader()
    removed, other = followers(c, leader)
    client = clients(c, [other])
    v0 = FIRST_VERSION
    remaining = [c.spec(sid) for sid in sorted((leader, other))]
    new = reconfig(client, leaving=str(removed))
    assert_committed(new, remaining, v0, f"-remove {removed}")

    # not shut down: a non-voting follower that keeps serving reads of current data
    c.wait_for_mode(removed, "follower", 10)
    assert_config(c, removed, remaining, new.version, "removed server")
    client.create("/after-removal", b"1")
    at_removed = clients(c, [removed])
    at_removed.sync("/after-removal")
    assert at_removed.get("/after-removal")[0] == b"1"
    at_removed.create("/written-through-removed", b"2")  # forwarded to the leader
    client.sync("/written-through-removed")
    assert client.get("/written-through-removed")[0] == b"2"

    # its vote no longer counts: with the other voter dead, leader + removed server are no quorum
    c.ens.kill(other)
    wait_until(lambda: c.mode(leader) != "leader", 3 * SYNC_LIMIT * TICK_MS / 1000 + 10,
               f"leader {leader} to give up once only the removed server {removed} follows it")
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        modes = c.modes([leader, removed])
        assert "leader" not in modes.values(), f"a quorum formed without voter {other}: {modes}"
        time.sleep(0.2)

    # the killed voter restarts from the config files it rewrote: the two voters elect again
    c.relaunch(other)
    new_leader = c.wait_for_leader([leader, other, removed], timeout=60)
    assert new_leader in (leader, other)
    assert c.mode(removed) == "follower"

    # re-added with the "N=" shorthand: it votes again, so losing the other voter is survivable
    client = clients(c, [leader])
    readded = reconfig(client, joining=c.spec(removed, prefix=""))
    assert_committed(readded, c.initial_lines, new.version, f"-add {removed}=... (shorthand)")
    wait_config_everywhere(c, c.initial_lines, readded.version)
    c.ens.kill(other)
    survivor = clients(c, [removed])
    wait_until(lambda: c.ens.leader([leader, removed]) is not None, 30,
               f"a leader among {leader} and {removed} after killing {other}")
    survivor.create("/after-readd", b"3")
    client.sync("/after-readd")


@pytest.mark.timeout(180)
def test_joiner_is_added_and_changes_role(kind, cluster, clients):
    c = cluster(3)
    # joiner 4 lists the current config plus itself as an observer (manual option 1)
    c.add_joiner(4, "observer")
    assert c.mode(4) == "follower", "a joiner not yet added is a non-voting follower"
    assert_config(c, 4, c.initial_lines, FIRST_VERSION, "joiner before being added")

    client = clients(c, [1])
    # role omitted: a participant
    added = reconfig(client, joining=c.spec(4, role=None))
    lines = c.initial_lines + [c.spec(4)]
    assert_committed(added, lines, FIRST_VERSION, "-add server.4 (no role)")
    c.wait_for_mode(4, "follower", 10)

    # participant -> observer by re-adding it with other parameters
    as_observer = reconfig(client, joining=c.spec(4, "observer"))
    assert_committed(as_observer, c.initial_lines + [c.spec(4, "observer")], added.version, "4 -> observer")
    c.wait_for_mode(4, "observer", 30)

    # observer -> participant, the request sent through the observer itself (whose connections
    # may drop while it switches role: then the outcome is read back)
    at_4 = clients(c, [4])
    back = reconfig_through_handoff(c, at_4, lines, joining=c.spec(4, "participant"))
    assert_committed(back, lines, as_observer.version, "4 -> participant (through 4)")
    c.wait_for_mode(4, "follower", 30)
    wait_config_everywhere(c, lines, back.version)
    assert sorted(c.modes().values()) == ["follower", "follower", "follower", "leader"]
    wait_until(lambda: at_4.connected, 30, "the client of server 4 to reconnect")
    at_4.create("/via-4", b"x")
    for sid in (1, 2, 3):
        at = clients(c, [sid])
        at.sync("/via-4")
        assert at.get("/via-4")[0] == b"x"


@pytest.mark.timeout(180)
def test_joiners_listed_as_participants_join_the_ensemble_instead_of_electing(kind, cluster, clients):
    """The manual warns that several joiners listed as participants "may form an independent
    quorum creating a split-brain situation". zkrs guarantees they do not while the ensemble is
    reachable: a server holding an initial (unversioned) config decides no election before it
    has heard from every voter it lists, and adopts the committed config it hears instead."""
    if kind == "zk" and not os.environ.get("TRY_ZK"):
        # measured: ZooKeeper 3.8 splits (joiner 5 leads its own ensemble of 4 and 5)
        pytest.skip("ZooKeeper 3.8 splits here (the manual's warning; TRY_ZK=1 runs it): zkrs-only")
    c = cluster(3)
    leader = c.leader()
    current = c.read_config()
    # 4 and 5 each list the leader and both joiners as participants: {leader, 4, 5} has a
    # majority of joiners, started together while the leader is slow to answer (paused for
    # less than the bootstrap grace and the ensemble's syncLimit): without the guard they elect
    # one of themselves within the finalize wait
    c.prepare_member(5)
    leader_pid = c.members[leader].proc.pid
    os.kill(leader_pid, SIGSTOP)
    try:
        for sid, other in ((4, 5), (5, 4)):
            c.add_joiner(sid, "participant", listed=[leader], also=[other], also_role="participant",
                         current=current, wait=False)
        time.sleep(1.0)
    finally:
        os.kill(leader_pid, SIGCONT)
    for sid in (4, 5):
        c.ens.wait_until_serving(sid, timeout=60)
    assert c.modes([4, 5]) == {4: "follower", 5: "follower"}, "joiners follow, none leads"
    assert c.leader() == leader
    for sid in (4, 5):
        assert_config(c, sid, c.initial_lines, FIRST_VERSION, f"joiner {sid} adopted the committed config")
    # one history: a write through a joiner is the ensemble's
    at_4 = clients(c, [4])
    at_4.create("/through-joiner", b"4")
    at_leader = clients(c, [leader])
    at_leader.sync("/through-joiner")
    assert at_leader.get("/through-joiner")[0] == b"4"
    # and they can then be added, together
    added = reconfig(at_leader, joining=f"{c.spec(4)},{c.spec(5)}")
    assert_committed(added, c.initial_lines + [c.spec(4), c.spec(5)], FIRST_VERSION, "-add 4,5")


@pytest.mark.timeout(180)
def test_several_servers_added_and_removed_in_one_reconfig(kind, cluster, clients):
    c = cluster(3)
    leader = c.leader()
    gone = followers(c, leader)[0]
    current = c.read_config(leader)
    c.add_joiner(4, "observer", current=current)                    # option 1
    c.add_joiner(5, "participant", current=current)                 # option 2
    c.add_joiner(6, "observer", listed=[leader], also=[5], current=current)  # option 3: leader only
    for sid in (4, 5, 6):
        assert c.mode(sid) == "follower", f"joiner {sid} before being added"

    client = clients(c, [leader])
    joining = ",".join([c.spec(4), c.spec(5, prefix=""), c.spec(6, "observer", prefix="")])
    new = reconfig(client, joining=joining, leaving=str(gone))
    lines = [c.spec(sid) for sid in (1, 2, 3, 4, 5) if sid != gone] + [c.spec(6, "observer")]
    assert_committed(new, lines, FIRST_VERSION, f"-remove {gone} -add 4,5,6")
    c.wait_for_mode(6, "observer", 30)
    wait_config_everywhere(c, lines, new.version)
    modes = c.modes()
    assert modes[leader] == "leader" and modes[gone] == "follower", modes
    assert [modes[sid] for sid in (4, 5, 6)] == ["follower", "follower", "observer"], modes


# -- bulk mode (ref c_bulk) ----------------------------------------------------------------------------

@pytest.mark.timeout(180)
def test_bulk_members_replaces_the_membership(kind, cluster, clients):
    c = cluster(3)
    leader = c.leader()
    gone = followers(c, leader)[0]
    c.add_joiner(4, "observer")
    client = clients(c, [leader])
    lines = [c.spec(sid) for sid in (1, 2, 3, 4) if sid != gone]
    new = reconfig(client, members=",".join(lines))
    assert_committed(new, lines, FIRST_VERSION, "bulk -members")
    wait_config_everywhere(c, lines, new.version)
    assert c.mode(gone) == "follower" and c.mode(4) == "follower"

    # the same through zkCli: 'reconfig -members', back to 1,2,3 plus 4 as an observer
    lines = c.initial_lines + [c.spec(4, "observer")]
    result = zkcli(c.members[leader].port, "reconfig -members " + ",".join(lines))
    cli_committed(result, lines, "zkCli reconfig -members")
    c.wait_for_mode(4, "observer", 30)
    assert c.mode(gone) == "follower"

    # zkCli -file: the CLI parses the file (comments, blank lines, a version= line) and sends its
    # own rendering, newline-separated and ending in "version=0" (ref c_bulk c3)
    lines = c.initial_lines + [c.spec(4)]
    path = os.path.join(c.workdir, "newconfig.cfg")
    with open(path, "w") as f:
        f.write("# comment line\n\n" + "\n".join(lines) + "\nversion=deadbeef\n")
    result = zkcli(c.members[leader].port, f"reconfig -file {path}")
    from_file = cli_committed(result, lines, "zkCli reconfig -file")
    wait_config_everywhere(c, lines, from_file.version)
    c.wait_for_mode(4, "follower", 30)


@pytest.mark.timeout(180)
def test_bulk_switches_between_majority_and_hierarchical(kind, cluster, clients):
    c = cluster(4)
    client = clients(c, [1])
    servers = [c.spec(sid) for sid in (1, 2, 3, 4)]
    hier = servers + ["group.1=1:2", "group.2=3:4"] + [f"weight.{sid}=1" for sid in (1, 2, 3, 4)]
    new = reconfig(client, members=",".join(hier))
    assert_committed(new, hier, FIRST_VERSION, "bulk to hierarchical")
    wait_config_everywhere(c, hier, new.version)
    client.create("/hier", b"ok")  # the ensemble commits under the hierarchical quorum
    # the dynamic file orders its lines group, server, weight (ref c_bulk c5), no final newline
    files = c.config_files(1)
    assert files[f"zoo.cfg.dynamic.{new.version:x}"] == "\n".join(hier[4:6] + hier[:4] + hier[6:]).encode(), files

    # incremental reconfiguration needs a majority quorum system: BadArguments, nothing changes
    reconfig_fails(client, BadArgumentsError, "incremental -remove on hierarchical", leaving="4")
    reconfig_fails(client, BadArgumentsError, "incremental -add on hierarchical", joining=c.spec(4))
    assert_config(c, 1, hier, new.version, "after refused incremental requests")

    # bulk is the only way back to majority; then incremental works again
    majority = servers[:3]
    back = reconfig(client, members=",".join(majority))
    assert_committed(back, majority, new.version, "bulk back to majority")
    again = reconfig(client, joining=c.spec(4))
    assert_committed(again, servers, back.version, "incremental -add after switching back")
    client.create("/majority-again", b"ok")


# -- conditional reconfig (ref d_conditional) -----------------------------------------------------------

@pytest.mark.timeout(180)
def test_conditional_reconfig_checks_the_version(kind, cluster, clients):
    c = cluster(3)
    c.add_joiner(4, "observer")
    c.add_joiner(5, "observer")
    client = clients(c, [1])
    base = c.initial_lines
    v0 = c.read_config(1).version
    assert v0 == FIRST_VERSION

    with4 = reconfig(client, members=",".join(base + [c.spec(4)]), version=v0)
    assert_committed(with4, base + [c.spec(4)], v0, "bulk -v current")
    # the manual's liveness story: a second client still believing v0 must not overwrite 4
    reconfig_fails(client, BadVersionError, "bulk with a stale version", members=",".join(base + [c.spec(5)]),
                   version=v0)
    reconfig_fails(client, BadVersionError, "version 0", leaving="4", version=0)
    assert_config(c, 1, base + [c.spec(4)], with4.version, "after stale conditional requests")

    with5 = reconfig(client, joining=c.spec(5), version=with4.version)
    assert_committed(with5, base + [c.spec(4), c.spec(5)], with4.version, "incremental -v current")
    reconfig_fails(client, BadVersionError, "incremental with a stale version", leaving="5", version=with4.version)

    # zkCli: -v takes the hex version as config prints it
    port = c.members[2].port
    cli_failed(zkcli(port, f"reconfig -remove 5 -v {with4.version:x}"), CLI_BADVERSION, "zkCli stale -v")
    result = zkcli(port, f"reconfig -remove 5 -v {with5.version:x}")
    without5 = cli_committed(result, base + [c.spec(4)], "zkCli -v current")
    # -1 means unconditional
    blind = reconfig(client, members=",".join(base + [c.spec(5)]), version=-1)
    assert_committed(blind, base + [c.spec(5)], without5.version, "bulk -v -1 (unconditional)")


# -- errors (ref e_errors and the README error table) ---------------------------------------------------

@pytest.mark.timeout(120)
def test_reconfig_needs_write_permission_on_the_config_node(kind, fresh3, clients):
    c = fresh3
    anonymous = clients(c, [1], auth=False)
    reconfig_fails(anonymous, NoAuthError, "no addauth", leaving="3")
    wrong = clients(c, [1], auth=False, auth_data=[("digest", "super:wrong")])
    reconfig_fails(wrong, NoAuthError, "wrong super password", leaving="3")
    # the permission check comes after the request's own checks
    reconfig_fails(anonymous, BadArgumentsError, "no addauth, no voter left", leaving="1,2,3")
    reconfig_fails(anonymous, BadVersionError, "no addauth, stale version", leaving="3", version=1)
    cli_failed(zkcli(c.members[1].port, "reconfig -remove 3", auth=False), CLI_NOAUTH, "zkCli without addauth")
    cli_failed(zkcli(c.members[1].port, "reconfig -remove 3", auth="addauth digest super:wrong"), CLI_NOAUTH,
               "zkCli wrong password")
    assert_config(c, 1, c.initial_lines, FIRST_VERSION, "after refused requests")


@pytest.mark.timeout(120)
def test_write_acl_on_config_node_lets_a_user_reconfigure(kind, cluster, clients):
    c = cluster(3)
    admin = clients(c, [1])
    alice_digest = "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="  # digest of alice:secret
    admin.set_acls(CONFIG_NODE, [ACL(Permissions.READ, Id("world", "anyone")),
                                 ACL(Permissions.READ | Permissions.WRITE, Id("digest", alice_digest))])
    alice = clients(c, [2], auth=False, auth_data=[("digest", "alice:secret")])
    leader = c.leader()
    gone = followers(c, leader)[0]
    lines = [c.spec(sid) for sid in (1, 2, 3) if sid != gone]
    new = reconfig(alice, leaving=str(gone))
    assert_committed(new, lines, FIRST_VERSION, "reconfig by alice")
    bob = clients(c, [2], auth=False, auth_data=[("digest", "bob:secret")])
    reconfig_fails(bob, NoAuthError, "bob has no write ACL", joining=c.spec(gone))


@pytest.mark.timeout(120)
def test_reconfig_bad_arguments(kind, fresh3, clients):
    c = fresh3
    client = clients(c, [1])
    four = c.prepare_member(4) if 4 not in c.members else c.members[4]
    q, e, p = four.quorum_port, four.election_port, four.port
    # standaloneEnabled=false: at least one voter must remain
    reconfig_fails(client, BadArgumentsError, "-remove 1,2,3", leaving="1,2,3")
    reconfig_fails(client, BadArgumentsError, "every voter made an observer",
                   joining=",".join(c.spec(sid, "observer") for sid in (1, 2, 3)))
    # malformed server strings
    for joining in (f"server.4",
                    f"server.4=127.0.0.1:{q}",
                    f"server.4=127.0.0.1:{q}:{e}",  # no client port: -add needs one
                    f"server.4=127.0.0.1:{q}:{e}:badrole;127.0.0.1:{p}",
                    f"server.4=127.0.0.1:{q}:{e};127.0.0.1:notaport",
                    f"server.4=127.0.0.1:{q}:{e}:participant;127.0.0.1:{p}=x"):
        reconfig_fails(client, BadArgumentsError, f"-add {joining}", joining=joining)
    reconfig_fails(client, BadArgumentsError, "-members server.1=garbage", members="server.1=garbage")
    # the N= shorthand is for -add only
    reconfig_fails(client, BadArgumentsError, "-members with the 1= shorthand",
                   members=",".join(c.spec(sid, prefix="") for sid in (1, 2, 3)))
    cli_failed(zkcli(c.members[1].port, "reconfig -remove 1,2,3"), CLI_BADARGS, "zkCli -remove 1,2,3")
    assert_config(c, 1, c.initial_lines, FIRST_VERSION, "after refused requests")
    assert c.leader() is not None


@pytest.mark.timeout(120)
def test_reconfig_unparseable_requests_are_marshalling_errors(kind, fresh3, clients):
    """ZooKeeper 3.8 answers these with MarshallingError (unchecked exceptions on the leader),
    where the manual would lead one to expect BadArguments (ref README note 11)."""
    c = fresh3
    client = clients(c, [1])
    four = c.prepare_member(4) if 4 not in c.members else c.members[4]
    reconfig_fails(client, MarshallingError, "non-numeric id in -add",
                   joining=f"server.x=127.0.0.1:{four.quorum_port}:{four.election_port};127.0.0.1:{four.port}")
    reconfig_fails(client, MarshallingError, "-remove abc", leaving="abc")
    reconfig_fails(client, MarshallingError, "-members with only observers",
                   members=",".join(c.spec(sid, "observer") for sid in (1, 2, 3)))
    cli_failed(zkcli(c.members[1].port, "reconfig -remove abc"), CLI_MARSHALLING, "zkCli -remove abc")
    assert_config(c, 1, c.initial_lines, FIRST_VERSION, "after refused requests")


@pytest.mark.timeout(120)
def test_new_config_needs_a_connected_quorum(kind, fresh3, clients):
    c = fresh3
    client = clients(c, [1])
    absent = {sid: (c.members[sid] if sid in c.members else c.prepare_member(sid)) for sid in (4, 5, 6)}
    assert not any(m.running for m in absent.values())
    leader = c.leader()
    others = [sid for sid in (1, 2, 3) if sid != leader]
    reconfig_fails(client, NewConfigNoQuorumError, "voters replaced by a server that is not running",
                   leaving=",".join(map(str, others)), joining=c.spec(4))
    reconfig_fails(client, NewConfigNoQuorumError, "three participants that are not running",
                   joining=",".join(c.spec(sid) for sid in (4, 5, 6)))
    result = zkcli(c.members[1].port, "reconfig -add " + ",".join(c.spec(sid) for sid in (4, 5, 6)))
    cli_failed(result, CLI_NOQUORUM, "zkCli three absent participants")
    assert_config(c, 1, c.initial_lines, FIRST_VERSION, "after refused requests")


@pytest.mark.timeout(120)
def test_observer_to_participant_with_a_crashed_voter(kind, cluster, clients):
    """The manual's "Changing an observer into a follower" (ref i_grow_and_roles i2)."""
    c = cluster(3)
    c.add_joiner(4, "observer")
    client = clients(c, [c.leader()])
    observer = reconfig(client, joining=c.spec(4, "observer"))
    c.wait_for_mode(4, "observer", 30)
    leader = c.leader()
    crashed = followers(c, leader, [1, 2, 3])[0]
    c.ens.kill(crashed)
    # the leader validates against the followers it still counts as synced: wait until it has
    # noticed the crash (mntr's zk_synced_followers, 2 -> 1), or the reconfig may be proposed
    # and then need a quorum that cannot answer
    wait_until(lambda: mntr(c, leader).get("zk_synced_followers") == "1", 30,
               "the leader to notice the crashed follower")
    # 3 synced voters of (1,2,3,4) are needed and an observer cannot acknowledge the state transfer
    reconfig_fails(client, NewConfigNoQuorumError, "observer -> participant with a voter down",
                   joining=c.spec(4, "participant"))
    # the workaround: remove it (non-voting follower), then add it as a participant
    removed = reconfig(client, leaving="4")
    assert_committed(removed, c.initial_lines, observer.version, "-remove 4")
    c.wait_for_mode(4, "follower", 30)
    added = reconfig(client, joining=c.spec(4, "participant"))
    assert_committed(added, c.initial_lines + [c.spec(4)], removed.version, "-add 4 as participant")
    client.create("/with-4-voting", b"ok")  # 3 of 4 voters up


@pytest.mark.timeout(120)
def test_reconfig_in_progress(kind, cluster, clients):
    """A second reconfig while the first is proposed but not committed (ref e_errors e8)."""
    c = cluster(3)
    leader = c.leader()
    dropped, frozen = followers(c, leader)
    a = clients(c, [leader])
    b = clients(c, [leader])
    # the new config {leader, frozen} needs the frozen follower's ack, which it cannot give yet;
    # it still counts as synced for syncLimit ticks, so the request passes the quorum check
    # (and the second request's error reply is queued behind the first, so it too waits for it)
    c.ens.kill(frozen, SIGSTOP)
    try:
        first = a.reconfig_async(None, str(dropped), None, -1)
        time.sleep(0.5)
        second = b.reconfig_async(None, str(frozen), None, -1)
        time.sleep(1.0)
    finally:
        c.ens.kill(frozen, SIGCONT)
    try:
        data, _ = second.get(timeout=30)
    except ReconfigInProcessError:
        pass
    except (KazooException, KazooTimeoutError) as e:
        raise AssertionError(f"second reconfig while the first is pending: expected ReconfigInProcessError, "
                             f"got {e!r}") from e
    else:
        raise AssertionError(f"second reconfig while the first is pending committed:\n{data.decode()}")
    data, stat = first.get(timeout=30)
    config = Config.parse(data)
    config.stat = stat
    assert_committed(config, [c.spec(sid) for sid in sorted((leader, frozen))], FIRST_VERSION, "the first reconfig")


@pytest.mark.timeout(120)
def test_reconfig_disabled(kind, cluster, clients):
    c = cluster(1, reconfig_enabled=False)
    assert c.mode(1) == "leader"
    # never bumped to the NEWLEADER zxid while reconfig is disabled (ref e_errors e10)
    assert_config(c, 1, c.initial_lines, 0, "reconfigEnabled=false")
    two = c.prepare_member(2)
    reconfig_fails(clients(c, [1]), ReconfigDisabledError, "with auth", joining=c.spec(2))
    reconfig_fails(clients(c, [1], auth=False), ReconfigDisabledError, "without auth", joining=c.spec(2))
    cli_failed(zkcli(c.members[1].port, "reconfig -add " + c.spec(2)), CLI_DISABLED, "zkCli")
    assert not two.running
    check_golden(kind, "files_reconfig_disabled", normalize(c, 1, c.config_files(1), {}))


@pytest.mark.timeout(120)
def test_standalone_enabled_limits(kind, cluster, clients):
    # one server with standaloneEnabled=true runs standalone: no config, no reconfig
    single = cluster(1, standalone_enabled=True)
    assert single.mode(1) == "standalone"
    assert single.config_files(1) == {"zoo.cfg": single.written_zoo_cfg(1)}, "no split in standalone mode"
    client = clients(single, [1])
    client.sync(CONFIG_NODE)
    assert client.get(CONFIG_NODE)[0] == b""
    single.prepare_member(2)
    reconfig_fails(client, UnimplementedError, "reconfig of a standalone server", joining=single.spec(2))
    single.cleanup()
    # two participants with standaloneEnabled=true must keep two voters
    pair = cluster(2, standalone_enabled=True)
    client = clients(pair, [1])
    reconfig_fails(client, BadArgumentsError, "-remove 2 of 2", leaving="2")
    reconfig_fails(client, BadArgumentsError, "2 -> observer", joining=pair.spec(2, "observer"))
    assert_config(pair, 1, pair.initial_lines, FIRST_VERSION, "after refused requests")


# -- growing and shrinking (ref i_grow_and_roles i1) -------------------------------------------------

@pytest.mark.timeout(180)
def test_grow_from_one_participant_to_five_and_shrink_back(kind, cluster, clients):
    c = cluster(1)
    assert c.mode(1) == "leader", "standaloneEnabled=false: one participant leads"
    assert_config(c, 1, c.initial_lines, FIRST_VERSION, "single participant")
    client = clients(c, [1])
    version = FIRST_VERSION
    lines = list(c.initial_lines)
    for sid in (2, 3, 4, 5):
        c.add_joiner(sid, "participant")
        assert c.mode(sid) == "follower"
        new = reconfig(client, joining=c.spec(sid))
        lines.append(c.spec(sid))
        assert_committed(new, lines, version, f"-add {sid}")
        version = new.version
    wait_config_everywhere(c, lines, version)
    assert sorted(c.modes().values()) == ["follower"] * 4 + ["leader"]
    write_and_check_everywhere(c, clients, "/grown", [1, 2, 3, 4, 5])

    leader = c.leader()
    for sid in [s for s in (5, 4, 3, 2, 1) if s != leader]:
        lines.remove(c.spec(sid))
        new = reconfig(client, leaving=str(sid))
        assert_committed(new, lines, version, f"-remove {sid}")
        version = new.version
    assert lines == [c.spec(leader)]
    assert c.mode(leader) == "leader"
    wait_config_everywhere(c, lines, version)
    # the single remaining voter commits alone; the removed ones still follow
    write_and_check_everywhere(c, clients, "/shrunk", [1, 2, 3, 4, 5], through=leader)


# -- client port change (ref b_incremental b6) ---------------------------------------------------------

@pytest.mark.timeout(120)
def test_client_port_change_keeps_existing_sessions(kind, cluster, clients):
    c = cluster(3)
    leader = c.leader()
    target = followers(c, leader)[0]
    old_port, new_port = c.members[target].port, free_port()
    states = []
    session = clients(c, [target], listener=states.append)
    session_id = session.client_id[0]
    states.clear()  # the initial CONNECTED
    session.create("/port-change", b"before")

    admin = clients(c, [leader])
    new = reconfig(admin, joining=c.spec(target, client_port=new_port))
    lines = [c.spec(sid, client_port=new_port if sid == target else None) for sid in (1, 2, 3)]
    assert_committed(new, lines, FIRST_VERSION, "client port change")
    c.members[target].port = new_port

    # the new port answers, the old one is closed
    wait_until(lambda: c.mode(target) == "follower", 20, f"server {target} to answer on the new port {new_port}")

    def old_port_closed():
        try:
            four_letter_word(old_port, "srvr", timeout=1.0)
            return False
        except OSError:
            return True
    wait_until(old_port_closed, 20, f"old client port {old_port} to stop accepting connections")

    # the established session keeps its connection
    session.set("/port-change", b"after")
    session.sync(CONFIG_NODE)
    assert session.get(CONFIG_NODE)[0] == config_text(lines, new.version)
    assert session.client_id[0] == session_id
    assert states == [], f"the session on the old port saw state changes {states}"
    result = zkcli(new_port, "config -c", auth=False)
    assert result.status == 0, result
    version, hosts = result.lines[0].split(" ")
    assert version == f"{new.version:x}"
    assert sorted(hosts.split(",")) == sorted(f"127.0.0.1:{m.port}" for m in c.members.values())


def accepts_connections(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.mark.timeout(240)
def test_follower_quorum_and_election_port_change_then_it_leads(kind, cluster, clients):
    """"One can modify any of the ports of a server ... without rebooting the server": the
    follower listens on its new quorum and election ports (the old ones close), and when it
    later leads, learners reach it there."""
    c = cluster(3)
    leader = c.leader()
    # the follower with the larger id: it wins the election between equally current servers
    other, target = sorted(followers(c, leader))
    old_quorum, old_election = c.members[target].quorum_port, c.members[target].election_port
    c.members[target].quorum_port, c.members[target].election_port = free_port(), free_port()
    admin = clients(c, [leader])
    lines = [c.spec(sid) for sid in (1, 2, 3)]
    new = reconfig(admin, joining=c.spec(target))
    assert_committed(new, lines, FIRST_VERSION, "quorum and election port change")
    new_quorum, new_election = c.members[target].quorum_port, c.members[target].election_port
    wait_until(lambda: accepts_connections(new_election), 20, f"election port {new_election} to listen")
    wait_until(lambda: not accepts_connections(old_election), 20, f"old election port {old_election} to close")
    if kind == "zkrs":
        # zkrs binds its quorum port for its whole life (ZooKeeper only while leading)
        wait_until(lambda: accepts_connections(new_quorum), 20, f"quorum port {new_quorum} to listen")
        wait_until(lambda: not accepts_connections(old_quorum), 20, f"old quorum port {old_quorum} to close")
    # make the moved server lead: kill the leader, and then whoever else leads
    c.ens.kill(leader, SIGKILL)
    wait_until(lambda: c.leader() in (target, other), 60, "a leader among the two left")
    if c.leader() == other:
        c.relaunch(leader)
        c.ens.wait_until_serving(leader, timeout=60)
        c.ens.kill(other, SIGKILL)
        wait_until(lambda: c.leader() is not None, 60, "a leader after the second kill")
    assert c.leader() == target, c.modes()
    assert accepts_connections(new_quorum), "the leader listens on its new quorum port"
    at = clients(c, [target])
    at.create("/moved-leader", b"x")
    follower = [sid for sid in c.running() if sid != target][0]
    c.wait_for_mode(follower, "follower", 60)
    at_follower = clients(c, [follower])
    at_follower.sync("/moved-leader")
    assert at_follower.get("/moved-leader")[0] == b"x"


# -- removing the leader (ref g_remove_leader) ---------------------------------------------------------

def largest_ack_gap(writer, since):
    """(length, end) of the largest interval between consecutive acknowledgements that ends
    after `since` (monotonic times)."""
    with writer._lock:
        acks = sorted(acked for _, acked in writer.acked.values())
    gaps = [(b - a, b) for a, b in zip(acks, acks[1:]) if b >= since]
    return max(gaps) if gaps else (0.0, since)


def assert_nothing_acknowledged_lost(writer, present, where):
    duplicated = sorted(n for n, count in Counter(present).items() if count > 1)
    assert not duplicated, f"{where}: writes applied twice: {duplicated[:10]}"
    missing = sorted(set(writer.acked) - set(present))
    assert not missing, (f"{where}: {len(missing)} acknowledged writes lost, e.g. {missing[:10]} "
                         f"(of {len(writer.acked)} acknowledged)")
    invented = sorted(set(present) - set(range(writer.attempted)))
    assert not invented, f"{where}: writes nobody issued: {invented[:10]}"


LEADER_EVENTS = {
    # manual: the three reconfigurations that cause a leader hand-off, and a crash as baseline
    "remove": "reconfig -remove <leader>",
    "demote": "reconfig -add <leader>:observer",
    "quorum-port": "reconfig -add <leader> with a new quorum port",
    "kill-9": "kill -9 <leader>",
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how,writer_on", [("remove", "follower"), ("remove", "leader"), ("demote", "follower"),
                                           ("quorum-port", "follower"), ("kill-9", "follower")])
def test_leader_leaves_under_write_load(kind, how, writer_on, cluster, clients, timing):
    c = cluster(3)
    leader = c.leader()
    follower = followers(c, leader)[0]
    others = [sid for sid in (1, 2, 3) if sid != leader]
    # the writer only knows its server (and, when on the leader, the others to fail over to)
    writer_hosts = [follower] if writer_on == "follower" else [leader] + others
    write_client = clients(c, writer_hosts, randomize_hosts=False)
    write_client.ensure_path("/writes")
    session_id = write_client.client_id[0]
    write_client.create("/writer-ephemeral", b"", ephemeral=True)
    writer = SequentialWriter(write_client, "/writes").start()
    expected = None
    try:
        writer.wait_for_acks(time.monotonic(), count=100)
        admin = clients(c, [follower])
        started = time.monotonic()
        if how == "remove":
            expected = [c.spec(sid) for sid in others]
            new = reconfig_through_handoff(c, admin, expected, leaving=str(leader))
        elif how == "demote":
            expected = [c.spec(sid, "observer" if sid == leader else "participant") for sid in (1, 2, 3)]
            new = reconfig_through_handoff(c, admin, expected, joining=c.spec(leader, "observer"))
        elif how == "quorum-port":
            c.members[leader].quorum_port = free_port()
            expected = [c.spec(sid) for sid in (1, 2, 3)]
            new = reconfig_through_handoff(c, admin, expected, joining=c.spec(leader))
        else:
            c.ens.kill(leader, SIGKILL)
        if expected:
            assert new.lines == expected and new.version > FIRST_VERSION, new
        writer.wait_for_acks(started, count=1, timeout=60)
        writer.wait_for_acks(time.monotonic(), count=100, timeout=60)
    finally:
        writer.stop()
    gap, gap_end = largest_ack_gap(writer, started)
    label = f"{LEADER_EVENTS[how]}, writer on the {writer_on}"
    timing(f"{label}: largest gap between acknowledged writes", gap)
    timing(f"{label}: event -> end of that gap", gap_end - started)
    assert gap < 30, f"writes stalled for {gap:.1f}s"

    new_leader = c.wait_for_leader(timeout=60)
    assert new_leader in others, f"new leader {new_leader}, expected a hand-off to one of {others}"
    if expected:
        # the old leader stays up: non-voting follower, observer or voter; the hand-off itself
        # does not change the config version
        c.wait_for_mode(leader, "observer" if how == "demote" else "follower", 30)
        wait_config_everywhere(c, expected, new.version)
        # put it back as a participant: that reconfig's zxid carries the new leader's epoch
        lines = [c.spec(sid) for sid in (1, 2, 3)]
        back = reconfig(clients(c, [new_leader]), joining=c.spec(leader))
        assert_committed(back, lines, new.version, f"re-adding the old leader {leader}")
        assert back.version >> 32 > new.version >> 32, f"version {back.version:x} after the hand-off ({new.version:x})"
        c.wait_for_mode(leader, "follower", 30)
    else:
        assert_config(c, others[0], c.initial_lines, FIRST_VERSION, "a crash does not change the config")
        c.relaunch(leader)
        c.wait_for_mode(leader, "follower", 60)
        assert_config(c, leader, c.initial_lines, FIRST_VERSION, "the crashed leader, restarted")
    for sid in c.running():
        at = clients(c, [sid])
        present = [int(v) for v in read_children_data(at, "/writes").values()]
        assert_nothing_acknowledged_lost(writer, present, f"server {sid}")
    assert len(writer.acked) >= 200
    # the writer's session (and its ephemeral node) survived the leader change
    assert write_client.client_id[0] == session_id
    write_client.sync("/writer-ephemeral")
    assert write_client.exists("/writer-ephemeral").ephemeralOwner == session_id


@pytest.mark.timeout(120)
def test_incremental_corner_cases_that_commit(kind, cluster, clients):
    """Requests that succeed where one might expect an error (ref e_errors e6/e7, README note 10)."""
    c = cluster(3)
    client = clients(c, [1])
    c.prepare_member(4)  # never started
    # one absent participant: the 3 synced old voters are a quorum of the new 4
    added = reconfig(client, joining=c.spec(4))
    assert_committed(added, c.initial_lines + [c.spec(4)], FIRST_VERSION, "-add of an absent participant")
    client.create("/with-absent-voter", b"ok")  # 3 of 4 acknowledge
    removed = reconfig(client, leaving="4")
    assert_committed(removed, c.initial_lines, added.version, "-remove 4")
    # removing a non-member still makes a new version
    again = reconfig(client, leaving="7")
    assert_committed(again, c.initial_lines, removed.version, "-remove of a non-member")
    # adding and removing the same id in one request: the add wins
    both = reconfig(client, joining=c.spec(4, "observer"), leaving="4")
    assert_committed(both, c.initial_lines + [c.spec(4, "observer")], again.version, "-add 4 -remove 4")
    wait_config_everywhere(c, both.lines, both.version)
    # a bare ";port" client part means the wildcard address (manual 2.1; ref e_errors e7)
    nine = c.prepare_member(9)
    bare = reconfig(client, joining=f"server.9=127.0.0.1:{nine.quorum_port}:{nine.election_port}:observer;{nine.port}")
    assert_committed(bare, both.lines + [c.spec(9, "observer").replace(";127.0.0.1:", ";0.0.0.0:")], both.version,
                     "-add server.9=...;<port>")


# -- files and restarts (ref f_files) -----------------------------------------------------------------

def normalize(c, sid, files, versions):
    """Config files of server sid with its paths, every port and the given versions replaced by
    names, so that runs (and kinds) can be compared."""
    ports = {}
    for other, m in c.members.items():
        ports[str(m.port)] = f"<client.{other}>"
        ports[str(m.quorum_port)] = f"<quorum.{other}>"
        ports[str(m.election_port)] = f"<election.{other}>"
    out = {}
    for name, data in files.items():
        text = data.decode()
        for version, label in versions.items():
            name = name.replace(version, label)
            text = text.replace(version, label)
        text = text.replace(c.conf_dir(sid), "<SELF>").replace(c.workdir, "<ENSEMBLE>")
        text = re.sub(r"\b\d{4,5}\b", lambda m: ports.get(m.group(0), m.group(0)), text)
        out[name] = text
    return out


def check_golden(kind, name, actual):
    """Compares `actual` with golden/<name>.json, recorded from ZooKeeper 3.8. Re-record with
    RECONFIG_UPDATE_GOLDEN=1 (kind zk only)."""
    path = os.path.join(GOLDEN, f"{name}.json")
    if os.environ.get("RECONFIG_UPDATE_GOLDEN") == "1" and kind == "zk":
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w") as f:
            json.dump(actual, f, indent=1, sort_keys=True)
            f.write("\n")
    assert os.path.exists(path), f"{path} missing: record it with RECONFIG_UPDATE_GOLDEN=1 against kind zk"
    with open(path) as f:
        golden = json.load(f)
    for key in sorted(set(golden) | set(actual)):
        assert key in actual, f"{name}: {key} missing; have {sorted(actual)}"
        assert key in golden, f"{name}: unexpected {key}; ZooKeeper has {sorted(golden)}"
        assert actual[key] == golden[key], (f"{name}: {key} differs from ZooKeeper's\n--- got:\n{actual[key]}"
                                            f"\n--- ZooKeeper 3.8 wrote:\n{golden[key]}")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("style", ["legacy", "redundant-client-port", "split", "hierarchical"])
def test_config_file_formats(kind, style, cluster, clients):
    """The manual's configuration formats (2.3 examples 1 and 2, 2.4 backward compatibility) and
    a hierarchical quorum: the config the servers report and the files they split theirs into
    (ref f_files f3-f5, e_errors e9)."""
    c = cluster(3, style=style)
    for sid in (1, 2, 3):
        assert_config(c, sid, c.initial_lines, FIRST_VERSION, style)
    dynamic0 = c.initial_lines
    if style == "hierarchical":
        # reported as server, group, weight; written to the dynamic file as group, server, weight
        dynamic0 = [line for line in dynamic0 if line.startswith("group.")] + \
                   [line for line in dynamic0 if not line.startswith("group.")]
    files = c.config_files(1)
    backup = "zoo.cfg.dynamic" if style == "split" else "zoo.cfg.bak"
    assert sorted(files) == sorted(["zoo.cfg", backup, "zoo.cfg.dynamic.100000000"]), sorted(files)
    assert files["zoo.cfg.dynamic.100000000"] == "\n".join(dynamic0).encode(), files
    static = files["zoo.cfg"].decode().splitlines()
    assert static[-1] == f"dynamicConfigFile={c.conf_dir(1)}/zoo.cfg.dynamic.100000000", static
    if style == "split":
        # a hand-written unversioned dynamic file stays as it is, and no .bak is made
        assert files["zoo.cfg.dynamic"] == c.split_files[1].encode()
    else:
        assert files["zoo.cfg.bak"] == c.written_zoo_cfg(1), "the .bak is the original file, verbatim"
    client_port_lines = [line for line in static if line.startswith("clientPort")]
    # a clientPort that the server lines make redundant is dropped; a legacy one is kept
    assert client_port_lines == ([f"clientPort={c.members[1].port}"] if style == "legacy" else []), static
    golden = {f"server1/{name}": text for name, text in normalize(c, 1, files, {}).items()}

    if style == "legacy":
        result = zkcli(c.members[1].port, "config -c", auth=False)
        assert result.status == 0 and result.lines == ["100000000 ,,"], result
        # a reconfig that gives server 1 a client port removes clientPort= from its static file only
        lines = [c.spec(1)] + c.initial_lines[1:]
        new = reconfig(clients(c, [1]), joining=c.spec(1))
        assert_committed(new, lines, FIRST_VERSION, "legacy: server 1 gets a client port")
        wait_config_everywhere(c, lines, new.version)
        version = f"{new.version:x}"
        for sid in (1, 2, 3):
            wait_until(lambda: c.config_files(sid)["zoo.cfg"].decode().endswith(f".{version}\n"), 20,
                       f"server {sid}'s static file to point to zoo.cfg.dynamic.{version}")
        static1 = c.config_files(1)["zoo.cfg"].decode().splitlines()
        static2 = c.config_files(2)["zoo.cfg"].decode().splitlines()
        assert not any(line.startswith("clientPort") for line in static1), static1
        assert f"clientPort={c.members[2].port}" in static2, static2
        for sid in (1, 2):
            golden.update({f"after/server{sid}/{name}": text for name, text in
                           normalize(c, sid, c.config_files(sid), {version: "<V>"}).items()})
    check_golden(kind, f"formats_{style}", golden)


@pytest.mark.timeout(180)
def test_restart_after_reconfig_boots_into_the_new_config(kind, cluster, clients):
    c = cluster(3)
    initial = {sid: c.written_zoo_cfg(sid) for sid in (1, 2, 3)}
    dynamic0 = "\n".join(c.initial_lines).encode()   # no final newline
    for sid in (1, 2, 3):
        files = c.config_files(sid)
        assert sorted(files) == ["zoo.cfg", "zoo.cfg.bak", "zoo.cfg.dynamic.100000000"], sorted(files)
        assert files["zoo.cfg.bak"] == initial[sid], "the .bak is the original file, verbatim"
        assert files["zoo.cfg.dynamic.100000000"] == dynamic0
        static = files["zoo.cfg"].decode().splitlines()
        assert static[-1] == f"dynamicConfigFile={c.conf_dir(sid)}/zoo.cfg.dynamic.100000000", static
        assert sorted(static[:-1]) == sorted(f"{k}={v}" for k, v in c.static_cfg(c.members[sid]).items()), static

    c.add_joiner(4, "observer")
    joiner_initial = c.written_zoo_cfg(4)
    client = clients(c, [1])
    lines = [c.spec(sid) for sid in (1, 2, 4)]
    new = reconfig_through_handoff(c, client, lines, leaving="3", joining=c.spec(4))
    assert new.lines == lines
    client.create("/before-restart", b"kept")
    version = f"{new.version:x}"
    wait_config_everywhere(c, lines, new.version)
    # every server, the removed one too, wrote the new versioned file and repointed its static file
    for sid in (1, 2, 3, 4):
        files = c.config_files(sid)
        assert files.get(f"zoo.cfg.dynamic.{version}") == "\n".join(lines).encode(), (sid, files)
        static = files["zoo.cfg"].decode().splitlines()
        assert static[-1] == f"dynamicConfigFile={c.conf_dir(sid)}/zoo.cfg.dynamic.{version}", (sid, static)
        assert not any(line.startswith(("server.", "clientPort")) for line in static), (sid, static)
    assert c.config_files(4)["zoo.cfg.bak"] == joiner_initial
    before = {sid: c.config_files(sid) for sid in (1, 2, 3, 4)}
    check_golden(kind, "files_after_reconfig", {
        **{f"server1/{k}": v for k, v in normalize(c, 1, before[1], {version: "<V>"}).items()},
        **{f"server3/{k}": v for k, v in normalize(c, 3, before[3], {version: "<V>"}).items()},
        **{f"server4/{k}": v for k, v in normalize(c, 4, before[4], {version: "<V>"}).items()},
    })

    # restart everything; the members of the new config boot from the rewritten files
    for sid in (1, 2, 3, 4):
        c.stop(sid)
    for sid in (1, 2, 4):
        c.relaunch(sid)
    new_leader = c.wait_for_leader([1, 2, 4], timeout=90)
    assert new_leader in (1, 2, 4)
    for sid in (1, 2, 4):
        assert_config(c, sid, lines, new.version, "after restarting every server")
        assert c.config_files(sid) == before[sid], f"server {sid}'s files changed by the restart"
    at_4 = clients(c, [4])
    at_4.sync("/before-restart")
    assert at_4.get("/before-restart")[0] == b"kept"


@pytest.mark.timeout(120)
def test_joiner_restarted_before_being_added_refuses_to_start(kind, cluster, clients):
    c = cluster(3)
    c.add_joiner(4, "observer")
    joiner_initial = c.written_zoo_cfg(4)
    conf = c.conf_dir(4)
    # once connected it adopted the committed config, in which it is absent; initial file backed up
    wait_until(lambda: "dynamicConfigFile=" in c.config_files(4).get("zoo.cfg", b"").decode(), 20,
               "the joiner to rewrite its config files")
    files = c.config_files(4)
    assert files["zoo.cfg.bak"] == joiner_initial
    assert files["zoo.cfg.dynamic.100000000"] == "\n".join(c.initial_lines).encode()

    c.stop(4)
    c.relaunch(4)
    member = c.members[4]
    try:
        status = member.proc.wait(timeout=60)
    except Exception:  # noqa: BLE001
        status = None
    assert status not in (None, 0), (f"joiner 4 restarted before being added: expected it to exit with an error, "
                                     f"got {status!r}, mode {c.mode(4)!r}\n{c.ens.log_tail(4)}")
    assert re.search(r"(?i)\bid 4\b.*\bnot in\b", c.log_text(4)), \
        f"no clear 'my id 4 not in the peer list' message:\n{c.ens.log_tail(4)}"

    # given an initial configuration again, it starts and can be added
    shutil.copyfile(os.path.join(conf, "zoo.cfg.bak"), os.path.join(conf, "zoo.cfg"))
    c.relaunch(4)
    c.wait_for_mode(4, "follower", 60)
    new = reconfig(clients(c, [1]), joining=c.spec(4))
    assert_committed(new, c.initial_lines + [c.spec(4)], FIRST_VERSION, "-add 4 after its restart")
