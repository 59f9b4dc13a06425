#!/usr/bin/env bash
# Shared setup for the benchmark scripts: a versitygw on a temp dir and
# helpers to start Mizuchi in front of it. Loopback only; everything lives
# under one temp dir that is removed on exit.
#
# Buckets of every Mizuchi started by start_mizuchi (all anonymous):
#   /bench  S3 → versitygw bucket "store", multipart_threshold 5 GiB: a
#           1 GiB or 64 MiB PUT is streamed straight through (the default
#           threshold is 50 MiB, above which parts are spooled)
#   /mp1    S3, auto-multipart above 64 MiB, 64 MiB parts, concurrent_parts 1
#   /mp4    S3, auto-multipart above 64 MiB, 64 MiB parts, concurrent_parts 4
#   /dflt   S3, upload defaults (auto-multipart above 50 MiB, 64 MiB parts,
#           concurrent_parts 4, max_memory_buffer 32 MiB, then spooled)
#   /fs     filesystem backend under $work/fs
#
# Environment: MIZUCHI_BIN (default bin/mizuchi), MIZUCHI_TOOLS_DIR,
# BENCH_DIR (parent of the temp dir, default /tmp; must not be tmpfs for
# the disk-bound cases).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH=${MIZUCHI_TOOLS_DIR:-$HOME/.cache/mizuchi/tools}/bin:$PATH
MIZUCHI_BIN=${MIZUCHI_BIN:-$root/bin/mizuchi}
[ -x "$MIZUCHI_BIN" ] || { echo "no $MIZUCHI_BIN: run make build (or set MIZUCHI_BIN)" >&2; exit 1; }
for tool in versitygw curl /usr/bin/time python3; do
	command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-tools.sh" >&2; exit 1; }
done
work=$(mktemp -d "${BENCH_DIR:-/tmp}/mizuchi-bench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not ready" >&2; return 1; }

# machine_note prints what else ran on the machine (load average, CPUs).
machine_note() { echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }

AK=benchkey$RANDOM; SK=benchsecret$RANDOM$RANDOM
GW_PORT=$(free_port)
mkdir -p "$work/gw/store" "$work/spool" "$work/fs"
versitygw --port 127.0.0.1:$GW_PORT --access "$AK" --secret "$SK" --keep-alive --quiet posix "$work/gw" >"$work/gw.log" 2>&1 &
pids+=($!)
wait_port "$GW_PORT"

# start_mizuchi NAME ZERO_COPY(true|false) [time-output-file]
# Starts a Mizuchi; sets ${NAME}_PORT, ${NAME}_METRICS, ${NAME}_PID.
# With a time-output-file it runs under /usr/bin/time -v, and the PID is
# the one of time (signals reach Mizuchi through it).
start_mizuchi() {
	local name=$1 zc=$2 port metrics cfg=$work/$1.yaml
	port=$(free_port); metrics=$(free_port)
	local s3="{ bucket: store, region: us-east-1, endpoint: \"http://127.0.0.1:$GW_PORT\", force_path_style: true, access_key: \"$AK\", secret_key: \"$SK\" }"
	cat >"$cfg" <<YAML
server:
  address: "127.0.0.1:$port"
  zero_copy: { enabled: $zc }
  shutdown_grace_seconds: 5
logging: { level: warn }
buckets:
  - name: bench
    path_prefix: /bench
    s3: $s3
    upload: { max_object_size: 10GiB, multipart_threshold: 5GiB }
  - name: mp1
    path_prefix: /mp1
    s3: $s3
    upload: { max_object_size: 10GiB, multipart_threshold: 64MiB, part_size: 64MiB, concurrent_parts: 1, spool_dir: "$work/spool" }
  - name: mp4
    path_prefix: /mp4
    s3: $s3
    upload: { max_object_size: 10GiB, multipart_threshold: 64MiB, part_size: 64MiB, concurrent_parts: 4, spool_dir: "$work/spool" }
  - name: dflt
    path_prefix: /dflt
    s3: $s3
    upload: { max_object_size: 10GiB, spool_dir: "$work/spool" }
  - name: fs
    path_prefix: /fs
    filesystem: { root: "$work/fs" }
    upload: { max_object_size: 10GiB }
metrics: { address: "127.0.0.1:$metrics" }
YAML
	if [ -n "${3:-}" ]; then
		/usr/bin/time -v -o "$3" "$MIZUCHI_BIN" serve --config "$cfg" >"$work/$name.log" 2>&1 &
	else
		"$MIZUCHI_BIN" serve --config "$cfg" >"$work/$name.log" 2>&1 &
	fi
	local pid=$!
	pids+=($pid)
	printf -v "${name}_PORT" %s "$port"
	printf -v "${name}_METRICS" %s "$metrics"
	printf -v "${name}_PID" %s "$pid"
	wait_port "$port" || { cat "$work/$name.log" >&2; return 1; }
}

# stop_mizuchi NAME: SIGINT (graceful) to Mizuchi and wait. GNU time
# ignores SIGINT itself, so under time the signal goes to its child.
stop_mizuchi() {
	local pid_var=${1}_PID target
	target=${!pid_var}
	if [ "$(cat /proc/"$target"/comm 2>/dev/null)" = time ]; then
		target=$(pgrep -P "$target" || echo "$target")
	fi
	kill -INT "$target" 2>/dev/null || true
	wait "${!pid_var}" 2>/dev/null || true
}

# max_rss_mib FILE: "Maximum resident set size" of a /usr/bin/time -v report, in MiB.
max_rss_mib() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$1"; }

# metric PORT NAME: one unlabelled sample from a metrics listener.
metric() { curl -sf "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }

# put_direct FILE KEY / put_via PORT PREFIX FILE KEY: the same client (curl)
# both ways; prints curl's total time in seconds. The direct leg is signed
# with SigV4 and UNSIGNED-PAYLOAD, so neither leg hashes the body.
put_direct() {
	curl -sfS -o /dev/null -w '%{time_total}\n' --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -T "$1" "http://127.0.0.1:$GW_PORT/store/$2"
}
put_via() { curl -sfS -o /dev/null -w '%{time_total}\n' -T "$3" "http://127.0.0.1:$1/$2/$4"; }
