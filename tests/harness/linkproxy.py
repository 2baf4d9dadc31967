"""A fault-injecting TCP proxy for the server-to-server links of an ensemble on loopback.

Every ordered pair of servers (A, B) and every link kind ("quorum", "election") gets a
listener of its own: server A's zoo.cfg names that listener as server B's address, so the
proxy knows which pair a connection belongs to without looking at it. A test can then cut
pairs of servers apart:

- mode "close": existing connections are reset, new ones are accepted and closed at once
  (the peer notices immediately, like a crashed process or an ICMP-unreachable network);
- mode "blackhole": bytes are silently discarded and new connections hang (the peer only
  notices through its timeouts, like a dropped-packet partition).

heal() lifts every cut; connections that lost bytes in a blackhole are closed then, since
their streams are no longer intact.

The election handshake needs one rewrite. The dialing server sends its own election address
in its initial message (long protocol version -65536 or -65535, long sid, int length, then
"host:port"), and when the acceptor has the larger sid it drops the connection and dials
back to *that* address (ZooKeeper 3.8 QuorumCnxManager.handleConnection), which is the
dialer's real port and would bypass the proxy. The proxy replaces it with the listener for
the reverse pair, so the dial-back goes through the proxy too.

The proxy runs an asyncio loop in a daemon thread; its methods are called from test threads.
"""
import asyncio
import struct
import threading

ELECTION_PROTOCOL_VERSIONS = (-65536, -65535)
# How long a connection waits for its target to accept. A proxy cannot refuse a connection it
# has already accepted, and a ZooKeeper learner that finds its connection to a leader closed
# gives up following, where a refusal makes it retry; waiting for a leader still binding its
# quorum port keeps that behaviour. A target that never accepts gets a reset afterwards.
UPSTREAM_CONNECT_WINDOW = 3.0
MAX_ELECTION_ADDRESS_BYTES = 2048  # as ZooKeeper's acceptor checks
CUT_MODES = ("close", "blackhole")


class Route:
    def __init__(self, src, dst, kind, target_port):
        self.src, self.dst, self.kind, self.target_port = src, dst, kind, target_port
        self.port = None
        self.listener = None

    @property
    def link(self):
        return (self.src, self.dst)


class Connection:
    """One proxied TCP connection: the dialer's side and (once connected) the target's."""

    def __init__(self, route, client_writer):
        self.route = route
        self.client_writer = client_writer
        self.upstream_writer = None
        self.lost_bytes = False  # data discarded by a blackhole: the stream is broken

    def abort(self):
        for writer in (self.client_writer, self.upstream_writer):
            if writer is not None:
                writer.transport.abort()  # RST, so the peer notices at once


class LinkProxy:
    def __init__(self, host="127.0.0.1"):
        self.host = host
        self._routes = {}       # (src, dst, kind) -> Route
        self._cuts = {}         # (src, dst) -> mode, both directions stored
        self._connections = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="linkproxy", daemon=True)
        self._thread.start()

    # -- control, called from any thread --------------------------------------------------------

    def add_route(self, src, dst, kind, target_port):
        """Listens for connections from server `src` to server `dst`'s `kind` port; returns
        the listening port to write into src's zoo.cfg."""
        return self._run(self._add_route(Route(src, dst, kind, target_port)))

    def port(self, src, dst, kind):
        return self._routes[(src, dst, kind)].port

    def cut(self, group_a, group_b, mode="close"):
        """Cuts every link between a server of group_a and a server of group_b, both ways."""
        if mode not in CUT_MODES:
            raise ValueError(f"mode must be one of {CUT_MODES}, not {mode!r}")
        links = {(a, b) for a in group_a for b in group_b if a != b}
        links |= {(b, a) for a, b in links}
        self._run(self._cut(links, mode))

    def heal(self):
        self._run(self._heal())

    def cuts(self):
        return dict(self._cuts)

    def close(self):
        if self._loop.is_closed():
            return
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    # -- inside the loop ----------------------------------------------------------------------

    async def _add_route(self, route):
        route.listener = await asyncio.start_server(
            lambda r, w: self._serve(route, r, w), self.host, 0)
        route.port = route.listener.sockets[0].getsockname()[1]
        self._routes[(route.src, route.dst, route.kind)] = route
        return route.port

    async def _cut(self, links, mode):
        for link in links:
            self._cuts[link] = mode
        for connection in list(self._connections):
            if connection.route.link in links:
                if mode == "close":
                    connection.abort()
                else:
                    connection.lost_bytes = True

    async def _heal(self):
        self._cuts.clear()
        for connection in list(self._connections):
            if connection.lost_bytes:
                connection.abort()

    async def _shutdown(self):
        for route in self._routes.values():
            route.listener.close()
        for connection in list(self._connections):
            connection.abort()
        # end every connection's task here, so none is left pending when the loop closes
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, route, client_reader, client_writer):
        connection = Connection(route, client_writer)
        self._connections.add(connection)
        try:
            mode = self._cuts.get(route.link)
            if mode == "close":
                return
            if mode == "blackhole":
                connection.lost_bytes = True
                await self._discard(client_reader)
                return
            upstream_reader, upstream_writer = await self._connect_upstream(route)
            connection.upstream_writer = upstream_writer
            if route.kind == "election":
                await self._forward_election_header(route, client_reader, upstream_writer)
            pumps = [asyncio.ensure_future(self._pump(connection, client_reader, upstream_writer)),
                     asyncio.ensure_future(self._pump(connection, upstream_reader, client_writer))]
            # either side closing ends the whole connection
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pending:
                pump.cancel()
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            connection.abort()
            self._connections.discard(connection)

    async def _connect_upstream(self, route):
        deadline = self._loop.time() + UPSTREAM_CONNECT_WINDOW
        while True:
            try:
                return await asyncio.open_connection(self.host, route.target_port)
            except ConnectionRefusedError:
                if self._loop.time() >= deadline or route.link in self._cuts:
                    raise
                await asyncio.sleep(0.05)

    async def _pump(self, connection, reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                if self._cuts.get(connection.route.link) is not None:
                    connection.lost_bytes = True  # cut after this connection was made
                    continue
                writer.write(data)
                await writer.drain()
        except OSError:
            return

    async def _discard(self, reader):
        while await reader.read(65536):
            pass

    async def _forward_election_header(self, route, reader, writer):
        head = await reader.readexactly(8)
        (version,) = struct.unpack(">q", head)
        reverse = self._routes.get((route.dst, route.src, "election"))
        if version not in ELECTION_PROTOCOL_VERSIONS or reverse is None:
            writer.write(head)  # an old-style bare sid, or a pair we do not proxy: pass through
            return
        sid = await reader.readexactly(8)
        (length,) = struct.unpack(">i", await reader.readexactly(4))
        if not 0 < length <= MAX_ELECTION_ADDRESS_BYTES:
            writer.write(head + sid + struct.pack(">i", length))  # let the server reject it
            return
        await reader.readexactly(length)  # the dialer's real election address
        address = f"{self.host}:{reverse.port}".encode()
        writer.write(head + sid + struct.pack(">i", len(address)) + address)
