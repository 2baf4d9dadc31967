#!/bin/bash
# zkrs cli vs zkCli.sh transcripts: tests/cli/run.sh [zk|zkrs|zk,zkrs] [pytest args]
set -u -o pipefail
kinds=${1:-zk,zkrs}
shift || true
cd "$(dirname "$0")" || exit 2
[ -x /usr/share/zookeeper/bin/zkCli.sh ] ||
    { echo "$0: needs ZooKeeper 3.8: apt-get install -y zookeeper zookeeper-bin" >&2; exit 2; }
CLI_KINDS="$kinds" exec python3 -m pytest -p no:cacheprovider -q -rfE test_cli.py "$@"
