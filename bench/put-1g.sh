#!/usr/bin/env bash
# 1 GiB PUT through Mizuchi vs directly to versitygw, and through the
# filesystem backend vs cp, with the same client (curl) in the same run:
# ROUNDS interleaved rounds (default 5), the order of the legs rotating each
# round, one upload per leg per round. Two Mizuchi processes run side by
# side, zero-copy on and off.
#
# Legs:
#   direct      curl → versitygw (SigV4, UNSIGNED-PAYLOAD)
#   s3-zc/s3    curl → Mizuchi /bench (streamed PutObject) → versitygw
#   mp4-zc/mp4  curl → Mizuchi /mp4 (auto-multipart, 4 spooled 64 MiB parts)
#   cp          cp FILE to the same disk, then fsync it (sync FILE)
#   fs-zc/fs    curl → Mizuchi /fs (filesystem backend, fsyncs before 200)
#
# Prints each sample, then per leg the median MiB/s and the median of the
# per-round ratios to its baseline (direct for S3 legs, cp for fs legs).
#
#   make build && bench/put-1g.sh            # ROUNDS=5 SIZE_MIB=1024
source "$(dirname "$0")/lib.sh"
rounds=${ROUNDS:-5}
mib=${SIZE_MIB:-1024}
src=$work/src.bin
head -c $((mib << 20)) /dev/urandom >"$src"
cat "$src" >/dev/null # page cache: every leg reads the source from memory

start_mizuchi zc true
start_mizuchi nozc false

leg_cmd() {
	case $1 in
	direct) put_direct "$src" "obj-$2" ;;
	s3-zc) put_via "$zc_PORT" bench "$src" "obj-$2" ;;
	s3) put_via "$nozc_PORT" bench "$src" "obj-$2" ;;
	mp4-zc) put_via "$zc_PORT" mp4 "$src" "obj-$2" ;;
	mp4) put_via "$nozc_PORT" mp4 "$src" "obj-$2" ;;
	cp)
		local t0 t1
		t0=$(date +%s.%N)
		cp "$src" "$work/cp-$2" && sync "$work/cp-$2"
		t1=$(date +%s.%N)
		echo "$t1 - $t0" | bc -l
		;;
	fs-zc) put_via "$zc_PORT" fs "$src" "obj-$2" ;;
	fs) put_via "$nozc_PORT" fs "$src" "obj-$2" ;;
	esac
}
# clean removes a leg's object so the disk does not fill up across rounds.
clean() {
	rm -f "$work/gw/store/obj-$1" "$work/cp-$1" "$work/fs/obj-$1"
	sync -f "$work" # flush the page cache's dirty pages before the next leg
}

legs=(direct s3-zc s3 mp4-zc mp4 cp fs-zc fs)
[ -n "${LEGS:-}" ] && read -ra legs <<<"$LEGS"
machine_note
echo "# ${mib} MiB PUT, $rounds rounds, legs: ${legs[*]}"
declare -A secs
for r in $(seq "$rounds"); do
	n=${#legs[@]}
	for i in $(seq 0 $((n - 1))); do
		leg=${legs[$(((i + r - 1) % n))]}
		clean "$leg-$r"
		s=$(leg_cmd "$leg" "$leg-$r")
		clean "$leg-$r"
		secs[$leg]+="$s "
		printf 'round %d %-7s %6.2f s %7.1f MiB/s\n' "$r" "$leg" "$s" "$(echo "$mib / $s" | bc -l)"
	done
done
machine_note

python3 - "$mib" "${legs[@]}" <<PY
import statistics, sys
mib = float(sys.argv[1]); legs = sys.argv[2:]
secs = {$(for l in "${legs[@]}"; do printf '"%s": [%s], ' "$l" "$(echo ${secs[$l]} | tr ' ' ',')"; done)}
base = lambda l: "cp" if l.startswith("fs") else (None if l == "cp" else "direct")
print(f"\n{'leg':8} {'median MiB/s':>12} {'min':>7} {'max':>7}   paired ratio to baseline (median, min..max)")
for l in legs:
    rate = [mib / s for s in secs[l]]
    line = f"{l:8} {statistics.median(rate):12.1f} {min(rate):7.1f} {max(rate):7.1f}"
    b = base(l)
    if b and l != b and b in secs:
        ratios = [secs[b][i] / secs[l][i] for i in range(len(secs[l]))]
        line += f"   vs {b}: {statistics.median(ratios):.3f} ({min(ratios):.3f}..{max(ratios):.3f})"
    print(line)
PY
