#!/usr/bin/env bash
# Set up (idempotent), then run the whole test suite: format/lint, type check,
# unit tests and integration tests against the running kernel (as root).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
npx --no-install biome check .
npx --no-install tsc -p tsconfig.json
node scripts/bundle-cli.mjs
touch dist/.built
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
exec node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
