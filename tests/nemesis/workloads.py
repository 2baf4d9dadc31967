"""Client workloads recording Jepsen-style histories (see checker.py for the format).

Every client is a kazoo session of its own, connected to all servers (10.77.0.N:2181) from the
root namespace, reconnecting fast; operations are never retried: an error the server returned
is a definite failure ("fail"), anything else (connection loss, session expiry, a timeout)
leaves the outcome unknown ("info").
"""
import random
import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import BadVersionError, NoNodeError, NodeExistsError, NotEmptyError

FAST_RECONNECT = dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=1.0, max_jitter=0.2)
SESSION_TIMEOUT = 6.0   # > syncLimit x tickTime (2.5 s): see the lock check
OP_TIMEOUT = 5.0
DEFINITE = {BadVersionError: "BadVersion", NoNodeError: "NoNode", NodeExistsError: "NodeExists",
            NotEmptyError: "NotEmpty"}
INIT = "init"
ROOT = "/nem"


def classify(exc):
    """("fail", name) for an error the server answered with, else ("info", name)."""
    for cls, name in DEFINITE.items():
        if isinstance(exc, cls):
            return "fail", name
    return "info", type(exc).__name__


class History:
    def __init__(self):
        self.ops = []
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.wall0 = time.time()  # to line histories up with the servers' log timestamps

    def now(self):
        return time.monotonic() - self.t0

    def add(self, op):
        with self.lock:
            op["id"] = len(self.ops)
            self.ops.append(op)
        return op


class Client(threading.Thread):
    """One session running `body` in a loop until stopped."""

    def __init__(self, name, hosts, history, seed, stop_event):
        super().__init__(name=name, daemon=True)
        self.name_, self.hosts, self.history = name, hosts, history
        self.rng = random.Random(seed)
        self.stop_event = stop_event
        self.suspensions = []     # times this client saw SUSPENDED or LOST
        self.n = 0
        self.error = None
        self.zk = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT, connection_retry=FAST_RECONNECT)
        self.zk.add_listener(self._state)

    def _state(self, state):
        if state in (KazooState.SUSPENDED, KazooState.LOST):
            self.suspensions.append(self.history.now())

    def session(self):
        sid = getattr(self.zk, "_session_id", None)
        return hex(sid) if sid else None

    def server(self):
        """The server this client is connected to right now (diagnostics only)."""
        try:
            return self.zk._connection._socket.getpeername()[0]
        except Exception:  # noqa: BLE001
            return None

    def invoke(self, f, key=None, value=None):
        return {"process": self.name_, "session": self.session(), "server": self.server(), "f": f, "key": key,
                "value": value, "invoke": self.history.now(), "complete": None, "type": None, "result": None}

    def ok(self, op, result=None):
        op.update(type="ok", result=result, complete=self.history.now())
        return self.history.add(op)

    def fail(self, op, exc):
        kind, name = classify(exc)
        op.update(type=kind, error=name, complete=self.history.now() if kind == "fail" else None)
        if kind == "info":
            op["gave_up"] = self.history.now()
        return self.history.add(op)

    def run(self):
        try:
            self.zk.start(timeout=30)
        except Exception as e:  # noqa: BLE001
            self.error = f"could not connect: {e!r}"
            return
        try:
            while not self.stop_event.is_set():
                try:
                    self.step()
                except Exception as e:  # noqa: BLE001 - a bug of the workload itself
                    self.error = repr(e)
                    time.sleep(0.2)
        finally:
            try:
                self.zk.stop()
                self.zk.close()
            except Exception:  # noqa: BLE001
                pass

    def wait(self, lo, hi):
        self.stop_event.wait(self.rng.uniform(lo, hi))

    def call(self, async_result):
        return async_result.get(timeout=OP_TIMEOUT)


class RegisterClient(Client):
    def __init__(self, *a, keys_at, **kw):
        super().__init__(*a, **kw)
        self.keys_at = keys_at
        self.seen = {}

    def step(self):
        key = self.rng.choice(self.keys_at(self.history.now()))
        r = self.rng.random()
        self.n += 1
        if r < 0.3:
            op = self.invoke("read", key)
            try:
                self.call(self.zk.sync_async(key))
                data, stat = self.call(self.zk.get_async(key))
            except Exception as e:  # noqa: BLE001
                self.fail(op, e)
            else:
                self.ok(op, [data.decode(), stat.version])
                self.seen[key] = stat.version
        elif r < 0.45:
            op = self.invoke("plain-read", key)
            try:
                data, stat = self.call(self.zk.get_async(key))
            except Exception as e:  # noqa: BLE001
                self.fail(op, e)
            else:
                self.ok(op, [data.decode(), stat.version])
                self.seen[key] = stat.version
        elif r < 0.7:
            value = f"{self.name_}-{self.n}"
            op = self.invoke("write", key, value)
            try:
                stat = self.call(self.zk.set_async(key, value.encode(), -1))
            except Exception as e:  # noqa: BLE001
                self.fail(op, e)
            else:
                self.ok(op, stat.version)
                self.seen[key] = stat.version
        else:
            value = f"{self.name_}-{self.n}"
            expected = self.seen.get(key, 0)
            op = self.invoke("cas", key, [expected, value])
            try:
                stat = self.call(self.zk.set_async(key, value.encode(), expected))
            except Exception as e:  # noqa: BLE001
                self.fail(op, e)
            else:
                self.ok(op, stat.version)
                self.seen[key] = stat.version
        self.wait(0.0, 0.03)


class QueueClient(Client):
    PATH = f"{ROOT}/queue"

    def step(self):
        self.n += 1
        if self.rng.random() < 0.5:
            value = f"{self.name_}-{self.n}"
            op = self.invoke("enqueue", self.PATH, value)
            try:
                self.call(self.zk.create_async(f"{self.PATH}/q-", value.encode(), sequence=True))
            except Exception as e:  # noqa: BLE001
                self.fail(op, e)
            else:
                self.ok(op)
        else:
            try:
                children = sorted(self.call(self.zk.get_children_async(self.PATH)))
            except Exception:  # noqa: BLE001 - a failed listing takes nothing
                children = []
            for child in children[:3]:
                path = f"{self.PATH}/{child}"
                try:
                    data, _ = self.call(self.zk.get_async(path))
                except Exception:  # noqa: BLE001
                    continue
                value = data.decode()
                op = self.invoke("dequeue", self.PATH, value)
                try:
                    self.call(self.zk.delete_async(path))
                except NoNodeError:
                    continue  # taken by another consumer
                except Exception as e:  # noqa: BLE001
                    self.fail(op, e)
                    break
                else:
                    self.ok(op, value)
                    break
        self.wait(0.0, 0.05)


class LockClient(Client):
    def __init__(self, *a, locks, **kw):
        super().__init__(*a, **kw)
        self.locks = locks

    def step(self):
        key = self.rng.choice(self.locks)
        op = self.invoke("acquire", key)
        try:
            self.call(self.zk.create_async(key, self.name_.encode(), ephemeral=True))
        except Exception as e:  # noqa: BLE001
            rec = self.fail(op, e)
            if rec["type"] == "info":
                self._drop_if_mine(key)
            self.wait(0.05, 0.2)
            return
        self.ok(op)
        self.wait(0.1, 0.6)  # hold it
        rel = self.invoke("release", key)
        try:
            stat = self.call(self.zk.exists_async(key))
            # only our own ephemeral: if our session expired meanwhile, the node may be another
            # holder's by now
            if stat is not None and hex(stat.ephemeralOwner) == self.session():
                self.call(self.zk.delete_async(key, stat.version))
        except Exception as e:  # noqa: BLE001
            self.fail(rel, e)
            self._drop_if_mine(key)
        else:
            self.ok(rel)
        self.wait(0.0, 0.1)

    def _drop_if_mine(self, key):
        """An acquisition with unknown outcome may have left our ephemeral behind: delete it
        (the lock was never held from our own view) so the lock does not stay stuck."""
        for _ in range(10):
            if self.stop_event.is_set():
                return
            try:
                stat = self.call(self.zk.exists_async(key))
                if stat is not None and hex(stat.ephemeralOwner) == self.session():
                    self.call(self.zk.delete_async(key, stat.version))
                return
            except Exception:  # noqa: BLE001
                self.wait(0.2, 0.5)


class CounterClient(Client):
    PATH = f"{ROOT}/counter"

    def step(self):
        self.n += 1
        try:
            data, stat = self.call(self.zk.get_async(self.PATH))
        except Exception:  # noqa: BLE001
            self.wait(0.05, 0.2)
            return
        value = int(data.decode())
        op = self.invoke("increment", self.PATH, [stat.version, value + 1])
        tx = self.zk.transaction()
        tx.check(self.PATH, stat.version)
        tx.set_data(self.PATH, str(value + 1).encode(), stat.version)
        try:
            results = self.call(tx.commit_async())
        except Exception as e:  # noqa: BLE001
            self.fail(op, e)
        else:
            errors = [r for r in results if isinstance(r, Exception)]
            if not errors:
                self.ok(op, value + 1)
            else:
                # the server answered: the multi was rolled back as a whole (the check's
                # BadVersion, the others RuntimeInconsistency / RolledBack)
                op.update(type="fail", error=repr(errors), complete=self.history.now())
                self.history.add(op)
        self.wait(0.0, 0.05)


class Workload:
    """The four workloads over one ensemble: registers (`n_reg` clients over KEYS keys per
    epoch of EPOCH seconds, so that each key's history stays a few hundred operations), a
    queue, ephemeral locks and a multi counter."""
    KEYS = 3
    EPOCH = 15.0
    LOCKS = [f"{ROOT}/locks/l0", f"{ROOT}/locks/l1"]

    def __init__(self, hosts, seed, duration, n_reg=5, n_queue=2, n_lock=3, n_counter=2):
        self.hosts, self.seed, self.duration = hosts, seed, duration
        self.history = History()
        self.stop_event = threading.Event()
        self.epochs = int(duration // self.EPOCH) + 3
        self.start_at = None
        rng = random.Random(seed)
        self.clients = []
        mk = lambda cls, name, **kw: cls(name, hosts, self.history, rng.random(), self.stop_event, **kw)  # noqa: E731
        self.clients += [mk(RegisterClient, f"reg{i}", keys_at=self.keys_at) for i in range(n_reg)]
        self.clients += [mk(QueueClient, f"queue{i}") for i in range(n_queue)]
        self.clients += [mk(LockClient, f"lock{i}", locks=self.LOCKS) for i in range(n_lock)]
        self.clients += [mk(CounterClient, f"counter{i}") for i in range(n_counter)]

    def key(self, epoch, k):
        return f"{ROOT}/reg/e{epoch}-k{k}"

    def all_keys(self):
        return [self.key(e, k) for e in range(self.epochs) for k in range(self.KEYS)]

    def keys_at(self, t):
        epoch = min(int((t - (self.start_at or 0)) // self.EPOCH), self.epochs - 1)
        return [self.key(max(epoch, 0), k) for k in range(self.KEYS)]

    def setup(self, zk):
        zk.ensure_path(f"{ROOT}/reg")
        zk.ensure_path(QueueClient.PATH)
        zk.ensure_path(f"{ROOT}/locks")
        if not zk.exists(CounterClient.PATH):
            zk.create(CounterClient.PATH, b"0")
        for key in self.all_keys():
            zk.create(key, INIT.encode())

    def start(self):
        self.start_at = self.history.now()
        for c in self.clients:
            c.start()

    def stop(self):
        self.stop_event.set()
        for c in self.clients:
            c.join(timeout=OP_TIMEOUT * 3)

    def suspensions(self):
        return {c.name_: sorted(c.suspensions) for c in self.clients}

    def final_reads(self, zk):
        """Synced reads of every register (recorded as "final" ops), the queue drained, the counter."""
        for key in self.all_keys():
            op = {"process": "final", "session": None, "f": "read", "key": key, "value": None,
                  "invoke": self.history.now(), "final": True}
            zk.sync(key)
            data, stat = zk.get(key)
            op.update(type="ok", result=[data.decode(), stat.version], complete=self.history.now())
            self.history.add(op)
        zk.sync(QueueClient.PATH)
        drained = []
        for child in sorted(zk.get_children(QueueClient.PATH)):
            drained.append(zk.get(f"{QueueClient.PATH}/{child}")[0].decode())
        zk.sync(CounterClient.PATH)
        counter = int(zk.get(CounterClient.PATH)[0].decode())
        return drained, counter
