#!/bin/sh
# The whole "real clients" interop suite against one server kind:
#   tests/interop/run.sh zk|zkrs [ensemble]
# With "ensemble" every part runs against a 3-server ensemble (connect strings name all
# three) instead of one standalone server; results are named *-KIND-ensemble.
# 1. kazoo's own test suite (run_kazoo.py): fails if a test that passes on Apache ZooKeeper
#    (kazoo-expected.txt) does not pass here;
# 2. zkCli.sh (zkcli_test.py); 3. the C client cli_mt (cclient_test.py): fail on any failure.
# Each part starts its own server(s); results go to tests/interop/results/.
# Exit status: non-zero if any part failed.
set -u
kind=${1:-zkrs}
case "$kind" in zk|zkrs) ;; *) echo "usage: $0 zk|zkrs [ensemble]" >&2; exit 2 ;; esac
topology=${2:-standalone}
case "$topology" in standalone) label=$kind; kazoo_opt="" ;;
    ensemble) label=$kind-ensemble; kazoo_opt="--ensemble" ;;
    *) echo "usage: $0 zk|zkrs [ensemble]" >&2; exit 2 ;; esac
export ZK_TOPOLOGY="$topology"
cd "$(dirname "$0")" || exit 2
mkdir -p results
export ZK_KIND="$kind"

python3 run_kazoo.py "$kind" $kazoo_opt > /dev/null
kazoo_rc=$?

timeout_opt=""
python3 -c "import pytest_timeout" 2>/dev/null && timeout_opt="--timeout=120"

clients_rc=0
for suite in zkcli cclient; do
    rm -f "results/$suite-$label.xml"
    python3 -m pytest -p no:cacheprovider -rfE $timeout_opt "${suite}_test.py" \
        --junitxml="results/$suite-$label.xml" > "results/$suite-$label.log" 2>&1 || clients_rc=1
    if [ -f "results/$suite-$label.xml" ]; then
        python3 junit_summary.py "$suite $label" "results/$suite-$label.xml" "results/$suite-$label.txt" > /dev/null
    else
        echo "$suite $label: no results; see results/$suite-$label.log" > "results/$suite-$label.txt"
    fi
done

echo "== interop $label (details: tests/interop/results/*-$label.{txt,log,xml})"
cat "results/kazoo-$label.txt" "results/zkcli-$label.txt" "results/cclient-$label.txt"
grep -h -E "^(FAILED|ERROR) " "results/zkcli-$label.log" "results/cclient-$label.log"
[ "$kazoo_rc" -eq 0 ] && [ "$clients_rc" -eq 0 ]
