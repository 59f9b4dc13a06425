#!/usr/bin/env bash
# 1 GiB PUT through Mizuchi vs directly to versitygw, same client (curl),
# same run, zero-copy on and off. Needs `make build` and the tools.
source "$(dirname "$0")/lib.sh"
head -c $((1<<30)) /dev/urandom >"$work/1g.bin"
for zc in true false; do
	start_mizuchi "$zc"
	hyperfine --warmup 1 --runs "${RUNS:-5}" --export-markdown "$work/put-1g-$zc.md" \
		-n direct "put_direct $work/1g.bin direct-$zc" \
		-n "mizuchi zero_copy=$zc" "put_mizuchi $work/1g.bin via-$zc"
	cat "$work/put-1g-$zc.md"
	stop_mizuchi
done
