#!/usr/bin/env bash
# The main job, offline: set up, then deploy the demo stack (stacks/Pulumi.demo.yaml) with
# the real Pulumi engine and a file backend inside the project (.ramroot/state).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# shellcheck source=/dev/null
source .ramroot/env.sh
stack="${RAMROOT_STACK:-demo}"
pulumi stack select "$stack" 2>/dev/null || pulumi stack init "$stack"
pulumi up --yes --stack "$stack" "$@"
echo
echo "The demo stack's boot partition: $(pulumi stack output syslinuxPath --stack "$stack" 2>/dev/null || true) in .ramroot/boot-$stack"
echo "Preview a change:  source .ramroot/env.sh && pulumi config set ramroot:default b --stack $stack && pulumi preview --diff --stack $stack"
