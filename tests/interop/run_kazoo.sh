#!/bin/sh
# kazoo's test suite against a standalone server: run_kazoo.sh zk|zkrs [--update-expected]
exec python3 "$(dirname "$0")/run_kazoo.py" "$@"
