#!/usr/bin/env bash
# What the events outbox adds to an upload: two Mizuchi processes from the
# same binary side by side, identical but for a webhook sink on the bucket
# (each stored object's event fsync'd to the bbolt outbox before the 200,
# then POSTed to a local receiver). bench/cmd/putlat sends small PUTs to
# both, interleaved round by round, and reports latency percentiles; it
# also serves the webhook receiver and counts the events that arrive.
# Filesystem backend; objects and outbox on DATA_DIR (default: a temp dir
# under /tmp, a real disk, since fsync is the cost being measured).
#
#   bench/events-latency.sh                       # sequential PUTs
#   CONCURRENCY=8 bench/events-latency.sh         # concurrent PUTs (commits shared)
#
# Knobs: ROUNDS (5), N (200 PUTs per target per round), SIZE (4096),
# CONCURRENCY (1), DATA_DIR.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-5} N=${N:-200} SIZE=${SIZE:-4096} CONCURRENCY=${CONCURRENCY:-1}
work=$(mktemp -d /tmp/mizuchi-events-bench.XXXXXX)
DATA_DIR=${DATA_DIR:-$work/data}
mkdir -p "$DATA_DIR"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "$1 not ready" >&2; return 1; }

echo "building mizuchi and putlat" >&2
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/mizuchi" ./cmd/mizuchi && go build -o "$work/putlat" ./bench/cmd/putlat)

HOOK=127.0.0.1:$(free_port)
targets=()
# start_mizuchi NAME EVENTS_YAML
start_mizuchi() {
	local name=$1 events=$2 port mport
	port=$(free_port) mport=$(free_port)
	cat >"$work/$name.yaml" <<YAML
server: { address: "127.0.0.1:$port" }
metrics: { address: "127.0.0.1:$mport" }
logging: { level: warn }
events: { outbox_dir: "$DATA_DIR/outbox-$name" }
buckets:
  - name: bench
    path_prefix: /bench
    filesystem: { root: "$DATA_DIR/fs-$name" }
$events
YAML
	"$work/mizuchi" serve --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
	pids+=($!)
	targets+=(-target "$name=http://127.0.0.1:$port/bench")
	wait_http "http://127.0.0.1:$port/healthz"
	printf -v "METRICS_$name" %s "$mport"
}
start_mizuchi off ""
start_mizuchi events "    events:
      - { type: webhook, url: \"http://$HOOK/hook\", secret: bench-secret }"

echo "rounds=$ROUNDS n=$N size=$SIZE concurrency=$CONCURRENCY cpus=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg)" \
	"data=$(df --output=source "$DATA_DIR" | tail -1)"
"$work/putlat" "${targets[@]}" -hook "$HOOK" -rounds "$ROUNDS" -n "$N" -size "$SIZE" -concurrency "$CONCURRENCY"
echo "events process: $(curl -sf "http://127.0.0.1:$METRICS_events/metrics" | grep -E '^mizuchi_events_(total\{.*result="(delivered|failed)"|pending)' | tr '\n' ' ')"
