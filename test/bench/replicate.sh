#!/usr/bin/env bash
# Background replication by a mount's daemon (the copies policy): how fast
# it copies with the mount idle, and what it costs a reader. A store with
# a 1 GiB blob to read and 2 GiB of other blobs on the default volume, and
# three more local volumes. Raising the policy through the daemon (2, then
# 3, then 4 copies) makes it copy 3 GiB to the next volume each time:
# first with the mount idle, then while random 128 KiB reads of the 1 GiB
# blob run through the mount (page cache dropped, readahead off), then so
# again after a remount with --replicate-rate 50M. Prints the read
# latencies (median, 90th and 99th percentile, in ms) with no replication
# and during each, and each replication's speed (time until status shows
# nothing below policy). Needs root (drop_caches, mount).
#
#   test/bench/replicate.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-replicate.XXXXXX")
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
stofuse() { "$work/stofuse" "$@"; }
stofuse init 2>/dev/null
for v in b2 b3 b4; do stofuse volume add "$v" --path "$work/$v" >/dev/null; done
head -c 1073741824 /dev/urandom >"$work/target"
ref=$(stofuse put "$work/target" | cut -c1-64)
for i in 1 2 3 4 5 6 7 8; do head -c 268435456 /dev/urandom >"$work/s$i"; done
stofuse put "$work"/s? >/dev/null
rm -f "$work"/s? "$work/target"
total=$((3 * 1073741824))

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
measure() { drop; "$work/readlat" -n 300 "$mnt/ref/$ref"; }
below() { stofuse --json status | jq .copies.below_policy; }
# replicate N: raises the policy to N copies and waits until nothing is
# below it; prints the seconds it took.
replicate() {
	local start
	start=$(date +%s.%N)
	stofuse collection set default --copies "$1" >/dev/null
	sleep 0.5
	until [ "$(below)" = 0 ]; do sleep 0.2; done
	echo "$(date +%s.%N) - $start" | bc -l
}
speed() { printf '%.0f MiB/s' "$(echo "$total / $1 / 1048576" | bc -l)"; }

stofuse mount --background "$mnt" 2>/dev/null
printf '%-44s %8s %8s %8s  %s\n' "128 KiB random reads through the mount" "p50 ms" "p90 ms" "p99 ms" "replication of 3 GiB"
read -r p50 p90 p99 <<<"$(measure)"
printf '%-44s %8s %8s %8s  %s\n' "no replication" "$p50" "$p90" "$p99" "-"
drop
seconds=$(replicate 2)
printf '%-44s %8s %8s %8s  %s\n' "replication, mount idle" "-" "-" "-" "$(printf '%.1f s, %s' "$seconds" "$(speed "$seconds")")"
for limit in "" 50M; do
	if [ -n "$limit" ]; then
		stofuse unmount "$mnt"
		stofuse mount --background --replicate-rate "$limit" "$mnt" 2>/dev/null
		sleep 1
	fi
	copies=$([ -z "$limit" ] && echo 3 || echo 4)
	drop
	replicate "$copies" >"$work/seconds" &
	sleep 1
	read -r p50 p90 p99 <<<"$(measure)"
	wait %1
	seconds=$(cat "$work/seconds")
	printf '%-44s %8s %8s %8s  %s\n' "replication running${limit:+, --replicate-rate $limit}" "$p50" "$p90" "$p99" "$(printf '%.1f s, %s' "$seconds" "$(speed "$seconds")")"
done
