#!/usr/bin/env python3
"""The Apache ZooKeeper side of the storage interchange test (driven by interchange.rs).

    zk_side.py write <workdir> <out.json>
        Starts Apache ZooKeeper 3.8 with its dataDir in <workdir>/data and a small snapCount,
        so that it writes several snapshots and log files; creates a few hundred znodes of
        every kind (persistent, sequential, ephemeral, null data, binary data, ACLs, containers,
        TTL nodes, multi, deletes, setData, setACL, a closed session); reads every znode back;
        stops the server while the sessions are still open (their ephemerals stay on disk).

    zk_side.py read <workdir> <out.json>
        Starts Apache ZooKeeper on an existing <workdir>/data and reads every znode back.

The JSON: {"nodes": {path: {"data": hex or null, "acl": [[perms, scheme, id]], "stat": [czxid,
mzxid, ctime, mtime, version, cversion, aversion, ephemeralOwner, dataLength, numChildren,
pzxid]}}, "sessions": {"<id>": timeout}}. Needs ZooKeeper (Debian) and kazoo installed.
"""
import json
import os
import random
import struct
import sys
from collections import namedtuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from servers import Server  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.protocol.serialization import Create, read_string  # noqa: E402
from kazoo.security import ACL, Id, make_digest_acl, Permissions  # noqa: E402

SUPER = [("digest", "super:test")]
# the reaper must not run while we read (the TTL of the Rust-written nodes has long expired)
NO_REAPING_MS = 600_000


class CreateContainer(Create):
    type = 19


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    type = 21

    def serialize(self):
        b = Create(self.path, self.data, self.acl, self.flags).serialize()
        b.extend(struct.pack("!q", self.ttl))
        return b

    @classmethod
    def deserialize(cls, bytes, offset):
        return read_string(bytes, offset)[0]


def call(zk, request):
    result = zk.handler.async_result()
    zk._call(request, result)
    return result.get(timeout=10)


def client(server, auth=None):
    zk = KazooClient(hosts=server.connect_string, timeout=10.0, auth_data=auth)
    zk.start(timeout=15)
    return zk


def read_all(zk):
    nodes = {}
    stack = ["/"]
    while stack:
        path = stack.pop()
        data, stat = zk.get(path)
        acl, _ = zk.get_acls(path)
        nodes[path] = {
            "data": None if data is None else data.hex(),
            "acl": [[a.perms, a.id.scheme, a.id.id] for a in acl],
            "stat": [stat.czxid, stat.mzxid, stat.ctime, stat.mtime, stat.version, stat.cversion,
                     stat.aversion, stat.ephemeralOwner, stat.dataLength, stat.numChildren,
                     stat.pzxid],
        }
        for child in zk.get_children(path):
            stack.append(path.rstrip("/") + "/" + child)
    return nodes


def workload(server):
    rng = random.Random(7)
    a = client(server, SUPER)
    b = client(server)
    c = client(server)
    digest = make_digest_acl("user", "secret", all=True)
    read_only = [ACL(Permissions.READ, Id("world", "anyone"))]
    ip_and_world = [ACL(Permissions.READ | Permissions.WRITE, Id("ip", "127.0.0.1")),
                    ACL(Permissions.READ, Id("world", "anyone"))]
    admin_only = [make_digest_acl("admin", "pw", admin=True)]
    open_acl = [ACL(Permissions.ALL, Id("world", "anyone"))]
    a.create("/app", b"root of the test")
    a.create("/big", bytes(rng.getrandbits(8) for _ in range(200_000)))
    for i in range(300):
        kind = i % 12
        base = f"/app/k{kind}"
        if not a.exists(base):
            a.create(base, b"")
        value = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        if kind == 0:
            a.create(f"{base}/p{i}", value)
        elif kind == 1:
            a.create(f"{base}/null{i}", None)
        elif kind == 2:
            a.create(f"{base}/seq-", value, sequence=True)
        elif kind == 3:
            (a if i % 2 else b).create(f"{base}/eph{i}", value, ephemeral=True)
        elif kind == 4:
            b.create(f"{base}/ephseq-", value, ephemeral=True, sequence=True)
        elif kind == 5:
            a.create(f"{base}/digest{i}", value, acl=[digest])
        elif kind == 6:
            a.create(f"{base}/ro{i}", value, acl=read_only if i % 2 else ip_and_world)
        elif kind == 7:
            call(a, CreateContainer(f"{base}/cont{i}", value, open_acl, 4))
            if i % 24 == 7:
                a.create(f"{base}/cont{i}/child", b"keeps the container")
        elif kind == 8:
            call(a, CreateTTL(f"{base}/ttl{i}", value, open_acl, 5 if i % 2 else 6, 86_400_000))
        elif kind == 9:
            a.create(f"{base}/deep{i}/x/y", value, makepath=True)
        elif kind == 10:
            path = f"{base}/upd{i}"
            a.create(path, b"v0")
            for v in range(rng.randrange(1, 4)):
                a.set(path, value + bytes([v]))
            if i % 3 == 0:
                a.set_acls(path, admin_only if i % 2 else read_only)
        else:
            path = f"{base}/gone{i}"
            a.create(path, value)
            if i % 2:
                a.delete(path)
        if i % 50 == 0:
            t = a.transaction()
            t.create(f"/app/multi{i}", b"m")
            t.set_data("/app", value)
            t.check("/app/k0", 0)
            t.commit()
            failing = a.transaction()
            failing.create(f"/app/never{i}", b"x")
            failing.check("/app", 12345)
            failing.commit()
    for i in range(5):
        c.create(f"/app/c-eph{i}", b"goes away", ephemeral=True)
    c.stop()
    c.close()
    return [a, b]


def main():
    mode, workdir, out = sys.argv[1], sys.argv[2], sys.argv[3]
    extra = {"snapCount": "40"} if mode == "write" else {}
    server = Server("zk", extra, workdir=workdir, container_check_ms=NO_REAPING_MS)
    server.start()
    try:
        if mode == "write":
            clients = workload(server)
            result = {
                "nodes": read_all(clients[0]),
                "sessions": {str(zk.client_id[0]): 10000 for zk in clients},
            }
        elif mode == "read":
            zk = client(server, SUPER)
            result = {"nodes": read_all(zk), "sessions": {}}
            zk.stop()
            zk.close()
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        # stopped with the write sessions still open, so their ephemerals stay in the dataDir
        server.stop()
    with open(out, "w") as f:
        json.dump(result, f)
    sys.stdout.flush()
    # the kazoo clients of the write mode would only retry a dead server
    os._exit(0)


if __name__ == "__main__":
    main()
