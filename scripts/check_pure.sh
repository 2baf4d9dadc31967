#!/usr/bin/env bash
# The pure crates (DESIGN.md: "a core crate never touches sockets, wall clocks, threads or
# ambient randomness") stay pure: fails, naming the lines, if their sources use tokio,
# std::time, std::thread, std::net sockets or ambient randomness, or if tokio is among their
# dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
PURE="jute config tree storage zab node sim"
pattern='\btokio\b|std::time|std::thread|std::net::(TcpStream|TcpListener|UdpSocket)|Instant::now|SystemTime|thread_rng|rand::rng\(\)'
status=0
for crate in $PURE; do
    # comments may name what the code must not use
    if hits=$(grep -rnE "$pattern" "crates/$crate/src" | grep -vE '^[^:]+:[0-9]+:\s*//'); then
        echo "crates/$crate is a pure crate but uses I/O, clocks, threads or ambient randomness:" >&2
        echo "$hits" >&2
        status=1
    fi
    if cargo tree -q -p "zkrs-$crate" -e normal --prefix none | grep -q '^tokio '; then
        echo "crates/$crate is a pure crate but depends on tokio:" >&2
        cargo tree -q -p "zkrs-$crate" -e normal -i tokio >&2 || true
        status=1
    fi
done
[ $status = 0 ] && echo "pure crates: $PURE: no tokio, clocks, threads, sockets or ambient randomness"
exit $status
