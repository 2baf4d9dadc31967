"""The fault-injecting link proxy on its own, against a local echo server (no ZooKeeper)."""
import socket
import socketserver
import struct
import threading
import time

import pytest

from linkproxy import LinkProxy

pytestmark = pytest.mark.timeout(60)


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)


class RecordingHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.received.append(self.request.recv(65536))


def serve(handler, port=0):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def proxy():
    p = LinkProxy()
    yield p
    p.close()


@pytest.fixture
def echo():
    server = serve(EchoHandler)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def dial(port):
    return socket.create_connection(("127.0.0.1", port), timeout=2)


def echoes(sock, payload=b"ping"):
    sock.sendall(payload)
    return sock.recv(65536) == payload


def closed_by_peer(sock):
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def test_forwards_both_ways(proxy, echo):
    port = proxy.add_route(1, 2, "quorum", echo)
    with dial(port) as s:
        assert echoes(s, b"hello")


def test_cut_close_resets_and_refuses_until_healed(proxy, echo):
    port = proxy.add_route(1, 2, "quorum", echo)
    other = proxy.add_route(1, 3, "quorum", echo)
    with dial(port) as before, dial(other) as unaffected:
        assert echoes(before)
        proxy.cut([1], [2])
        assert closed_by_peer(before)
        assert echoes(unaffected), "a link outside the cut must keep working"
        with dial(port) as during:
            assert closed_by_peer(during)
    proxy.heal()
    with dial(port) as after:
        assert echoes(after)


def test_cut_is_symmetric(proxy, echo):
    reverse = proxy.add_route(2, 1, "election", echo)
    proxy.cut([1], [2])
    with dial(reverse) as s:
        assert closed_by_peer(s)


def test_blackhole_swallows_bytes_and_heal_closes_the_damaged_stream(proxy, echo):
    port = proxy.add_route(1, 2, "quorum", echo)
    with dial(port) as s:
        assert echoes(s)
        proxy.cut([1], [2], mode="blackhole")
        s.sendall(b"lost")
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):
            s.recv(65536)
        s.settimeout(2)
        proxy.heal()
        assert closed_by_peer(s)
    with dial(port) as after:
        assert echoes(after)


def test_election_initial_message_names_the_reverse_route(proxy):
    target = serve(RecordingHandler)
    real_port_of_1 = 40001
    forward = proxy.add_route(1, 2, "election", target.server_address[1])
    reverse = proxy.add_route(2, 1, "election", real_port_of_1)
    address = f"127.0.0.1:{real_port_of_1}".encode()
    with dial(forward) as s:
        s.sendall(struct.pack(">qqi", -65536, 1, len(address)) + address)
        deadline = time.monotonic() + 5
        while not target.received and time.monotonic() < deadline:
            time.sleep(0.05)
    expected = f"127.0.0.1:{reverse}".encode()
    assert target.received == [struct.pack(">qqi", -65536, 1, len(expected)) + expected]
    target.shutdown()
    target.server_close()


def test_waits_for_a_target_that_is_still_starting(proxy):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        target_port = probe.getsockname()[1]
    port = proxy.add_route(1, 2, "quorum", target_port)
    with dial(port) as s:
        time.sleep(0.5)  # nothing listens yet: the proxy keeps retrying
        late = serve(EchoHandler, target_port)
        assert echoes(s)
    late.shutdown()
    late.server_close()
