#!/usr/bin/env bash
# setup-pulumi.sh — provide the REAL Pulumi engine (CLI + language hosts) offline.
#
# Resolution order:
#   1. a `pulumi` on PATH whose version >= the @pulumi/pulumi SDK version, with
#      `pulumi-language-nodejs` on PATH too;
#   2. a cached build in $RAMROOT_CACHE/pulumi/<cliversion>/bin/;
#   3. a source build from the Go module proxy (pkg/v3 CLI, nodejs language host
#      at a release pseudo-version, pulumi-language-yaml from pulumi-yaml).
#
# The result is installed into $PULUMI_HOME/versions/<cliversion>/bin (the layout
# used by both the npm `pulumi` wrapper and the Automation API's
# PulumiCommand.get({ root: "$PULUMI_HOME/versions/<cliversion>" })).
#
# Needs: a `pulumi` (>= the SDK version) with `pulumi-language-nodejs` on PATH, or Go >= 1.25
# to build them (the first build takes 5-11 minutes on two cores, then it is cached).
# Short progress goes to stderr, every detail (go, npm, smoke tests) to the log file
# ($RAMROOT_SETUP_LOG, default .ramroot/setup.log); the LAST stdout line is the absolute bin dir.
#
# Environment:
#   PULUMI_SDK_VERSION       @pulumi/pulumi version to satisfy (default: from
#                            node_modules/@pulumi/pulumi/package.json, else 3.270.0)
#   PULUMI_HOME              default $HOME/.pulumi
#   RAMROOT_CACHE            default $HOME/.cache/ramroot
#   PULUMI_CLI_VERSION       force a pkg/v3 version (e.g. v3.274.0) instead of auto-pick
#   PULUMI_NODEJS_HOST_VERSION  force a pseudo-version for
#                            github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3
#   PULUMI_YAML_VERSION      pulumi-yaml module version (default v1.25.0)
#   RAMROOT_PULUMI_REBUILD=1 ignore PATH/cache and rebuild
#   RAMROOT_SKIP_SMOKE=1     skip the smoke tests
#   RAMROOT_SMOKE_NODEJS=0   skip only the nodejs smoke test
#   RAMROOT_PULUMI_ALIASES=0 don't create versions/<sdkversion> alias symlinks
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SETUP_LOG="${RAMROOT_SETUP_LOG:-$PROJECT_ROOT/.ramroot/setup.log}"
mkdir -p "$(dirname "$SETUP_LOG")"
# Every command's own output goes to the log; the terminal gets say() lines only.
exec 3>&2 2>>"$SETUP_LOG"
log() { printf '[setup-pulumi] %s\n' "$*" >&2; }             # the log file only
say() { log "$*"; printf '[setup-pulumi] %s\n' "$*" >&3; }    # the terminal too
die() { say "ERROR: $*"; say "details: $SETUP_LOG"; exit 1; }
GO_MIN_VERSION=1.25

PKG_MOD="github.com/pulumi/pulumi/pkg/v3"
SDK_MOD="github.com/pulumi/pulumi/sdk/v3"
NODE_HOST_MOD="github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"
YAML_MOD="github.com/pulumi/pulumi-yaml"
CLI_MAIN="$PKG_MOD/cmd/pulumi"
YAML_MAIN="$YAML_MOD/cmd/pulumi-language-yaml"
VERSION_VAR="github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"
YAML_VERSION_VAR="github.com/pulumi/pulumi-yaml/pkg/version.Version"

# Known pseudo-versions of the nodejs language host, newest first, as
# "<pseudo-version>|<pkg/sdk release it was built against in its consumer>".
# The module has no tags, and the (filtered) proxy refuses @v/list and @latest,
# so the pseudo-version must be known exactly. Each candidate is verified
# against the proxy before use. The host is built in its own module with pkg/sdk
# pinned to the release after the "|" (an older host does not compile against
# newer sdk APIs), falling back to the CLI's pkg/sdk release (or using it
# directly when no pin is given, e.g. for an exact release pseudo-version).
# Provenance: go.mod of github.com/pulumi/pulumi-docker-build (tools.go imports
# the language hosts), read at the commits noted below.
NODE_HOST_CANDIDATES=(
  # docker-build go.mod @ 5b7692c0e3af (pkg/sdk v3.203.0); commit bee5e4fa4815 = 2025-08-06 (~v3.188)
  "v3.0.0-20250806165243-bee5e4fa4815|v3.188.0"
  # docker-build go.mod @ bc7700a50c3e (PR #284, pkg/sdk v3.136.1)
  "v3.0.0-20241011192335-fd77fa0e32b8|v3.136.1"
)
# The checksum DB (via the proxy) has no entries for these pseudo-versions, so
# skip sumdb verification for this one module (the zip still comes from the proxy).
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs"

# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------
# The node_modules that holds @pulumi/pulumi as Node finds it from this package: the checkout's
# own, or (ramroot installed in an owner's repository) the one npm hoisted it into above.
NODE_MODULES="$PROJECT_ROOT/node_modules"
for nm_dir in "$PROJECT_ROOT/node_modules" "$PROJECT_ROOT/.."; do
  if [[ -f "$nm_dir/@pulumi/pulumi/package.json" ]]; then NODE_MODULES="$(cd "$nm_dir" && pwd)"; break; fi
done
if [[ -z "${PULUMI_SDK_VERSION:-}" ]]; then
  if [[ -f "$NODE_MODULES/@pulumi/pulumi/package.json" ]]; then
    PULUMI_SDK_VERSION="$(node -p 'require(process.argv[1]).version' "$NODE_MODULES/@pulumi/pulumi/package.json")"
  else
    PULUMI_SDK_VERSION="3.270.0"
  fi
fi
PULUMI_SDK_VERSION="${PULUMI_SDK_VERSION#v}"
PULUMI_HOME="${PULUMI_HOME:-$HOME/.pulumi}"
RAMROOT_CACHE="${RAMROOT_CACHE:-$HOME/.cache/ramroot}"
PULUMI_YAML_VERSION="${PULUMI_YAML_VERSION:-v1.25.0}"
CACHE_ROOT="$RAMROOT_CACHE/pulumi"
mkdir -p "$CACHE_ROOT" "$PULUMI_HOME/versions"
export PATH="/usr/local/go/bin:$PATH"

log "SDK version: $PULUMI_SDK_VERSION  PULUMI_HOME=$PULUMI_HOME  cache=$CACHE_ROOT"

# semver helpers --------------------------------------------------------------
# strip leading v and any build metadata
normver() { local v="${1#v}"; printf '%s' "${v%%+*}"; }
# ver_ge A B : A >= B (release versions; a prerelease sorts before its release)
ver_ge() {
  local a b
  a="$(normver "$1")"; b="$(normver "$2")"
  [[ "$a" == "$b" ]] && return 0
  # sort -V treats "1.2.3-rc" > "1.2.3"; emulate semver by mapping "-" to "~"
  local lowest
  lowest="$(printf '%s\n%s\n' "${a//-/\~}" "${b//-/\~}" | sort -V | head -n1)"
  [[ "$lowest" == "${b//-/\~}" ]]
}
is_semver() { [[ "$(normver "$1")" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; }

# binary version: "pulumi version" prints e.g. v3.274.0
cli_version_of() { PULUMI_SKIP_UPDATE_CHECK=true "$1" version 2>/dev/null | head -n1 | tr -d '[:space:]'; }

# ---------------------------------------------------------------------------
# install helpers
# ---------------------------------------------------------------------------
copy_bin() { # src dst — hardlink if possible, else copy; keep mode
  local src="$1" dst="$2"
  # Already this file (a hard link): never remove it, another setup may be running it.
  [[ "$src" -ef "$dst" ]] && return 0
  rm -f "$dst"
  ln "$src" "$dst" 2>/dev/null || cp -p "$src" "$dst"
  chmod +x "$dst"
}

copy_sdk_launchers() { # into dir
  local dir="$1" sdkdir="$NODE_MODULES/@pulumi/pulumi" f
  [[ -d "$sdkdir" ]] || return 0
  for f in pulumi-resource-pulumi-nodejs pulumi-analyzer-policy; do
    if [[ -f "$sdkdir/$f" ]]; then
      cp -f "$sdkdir/$f" "$dir/$f" && chmod +x "$dir/$f"
      log "copied launcher $f from @pulumi/pulumi"
    fi
  done
}

install_into_home() { # srcbin cliver -> prints installed bin dir
  local srcbin="$1" cliver="$2" dest f
  dest="$PULUMI_HOME/versions/$cliver/bin"
  mkdir -p "$dest"
  for f in "$srcbin"/*; do
    [[ -f "$f" && -x "$f" ]] || continue
    copy_bin "$f" "$dest/$(basename "$f")"
  done
  copy_sdk_launchers "$dest"
  if [[ "${RAMROOT_PULUMI_ALIASES:-1}" != "0" ]]; then
    # Aliases so the default roots also resolve offline:
    #  - PulumiCommand.install() with no root uses ~/.pulumi/versions/<sdk version>
    #  - the npm `pulumi` wrapper uses $PULUMI_HOME/versions/<its package version>
    local alias aliases=("$PULUMI_SDK_VERSION")
    if [[ -f "$NODE_MODULES/pulumi/package.json" ]]; then
      aliases+=("$(node -p 'require(process.argv[1]).version' "$NODE_MODULES/pulumi/package.json")")
    fi
    for alias in "${aliases[@]}"; do
      [[ -z "$alias" || "$alias" == "$cliver" ]] && continue
      if [[ ! -e "$PULUMI_HOME/versions/$alias" || -L "$PULUMI_HOME/versions/$alias" ]]; then
        ln -sfn "$cliver" "$PULUMI_HOME/versions/$alias"
        log "alias $PULUMI_HOME/versions/$alias -> $cliver"
      fi
    done
  fi
  printf '%s\n' "$dest"
}

# ---------------------------------------------------------------------------
# 1. pulumi already on PATH?
# ---------------------------------------------------------------------------
find_on_path() {
  local p v
  p="$(command -v pulumi 2>/dev/null || true)"
  [[ -n "$p" ]] || return 1
  command -v pulumi-language-nodejs >/dev/null 2>&1 || { log "pulumi on PATH ($p) but no pulumi-language-nodejs"; return 1; }
  v="$(cli_version_of "$p")"
  is_semver "$v" || { log "pulumi on PATH reports non-semver version '$v'"; return 1; }
  ver_ge "$v" "$PULUMI_SDK_VERSION" || { log "pulumi on PATH is $v < $PULUMI_SDK_VERSION"; return 1; }
  say "using pulumi $v from PATH ($p)"
  FOUND_DIR="$(dirname "$(readlink -f "$p")")"
  FOUND_NODE_HOST="$(readlink -f "$(command -v pulumi-language-nodejs)")"
  FOUND_VER="$(normver "$v")"
}

# ---------------------------------------------------------------------------
# 2. cached build?
# ---------------------------------------------------------------------------
find_cached() { # picks the lowest cached version >= SDK that has pulumi + nodejs host
  local d v best="" bestpartial=""
  for d in "$CACHE_ROOT"/*/bin; do
    [[ -x "$d/pulumi" ]] || continue
    v="$(basename "$(dirname "$d")")"
    is_semver "$v" || continue
    ver_ge "$v" "$PULUMI_SDK_VERSION" || continue
    if [[ -x "$d/pulumi-language-nodejs" ]]; then
      if [[ -z "$best" ]] || ver_ge "$best" "$v"; then best="$v"; fi
    else
      if [[ -z "$bestpartial" ]] || ver_ge "$bestpartial" "$v"; then bestpartial="$v"; fi
    fi
  done
  if [[ -n "$best" ]]; then FOUND_VER="$best"; return 0; fi
  if [[ -n "$bestpartial" ]]; then FOUND_VER="$bestpartial"; PARTIAL=1; return 0; fi
  return 1
}

# ---------------------------------------------------------------------------
# 3. build from the Go module proxy
# ---------------------------------------------------------------------------
go_download_ok() { # module@version -> prints GoMod path on success
  local out
  out="$(cd "$CACHE_ROOT" && GOFLAGS=-mod=mod go mod download -json "$1" 2>/dev/null)" || return 1
  printf '%s' "$out" | grep -q '"Error"' && return 1
  printf '%s' "$out" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' | head -n1
}

pick_cli_version() {
  if [[ -n "${PULUMI_CLI_VERSION:-}" ]]; then
    printf 'v%s\n' "$(normver "$PULUMI_CLI_VERSION")"; return 0
  fi
  local versions v
  versions="$(cd "$CACHE_ROOT" && go list -m -versions "$PKG_MOD" 2>/dev/null | tr ' ' '\n' | tail -n +2 | grep -E '^v[0-9]+\.[0-9]+\.[0-9]+$' | sort -V)" \
    || die "cannot list $PKG_MOD versions from the Go module proxy"
  for v in $versions; do
    ver_ge "$v" "$PULUMI_SDK_VERSION" || continue
    log "trying $PKG_MOD@$v ..."
    if go_download_ok "$PKG_MOD@$v" >/dev/null && go_download_ok "$SDK_MOD@$v" >/dev/null; then
      printf '%s\n' "$v"; return 0
    fi
    log "  $v refused by the proxy"
  done
  return 1
}

pick_node_host() { # prints "pseudo|pin" of the first served candidate, or nothing
  local c list=()
  [[ -n "${PULUMI_NODEJS_HOST_VERSION:-}" ]] && list+=("$PULUMI_NODEJS_HOST_VERSION")
  list+=("${NODE_HOST_CANDIDATES[@]}")
  for c in "${list[@]}"; do
    [[ -n "$c" ]] || continue
    if go_download_ok "$NODE_HOST_MOD@${c%%|*}" >/dev/null; then
      printf '%s\n' "$c"; return 0
    fi
    log "  $NODE_HOST_MOD@${c%%|*} refused/unknown"
  done
  return 0
}

# print non-local replace directives of a go.mod file, one "old => new ver" per line
nonlocal_replaces() {
  awk '
    /^replace[ \t]*\(/ { inblock=1; next }
    inblock && /^\)/   { inblock=0; next }
    inblock            { print; next }
    /^replace[ \t]/    { sub(/^replace[ \t]+/, ""); print }
  ' "$1" | sed 's://.*$::' | awk -F'=>' 'NF==2 { t = $2; gsub(/^[ \t]+|[ \t]+$/, "", t); if (t !~ /^(\.|\/)/) print $0 }' \
    | sed 's/^[ \t]*//; s/[ \t]*$//'
}

write_module() { # dir modname gomodfiles... ; REQUIRES array used
  local dir="$1" name="$2"; shift 2
  mkdir -p "$dir"
  {
    printf 'module %s\n\ngo %s\n\nrequire (\n' "$name" "$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')"
    local r; for r in "${REQUIRES[@]}"; do printf '\t%s\n' "$r"; done
    printf ')\n'
    local f
    for f in "$@"; do nonlocal_replaces "$f"; done | sort -u | while read -r line; do
      [[ -n "$line" ]] && printf '\nreplace %s\n' "$line"
    done
  } > "$dir/go.mod"
}

write_tools() { # dir imports...
  local dir="$1"; shift
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    local i; for i in "$@"; do printf '\t_ "%s"\n' "$i"; done
    printf ')\n'
  } > "$dir/tools.go"
}

# Prints, every PROGRESS_EVERY seconds while `pid` runs, how many of `total` packages `go build
# -v` has compiled so far (it names each package it compiles, one a line, in `vlog`).
PROGRESS_EVERY="${RAMROOT_SETUP_PROGRESS_SECONDS:-20}"
build_progress() { # pid vlog total name t0
  local pid="$1" vlog="$2" total="$3" name="$4" t0="$5" n
  while kill -0 "$pid" 2>/dev/null; do
    sleep "$PROGRESS_EVERY" & wait $! || true
    kill -0 "$pid" 2>/dev/null || break
    n="$(grep -c . "$vlog" 2>/dev/null || true)"
    say "  $name: ${n:-0} of ~$total packages compiled ($(( $(date +%s) - t0 ))s)"
  done
}

go_build() { # dir out pkg ldversionvar version
  local dir="$1" out="$2" pkg="$3" var="$4" ver="$5" t0 total vlog pid rc=0
  t0=$(date +%s)
  total="$(cd "$dir" && go list -deps "$pkg" 2>/dev/null | grep -c . || true)"
  vlog="$(mktemp "${TMPDIR:-/tmp}/ramroot-go-build.XXXXXX")"
  say "go build $(basename "$out"): ~${total:-?} packages (a few minutes on 2 cores; cached ones are skipped)"
  # build to a temp name and rename, so a hard-linked/running copy is never rewritten in place
  ( cd "$dir" && go build -v -trimpath -ldflags "-s -w -X $var=$ver" -o "$out.tmp.$$" "$pkg" ) 2>"$vlog" &
  pid=$!
  build_progress "$pid" "$vlog" "${total:-?}" "$(basename "$out")" "$t0" &
  local progress_pid=$!
  wait "$pid" || rc=$?
  kill "$progress_pid" 2>/dev/null || true
  wait "$progress_pid" 2>/dev/null || true
  cat "$vlog" >&2
  rm -f "$vlog"
  if [[ "$rc" != 0 ]]; then rm -f "$out.tmp.$$"; say "  go build $(basename "$out") failed (exit $rc)"; return 1; fi
  mv -f "$out.tmp.$$" "$out"
  say "  built $(basename "$out") in $(( $(date +%s) - t0 ))s"
}

build_node_host() { # cliver dest -> 0 if built
  local cliver="$1" dest="$2" cand nodever pin nodemod pkgmod sdkmod ver ndir
  log "looking for a served pseudo-version of $NODE_HOST_MOD ..."
  cand="$(pick_node_host)"
  if [[ -z "$cand" ]]; then
    say "WARNING: no served pseudo-version of $NODE_HOST_MOD found; no nodejs language host"
    log "         (set PULUMI_NODEJS_HOST_VERSION='v3.0.0-<yyyymmddhhmmss>-<12hex>[|<pkg/sdk version>]')"
    return 1
  fi
  nodever="${cand%%|*}"; pin=""; [[ "$cand" == *"|"* ]] && pin="${cand#*|}"
  log "nodejs language host: $NODE_HOST_MOD@$nodever"
  nodemod="$(go_download_ok "$NODE_HOST_MOD@$nodever")"
  # known-good pin first (what the host was built against in the wild), then the CLI release
  for ver in ${pin:+"$pin"} "$cliver"; do
    pkgmod="$(go_download_ok "$PKG_MOD@$ver")" && sdkmod="$(go_download_ok "$SDK_MOD@$ver")" || {
      log "  pkg/sdk $ver not downloadable; skipping"; continue; }
    ndir="$CACHE_ROOT/build-nodejs-host-$nodever-$ver"
    REQUIRES=("$PKG_MOD $ver" "$SDK_MOD $ver" "$NODE_HOST_MOD $nodever")
    write_module "$ndir" "ramroot.local/pulumi-nodejs-host-build" "$nodemod" "$pkgmod" "$sdkmod"
    write_tools "$ndir" "$NODE_HOST_MOD"
    log "building the nodejs host against pkg/sdk $ver in $ndir ..."
    if ( cd "$ndir" && go mod tidy ) >&2 \
       && go_build "$ndir" "$dest/pulumi-language-nodejs" "$NODE_HOST_MOD" "$VERSION_VAR" "$cliver"; then
      printf '%s (built against pkg/sdk %s)\n' "$nodever" "$ver" > "$dest/.pulumi-language-nodejs.version"
      return 0
    fi
    log "  nodejs host does not build against pkg/sdk $ver"
  done
  say "WARNING: could not build $NODE_HOST_MOD@$nodever"
  return 1
}

build_all() { # cliver(v-prefixed) destbin need_cli need_node need_yaml
  local cliver="$1" dest="$2" need_cli="$3" need_node="$4" need_yaml="$5"
  local bdir="$CACHE_ROOT/build-$cliver" pkgmod sdkmod
  mkdir -p "$dest"

  if [[ "$need_cli" == 1 ]]; then
    pkgmod="$(go_download_ok "$PKG_MOD@$cliver")" || die "$PKG_MOD@$cliver not downloadable"
    sdkmod="$(go_download_ok "$SDK_MOD@$cliver")" || die "$SDK_MOD@$cliver not downloadable"
    REQUIRES=("$PKG_MOD $cliver" "$SDK_MOD $cliver")
    write_module "$bdir" "ramroot.local/pulumi-build" "$pkgmod" "$sdkmod"
    write_tools "$bdir" "$CLI_MAIN"
    log "resolving module graph in $bdir (go mod tidy) ..."
    ( cd "$bdir" && go mod tidy ) >&2 || die "go mod tidy failed in $bdir"
    log "resolved: $(cd "$bdir" && go list -m "$PKG_MOD" "$SDK_MOD" | tr '\n' ' ')"
    go_build "$bdir" "$dest/pulumi" "$CLI_MAIN" "$VERSION_VAR" "$cliver" || die "building the pulumi CLI failed"
  fi

  if [[ "$need_node" == 1 ]]; then
    build_node_host "$cliver" "$dest" || true
  fi

  if [[ "$need_yaml" == 1 ]]; then
    # separate module: pulumi-yaml pins its own (older) pkg/sdk, which MVS must
    # not raise to the CLI version (APIs get removed between releases).
    local ydir="$CACHE_ROOT/build-yaml-$PULUMI_YAML_VERSION" ymod
    if ymod="$(go_download_ok "$YAML_MOD@$PULUMI_YAML_VERSION")"; then
      REQUIRES=("$YAML_MOD $PULUMI_YAML_VERSION")
      write_module "$ydir" "ramroot.local/pulumi-yaml-build" "$ymod"
      write_tools "$ydir" "$YAML_MAIN"
      log "resolving pulumi-yaml module graph in $ydir ..."
      if ( cd "$ydir" && go mod tidy ) >&2; then
        go_build "$ydir" "$dest/pulumi-language-yaml" "$YAML_MAIN" "$YAML_VERSION_VAR" "$PULUMI_YAML_VERSION" \
          || say "WARNING: pulumi-language-yaml build failed"
      else
        log "WARNING: go mod tidy failed for pulumi-yaml; skipping pulumi-language-yaml"
      fi
    else
      log "WARNING: $YAML_MOD@$PULUMI_YAML_VERSION not served; skipping pulumi-language-yaml"
    fi
  fi
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
FOUND_DIR="" FOUND_VER="" FOUND_NODE_HOST="" PARTIAL=0 BIN=""

if [[ "${RAMROOT_PULUMI_REBUILD:-0}" != "1" ]] && find_on_path; then
  home_bin="$PULUMI_HOME/versions/$FOUND_VER/bin"
  if [[ "$FOUND_DIR" == "$(readlink -f "$home_bin" 2>/dev/null || true)" ]]; then
    BIN="$home_bin"
  else
    # expose the PATH install through the shared layout as well
    mkdir -p "$home_bin"
    for f in "$FOUND_DIR"/pulumi "$FOUND_DIR"/pulumi-language-* "$FOUND_NODE_HOST"; do
      [[ -x "$f" ]] || continue
      [[ -e "$home_bin/$(basename "$f")" ]] || ln -s "$f" "$home_bin/$(basename "$f")"
    done
    copy_sdk_launchers "$home_bin"
    BIN="$home_bin"
  fi
else
  need_cli=1 need_node=1 need_yaml=1
  if [[ "${RAMROOT_PULUMI_REBUILD:-0}" != "1" ]] && find_cached; then
    cache_bin="$CACHE_ROOT/$FOUND_VER/bin"
    say "using the cached build in $cache_bin"
    need_cli=0; need_node=0; need_yaml=0
    [[ -x "$cache_bin/pulumi-language-yaml" ]] || need_yaml=1
    if [[ "$PARTIAL" == 1 ]]; then
      need_node=1
      log "cached build lacks pulumi-language-nodejs; will try to build it"
    else
      # rebuild the host if a preferred (newer) pseudo-version is configured and served
      recorded="$(awk '{print $1; exit}' "$cache_bin/.pulumi-language-nodejs.version" 2>/dev/null || true)"
      preferred="${PULUMI_NODEJS_HOST_VERSION:-${NODE_HOST_CANDIDATES[0]}}"
      if [[ -n "$recorded" && "${preferred%%|*}" != "$recorded" ]]; then
        best="$(pick_node_host)"
        if [[ -n "$best" && "${best%%|*}" != "$recorded" ]]; then
          log "cached nodejs host is $recorded; rebuilding with ${best%%|*}"
          need_node=1
        fi
      fi
    fi
    cliver="v$FOUND_VER"
  else
    command -v go >/dev/null || die "no pulumi >= $PULUMI_SDK_VERSION on PATH and no Go to build one: install Go >= $GO_MIN_VERSION (in /usr/local/go/bin or on PATH), or put a pulumi with pulumi-language-nodejs on PATH"
    gov="$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')"
    ver_ge "$gov.0" "$GO_MIN_VERSION.0" || die "Go $gov is older than $GO_MIN_VERSION, which the Pulumi CLI needs: install a newer Go, or put a pulumi >= $PULUMI_SDK_VERSION on PATH"
    say "no pulumi on PATH or in the cache: building it with Go $gov from the Go module proxy ($(go env GOPROXY)), once; 5-11 minutes on 2 cores"
    cliver="$(pick_cli_version)" || die "no served $PKG_MOD release >= $PULUMI_SDK_VERSION"
    say "CLI version: $cliver"
    cache_bin="$CACHE_ROOT/$(normver "$cliver")/bin"
  fi
  if [[ "$need_cli$need_node$need_yaml" != "000" ]]; then
    t_start=$(date +%s)
    build_all "$cliver" "$cache_bin" "$need_cli" "$need_node" "$need_yaml"
    say "build step finished in $(( $(date +%s) - t_start ))s"
  fi
  [[ -x "$cache_bin/pulumi" ]] || die "no pulumi binary in $cache_bin"
  BIN="$(install_into_home "$cache_bin" "$(normver "$cliver")")"
fi

# ---------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------
ver="$(cli_version_of "$BIN/pulumi")"
is_semver "$ver" || die "$BIN/pulumi version printed '$ver' (not semver)"
[[ "$ver" == v* ]] || die "$BIN/pulumi version printed '$ver' (expected v3.x.y)"
log "pulumi version: $ver"
for f in pulumi-language-nodejs pulumi-language-yaml; do
  if [[ -x "$BIN/$f" ]]; then log "  $f: present"; else say "  $f: MISSING"; fi
done

smoke_env() {
  # isolated PULUMI_HOME so `pulumi login file://...` doesn't change the user's
  # current backend; language hosts are found next to the pulumi binary.
  mkdir -p "$SMOKE/home"
  export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true \
         PULUMI_CONFIG_PASSPHRASE=test PULUMI_HOME="$SMOKE/home" PATH="$BIN:$PATH"
}

if [[ "${RAMROOT_SKIP_SMOKE:-0}" != "1" ]]; then
  SMOKE="$(mktemp -d "${TMPDIR:-/tmp}/ramroot-pulumi-smoke.XXXXXX")"
  trap 'rm -rf "$SMOKE"' EXIT
  if [[ -x "$BIN/pulumi-language-yaml" ]]; then
    say "smoke tests (yaml, nodejs) against a file backend ..."
    (
      smoke_env
      mkdir -p "$SMOKE/state" "$SMOKE/yaml"
      cd "$SMOKE/yaml"
      cat > Pulumi.yaml <<'EOF'
name: ramroot-smoke-yaml
runtime: yaml
outputs:
  greeting: hello-from-yaml
EOF
      pulumi login "file://$SMOKE/state"
      pulumi stack init t --non-interactive
      pulumi up --yes --non-interactive --skip-preview
      out="$(pulumi stack output greeting)"
      [[ "$out" == "hello-from-yaml" ]] || { echo "unexpected output '$out'" >&2; exit 1; }
    ) >&2 || die "yaml smoke test failed"
    say "yaml smoke test OK"
  else
    log "skipping yaml smoke test (no pulumi-language-yaml)"
  fi

  if [[ -x "$BIN/pulumi-language-nodejs" && "${RAMROOT_SMOKE_NODEJS:-1}" != "0" ]]; then
    # needs @pulumi/pulumi; prefer the project's node_modules, else a cached install
    nm=""
    if [[ -d "$NODE_MODULES/@pulumi/pulumi" ]]; then
      nm="$NODE_MODULES"
    else
      sdkcache="$RAMROOT_CACHE/smoke-nodejs-$PULUMI_SDK_VERSION"
      if [[ ! -d "$sdkcache/node_modules/@pulumi/pulumi" ]]; then
        log "installing @pulumi/pulumi@$PULUMI_SDK_VERSION into $sdkcache for the nodejs smoke test ..."
        mkdir -p "$sdkcache"
        ( cd "$sdkcache" && [[ -f package.json ]] || echo '{"name":"ramroot-smoke","private":true}' > package.json
          npm install --no-audit --no-fund --loglevel=error "@pulumi/pulumi@$PULUMI_SDK_VERSION" ) >&2 \
          || log "WARNING: npm install failed; skipping nodejs smoke test"
      fi
      [[ -d "$sdkcache/node_modules/@pulumi/pulumi" ]] && nm="$sdkcache/node_modules"
    fi
    if [[ -n "$nm" ]]; then
      log "smoke test (nodejs, file backend) using $nm ..."
      (
        smoke_env
        mkdir -p "$SMOKE/state" "$SMOKE/node"
        cd "$SMOKE/node"
        ln -s "$nm" node_modules
        cat > Pulumi.yaml <<'EOF'
name: ramroot-smoke-node
runtime: nodejs
EOF
        echo '{"name":"ramroot-smoke-node","main":"index.js"}' > package.json
        cat > index.js <<'EOF'
const pulumi = require("@pulumi/pulumi");
module.exports = { greeting: pulumi.output("hello-from-nodejs") };
EOF
        pulumi login "file://$SMOKE/state"
        pulumi stack init n --non-interactive
        pulumi up --yes --non-interactive --skip-preview
        out="$(pulumi stack output greeting)"
        [[ "$out" == "hello-from-nodejs" ]] || { echo "unexpected output '$out'" >&2; exit 1; }
      ) >&2 || die "nodejs smoke test failed"
      say "nodejs smoke test OK"
    fi
  fi
fi

say "done: $BIN"
log "  npm 'pulumi' wrapper: PULUMI_HOME=$PULUMI_HOME PULUMI_VERSION=${ver#v} npx pulumi ..."
log "  Automation API: PulumiCommand.get({ root: \"$(dirname "$BIN")\" })"
printf '%s\n' "$BIN"
