#!/usr/bin/env bash
# Starts the project's pinned Jaeger and Mizuchi (one anonymous filesystem
# bucket, traces over OTLP), uploads a file with a W3C traceparent, waits
# until Jaeger has the trace and prints the URL of the trace in the Jaeger
# UI. Both keep running until Ctrl-C (or SIGTERM).
#
#   examples/observability/jaeger-demo.sh            # OTLP over gRPC
#   PROTOCOL=http examples/observability/jaeger-demo.sh
#
# Environment (all optional):
#   MIZUCHI   the mizuchi binary (default: built from this checkout)
#   JAEGER    the jaeger binary (default: scripts/install-tools.sh's,
#             ~/.cache/mizuchi/tools/bin/jaeger)
#   PROTOCOL  grpc (default) or http
#   MIZUCHI_PORT (8080) MIZUCHI_METRICS_PORT (9090) JAEGER_UI_PORT (16686)
#   JAEGER_OTLP_GRPC_PORT (4317) JAEGER_OTLP_HTTP_PORT (4318)
#   JAEGER_QUERY_GRPC_PORT (16685) JAEGER_HEALTH_PORT (13133)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
protocol=${PROTOCOL:-grpc}
case $protocol in grpc | http) ;; *) echo "PROTOCOL must be grpc or http" >&2; exit 2 ;; esac
export MIZUCHI_PORT=${MIZUCHI_PORT:-8080} MIZUCHI_METRICS_PORT=${MIZUCHI_METRICS_PORT:-9090}
export JAEGER_UI_PORT=${JAEGER_UI_PORT:-16686} JAEGER_OTLP_GRPC_PORT=${JAEGER_OTLP_GRPC_PORT:-4317}
export JAEGER_OTLP_HTTP_PORT=${JAEGER_OTLP_HTTP_PORT:-4318} JAEGER_QUERY_GRPC_PORT=${JAEGER_QUERY_GRPC_PORT:-16685}
export JAEGER_HEALTH_PORT=${JAEGER_HEALTH_PORT:-13133}

work=$(mktemp -d)
pids=()
stop() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap stop EXIT
trap 'exit 0' INT TERM

log() { printf 'jaeger-demo: %s\n' "$*" >&2; }

jaeger=${JAEGER:-$HOME/.cache/mizuchi/tools/bin/jaeger}
if [ ! -x "$jaeger" ]; then
	log "no jaeger at $jaeger: run scripts/install-tools.sh"
	exit 1
fi
mizuchi=${MIZUCHI:-}
if [ -z "$mizuchi" ]; then
	log "building mizuchi"
	(cd "$root" && go build -o "$work/mizuchi" ./cmd/mizuchi)
	mizuchi=$work/mizuchi
fi

# wait_http URL SECONDS: until URL answers 2xx.
wait_http() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	log "$1 did not answer within $2 s"
	return 1
}

"$jaeger" --config "file:$here/jaeger/jaeger.yaml" >"$work/jaeger.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$JAEGER_HEALTH_PORT/status" 60 || { cat "$work/jaeger.log" >&2; exit 1; }
wait_http "http://127.0.0.1:$JAEGER_UI_PORT/api/services" 30 || { cat "$work/jaeger.log" >&2; exit 1; }
log "jaeger UI on http://127.0.0.1:$JAEGER_UI_PORT"

export MIZUCHI_DEMO_DIR=$work/demo
"$mizuchi" serve --config "$here/jaeger/mizuchi-otlp-$protocol.yaml" >"$work/mizuchi.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$MIZUCHI_PORT/healthz" 30 || { cat "$work/mizuchi.log" >&2; exit 1; }
log "mizuchi on http://127.0.0.1:$MIZUCHI_PORT (traces over OTLP/$protocol)"

# The upload carries our own sampled traceparent, so its trace id is known
# (Mizuchi's server span becomes a child of it).
trace_id=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
span_id=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
echo "hello from the Mizuchi tracing demo" >"$work/hello.txt"
curl -fsS -o /dev/null -T "$work/hello.txt" -H "traceparent: 00-$trace_id-$span_id-01" \
	"http://127.0.0.1:$MIZUCHI_PORT/demo/hello.txt"
log "uploaded /demo/hello.txt with trace id $trace_id"

# Spans are exported in batches: wait until the query API has the trace.
found=
for ((i = 0; i < 300; i++)); do
	if curl -fsS "http://127.0.0.1:$JAEGER_UI_PORT/api/traces/$trace_id" 2>/dev/null | grep -q '"spanID"'; then
		found=1
		break
	fi
	sleep 0.1
done
if [ -z "$found" ]; then
	log "the trace did not reach jaeger within 30 s"
	cat "$work/mizuchi.log" >&2
	exit 1
fi
echo "Trace: http://127.0.0.1:$JAEGER_UI_PORT/trace/$trace_id"
log "running; Ctrl-C stops jaeger and mizuchi"
while :; do sleep 1; done
