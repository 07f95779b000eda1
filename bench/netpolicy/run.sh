#!/usr/bin/env bash
# Network policy benchmark: bench/netpolicy/run.sh [--rules 0,100,1000,10000,100000] [--repeat R]
#   [--seconds S] [--threads T] [--modes aoOi] [--quiet-wait S] [--retries K] [--keep]
# Run as root from anywhere; results land in bench/results/. See bench/README.md (Network policy).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/netpolicy/run.sh: run as root (it creates a network namespace, cgroups, BPF programs and iptables rules)" >&2
  exit 2
fi
exec node bench/netpolicy/run.mjs "$@"
