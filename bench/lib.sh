#!/usr/bin/env bash
# Shared setup for the benchmark scripts: a versitygw on a temp dir and a
# Mizuchi in front of it (anonymous bucket "bench" → store bucket "store").
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH=${MIZUCHI_TOOLS_DIR:-$HOME/.cache/mizuchi/tools}/bin:$PATH
work=$(mktemp -d /tmp/mizuchi-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not ready" >&2; return 1; }

AK=benchkey$RANDOM; SK=benchsecret$RANDOM$RANDOM
GW_PORT=$(free_port); MZ_PORT=$(free_port); METRICS_PORT=$(free_port)
mkdir -p "$work/gw/store" "$work/spool"
versitygw --port 127.0.0.1:$GW_PORT --access "$AK" --secret "$SK" --keep-alive --quiet posix "$work/gw" >"$work/gw.log" 2>&1 &
pids+=($!)
wait_port "$GW_PORT"

# start_mizuchi ZERO_COPY(true|false) [time-output-file]
start_mizuchi() {
	cat >"$work/mizuchi.yaml" <<YAML
server:
  address: "127.0.0.1:$MZ_PORT"
  zero_copy: { enabled: $1 }
buckets:
  - name: bench
    path_prefix: /bench
    s3: { bucket: store, region: us-east-1, endpoint: "http://127.0.0.1:$GW_PORT", force_path_style: true, access_key: "$AK", secret_key: "$SK" }
    upload: { max_object_size: 10GiB, multipart_threshold: 50MiB, part_size: 64MiB, concurrent_parts: 4, max_memory_buffer: 32MiB, spool_dir: "$work/spool" }
metrics: { address: "127.0.0.1:$METRICS_PORT" }
YAML
	if [ -n "${2:-}" ]; then
		/usr/bin/time -v -o "$2" "$root/bin/mizuchi" serve --config "$work/mizuchi.yaml" >"$work/mizuchi.log" 2>&1 &
	else
		"$root/bin/mizuchi" serve --config "$work/mizuchi.yaml" >"$work/mizuchi.log" 2>&1 &
	fi
	MZ_PID=$!
	pids+=($MZ_PID)
	wait_port "$MZ_PORT"
}

stop_mizuchi() { kill -INT "$MZ_PID"; wait "$MZ_PID" 2>/dev/null || true; }

# put_direct FILE KEY / put_mizuchi FILE KEY: the same client (curl) both ways.
put_direct() { curl -sfS -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -T "$1" "http://127.0.0.1:$GW_PORT/store/$2"; }
put_mizuchi() { curl -sfS -o /dev/null -T "$1" "http://127.0.0.1:$MZ_PORT/bench/$2"; }
export -f put_direct put_mizuchi
export AK SK GW_PORT MZ_PORT
