#!/usr/bin/env bash
# Scale-out: signed 4 KiB PUT throughput (SigV4 header signatures, replay
# protection on) with state: memory vs redis, and 1 vs 3 replicas. Every
# target goes through one HAProxy (round-robin per request, keep-alive to
# the replicas), so the 1- and 3-replica figures pay the same extra hop.
# A real redis-server holds the shared state; versitygw stores the bytes.
# Targets are interleaved round by round (bench/cmd/loadgen).
#
#   make build && bench/scaleout.sh     # ROUNDS=5 DURATION=5s CONCURRENCY=16
#
# mem3 (three replicas, each with its own memory state) is measured to
# isolate the cost of the store; it is not a correct deployment: a
# signature replayed to another replica is accepted.
source "$(dirname "$0")/lib.sh"
for tool in redis-server haproxy; do
	command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-tools.sh" >&2; exit 1; }
done
go build -o "$work/loadgen" "$root/bench/cmd/loadgen"

SO_AK=AKIABENCHSCALEOUT001; SO_SK=benchScaleOutSecret/0123456789abcdef
REDIS_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --dir "$work" \
	--maxmemory 256mb --maxmemory-policy noeviction --loglevel warning >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$REDIS_PORT"

# replica NAME STATE(memory|redis): a Mizuchi with one signed S3 bucket;
# sets replica_addr.
replica() {
	local name=$1 state=$2 port metrics cfg=$work/$1.yaml
	port=$(free_port); metrics=$(free_port)
	cat >"$cfg" <<YAML
server:
  address: "127.0.0.1:$port"
  upload_id_keys: ["bench-upload-id-key-0123456789abcdef0123"]
logging: { level: warn }
metrics: { address: "127.0.0.1:$metrics" }
state:
  backend: $state
  redis: { address: "127.0.0.1:$REDIS_PORT", key_prefix: "bench-$name:" }
buckets:
  - name: bench
    path_prefix: /bench
    s3: { bucket: store, region: us-east-1, endpoint: "http://127.0.0.1:$GW_PORT", force_path_style: true, access_key: "$AK", secret_key: "$SK" }
    auth:
      enabled: true
      sigv4:
        region: us-east-1
        replay_protection: true
        credentials: [{ access_key: $SO_AK, secret_key: "$SO_SK", subject: bench }]
YAML
	"$MIZUCHI_BIN" serve --config "$cfg" >"$work/$name.log" 2>&1 &
	pids+=($!)
	wait_port "$port" || { cat "$work/$name.log" >&2; return 1; }
	replica_addr="127.0.0.1:$port"
}

hcfg=$work/haproxy.cfg
cat >"$hcfg" <<CFG
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
CFG
targets=()
# target NAME STATE REPLICAS
target() {
	local name=$1 state=$2 n=$3 fport i
	fport=$(free_port)
	printf 'frontend f_%s\n    bind 127.0.0.1:%s\n    default_backend b_%s\nbackend b_%s\n    balance roundrobin\n' "$name" "$fport" "$name" "$name" >>"$hcfg"
	for i in $(seq "$n"); do
		replica "$name-$i" "$state"
		printf '    server s%s %s\n' "$i" "$replica_addr" >>"$hcfg"
	done
	targets+=(-target "$name=http://127.0.0.1:$fport/bench")
	eval "${name}_FPORT=$fport"
}
target mem1 memory 1
target redis1 redis 1
target mem3 memory 3
target redis3 redis 3
haproxy -db -f "$hcfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
wait_port "$redis3_FPORT"

machine_note
echo "== signed 4 KiB PUTs, concurrency ${CONCURRENCY:-16}, ${ROUNDS:-5} rounds of ${DURATION:-5s}"
"$work/loadgen" "${targets[@]}" -rounds "${ROUNDS:-5}" -duration "${DURATION:-5s}" -concurrency "${CONCURRENCY:-16}" \
	-small 4KiB -big 0 -access-key "$SO_AK" -secret-key "$SO_SK"
machine_note
echo "redis commands processed: $(redis-cli -p "$REDIS_PORT" info stats 2>/dev/null | awk -F: '/total_commands_processed/ {print $2}' | tr -d '\r')"
