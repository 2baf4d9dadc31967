"""Captures every four-letter word's output from a standalone server with a known workload.

    python3 tests/interop/fourlw_capture.py zk  [outdir]   # record the Apache ZooKeeper reference
    python3 tests/interop/fourlw_capture.py zkrs [outdir]

Workload: two kazoo sessions; session A creates /fourlw, /fourlw/a and an ephemeral
/fourlw/eph-a and sets a data watch on /fourlw/a and a child watch on /fourlw; session B
creates two ephemerals and sets an exists watch on /fourlw/missing and a data watch on
/fourlw/a (B's creates fire and consume A's child watch). Then every word is sent once, in
the order of WORDS (the resets last).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

from kazoo.client import KazooClient  # noqa: E402

from servers import Server, four_letter_word  # noqa: E402

WORDS = ["ruok", "isro", "srvr", "stat", "mntr", "conf", "cons", "envi", "wchs", "wchc", "wchp",
         "dump", "dirs", "gtmk", "stmk", "hash", "crst", "srst"]


def workload(connect_string):
    a = KazooClient(hosts=connect_string)
    a.start()
    b = KazooClient(hosts=connect_string)
    b.start()
    a.ensure_path("/fourlw/a")
    a.create("/fourlw/eph-a", b"x", ephemeral=True)
    a.get("/fourlw/a", watch=lambda e: None)
    a.get_children("/fourlw", watch=lambda e: None)
    b.create("/fourlw/eph-b1", b"y", ephemeral=True)
    b.create("/fourlw/eph-b2", b"z", ephemeral=True)
    b.exists("/fourlw/missing", watch=lambda e: None)
    b.get("/fourlw/a", watch=lambda e: None)
    return [a, b]


def run(kind):
    """Starts a server of `kind`, runs the workload and returns {word: output}."""
    with Server(kind) as srv:
        clients = workload(srv.connect_string)
        try:
            return {word: four_letter_word(srv.port, word) for word in WORDS}
        finally:
            for c in clients:
                c.stop()
                c.close()


def main():
    kind = sys.argv[1]
    outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "fourlw-reference")
    os.makedirs(outdir, exist_ok=True)
    outputs = run(kind)
    for word, text in outputs.items():
        with open(os.path.join(outdir, f"{word}.txt"), "w") as f:
            f.write(text)
    print(f"wrote {len(outputs)} files to {outdir}")


if __name__ == "__main__":
    main()
