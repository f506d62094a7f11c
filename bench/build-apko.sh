#!/usr/bin/env bash
# Builds apko (chainguard.dev/apko) from the Go module proxy into
# ${RAMROOT_CACHE:-~/.cache/ramroot}/bench-tools/bin, outside the repository, for the install
# comparison. `go install module@version` cannot be used here: it asks the proxy for the
# module's version list (to check deprecation), which a filtered proxy refuses; a throwaway
# module that requires the exact version and builds the command works.
# Prints the binary's path as the last stdout line.
set -euo pipefail
version="${APKO_VERSION:-v0.30.26}"
tools="${RAMROOT_CACHE:-$HOME/.cache/ramroot}/bench-tools"
bin="$tools/bin/apko-$version"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
dir="$tools/build-apko-$version"
mkdir -p "$dir" "$tools/bin"
cat > "$dir/go.mod" <<MOD
module ramroot.local/apko-build

go 1.24

require chainguard.dev/apko $version
MOD
printf '//go:build tools\n\npackage tools\n\nimport _ "chainguard.dev/apko"\n' > "$dir/tools.go"
echo "[build-apko] go mod tidy + go build chainguard.dev/apko@$version (several minutes on 2 cores)" >&2
(cd "$dir" && go mod tidy >&2 && go build -trimpath -o "$bin.tmp" chainguard.dev/apko >&2)
mv "$bin.tmp" "$bin"
echo "$bin"
