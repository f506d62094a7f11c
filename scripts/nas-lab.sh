#!/usr/bin/env bash
# Prepares the nas-lab stack's machine twin, offline, once (stacks/Pulumi.nas-lab.yaml): the
# package repository, a key pair for root, the boot disk with the stack's image in slot a,
# the twin running in the background with ssh on 127.0.0.1:2222, and the host keys it printed
# on its console in .ramroot/nas-lab/known_hosts, and the stack. Then: npx pulumi up --stack nas-lab
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# shellcheck source=/dev/null
source .ramroot/env.sh
lab=.ramroot/nas-lab
mkdir -p "$lab"
# The lab stack's own passphrase (stacks/Pulumi.nas-lab.yaml's salt is made with it), for this
# stack only; `npx ramroot` finds it too.
mkdir -p -m 0700 .ramroot/passphrases
[ -f .ramroot/passphrases/nas-lab ] || (umask 077 && printf 'ramroot-nas-lab\n' > .ramroot/passphrases/nas-lab)
if [ -z "${PULUMI_CONFIG_PASSPHRASE+set}${PULUMI_CONFIG_PASSPHRASE_FILE+set}" ]; then
  export PULUMI_CONFIG_PASSPHRASE_FILE="$root/.ramroot/passphrases/nas-lab"
fi
RAMROOT_CLI_MAIN="$root/dist/provider/cli/main.js" node dist/scripts/nas-lab-repo.js "$lab/repo"
if [ ! -f "$lab/id_ed25519" ]; then ssh-keygen -q -t ed25519 -N "" -C "nas-lab" -f "$lab/id_ed25519"; fi
# Only the public key enters the image (git ignores it: each clone makes its own pair).
mkdir -p stacks/nas-lab/root/root/.ssh
cp "$lab/id_ed25519.pub" stacks/nas-lab/root/root/.ssh/authorized_keys
printf 'Host 127.0.0.1\n  IdentityFile %s\n  IdentitiesOnly yes\n  BatchMode yes\n' "$root/$lab/id_ed25519" > "$lab/ssh_config"
if [ ! -f "$lab/boot.img" ]; then
  echo "[nas-lab] the twin's boot disk: $lab/boot.img, the stack's image in slot a" >&2
  # The stack's image config, its paths made absolute, for `ramroot build`.
  node -e '
    const yaml = require("yaml"), fs = require("fs"), path = require("path");
    const image = yaml.parse(fs.readFileSync("stacks/Pulumi.nas-lab.yaml", "utf8")).config["ramroot:image"];
    for (const k of ["repositories", "keys"]) image[k] = image[k].map((p) => path.resolve(p));
    image.overlay = path.resolve(image.overlay);
    fs.writeFileSync(process.argv[1], JSON.stringify(image, null, 2));
  ' "$lab/image.json"
  built="$(node bin/ramroot.js build "$lab/image.json")"
  field() { printf '%s\n' "$built" | sed -n "s/^$1 *\\([^ ]*\\).*/\\1/p" | head -1; }
  node bin/ramroot.js disk create --size 128 --layout mbr --slots a,b "$lab/boot.img.partial" >&2
  node bin/ramroot.js slot write --image "$lab/boot.img.partial" --slot a --kernel "$(field kernel)" --initramfs "$(field initramfs)" \
    --image-id "$(field imageId)" --plan-id "$(field planId)" >&2
  node bin/ramroot.js syslinux write --image "$lab/boot.img.partial" --default a --slots a \
    --append "rdinit=/sbin/init console=ttyS0 ramroot.image=$(field imageId) panic=10" >&2
  mv "$lab/boot.img.partial" "$lab/boot.img"
fi
node bin/ramroot.js vm stop --stack nas-lab >&2
rm -f "$lab/serial.log"
node bin/ramroot.js vm --stack nas-lab --ssh-port 2222 --serial-log "$lab/serial.log" --detach >&2
echo "[nas-lab] waiting for the twin's sshd (a minute or two without KVM; console: $lab/serial.log)" >&2
for _ in $(seq 1 600); do
  grep -q "dropbear: listening" "$lab/serial.log" 2>/dev/null && break
  sleep 1
done
grep -q "dropbear: listening" "$lab/serial.log" || { tail -30 "$lab/serial.log" >&2; echo "[nas-lab] the twin did not start sshd" >&2; exit 1; }
sed -n 's/^ramroot: ssh host key \([^ ]* [^ ]*\).*/[127.0.0.1]:2222 \1/p' "$lab/serial.log" | tr -d '\r' > "$lab/known_hosts"
ssh -F "$lab/ssh_config" -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$root/$lab/known_hosts" -p 2222 root@127.0.0.1 \
  'echo "[nas-lab] $(hostname) runs image $(cat /run/ramroot/image-id)"' >&2
# The stack in the project's backend (its config is stacks/Pulumi.nas-lab.yaml).
pulumi stack select nas-lab 2>/dev/null || pulumi stack init nas-lab >&2
echo "[nas-lab] ready: PULUMI_CONFIG_PASSPHRASE_FILE=.ramroot/passphrases/nas-lab npx pulumi up --stack nas-lab (stop the twin: npx ramroot vm stop --stack nas-lab)" >&2
