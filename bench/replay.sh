#!/usr/bin/env bash
# SigV4 replay protection under load: KEYS access keys sending RATE signed
# PUTs per second in total (open loop) for DURATION against one bucket with
# replay_protection on the filesystem backend, while the last key floods
# PROBE_RATE signed HeadBucket requests per second. No PUT may be refused:
# in particular not one SlowDown from replay protection. One fresh Mizuchi
# under /usr/bin/time -v; reports the load generator's counts and latency,
# peak RSS, and CPU time.
#
# The store is the default (replay_max_entries 0: 2500 × max_clock_skew_seconds
# entries). SKEW defaults to 60 s so that, within a two-minute run, signatures
# expire and the store runs at its steady state (RATE × SKEW entries); with the
# default skew of 900 s the store is sized by the same rule (2 250 000 entries).
#
#   make build && bench/replay.sh     # KEYS=200 RATE=2000 PROBE_RATE=500 DURATION=120s SKEW=60
#
# Environment: MIZUCHI_BIN (default bin/mizuchi), BENCH_DIR (parent of the temp
# dir, default /dev/shm: the disk is not what is measured here).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIZUCHI_BIN=${MIZUCHI_BIN:-$root/bin/mizuchi}
[ -x "$MIZUCHI_BIN" ] || { echo "no $MIZUCHI_BIN: run make build (or set MIZUCHI_BIN)" >&2; exit 1; }
for tool in curl /usr/bin/time python3; do
	command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-tools.sh" >&2; exit 1; }
done
KEYS=${KEYS:-200} RATE=${RATE:-2000} PROBE_RATE=${PROBE_RATE:-500} DURATION=${DURATION:-120s} SKEW=${SKEW:-60}
work=$(mktemp -d "${BENCH_DIR:-/dev/shm}/mizuchi-replay.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not ready" >&2; return 1; }

go build -o "$work/replayload" "$root/bench/cmd/replayload"
port=$(free_port); metrics=$(free_port)
{
	cat <<YAML
server:
  address: "127.0.0.1:$port"
  shutdown_grace_seconds: 5
metrics: { address: "127.0.0.1:$metrics" }
logging: { level: warn }
buckets:
  - name: replay
    path_prefix: /replay
    filesystem: { root: "$work/fs" }
    auth:
      enabled: true
      sigv4:
        region: us-east-1
        max_clock_skew_seconds: $SKEW
        replay_protection: true
        credentials:
YAML
	for i in $(seq 0 $((KEYS - 1))); do
		echo "          - { access_key: rk$i, secret_key: rs$i, subject: k$i }"
	done
} >"$work/config.yaml"

echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -v -o "$work/time.txt" "$MIZUCHI_BIN" serve --config "$work/config.yaml" >"$work/mizuchi.log" 2>&1 &
pid=$!
wait_port "$port" || { cat "$work/mizuchi.log" >&2; exit 1; }
status=0
"$work/replayload" -url "http://127.0.0.1:$port/replay" -keys "$KEYS" -rate "$RATE" -probe-rate "$PROBE_RATE" \
	-duration "$DURATION" || status=1
echo "objects stored: $(find "$work/fs" -type f -not -path '*/.mizuchi/*' | wc -l)"
mizuchi=$(pgrep -P "$pid" || echo "$pid")
kill -INT "$mizuchi" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=
awk -F': ' '/Maximum resident set size/ {printf "Mizuchi peak RSS: %.1f MiB\n", $2/1024}
	/User time/ {u=$2} /System time/ {s=$2} END {printf "Mizuchi CPU: user %ss system %ss\n", u, s}' "$work/time.txt"
echo "# $(date -u +%FT%TZ) load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
