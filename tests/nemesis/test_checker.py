#!/usr/bin/env python3
"""Unit tests of the nemesis checkers on hand-made histories (linearizable and not).

    python3 tests/nemesis/test_checker.py      (also collected by pytest)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checker import (check_counter, check_locks, check_queue, check_register_sessions,  # noqa: E402
                     check_registers, linearizable, register_step)

INIT = "init"
_ids = iter(range(1_000_000))


def op(f, t0, t1, value=None, result=None, type="ok", process="p1", key="/k", error=None, **kw):
    return dict(id=next(_ids), f=f, invoke=t0, complete=None if type == "info" else t1, value=value,
                result=result, type=type, process=process, key=key, error=error, session="s", **kw)


def lin(ops):
    verdict, detail = linearizable(ops, (INIT, 0), register_step)
    return verdict


def test_sequential_history_is_linearizable():
    h = [op("write", 0, 1, "a", 1), op("read", 2, 3, result=["a", 1]), op("cas", 4, 5, [1, "b"], 2),
         op("read", 6, 7, result=["b", 2])]
    assert lin(h) is True


def test_stale_read_after_write_completed_is_not():
    h = [op("write", 0, 1, "a", 1), op("read", 2, 3, result=[INIT, 0])]
    assert lin(h) is False


def test_concurrent_read_may_see_either():
    h = [op("write", 0, 5, "a", 1), op("read", 1, 2, result=[INIT, 0], process="p2"),
         op("read", 3, 4, result=["a", 1], process="p3")]
    assert lin(h) is True


def test_reads_going_back_across_processes_is_not():
    # p2 sees the new value, then (strictly later) p3 sees the old one: not linearizable
    h = [op("write", 0, 10, "a", 1), op("read", 1, 2, result=["a", 1], process="p2"),
         op("read", 3, 4, result=[INIT, 0], process="p3")]
    assert lin(h) is False


def test_indeterminate_write_may_apply_late():
    h = [op("write", 0, None, "a", type="info"), op("read", 5, 6, result=[INIT, 0], process="p2"),
         op("read", 7, 8, result=["a", 1], process="p2")]
    assert lin(h) is True


def test_indeterminate_write_may_never_apply():
    h = [op("write", 0, None, "a", type="info"), op("read", 5, 6, result=[INIT, 0], process="p2")]
    assert lin(h) is True


def test_indeterminate_write_cannot_apply_before_its_invocation():
    h = [op("read", 0, 1, result=["a", 1], process="p2"), op("write", 2, None, "a", type="info")]
    assert lin(h) is False


def test_indeterminate_write_cannot_be_undone():
    h = [op("write", 0, None, "a", type="info"), op("read", 5, 6, result=["a", 1], process="p2"),
         op("read", 7, 8, result=[INIT, 0], process="p2")]
    assert lin(h) is False


def test_cas_against_wrong_version_is_not():
    h = [op("write", 0, 1, "a", 1), op("cas", 2, 3, [0, "b"], 1)]  # version 0 is gone
    assert lin(h) is False


def test_badversion_is_checked():
    ok = [op("write", 0, 1, "a", 1), op("cas", 2, 3, [0, "b"], type="fail", error="BadVersion")]
    assert lin(ok) is True
    # a cas that failed although the version was the expected one, with nothing concurrent
    bad = [op("write", 0, 1, "a", 1), op("cas", 2, 3, [1, "b"], type="fail", error="BadVersion")]
    assert lin(bad) is False


def test_write_result_version_must_fit():
    # two acknowledged writes cannot both have produced version 1
    h = [op("write", 0, 1, "a", 1), op("write", 2, 3, "b", 1, process="p2")]
    assert lin(h) is False


def test_lost_acknowledged_write():
    h = [op("write", 0, 1, "a", 1), op("write", 2, 3, "b", 2),
         op("read", 10, 11, result=["a", 1], final=True)]
    assert lin(h) is False
    res = check_registers(h, INIT)
    assert res["lost_writes"] == 1 and res["anomalies"]


def test_many_concurrent_processes_search_terminates():
    h = []
    t = 0.0
    version = 0
    for i in range(60):
        # three overlapping writers per round, the reads order them
        ops = []
        for p in range(3):
            version += 1
            ops.append(op("write", t, t + 5, f"v{i}-{p}", version, process=f"w{p}"))
        h.extend(ops)
        h.append(op("read", t + 6, t + 7, result=[f"v{i}-2", version], process="r"))
        t += 10
    h.append(op("write", 1, None, "ghost", type="info", process="x"))
    assert lin(h) is True


def test_session_monotonic_reads():
    h = [op("write", 0, 1, "a", 1, process="p1"), op("plain-read", 2, 3, result=[INIT, 0], process="p1")]
    assert check_register_sessions("/k", h, INIT)
    h = [op("write", 0, 1, "a", 1, process="p1"), op("plain-read", 2, 3, result=[INIT, 0], process="p2")]
    assert not check_register_sessions("/k", h, INIT)  # another session may lag behind
    h = [op("plain-read", 0, 1, result=["zzz", 1], process="p2")]
    assert check_register_sessions("/k", h, INIT)  # never written


def test_two_values_for_one_version():
    h = [op("write", 0, 1, "a", 1, process="p1"), op("plain-read", 2, 3, result=["b", 1], process="p2"),
         op("write", 0, None, "b", type="info", process="p3")]
    assert check_register_sessions("/k", h, INIT)


def test_queue():
    h = [op("enqueue", 0, 1, "x"), op("enqueue", 0, 1, "y"), op("enqueue", 0, None, "z", type="info"),
         op("dequeue", 2, 3, result="x"), op("dequeue", 2, None, value="y", type="info")]
    assert not check_queue(h, [])["anomalies"]          # y may have been dequeued
    assert not check_queue(h, ["y", "z"])["anomalies"]
    res = check_queue(h[:2] + h[3:4], [])                # y acknowledged, gone
    assert res["lost_writes"] == 1
    assert check_queue(h + [op("dequeue", 4, 5, result="x")], [])["anomalies"]  # twice
    assert check_queue(h, ["x"])["anomalies"]            # dequeued and still there
    assert check_queue(h, ["w"])["anomalies"]            # never enqueued


def test_locks():
    a = op("acquire", 0, 1, process="a", key="L")
    ra = op("release", 5, 6, process="a", key="L")
    b_ok = op("acquire", 6, 7, process="b", key="L")
    assert not check_locks([a, ra, b_ok], {}, 100)["anomalies"]
    b_bad = op("acquire", 2, 3, process="b", key="L")
    assert check_locks([a, ra, b_bad], {}, 100)["anomalies"]
    # a saw its connection suspended at 1.5: from its own view it no longer held the lock
    assert not check_locks([a, ra, b_bad], {"a": [1.5]}, 100)["anomalies"]


def test_counter():
    h = [op("increment", 0, 1, result=1), op("increment", 2, 3, result=2),
         op("increment", 4, None, type="info")]
    assert not check_counter(h, 2)["anomalies"]
    assert not check_counter(h, 3)["anomalies"]
    assert check_counter(h, 1)["lost_writes"] == 1
    assert check_counter(h, 4)["anomalies"]


if __name__ == "__main__":
    failed = 0
    tests = [(name, fn) for name, fn in sorted(globals().items()) if name.startswith("test_")]
    for name, fn in tests:
        try:
            fn()
            print(f"ok   {name}")
        except AssertionError as e:
            failed += 1
            print(f"FAIL {name}: {e!r}")
    print(f"{len(tests) - failed}/{len(tests)} checker tests passed")
    sys.exit(1 if failed else 0)
