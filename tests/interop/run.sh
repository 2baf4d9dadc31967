#!/bin/sh
# The whole "real clients" interop suite against one server kind:
#   tests/interop/run.sh zk|zkrs
# 1. kazoo's own test suite (run_kazoo.py): fails if a test that passes on Apache ZooKeeper
#    (kazoo-expected.txt) does not pass here;
# 2. zkCli.sh (zkcli_test.py); 3. the C client cli_mt (cclient_test.py): fail on any failure.
# Each part starts its own server(s); results go to tests/interop/results/.
# Exit status: non-zero if any part failed.
set -u
kind=${1:-zkrs}
case "$kind" in zk|zkrs) ;; *) echo "usage: $0 zk|zkrs" >&2; exit 2 ;; esac
cd "$(dirname "$0")" || exit 2
mkdir -p results
export ZK_KIND="$kind"

python3 run_kazoo.py "$kind" > /dev/null
kazoo_rc=$?

timeout_opt=""
python3 -c "import pytest_timeout" 2>/dev/null && timeout_opt="--timeout=120"

clients_rc=0
for suite in zkcli cclient; do
    rm -f "results/$suite-$kind.xml"
    python3 -m pytest -p no:cacheprovider -rfE $timeout_opt "${suite}_test.py" \
        --junitxml="results/$suite-$kind.xml" > "results/$suite-$kind.log" 2>&1 || clients_rc=1
    if [ -f "results/$suite-$kind.xml" ]; then
        python3 junit_summary.py "$suite $kind" "results/$suite-$kind.xml" "results/$suite-$kind.txt" > /dev/null
    else
        echo "$suite $kind: no results; see results/$suite-$kind.log" > "results/$suite-$kind.txt"
    fi
done

echo "== interop $kind (details: tests/interop/results/*-$kind.{txt,log,xml})"
cat "results/kazoo-$kind.txt" "results/zkcli-$kind.txt" "results/cclient-$kind.txt"
grep -h -E "^(FAILED|ERROR) " "results/zkcli-$kind.log" "results/cclient-$kind.log"
[ "$kazoo_rc" -eq 0 ] && [ "$clients_rc" -eq 0 ]
