#!/usr/bin/env bash
# run1: DIFF, observer, reconfig; run2: SNAP
set -x
ENS=/work/shared/reference/zk38/ensemble.sh
PY=python3
cd /tmp/zabcap
export ZK_AUTH=skipacl ZKREF_ROOT=/tmp/zabcap/ens1
B=12700
tcpdump -i lo -s 0 -U -w /tmp/zabcap/run1.pcap "tcp portrange $((B+21))-$((B+49))" 2>/tmp/zabcap/tcpdump1.err &
TD=$!
sleep 1
$ENS start 3 $B
$PY writes.py 127.0.0.1:$((B+1)) basic 4
ZKREF_ROOT=/tmp/zabcap/ens1 $ENS join 4 observer $B
sleep 2; $ENS wait $B; $ENS status $B
$PY writes.py 127.0.0.1:$((B+1)) more 1
$PY writes.py 127.0.0.1:$((B+1)) reconfig "server.4=127.0.0.1:$((B+24)):$((B+44)):participant;127.0.0.1:$((B+4))"
sleep 3; $ENS wait $B; $ENS status $B
$ENS stopid 3 $B
$PY writes.py 127.0.0.1:$((B+1)) basic 1 || true
$ENS startid 3 $B
sleep 2; $ENS wait $B; $ENS status $B
sleep 3
$ENS stop $B
sleep 1; kill $TD; wait $TD

export ZKREF_ROOT=/tmp/zabcap/ens2
B=12800
tcpdump -i lo -s 0 -U -w /tmp/zabcap/run2.pcap "tcp portrange $((B+21))-$((B+49))" 2>/tmp/zabcap/tcpdump2.err &
TD=$!
sleep 1
JVM_OPTS="-Xmx256m -Xms32m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.net.preferIPv4Stack=true -Dzookeeper.forceSnapshotSync=true" $ENS start 3 $B
$PY writes.py 127.0.0.1:$((B+1)) more 0 
$ENS stopid 1 $B
JVM_OPTS="-Xmx256m -Xms32m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.net.preferIPv4Stack=true -Dzookeeper.forceSnapshotSync=true" $ENS startid 1 $B
sleep 2; $ENS wait $B; $ENS status $B
$ENS stop $B
sleep 1; kill $TD; wait $TD
echo DONE
