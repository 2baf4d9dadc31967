#!/bin/bash
# Replicated-ensemble tests (test_ensemble.py) and the link proxy's own tests, against one or
# more server kinds:
#   tests/ensemble/run.sh [zk|zkrs|zk,zkrs]     (default zk)
# Output: results/ensemble.log (pytest -v), results/ensemble.xml (junit), results/timings.txt
# (measured failover/catch-up durations). Exit status: pytest's (non-zero if anything failed).
set -u -o pipefail
kinds=${1:-zk}
for kind in ${kinds//,/ }; do
    case "$kind" in zk|zkrs) ;; *) echo "usage: $0 [zk|zkrs|zk,zkrs]" >&2; exit 2 ;; esac
done
cd "$(dirname "$0")" || exit 2
python3 -c "import kazoo, pytest_timeout" 2>/dev/null ||
    { echo "$0: needs kazoo and pytest-timeout: pip install 'kazoo==2.11.0' pytest-timeout" >&2; exit 2; }
mkdir -p results
rm -f results/timings.txt

ENSEMBLE_KINDS="$kinds" python3 -m pytest -p no:cacheprovider -v -rfE \
    --junitxml=results/ensemble.xml test_linkproxy.py test_ensemble.py 2>&1 | tee results/ensemble.log
status=$?
echo "== ensemble $kinds: timings (results/timings.txt)"
[ -f results/timings.txt ] && cut -f1,3,4 results/timings.txt
exit $status
