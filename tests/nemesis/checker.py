"""Checkers for nemesis histories.

A history is a list of operations (dicts), Jepsen style:

    {"id": 17, "process": "reg3", "session": "0x1000...", "f": "cas", "key": "/nem/reg/0-1",
     "value": [4, "reg3-88"], "type": "ok" | "fail" | "info", "result": ...,
     "invoke": 12.345, "complete": 12.401 | None}

type "ok": the operation took effect and its result is known; "fail": it certainly did not
take effect (e.g. BadVersion, NoNode); "info": indeterminate (ConnectionLoss, timeout,
session expiry while in flight): it may take effect at any moment after its invocation, or
never.

Registers (znodes written with setData) are checked for linearizability with the
Wing & Gong / Lowe algorithm (the one Knossos' "linear" and Porcupine use): depth-first
search over the order in which pending operations take effect, memoizing the
(set of linearized operations, register state) pairs already explored. The register state is
(data, version): every successful setData increments the version, and ZooKeeper tells us the
version each write produced and each read saw, which pins the order of writes down tightly.

    write(v)          setData(path, v, -1)        ok result: the new version
    cas([ver, v])     setData(path, v, ver)       ok result: the new version; fail: BadVersion
    read              sync(path); getData(path)   ok result: [data, version]
    plain-read        getData(path) (no sync)     checked per session, not for linearizability

Plain reads are checked for sequential consistency per session: a session never sees an
older version of a key than one it already saw or wrote, and every (version, data) pair ever
observed is the one the write of that version produced.
"""
import math
from collections import defaultdict

# -- linearizability (Wing & Gong / Lowe) --------------------------------------------------------


class _Entry:
    __slots__ = ("op", "idx", "is_call", "match", "prev", "next", "info")

    def __init__(self, op, idx, is_call, info):
        self.op, self.idx, self.is_call, self.info = op, idx, is_call, info
        self.match = self.prev = self.next = None


def _lift(e):
    e.prev.next = e.next
    if e.next is not None:
        e.next.prev = e.prev
    m = e.match
    m.prev.next = m.next
    if m.next is not None:
        m.next.prev = m.prev


def _unlift(e):
    m = e.match
    m.prev.next = m
    if m.next is not None:
        m.next.prev = m
    e.prev.next = e
    if e.next is not None:
        e.next.prev = e


def linearizable(ops, init, step, budget=2_000_000):
    """Whether `ops` (dicts with invoke, complete, type) are linearizable for the sequential
    model `step(state, op) -> new state | None` (None: op cannot take effect in `state`;
    for an "info" op, returning the state unchanged models "it had no effect").

    Returns (verdict, detail): verdict True, False, or None when the search exceeded
    `budget` steps (inconclusive, reported as such, never as linearizable)."""
    ops = [op for op in ops if op["type"] in ("ok", "info", "fail")]
    events = []
    for i, op in enumerate(ops):
        info = op["type"] == "info"
        call = _Entry(op, i, True, info)
        ret = _Entry(op, i, False, info)
        call.match, ret.match = ret, call
        events.append((op["invoke"], 0, i, call))
        events.append((math.inf if info else op["complete"], 1, i, ret))
    events.sort(key=lambda t: t[:3])
    head = _Entry(None, -1, False, False)
    prev = head
    for _, _, _, e in events:
        prev.next, e.prev = e, prev
        prev = e

    state, linearized, stack, cache = init, 0, [], set()
    entry = head.next
    steps = 0
    best_depth, best_stuck = -1, None
    while head.next is not None:
        steps += 1
        if steps > budget:
            return None, {"reason": f"search exceeded {budget} steps", "ops": len(ops)}
        if entry.is_call:
            new = step(state, entry.op)
            if new is not None:
                nl = linearized | (1 << entry.idx)
                key = (nl, new)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state, linearized = new, nl
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if entry.info:
                # only info ops remain un-returned: every ok op has been linearized, the rest
                # may never have taken effect
                return True, {"ops": len(ops), "steps": steps}
            if len(stack) > best_depth:
                best_depth, best_stuck = len(stack), (entry.op, state)
            if not stack:
                break
            entry, state = stack.pop()
            linearized &= ~(1 << entry.idx)
            _unlift(entry)
            entry = entry.next
    else:
        return True, {"ops": len(ops), "steps": steps}
    op, st = best_stuck
    return False, {"ops": len(ops), "steps": steps, "linearized_prefix": best_depth,
                   "stuck_on": op, "state_there": st}


def register_step(state, op):
    """The sequential specification of a znode written with setData: state (data, version)."""
    value, version = state
    f, kind = op["f"], op["type"]
    if f == "write":
        if kind == "ok" and op["result"] != version + 1:
            return None
        return (op["value"], version + 1)
    if f == "cas":
        expected, new = op["value"]
        if kind == "fail":  # BadVersion: the version was not `expected` at that moment
            return None if version == expected else state
        if version == expected:
            if kind == "ok" and op["result"] != version + 1:
                return None
            return (new, version + 1)
        return state if kind == "info" else None
    if f == "read":
        return state if tuple(op["result"]) == state else None
    raise ValueError(f"not a register op: {f}")


def register_ops_for_linearizability(ops):
    """The ops of one key the linearizability check needs: ok/info writes and cas, BadVersion
    failures, ok synced reads. Info reads tell nothing; other definite failures had no effect."""
    out = []
    for op in ops:
        if op["f"] in ("write", "cas"):
            if op["type"] in ("ok", "info") or (op["type"] == "fail" and op.get("error") == "BadVersion"
                                               and op["f"] == "cas"):
                out.append(op)
        elif op["f"] == "read" and op["type"] == "ok":
            out.append(op)
    return out


def check_registers(history, init_value, budget=2_000_000):
    """Linearizability per key plus the per-session checks of plain reads.
    Returns {"keys": n, "ops": n, "anomalies": [...], "inconclusive": [...], "lost_writes": n}."""
    by_key = defaultdict(list)
    for op in history:
        if op["f"] in ("write", "cas", "read", "plain-read"):
            by_key[op["key"]].append(op)
    anomalies, inconclusive, lost = [], [], 0
    for key, ops in sorted(by_key.items()):
        lin_ops = register_ops_for_linearizability(ops)
        verdict, detail = linearizable(lin_ops, (init_value, 0), register_step, budget)
        if verdict is False:
            anomalies.append({"check": "register linearizability", "key": key, **detail})
        elif verdict is None:
            inconclusive.append({"check": "register linearizability", "key": key, **detail})
        anomalies.extend(check_register_sessions(key, ops, init_value))
        lost += lost_register_writes(ops)
    return {"keys": len(by_key), "ops": sum(len(v) for v in by_key.values()),
            "anomalies": anomalies, "inconclusive": inconclusive, "lost_writes": lost}


def lost_register_writes(ops):
    """Acknowledged writes missing from the last ok read: every successful setData bumps the
    version, so the highest version read must be at least the number of acknowledged writes
    and cas (a shortfall is that many acknowledged writes lost)."""
    acked = sum(1 for op in ops if op["f"] in ("write", "cas") and op["type"] == "ok")
    reads = [op for op in ops if op["f"] in ("read", "plain-read") and op["type"] == "ok"]
    final = [op for op in reads if op.get("final")]
    if not final:
        return 0
    return max(0, acked - final[-1]["result"][1])


def check_register_sessions(key, ops, init_value):
    """Per-session monotonic versions (reads never go back behind what the session saw or
    wrote) and a single data value per version across all observations."""
    anomalies = []
    written_values = {init_value} | {op["value"] if op["f"] == "write" else op["value"][1]
                                     for op in ops if op["f"] in ("write", "cas")}
    version_value = {0: (init_value, None)}
    for op in ops:
        if op["type"] != "ok":
            continue
        if op["f"] == "write":
            observed = (op["result"], op["value"])
        elif op["f"] == "cas":
            observed = (op["result"], op["value"][1])
        else:
            observed = (op["result"][1], op["result"][0])
            if op["result"][0] not in written_values:
                anomalies.append({"check": "read of a value never written", "key": key, "op": op})
        version, value = observed
        seen = version_value.get(version)
        if seen is None:
            version_value[version] = (value, op)
        elif seen[0] != value:
            anomalies.append({"check": "two values for one version", "key": key, "version": version,
                              "first": seen, "then": op})
    last = {}  # (process, session) -> (version, op)
    for op in sorted((o for o in ops if o["type"] == "ok"), key=lambda o: o["complete"]):
        if op["f"] in ("write", "cas"):
            version = op["result"]
        else:
            version = op["result"][1]
        sess = (op["process"], op.get("session"))
        prev = last.get(sess)
        if prev is not None and version < prev[0] and op["f"] in ("read", "plain-read"):
            anomalies.append({"check": "session read went back in time", "key": key,
                              "saw_before": prev[1], "then_read": op})
        if prev is None or version > prev[0]:
            last[sess] = (version, op)
    return anomalies


# -- queue ---------------------------------------------------------------------------------------

def check_queue(history, drained):
    """enqueue(x) ok/info, dequeue ok result x / info value x; `drained` = elements left in the
    queue at the end. No element dequeued twice, none that was never enqueued, and every
    acknowledged enqueue is either dequeued (ok or maybe) or still in the queue."""
    anomalies = []
    enq_ok = {op["value"] for op in history if op["f"] == "enqueue" and op["type"] == "ok"}
    enq_any = {op["value"] for op in history if op["f"] == "enqueue" and op["type"] in ("ok", "info")}
    deq_ok = defaultdict(list)
    deq_maybe = set()
    for op in history:
        if op["f"] != "dequeue":
            continue
        if op["type"] == "ok":
            deq_ok[op["result"]].append(op)
        elif op["type"] == "info" and op.get("value") is not None:
            deq_maybe.add(op["value"])
    for x, ops in deq_ok.items():
        if len(ops) > 1:
            anomalies.append({"check": "queue element dequeued twice", "element": x, "ops": ops})
        if x not in enq_any:
            anomalies.append({"check": "dequeued an element never enqueued", "element": x})
    drained_set = set(drained)
    if len(drained_set) != len(drained):
        anomalies.append({"check": "element twice in the final queue",
                          "elements": sorted(x for x in drained_set if drained.count(x) > 1)})
    for x in drained_set:
        if x in deq_ok:
            anomalies.append({"check": "element dequeued and still in the queue", "element": x})
        if x not in enq_any:
            anomalies.append({"check": "element in the queue never enqueued", "element": x})
    lost = sorted(x for x in enq_ok if x not in deq_ok and x not in deq_maybe and x not in drained_set)
    for x in lost:
        anomalies.append({"check": "acknowledged enqueue lost", "element": x})
    return {"enqueued": len(enq_ok), "dequeued": len(deq_ok), "left": len(drained_set),
            "anomalies": anomalies, "lost_writes": len(lost)}


# -- locks ---------------------------------------------------------------------------------------

def check_locks(history, suspensions, run_end):
    """Ephemeral-node locks, judged by the holders' own view. A holder holds lock L from the
    acknowledgement of its create until the earliest of: the invocation of its release, the
    first moment its client saw the connection suspended or the session lost (`suspensions`:
    process -> sorted times), the end of the run. A violation is an acquisition by another
    client whose whole invoke..complete interval lies inside such a holding interval: the
    server acknowledged a second holder while the first one's session was live (it had not
    even noticed a disconnection) and so its ephemeral present."""
    anomalies = []
    holds = defaultdict(list)
    releases = defaultdict(list)
    for op in history:
        if op["f"] == "release":
            releases[(op["process"], op["key"])].append(op["invoke"])
    for op in history:
        if op["f"] != "acquire" or op["type"] != "ok":
            continue
        start = op["complete"]
        ends = [t for t in releases[(op["process"], op["key"])] if t >= start]
        ends += [t for t in suspensions.get(op["process"], []) if t >= start]
        end = min(ends, default=run_end)
        holds[op["key"]].append((start, end, op))
    acquired = 0
    for key, hs in holds.items():
        acquired += len(hs)
        for a_start, a_end, a in hs:
            for _, _, b in hs:
                if b is a or b["process"] == a["process"]:
                    continue
                if b["invoke"] > a_start and b["complete"] < a_end:
                    anomalies.append({"check": "two lock holders at once", "lock": key, "holder": a,
                                      "holder_until": a_end, "second": b})
    return {"acquisitions": acquired, "anomalies": anomalies}


# -- counter -------------------------------------------------------------------------------------

def check_counter(history, final_value):
    """Increments are multi(check version, setData n+1): the final value must lie between the
    acknowledged increments and acknowledged + indeterminate ones; reads never exceed what
    could have been written, and ok increments produce distinct values."""
    anomalies = []
    incs = [op for op in history if op["f"] == "increment"]
    ok = sum(1 for op in incs if op["type"] == "ok")
    info = sum(1 for op in incs if op["type"] == "info")
    results = [op["result"] for op in incs if op["type"] == "ok"]
    dup = sorted({r for r in results if results.count(r) > 1})
    if dup:
        anomalies.append({"check": "two acknowledged increments wrote the same value", "values": dup})
    lost = 0
    if final_value is not None:
        if final_value < ok:
            lost = ok - final_value
            anomalies.append({"check": "counter lost acknowledged increments", "final": final_value,
                              "acknowledged": ok})
        if final_value > ok + info:
            anomalies.append({"check": "counter above acknowledged + indeterminate increments",
                              "final": final_value, "acknowledged": ok, "indeterminate": info})
    return {"increments": ok, "indeterminate": info, "final": final_value, "anomalies": anomalies,
            "lost_writes": lost}
