import sys, time
from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError
host = sys.argv[1]; what = sys.argv[2]
zk = KazooClient(hosts=host, timeout=10)
zk.start(timeout=30)
if what == "basic":
    zk.create("/a", b"hello")
    zk.set("/a", b"world")
    zk.create("/e", b"eph", ephemeral=True)
    zk.create("/s-", b"", sequence=True)
    t = zk.transaction(); t.create("/m", b"1"); t.check("/a", 1); t.commit()
    zk.sync("/a")
    zk.get("/a")
    zk.delete("/m")
    time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 3)
elif what == "more":
    for i in range(5):
        zk.create("/x%d" % i, b"v%d" % i)
    zk.create("/keep", b"k", ephemeral=True)
    time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 1)
elif what == "reconfig":
    print(zk.reconfig(joining=sys.argv[3], leaving=None, new_members=None))
    time.sleep(2)
zk.stop(); zk.close()
