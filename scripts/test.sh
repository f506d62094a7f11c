#!/usr/bin/env bash
# The test command: set up whatever is missing, then run every test (unit, engine with the
# real pulumi binary, boot in QEMU). Extra arguments go to jest, e.g. `npm test -- test/unit`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# shellcheck source=/dev/null
source .ramroot/env.sh
# The tests are type-checked too (jest runs them through SWC, which only strips types).
echo "[test] type-checking sources and tests (tsconfig.test.json)" >&2
npx tsc -p tsconfig.test.json
echo "[test] checking formatting (prettier; \`npm run format\` fixes it)" >&2
npx prettier --check --log-level warn "**/*.{ts,js,mjs,cjs}"
echo "[test] checking for unused files, dependencies and exports (knip, knip.jsonc)" >&2
npx knip --no-progress
echo "[test] checking the on-machine scripts (shellcheck provider/machine/*.sh)" >&2
shellcheck --shell=sh provider/machine/*.sh
exec npx jest --ci "$@"
