#!/usr/bin/env bash
# Peak RSS of Mizuchi (/usr/bin/time -v, "Maximum resident set size"), one
# fresh process per case:
#   - one upload of 1 GiB and of 5 GiB through auto-multipart (64 MiB
#     parts) with concurrent_parts 1 (streamed parts, /mp1) and 4
#     (buffered/spooled parts, /mp4), zero-copy on and off for the latter;
#   - 200 concurrent 64 MiB uploads, streamed (/bench) and with the upload
#     defaults (/dflt: each becomes a one-part multipart upload, spooled).
# The client is curl; the big bodies are sparse files (reading them costs
# nothing), the 64 MiB body is random and cached.
#
#   make build && bench/rss.sh        # CASES="…" to pick cases (see below)
source "$(dirname "$0")/lib.sh"
truncate -s 1G "$work/1g.bin"
truncate -s 5G "$work/5g.bin"
head -c $((64 << 20)) /dev/urandom >"$work/64m.bin"

# one NAME ZC PREFIX SIZE: a single upload of a sparse file.
one() {
	local t=$work/time-$1.txt s
	start_mizuchi rss "$2" "$t"
	s=$(put_via "$rss_PORT" "$3" "$work/$4.bin" "one-$1")
	stop_mizuchi rss
	rm -f "$work/gw/store/one-$1"
	printf '%-22s zero_copy=%-5s %6.1f s  %7.1f MiB/s  peak RSS %7s MiB\n' "$1" "$2" "$s" \
		"$(echo "$(stat -c %s "$work/$4.bin") / 1048576 / $s" | bc -l)" "$(max_rss_mib "$t")"
}

# conc NAME ZC PREFIX: 200 concurrent 64 MiB uploads.
conc() {
	local t=$work/time-$1.txt t0 t1
	start_mizuchi rss "$2" "$t"
	t0=$(date +%s.%N)
	seq "${N:-200}" | xargs -P "${N:-200}" -I{} curl -sfS -o /dev/null -T "$work/64m.bin" "http://127.0.0.1:$rss_PORT/$3/c-{}"
	t1=$(date +%s.%N)
	stop_mizuchi rss
	rm -f "$work"/gw/store/c-*
	printf '%-22s zero_copy=%-5s %6.1f s  %7.1f MiB/s  peak RSS %7s MiB\n' "$1" "$2" "$(echo "$t1 - $t0" | bc -l)" \
		"$(echo "${N:-200} * 64 / ($t1 - $t0)" | bc -l)" "$(max_rss_mib "$t")"
}

cases=${CASES:-"mp1-1g mp1-5g mp4-1g mp4-5g mp4-5g-nozc conc-bench conc-dflt conc-dflt-nozc"}
machine_note
for c in $cases; do
	case $c in
	mp1-1g) one "$c" true mp1 1g ;;
	mp1-5g) one "$c" true mp1 5g ;;
	mp4-1g) one "$c" true mp4 1g ;;
	mp4-5g) one "$c" true mp4 5g ;;
	mp4-5g-nozc) one "$c" false mp4 5g ;;
	conc-bench) conc "$c" true bench ;;
	conc-dflt) conc "$c" true dflt ;;
	conc-dflt-nozc) conc "$c" false dflt ;;
	*) echo "unknown case $c" >&2; exit 2 ;;
	esac
done
machine_note
