#!/usr/bin/env bash
# Tracing overhead: two Mizuchi processes side by side, identical but for
# tracing (off, and always-on exporting over OTLP/gRPC to a real Jaeger),
# measured in the same run with bench/cmd/loadgen, interleaved round by
# round: throughput of big single PUTs and the rate of small PUTs.
# Loopback only; bounded (about ROUNDS × 12 s).
#
#   bench/tracing-overhead.sh                      # filesystem backend
#   BACKEND=versitygw bench/tracing-overhead.sh    # S3 backend (more spans per upload)
#
# Knobs: RATIO (unset; e.g. 0.1 adds a third process sampling that ratio),
# ROUNDS (7), BIG (256MiB), BIG_COUNT (2), SMALL (4KiB),
# CONCURRENCY (8), DURATION (3s), DATA_DIR (/dev/shm when writable).
# Needs the tools (scripts/install-tools.sh: jaeger, versitygw).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH=${MIZUCHI_TOOLS_DIR:-$HOME/.cache/mizuchi/tools}/bin:$PATH
BACKEND=${BACKEND:-filesystem}
ROUNDS=${ROUNDS:-7} BIG=${BIG:-256MiB} BIG_COUNT=${BIG_COUNT:-2} SMALL=${SMALL:-4KiB}
CONCURRENCY=${CONCURRENCY:-8} DURATION=${DURATION:-3s}

work=$(mktemp -d /tmp/mizuchi-trace-bench.XXXXXX)
if [ -z "${DATA_DIR:-}" ]; then
	if [ -w /dev/shm ]; then DATA_DIR=$(mktemp -d /dev/shm/mizuchi-trace-bench.XXXXXX); else DATA_DIR=$work/data; fi
fi
mkdir -p "$DATA_DIR"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work" "$DATA_DIR"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_tcp() { for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not ready" >&2; return 1; }
wait_http() { for _ in $(seq 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "$1 not ready" >&2; return 1; }

echo "building mizuchi and loadgen" >&2
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/mizuchi" ./cmd/mizuchi && go build -o "$work/loadgen" ./bench/cmd/loadgen)

# Jaeger v2 with in-memory storage.
J_HEALTH=$(free_port) J_QUERY=$(free_port) J_QGRPC=$(free_port) J_OTLP=$(free_port) J_OTLPHTTP=$(free_port)
cat >"$work/jaeger.yaml" <<YAML
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [jaeger_storage_exporter] }
  telemetry: { metrics: { level: none }, logs: { level: warn } }
extensions:
  healthcheckv2: { use_v2: true, http: { endpoint: "127.0.0.1:$J_HEALTH" } }
  jaeger_storage: { backends: { memstore: { memory: { max_traces: 20000 } } } }
  jaeger_query:
    storage: { traces: memstore }
    http: { endpoint: "127.0.0.1:$J_QUERY" }
    grpc: { endpoint: "127.0.0.1:$J_QGRPC" }
receivers:
  otlp:
    protocols:
      grpc: { endpoint: "127.0.0.1:$J_OTLP" }
      http: { endpoint: "127.0.0.1:$J_OTLPHTTP" }
processors:
  batch: {}
exporters:
  jaeger_storage_exporter: { trace_storage: memstore }
YAML
jaeger --config "file:$work/jaeger.yaml" >"$work/jaeger.log" 2>&1 &
pids+=($!)
cpu=(-cpu "jaeger=$!")
wait_http "http://127.0.0.1:$J_HEALTH/status"
wait_http "http://127.0.0.1:$J_QUERY/api/services"

case $BACKEND in
filesystem) ;;
versitygw)
	AK=benchkey$RANDOM SK=benchsecret$RANDOM$RANDOM GW_PORT=$(free_port)
	mkdir -p "$DATA_DIR/gw/store-off" "$DATA_DIR/gw/store-on" "$DATA_DIR/gw/store-ratio"
	versitygw --port "127.0.0.1:$GW_PORT" --access "$AK" --secret "$SK" --keep-alive --quiet posix "$DATA_DIR/gw" >"$work/gw.log" 2>&1 &
	pids+=($!)
	cpu+=(-cpu "versitygw=$!")
	wait_tcp "$GW_PORT"
	;;
*) echo "BACKEND must be filesystem or versitygw" >&2; exit 2 ;;
esac

# start_mizuchi NAME TRACING_YAML: adds a -target and a -cpu for loadgen,
# sets METRICS_<NAME>.
start_mizuchi() {
	local name=$1 tracing=$2 port mport backend
	port=$(free_port) mport=$(free_port)
	if [ "$BACKEND" = filesystem ]; then
		backend="filesystem: { root: \"$DATA_DIR/fs-$name\" }"
	else
		backend="s3: { bucket: store-$name, region: us-east-1, endpoint: \"http://127.0.0.1:$GW_PORT\", force_path_style: true, access_key: \"$AK\", secret_key: \"$SK\" }"
	fi
	cat >"$work/$name.yaml" <<YAML
server: { address: "127.0.0.1:$port" }
metrics: { address: "127.0.0.1:$mport" }
logging: { level: warn }
$tracing
buckets:
  - name: bench
    path_prefix: /bench
    $backend
    upload: { max_object_size: 10GiB, multipart_threshold: 5GiB, spool_dir: "$work" }
YAML
	"$work/mizuchi" serve --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
	pids+=($!)
	cpu+=(-cpu "mizuchi-$name=$!")
	targets+=(-target "$name=http://127.0.0.1:$port/bench")
	wait_http "http://127.0.0.1:$port/healthz"
	printf -v "METRICS_$name" %s "$mport"
}

targets=()
start_mizuchi off "tracing: { enabled: false }"
start_mizuchi on "tracing:
  enabled: true
  service_name: mizuchi-bench
  otlp: { endpoint: \"http://127.0.0.1:$J_OTLP\", protocol: grpc }
  sampling: { strategy: always }"
if [ -n "${RATIO:-}" ]; then
	start_mizuchi ratio "tracing:
  enabled: true
  service_name: mizuchi-bench-ratio
  otlp: { endpoint: \"http://127.0.0.1:$J_OTLP\", protocol: grpc }
  sampling: { strategy: ratio, ratio: $RATIO }"
fi

echo "backend=$BACKEND rounds=$ROUNDS big=$BIG×$BIG_COUNT small=$SMALL concurrency=$CONCURRENCY duration=$DURATION" \
	"cpus=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg)"
"$work/loadgen" "${targets[@]}" "${cpu[@]}" -rounds "$ROUNDS" -big "$BIG" -big-count "$BIG_COUNT" -small "$SMALL" -concurrency "$CONCURRENCY" -duration "$DURATION"

# Prove the traced process really exported: no span dropped, spans in Jaeger.
sleep 6 # one default batch delay (5 s) for the last spans
metrics=$(curl -sf "http://127.0.0.1:$METRICS_on/metrics")
echo
echo "traced process: $(grep -E '^mizuchi_tracing_export_failures_total' <<<"$metrics")"
echo "traced process: $(grep -E '^mizuchi_tracing_exporter_state\{.*\} 1' <<<"$metrics")"
echo "jaeger services: $(curl -sf "http://127.0.0.1:$J_QUERY/api/services")"
echo "jaeger traces of mizuchi-bench in the last hour (limit 20000): $(curl -sf \
	"http://127.0.0.1:$J_QUERY/api/traces?service=mizuchi-bench&lookback=1h&limit=20000" |
	python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(len(d), "traces,", sum(len(t["spans"]) for t in d), "spans")')"
