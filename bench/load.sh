#!/usr/bin/env bash
# Load and soak: N concurrent uploaders of mixed sizes for a fixed duration
# against the filesystem backend and the S3 backend (versitygw), loopback
# only, one fresh Mizuchi per backend under /usr/bin/time -v. Reports
# throughput, p50/p99 latency, errors (must be 0), peak RSS, and Mizuchi's
# goroutines and open fds before and after (they must return to the
# baseline once the idle keep-alive connections have closed).
#
#   make build && bench/load.sh     # CONCURRENCY=32 DURATION=60s MIN=4KiB MAX=8MiB BACKENDS="fs bench"
source "$(dirname "$0")/lib.sh"
go build -o "$work/soak" "$root/bench/cmd/soak"
status=0
for b in ${BACKENDS:-fs bench}; do
	machine_note
	start_mizuchi load true "$work/time-$b.txt"
	echo "== backend: $b (bucket /$b)"
	"$work/soak" -url "http://127.0.0.1:$load_PORT/$b" -metrics "http://127.0.0.1:$load_METRICS/metrics" \
		-concurrency "${CONCURRENCY:-32}" -duration "${DURATION:-60s}" -min "${MIN:-4KiB}" -max "${MAX:-8MiB}" \
		-settle "${SETTLE:-120s}" || status=1
	stop_mizuchi load
	echo "peak RSS (/usr/bin/time -v): $(max_rss_mib "$work/time-$b.txt") MiB"
	machine_note
	rm -rf "${work:?}/gw/store/soak" "${work:?}/fs/soak"
done
exit $status
