"""Client-side helpers for ensemble tests and benchmarks: kazoo clients that reconnect
quickly, a writer thread that remembers every acknowledged write, and bulk create/read."""
import threading
import time

from kazoo.client import KazooClient

# Reconnect within ~1 s: kazoo's default backoff grows to a minute, which would measure the
# client's patience rather than the ensemble's recovery.
FAST_RECONNECT = dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=1.0, max_jitter=0.2)


def connect(hosts, timeout=15.0, start_timeout=30.0, listener=None, **kwargs):
    """A started KazooClient for the connect string `hosts`; `listener` is added before it
    starts, so that it sees every state change."""
    kwargs.setdefault("connection_retry", FAST_RECONNECT)
    client = KazooClient(hosts=hosts, timeout=timeout, **kwargs)
    if listener:
        client.add_listener(listener)
    client.start(timeout=start_timeout)
    return client


class SequentialWriter:
    """Writes in a loop from a thread of its own: each write is a sequential create under
    `parent` whose data is a counter. A write whose outcome is unknown (error or timeout) is
    never retried, so each counter appears at most once in the tree."""

    def __init__(self, client, parent, op_timeout=10.0):
        self.client = client
        self.parent = parent
        self.op_timeout = op_timeout
        self.attempted = 0
        self.acked = {}    # counter -> (issued, acknowledged), time.monotonic()
        self.errors = []   # (counter, repr of the exception)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"writer{parent}", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=self.op_timeout + 5)

    def _run(self):
        while not self._stop.is_set():
            counter = self.attempted
            self.attempted += 1
            issued = time.monotonic()
            try:
                self.client.create_async(f"{self.parent}/w-", str(counter).encode(),
                                         sequence=True).get(timeout=self.op_timeout)
            except Exception as e:  # ConnectionLoss, timeouts, ...: outcome unknown
                with self._lock:
                    self.errors.append((counter, repr(e)))
                time.sleep(0.01)  # a disconnected client fails at once; do not spin
            else:
                with self._lock:
                    self.acked[counter] = (issued, time.monotonic())

    def acks_issued_after(self, t):
        """Acknowledgement times of writes issued at or after `t`, in order."""
        with self._lock:
            return sorted(acked for issued, acked in self.acked.values() if issued >= t)

    def wait_for_acks(self, issued_after, count=1, timeout=60.0):
        """Waits until `count` writes issued after `issued_after` were acknowledged; returns
        the time the first of them was."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            acks = self.acks_issued_after(issued_after)
            if len(acks) >= count:
                return acks[0]
            time.sleep(0.01)
        recent = self.errors[-3:]
        raise TimeoutError(f"{len(self.acks_issued_after(issued_after))} of {count} writes acknowledged "
                           f"within {timeout}s; last errors {recent}")


def create_many(client, parent, count, batch=200):
    """Creates parent/n-0 .. n-{count-1} with data str(i), `batch` requests in flight."""
    client.ensure_path(parent)
    for start in range(0, count, batch):
        pending = [client.create_async(f"{parent}/n-{i}", str(i).encode())
                   for i in range(start, min(start + batch, count))]
        for result in pending:
            result.get(timeout=60)


def read_children_data(client, parent, batch=500):
    """{child name: data} of every child of `parent`, after a sync so that the server the
    client is connected to has caught up with the leader."""
    client.sync(parent)
    children = client.get_children(parent)
    data = {}
    for start in range(0, len(children), batch):
        names = children[start:start + batch]
        pending = [client.get_async(f"{parent}/{name}") for name in names]
        for name, result in zip(names, pending):
            data[name] = result.get(timeout=60)[0]
    return data
