#!/usr/bin/env bash
set -x
ENS=/work/shared/reference/zk38/ensemble.sh
cd /tmp/zabcap
export ZK_AUTH=skipacl ZKREF_ROOT=/tmp/zabcap/ens3 ZK_OBSERVERS=3
export JVM_OPTS="-Xmx256m -Xms32m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.net.preferIPv4Stack=true -Dzookeeper.forceSnapshotSync=true"
B=12900
tcpdump -i lo -s 0 -U -w /tmp/zabcap/run3.pcap "tcp portrange $((B+21))-$((B+49))" 2>/tmp/zabcap/tcpdump3.err &
TD=$!
sleep 1
$ENS start 3 $B
python3 hold.py "127.0.0.1:$((B+1)),127.0.0.1:$((B+3))" 30 > hold3.log 2>&1 &
HP=$!
sleep 5
$ENS stopid 1 $B
sleep 8
$ENS startid 1 $B
sleep 3; $ENS wait $B; $ENS status $B
unset ZK_OBSERVERS
$ENS join 4 observer $B
sleep 3; $ENS wait $B; $ENS status $B
python3 writes.py 127.0.0.1:$((B+2)) reconfig "server.4=127.0.0.1:$((B+24)):$((B+44)):observer;127.0.0.1:$((B+4))"
sleep 3; $ENS status $B
wait $HP
$ENS stop $B
sleep 1; kill $TD; wait $TD
echo DONE
