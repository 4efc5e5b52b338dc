#!/usr/bin/env bash
# The full test suite against real Postgres and Redis (started first when installed but stopped).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-services.sh
npm run -s db:generate
npx tsx scripts/check-migrations.ts
files=$(find test -name '*.test.ts' | sort)
# shellcheck disable=SC2086
node --import tsx --test --test-concurrency=2 --test-reporter=spec --test-reporter-destination=stdout $files
