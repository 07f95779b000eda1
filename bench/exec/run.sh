#!/usr/bin/env bash
# Exec-storm benchmark: bench/exec/run.sh [--execs N] [--repeat R] [--parallel P] [--modes abcd] [--quiet-wait S] [--retries K] [--keep]
# Run as root from anywhere; results land in bench/results/. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/exec/run.sh: run as root (modes b-d load BPF programs or audit rules)" >&2
  exit 2
fi
exec node bench/exec/run.mjs "$@"
