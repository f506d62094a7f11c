#!/usr/bin/env bash
# `npm run bench`: compiles the sources with the benchmarks into a private directory (so the
# developer's dist/ is neither used nor disturbed), then runs bench/main.ts, which measures
# everything and rewrites bench/RESULTS.md. BENCH_RUNS / BENCH_HEAVY_RUNS set the run counts;
# BENCH_ONLY=cpio,compress,build,install,preview,boot,rebuild,compression,deploy,layer-deploy,layer-boot,demo-loop runs a subset
# (with BENCH_MERGE=1 its sections replace those in RESULTS.md; otherwise RESULTS.md is then
# written to bench/RESULTS.partial.md instead). `npm run bench -- --render` rewrites RESULTS.md
# from bench/results.json and bench/analysis.md without measuring.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# The project's Node and Pulumi engine (scripts/setup.sh writes env.sh).
if [ -f .ramroot/env.sh ]; then source .ramroot/env.sh; fi
cache="${RAMROOT_CACHE:-$HOME/.cache/ramroot}"
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 22 ]; then
  node_dir="$(ls -d "$cache"/node/node-*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$node_dir" ] || { echo "bench: needs Node >= 22; run \`npm run setup\`" >&2; exit 1; }
  export PATH="$node_dir:$PATH"
fi
if ! command -v pulumi >/dev/null; then
  pulumi_dir="$(ls -d "$HOME"/.pulumi/versions/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$pulumi_dir" ] && export PATH="$pulumi_dir:$PATH"
fi
out="$root/node_modules/.cache/ramroot-bench"
rm -rf "$out"
echo "[bench] compiling into $out" >&2
# tsc emits even when a module someone else is editing has a type error; a missing output is fatal.
node node_modules/typescript/bin/tsc -p . --outDir "$out" --sourceMap false >&2 || true
[ -f "$out/bench/main.js" ] || { echo "bench: compiling produced no bench/main.js" >&2; exit 1; }
export RAMROOT_CLI_MAIN="$out/provider/cli/main.js"
exec node "$out/bench/main.js" "$@"
