#!/bin/bash
# Dynamic-reconfiguration tests (test_reconfig.py) against one or more server kinds:
#   tests/reconfig/run.sh [zk|zkrs|zk,zkrs]     (default zk)
# Output: results/reconfig.log (pytest -v), results/reconfig.xml (junit), results/timings.txt
# (measured write gaps around leader hand-offs and a leader crash). Exit status: pytest's
# (non-zero if anything failed). Extra arguments after the kinds go to pytest (e.g. -k joiner).
set -u -o pipefail
kinds=${1:-zk}
shift || true
for kind in ${kinds//,/ }; do
    case "$kind" in zk|zkrs) ;; *) echo "usage: $0 [zk|zkrs|zk,zkrs] [pytest args]" >&2; exit 2 ;; esac
done
cd "$(dirname "$0")" || exit 2
python3 -c "import kazoo, pytest_timeout" 2>/dev/null ||
    { echo "$0: needs kazoo and pytest-timeout: pip install 'kazoo==2.11.0' pytest-timeout" >&2; exit 2; }
[ -x /usr/share/zookeeper/bin/zkCli.sh ] ||
    { echo "$0: needs the ZooKeeper 3.8 Java CLI: apt-get install -y zookeeper zookeeper-bin" >&2; exit 2; }
mkdir -p results
rm -f results/timings.txt

RECONFIG_KINDS="$kinds" python3 -m pytest -p no:cacheprovider -v -rfE --durations=10 \
    --junitxml=results/reconfig.xml test_reconfig.py "$@" 2>&1 | tee results/reconfig.log
status=$?
echo "== reconfig $kinds: timings (results/timings.txt)"
[ -f results/timings.txt ] && cut -f1,3,4 results/timings.txt
exit $status
