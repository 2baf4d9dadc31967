import sys, time
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=10, randomize_hosts=False)
zk.start(timeout=30)
zk.create("/h", b"held", ephemeral=True)
end = time.time() + float(sys.argv[2]); i = 0
while time.time() < end:
    try:
        zk.set("/h", b"v%d" % i); i += 1
        print("set ok", i, zk._connection._socket.getpeername() if zk._connection._socket else None, flush=True)
    except Exception as e:
        print("err", type(e).__name__, flush=True)
    time.sleep(1.5)
zk.stop(); zk.close()
