#!/usr/bin/env bash
# Installs every tool the test suite needs, at pinned versions, into a cache
# (default ~/.cache/mizuchi/tools) so a second run is fast. Go programs come
# from the Go module proxy; clients from Debian's packages.
#
# Prints nothing but progress on stderr; on success the tools are linked
# into "$MIZUCHI_TOOLS_DIR/bin", which the Makefile puts first on PATH.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools=${MIZUCHI_TOOLS_DIR:-$HOME/.cache/mizuchi/tools}
bin=$tools/bin
mkdir -p "$bin"

log() { printf 'install-tools: %s\n' "$*" >&2; }

# go_tool NAME MODULE/PATH@VERSION: go install into a versioned directory,
# once, then link NAME into $bin.
go_tool() {
	local name=$1 pkg=$2 version=${2##*@}
	local dir=$tools/$name-$version
	if [ ! -x "$dir/$name" ]; then
		log "building $pkg"
		mkdir -p "$dir"
		GOBIN=$dir GOFLAGS=-buildvcs=false CGO_ENABLED=0 go install "$pkg"
	fi
	ln -sfn "$dir/$name" "$bin/$name"
}

# go_tool_module NAME DIR PKG: build PKG, a tool pinned by the tools module
# under tools/DIR (for programs whose modules cannot be go-installed).
go_tool_module() {
	local name=$1 dir=$root/tools/$2 pkg=$3
	local stamp
	stamp=$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-12)
	local out=$tools/$name-$stamp
	if [ ! -x "$out/$name" ]; then
		log "building $pkg from tools/$2"
		mkdir -p "$out"
		(cd "$dir" && GOFLAGS=-buildvcs=false CGO_ENABLED=0 go build -o "$out/$name" "$pkg")
	fi
	ln -sfn "$out/$name" "$bin/$name"
}

# Debian packages: real clients of both generations and measuring tools.
apt_pkgs=(awscli python3-boto3 rclone s3cmd strace hyperfine time systemd chromium prometheus redis-server haproxy)
missing=()
for p in "${apt_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	sudo_cmd=()
	[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
	"${sudo_cmd[@]}" apt-get update -qq >&2
	"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	# prometheus is here for promtool (bookworm: 2.42.0); its service must
	# not hold :9090 where systemd starts it.
	if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null &&
		systemctl is-active --quiet prometheus 2>/dev/null; then
		"${sudo_cmd[@]}" systemctl disable --now prometheus >&2 || true
	fi
fi

go_tool versitygw github.com/versity/versitygw/cmd/versitygw@v1.8.0
go_tool opa github.com/open-policy-agent/opa@v1.22.3
go_tool openfga github.com/openfga/openfga/cmd/openfga@v1.22.1
go_tool staticcheck honnef.co/go/tools/cmd/staticcheck@v0.7.0
go_tool nats-server github.com/nats-io/nats-server/v2@v2.15.3
if [ -f "$root/tools/jaeger/go.mod" ]; then
	go_tool_module jaeger jaeger github.com/jaegertracing/jaeger/cmd/jaeger
fi

log "tools ready in $bin"
