#!/usr/bin/env bash
# Peak RSS of Mizuchi (/usr/bin/time -v) while it streams one 5 GiB upload
# (auto-multipart) and while it takes 200 concurrent 64 MiB uploads, with
# zero-copy on and off. Needs `make build` and the tools.
source "$(dirname "$0")/lib.sh"
head -c $((64<<20)) /dev/urandom >"$work/64m.bin"
for zc in true false; do
	start_mizuchi "$zc" "$work/time-5g-$zc.txt"
	head -c $((5<<30)) /dev/zero | curl -sfS -o /dev/null -H "Content-Length: $((5<<30))" -T - "http://127.0.0.1:$MZ_PORT/bench/five-$zc"
	stop_mizuchi
	echo "5 GiB upload, zero_copy=$zc: $(grep 'Maximum resident' "$work/time-5g-$zc.txt")"

	start_mizuchi "$zc" "$work/time-200-$zc.txt"
	seq 200 | xargs -P 200 -I{} curl -sfS -o /dev/null -T "$work/64m.bin" "http://127.0.0.1:$MZ_PORT/bench/c-$zc-{}"
	stop_mizuchi
	echo "200 x 64 MiB concurrent, zero_copy=$zc: $(grep 'Maximum resident' "$work/time-200-$zc.txt")"
done
