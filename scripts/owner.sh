#!/usr/bin/env bash
# `npm start` and `npm run preview` of an owner's repository (made by `ramroot init`, whose
# package.json runs `bash node_modules/ramroot/scripts/owner.sh up|preview STACK`): the setup
# (Debian tools, Node >= 22, the Pulumi engine; quick once done), then `pulumi up` (which shows
# the preview and asks) or `pulumi preview --diff` on STACK, made on first use. Extra arguments
# go to pulumi: `npm start -- --yes`.
set -euo pipefail
verb="${1:-}"
stack="${2:-}"
if [ -z "$stack" ] || { [ "$verb" != up ] && [ "$verb" != preview ]; }; then
  echo "usage: owner.sh up|preview STACK [pulumi flags]" >&2
  exit 2
fi
shift 2
bash "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
# shellcheck source=/dev/null
source .ramroot/env.sh
pulumi stack select "$stack" 2>/dev/null || pulumi stack init "$stack"
if [ "$verb" = up ]; then
  exec pulumi up --stack "$stack" "$@"
fi
exec pulumi preview --diff --stack "$stack" "$@"
