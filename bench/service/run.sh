#!/usr/bin/env bash
# Agent-as-a-service benchmark: bench/service/run.sh [--repeat R] [--rates LIST] [--step-seconds S]
#   [--max-opens N] [--clients N] [--configs AB] [--quiet-wait S] [--retries K] [--keep]
# Run as root from anywhere; results land in bench/results/. See bench/README.md (Agent as a service).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/service/run.sh: run as root (it loads BPF programs)" >&2
  exit 2
fi
exec node bench/service/run.mjs "$@"
