#!/usr/bin/env bash
# Limiter overhead per request: one admission (token, upload slot and
# declared bytes, per subject and per bucket) and its release, with the
# memory counters and with a real redis-server (one Lua script call to
# admit, one to release). Go benchmark in internal/limits.
#
#   bench/limits.sh              # BENCHTIME=2s COUNT=3
#
# Needs redis-server on PATH (scripts/install-tools.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH=${MIZUCHI_TOOLS_DIR:-$HOME/.cache/mizuchi/tools}/bin:$PATH
cd "$root"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
go test -run '^$' -bench 'Admit' -benchtime "${BENCHTIME:-2s}" -count "${COUNT:-3}" ./internal/limits/
