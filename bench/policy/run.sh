#!/usr/bin/env bash
# Policy benchmark: bench/policy/run.sh [--measure 123] [--opens N] [--repeat R] [--modes abcf]
#   [--rates LIST] [--step-seconds S] [--max-opens N] [--adds K] [--quiet-wait S] [--retries K] [--keep]
# Run as root from anywhere; results land in bench/results/. See bench/README.md (Policy).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/policy/run.sh: run as root (it loads BPF programs and audit rules)" >&2
  exit 2
fi
exec node bench/policy/run.mjs "$@"
