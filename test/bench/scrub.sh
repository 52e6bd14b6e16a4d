#!/usr/bin/env bash
# Does a scrub run by the mount daemon starve the mount? Random 128 KiB
# reads of a 1 GiB blob through the mount (page cache dropped, readahead
# off), timed with no scrub, with a scrub of 2 GiB running, and with the
# scrub limited to 50 MiB/s. Prints median, 90th and 99th percentile
# latencies in ms, and the scrub's speed. Needs root (drop_caches, mount).
#
#   test/bench/scrub.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-scrub.XXXXXX")
mnt="$work/mnt"
cleanup() {
	kill %1 2>/dev/null || true
	if grep -q " $mnt " /proc/mounts; then "$work/stofuse" unmount "$mnt" || umount -l "$mnt"; fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt"
go build -o "$work/stofuse" ./cmd/stofuse
go build -o "$work/readlat" ./test/bench/readlat
export STOFUSE_STORE="$work/store"
"$work/stofuse" init 2>/dev/null
head -c 1073741824 /dev/urandom > "$work/target"
ref=$("$work/stofuse" put "$work/target" | cut -c1-64)
for i in 1 2 3 4 5 6 7 8; do head -c 268435456 /dev/urandom > "$work/s$i"; done
"$work/stofuse" put "$work"/s? >/dev/null
rm -f "$work"/s? "$work/target"
"$work/stofuse" mount --background "$mnt" 2>/dev/null
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
measure() { drop; "$work/readlat" -n 300 "$mnt/ref/$ref"; }

printf '%-36s %8s %8s %8s  %s\n' "128 KiB random reads through the mount" "p50 ms" "p90 ms" "p99 ms" "scrub"
read -r p50 p90 p99 <<<"$(measure)"
printf '%-36s %8s %8s %8s  %s\n' "no scrub" "$p50" "$p90" "$p99" "-"
for limit in "" 50M; do
	drop
	start=$(date +%s.%N)
	"$work/stofuse" scrub ${limit:+--limit-rate $limit} >/dev/null 2>&1 &
	sleep 1
	read -r p50 p90 p99 <<<"$(measure)"
	wait %1 || true
	seconds=$(echo "$(date +%s.%N) - $start" | bc -l)
	rate=$(echo "3 * 1073741824 / $seconds / 1048576" | bc -l)
	printf '%-36s %8s %8s %8s  %s\n' "scrub running${limit:+, --limit-rate $limit}" "$p50" "$p90" "$p99" "$(printf '%.0f MiB/s over 3 GiB' "$rate")"
done
