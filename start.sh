#!/usr/bin/env bash
# Set up (idempotent) and run the Osprey agent in the foreground with the
# default configuration (config/osprey.yaml). Extra arguments go to `osprey agent`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec bin/osprey agent "$@"
