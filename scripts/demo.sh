#!/usr/bin/env bash
# The main job, offline: set up, make the demo's package repository (Debian binaries
# packaged with `ramroot pkg build`) and its disk image once, deploy the demo stack
# (stacks/Pulumi.demo.yaml) with the real Pulumi engine, then boot the disk in QEMU through
# syslinux and print the machine's marker. Run it again after editing root/: the new image
# goes to the other slot and syslinux switches to it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# shellcheck source=/dev/null
source .ramroot/env.sh
stack="${RAMROOT_STACK:-demo}"
demo=.ramroot/demo
mkdir -p "$demo"
# The demo stack's own passphrase (stacks/Pulumi.demo.yaml's salt is made with it; it holds no
# secrets), for this stack only: another stack needs its owner's passphrase in the shell.
mkdir -p -m 0700 .ramroot/passphrases
[ -f .ramroot/passphrases/demo ] || (umask 077 && printf 'ramroot-demo\n' > .ramroot/passphrases/demo)
if [ -z "${PULUMI_CONFIG_PASSPHRASE+set}${PULUMI_CONFIG_PASSPHRASE_FILE+set}" ] && [ -f ".ramroot/passphrases/$stack" ]; then
  export PULUMI_CONFIG_PASSPHRASE_FILE="$root/.ramroot/passphrases/$stack"
fi
RAMROOT_CLI_MAIN="$root/dist/provider/cli/main.js" node dist/scripts/demo-repo.js "$demo/repo"
if [ ! -f "$demo/disk.img" ]; then
  echo "[demo] creating the machine's boot disk: $demo/disk.img (MBR, FAT, syslinux, slots a and b)" >&2
  node bin/ramroot.js disk create --size 64 --layout mbr --slots a,b "$demo/disk.img" >&2
fi
pulumi stack select "$stack" 2>/dev/null || pulumi stack init "$stack"
updates() { pulumi stack history --stack "$stack" --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s||"[]").length)}catch{console.log(0)}})'; }
before="$(updates)"
# The preview first, with its diff (packages, overlay files, the slot written, DEFAULT), then
# the update (the provider refuses it if the plan moved on since the preview).
pulumi preview --diff --stack "$stack" "$@"
pulumi up --yes --skip-preview --stack "$stack" "$@"
changes="$(pulumi stack history --stack "$stack" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const h=JSON.parse(s)[0]||{};const c=h.resourceChanges||{};console.log(Object.entries(c).filter(([k,n])=>k!=="same"&&n>0).length)})')"
echo
if [ "$before" != "0" ] && [ "$changes" = "0" ]; then
  echo "[demo] nothing changed since the last deployment: no image built, no slot written, DEFAULT as it was" >&2
  echo "[demo] (npx ramroot qemu boots the machine; edit root/etc/ramroot/message to see a change)" >&2
else
  echo "[demo] booting $demo/disk.img through syslinux in QEMU" >&2
  node bin/ramroot.js qemu --stack "$stack" --expect "RAMROOT-DEMO image=" --timeout 180 > "$demo/console.log"
fi
echo
status="$(node bin/ramroot.js status --stack "$stack")"
echo "$status"
# "[DEFAULT]", or "[DEFAULT since update N: rollback to update M]" after a rollback
default_slot="$(printf '%s\n' "$status" | sed -n 's/^slot \([a-z0-9_-]*\) .*\[DEFAULT[] ].*/\1/p')"
next_slot=b
[ "$default_slot" = b ] && next_slot=a
echo
echo "The machine's disk:   $root/$demo/disk.img (write it to a USB stick, or: npx ramroot qemu)"
echo "The image artifacts:  $(pulumi stack output artifacts --stack "$stack" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const a=JSON.parse(s);console.log(require("path").dirname(a.initramfs.path))})')"
echo "Try a change:         edit root/etc/ramroot/message, then npm start again (slot $next_slot is written, DEFAULT flips to it)"
echo "What differs:         npx ramroot image diff --slot a --slot b (after the second deployment)"
