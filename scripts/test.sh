#!/usr/bin/env bash
# The test commands. `npm test`: set up whatever is missing, run the checks, then every test
# (unit, parity, engine with the real pulumi binary, boot in QEMU, security, lab, newcomer).
# `npm run test:fast` (--fast): the same setup and checks, then only the unit tests and the
# engine tests that boot no QEMU (test/fast-tier.js), for running while working. Extra
# arguments go to jest, e.g. `npm test -- test/unit` or `npm run test:fast -- test/engine`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ "${1:-}" = "--fast" ]; then
  shift
  export RAMROOT_TEST_TIER=fast
fi
bash scripts/setup.sh
# shellcheck source=/dev/null
source .ramroot/env.sh
# The setup has just compiled the sources into dist/: the tests that run the CLI use that
# instead of compiling it again, once per test file (test/fixtures/ramroot-cli.ts).
export RAMROOT_CLI_MAIN="${RAMROOT_CLI_MAIN:-$root/dist/provider/cli/main.js}"
# The tests are type-checked too (jest runs them through SWC, which only strips types).
echo "[test] type-checking sources and tests (tsconfig.test.json)" >&2
npx tsc -p tsconfig.test.json
echo "[test] checking formatting (prettier; \`npm run format\` fixes it)" >&2
npx prettier --check --log-level warn "**/*.{ts,js,mjs,cjs}"
echo "[test] checking for unused files, dependencies and exports (knip, knip.jsonc)" >&2
npx knip --no-progress
echo "[test] checking the on-machine scripts (shellcheck provider/machine/*.sh)" >&2
shellcheck --shell=sh provider/machine/*.sh
if [ "${RAMROOT_TEST_TIER:-}" = fast ]; then
  echo "[test] the fast tier: unit tests and the engine tests that boot no QEMU (test/fast-tier.js)" >&2
fi
exec npx jest --ci "$@"
