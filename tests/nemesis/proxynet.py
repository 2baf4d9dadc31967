"""The nemesis network without namespaces: servers on loopback behind a fault-injecting proxy.

Used where `net.py` cannot create network namespaces (not root, no iproute2, no veth), or
when asked to with `run.py --proxy`. It offers the same faults through the same interface
(partition, cut_pairs, degrade, heal), with these differences, which the run's output states:

* Server N's addresses are 127.0.0.N (client 2181, quorum 2888, election 3888, or 2988 and
  3988 after a reconfiguration moved them), every config names them, and the proxy owns the
  quorum and election ones. The server's own listeners
  are moved to 127.0.1.N by an LD_PRELOAD shim (`rebind.c`, compiled here with cc), so the
  dynamic configuration stays one text for every server and reconfigurations work unchanged.
  Clients reach the client ports directly, as in namespaces.
* The proxy tells which server dialed from the connection's first bytes: the election
  handshake carries the dialer's sid, and a learner's first packet (FOLLOWERINFO or
  OBSERVERINFO) carries a LearnerInfo that starts with it.
* A partition discards the bytes between the cut pairs both ways and holds new connections
  without answering (the peers only learn of it through their timeouts, as with dropped
  packets); healing resets the connections that lost bytes, whose streams are broken.
* A bad link delays every chunk leaving or reaching a degraded server by 50 ms +- 40 ms
  (order kept). TCP hides packet loss from a proxy, so there is no loss: the delay stands in.
"""
import asyncio
import os
import random
import struct
import subprocess
import threading

QUORUM_PORT, ELECTION_PORT = 2888, 3888
# the ports a reconfiguration moves a server to (nemesis.py's MOVED_*), proxied as well
QUORUM_PORTS, ELECTION_PORTS = (QUORUM_PORT, QUORUM_PORT + 100), (ELECTION_PORT, ELECTION_PORT + 100)
# How long a connection waits for the target server to listen (it may be restarting). A
# proxy has already accepted the connection, so it cannot refuse it like the server would.
UPSTREAM_CONNECT_WINDOW = 3.0
DELAY_S, JITTER_S = 0.050, 0.040
HERE = os.path.dirname(os.path.abspath(__file__))


def addr(sid):
    return f"127.0.0.{sid}"


def hidden_addr(sid):
    """Where the shim moves server sid's quorum and election listeners."""
    return f"127.0.1.{sid}"


def build_shim(workdir):
    """Compiles rebind.c into workdir; returns the .so path."""
    out = os.path.join(workdir, "rebind.so")
    r = subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", out, os.path.join(HERE, "rebind.c"), "-ldl"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"cannot build the rebind shim with cc: {r.stdout.strip()}")
    return out


class Link:
    """One proxied connection from server `src` (None until known) to server `dst`."""

    def __init__(self, dst, client_writer):
        self.src, self.dst = None, dst
        self.writers = [client_writer]
        self.lost_bytes = False

    def abort(self):
        for w in self.writers:
            w.transport.abort()


class ProxyNetwork:
    def __init__(self, sids, workdir, reason):
        self.sids = list(sids)
        self.workdir = workdir
        self.cut = set()          # frozenset({a, b}) pairs currently cut
        self.netem = {}           # sid -> what was applied
        self.partition_mode = f"tcp-proxy (no network namespaces: {reason})"
        self.up = False
        self.shim = None
        self._links = set()
        self._listeners = []
        self._loop = None

    # -- what the cluster needs to start a server ------------------------------------------------

    @staticmethod
    def addr(sid):
        return addr(sid)

    def command_prefix(self, sid):
        return []

    def env(self):
        ports = ",".join(str(p) for p in QUORUM_PORTS + ELECTION_PORTS)
        return {"LD_PRELOAD": self.shim, "ZKNEM_REBIND_PORTS": ports}

    # -- setup / teardown ----------------------------------------------------------------------

    def setup(self):
        self.shim = build_shim(self.workdir)
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="proxynet", daemon=True).start()
        self.up = True
        for sid in self.sids:
            self.add(sid)
        return self

    def add(self, sid):
        for port in QUORUM_PORTS + ELECTION_PORTS:
            self._run(self._listen(sid, port))

    def teardown(self):
        if not self.up:
            return
        self.up = False
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    # -- faults, called from the nemesis thread ------------------------------------------------

    def partition(self, groups):
        pairs = set()
        for i, g in enumerate(groups):
            for h in groups[i + 1:]:
                pairs |= {frozenset((a, b)) for a in g for b in h}
        self.cut_pairs(pairs)

    def cut_pairs(self, pairs):
        self.heal_partitions()
        self.cut = set(pairs)  # read by the pumps on the loop's thread: replaced, never mutated

    def heal_partitions(self):
        self.cut = set()
        self._run(self._reset_broken())

    def degrade(self, sids):
        applied = f"proxy delay {DELAY_S * 1000:.0f}ms +-{JITTER_S * 1000:.0f}ms (no packet loss through a TCP proxy)"
        self.netem = {**self.netem, **{sid: applied for sid in sids}}
        return applied

    def clear_netem(self):
        self.netem = {}

    def heal(self):
        self.heal_partitions()
        self.clear_netem()

    # -- inside the loop -----------------------------------------------------------------------

    def _is_cut(self, link):
        return link.src is not None and frozenset((link.src, link.dst)) in self.cut

    def _delay(self, link):
        if link.dst in self.netem or (link.src is not None and link.src in self.netem):
            return max(0.0, DELAY_S + random.uniform(-JITTER_S, JITTER_S))
        return 0.0

    async def _listen(self, sid, port):
        server = await asyncio.start_server(lambda r, w: self._serve(sid, port, r, w), addr(sid), port)
        self._listeners.append(server)

    async def _reset_broken(self):
        for link in list(self._links):
            if link.lost_bytes:
                link.abort()

    async def _shutdown(self):
        for server in self._listeners:
            server.close()
        for link in list(self._links):
            link.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, dst, port, reader, writer):
        link = Link(dst, writer)
        self._links.add(link)
        try:
            head = await self._read_source(link, port, reader)
            while self._is_cut(link):  # a new connection across a partition: never answered
                if not await self._wait_or_discard(link, reader):
                    return
            if link.lost_bytes:
                return
            up_reader, up_writer = await self._connect(dst, port)
            link.writers.append(up_writer)
            up_writer.write(head)
            pumps = [asyncio.ensure_future(self._pump(link, reader, up_writer)),
                     asyncio.ensure_future(self._pump(link, up_reader, writer))]
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for p in pending:
                p.cancel()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, asyncio.CancelledError):
            pass
        finally:
            link.abort()
            self._links.discard(link)

    async def _read_source(self, link, port, reader):
        """Reads the bytes that name the dialing server; returns them, to be sent on."""
        if port in ELECTION_PORTS:
            # long protocol version (negative) then long sid, or (old servers) a bare sid
            head = await reader.readexactly(8)
            (first,) = struct.unpack(">q", head)
            if first < 0:
                more = await reader.readexactly(8)
                head += more
                (first,) = struct.unpack(">q", more)
            link.src = first if first in self.sids else None
            return head
        # a QuorumPacket: int type, long zxid, int length, then LearnerInfo's long sid
        head = await reader.readexactly(16)
        (length,) = struct.unpack_from(">i", head, 12)
        if length >= 8:
            more = await reader.readexactly(8)
            head += more
            (sid,) = struct.unpack(">q", more)
            link.src = sid if sid in self.sids else None
        return head

    async def _wait_or_discard(self, link, reader):
        """Swallows what arrives for up to 0.2 s; False once the dialer has closed."""
        try:
            data = await asyncio.wait_for(reader.read(65536), 0.2)
        except asyncio.TimeoutError:
            return True
        link.lost_bytes = link.lost_bytes or bool(data)
        return bool(data)

    async def _connect(self, dst, port):
        deadline = self._loop.time() + UPSTREAM_CONNECT_WINDOW
        while True:
            try:
                return await asyncio.open_connection(hidden_addr(dst), port)
            except ConnectionRefusedError:
                if self._loop.time() >= deadline:
                    raise
                await asyncio.sleep(0.05)

    async def _pump(self, link, reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                delay = self._delay(link)
                if delay:
                    await asyncio.sleep(delay)
                if self._is_cut(link):
                    link.lost_bytes = True  # discarded: the stream is broken from here on
                    continue
                writer.write(data)
                await writer.drain()
        except OSError:
            return
