#!/usr/bin/env bash
# Benchmark of gc through a mount's daemon on a store of many blobs
# (default 1,000,000; 100000 for a quick run): mkgcstore stores them for
# real on the local volume, half the contents of the files of a files/
# tree (directories of 500 files, snapshotted once), half used by
# nothing. The store is mounted (the daemon niced, with --metrics), then
# `stofuse gc --dry-run` and `stofuse gc --grace 0` run through the
# daemon, one after the other. For each it prints the wall time, what it
# found or freed, and the daemon's memory: the live Go heap before it, at
# its highest during it and after it (go_gc_heap_live_bytes, polled
# every 0.2 s, and stofuse_heap_live_peak_bytes, which no collection
# misses, when it rose), the allocated heap at its highest
# (go_memstats_heap_alloc_bytes: live and garbage not yet collected), and
# VmRSS, RssAnon and VmHWM of /proc/PID/status. Not part of the tests.
#
#   test/bench/gc_million.sh [BLOBS]
#
# BENCH_DIR (default /var/tmp) holds the store (about 4.5 KiB of disk a
# blob: each blob a file), removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
blobs=${1:-1000000}
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-gc-million.XXXXXX")
mnt="$work/mnt"
poller=
cleanup() {
	if [ -n "$poller" ]; then kill "$poller" 2>/dev/null || true; fi
	if grep -q " $mnt " /proc/mounts; then "$work/stofuse" unmount "$mnt" || umount -l "$mnt"; fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt"
go build -o "$work/stofuse" ./cmd/stofuse
go build -o "$work/mkgcstore" ./test/bench/mkgcstore
export STOFUSE_STORE="$work/store"
"$work/stofuse" init 2>/dev/null
now() { date +%s.%N; }
start=$(now)
nice -n 10 "$work/mkgcstore" -store "$STOFUSE_STORE" -blobs "$blobs" -per-dir 500 | tail -3
printf 'store of %d blobs made in %.0f s\n' "$blobs" "$(echo "$(now) - $start" | bc -l)"
volume="$STOFUSE_STORE/volumes/default"
metrics="127.0.0.1:${BENCH_METRICS_PORT:-$((20000 + RANDOM % 20000))}"
nice -n 10 "$work/stofuse" mount --background --snapshot-interval 0 --metrics "$metrics" "$mnt" 2>/dev/null
pid=$(jq -r .mount.pid <<<"$("$work/stofuse" --json status)")

metric() { curl -sf "http://$metrics/metrics" | awk -v name="$1" '$1 == name { printf "%d\n", $2 }'; }
proc() { awk -v key="$1:" '$1 == key { print $2 * 1024 }' "/proc/$pid/status"; }
mib() { echo "scale=1; $1 / 1048576" | bc -l; }

# phase NAME ARGS...: runs stofuse ARGS through the daemon, polling its
# heap, and prints what it found and the memory.
phase() {
	local name=$1
	shift
	local live0 peak0 rss0 anon0 hwm0 polls="$work/polls.$name"
	live0=$(metric go_gc_heap_live_bytes)
	peak0=$(metric stofuse_heap_live_peak_bytes)
	rss0=$(proc VmRSS) anon0=$(proc RssAnon) hwm0=$(proc VmHWM)
	(while sleep 0.2; do
		curl -sf "http://$metrics/metrics" | awk '$1 == "go_gc_heap_live_bytes" || $1 == "go_memstats_heap_alloc_bytes" { printf "%s %d\n", $1, $2 }'
	done) >"$polls" &
	poller=$!
	local start report elapsed
	start=$(now)
	report=$("$work/stofuse" --json "$@")
	elapsed=$(echo "$(now) - $start" | bc -l)
	kill "$poller"
	wait "$poller" 2>/dev/null || true
	poller=
	local live1 peak1 rss1 anon1 hwm1 polledLive polledAlloc highest
	live1=$(metric go_gc_heap_live_bytes)
	peak1=$(metric stofuse_heap_live_peak_bytes)
	rss1=$(proc VmRSS) anon1=$(proc RssAnon) hwm1=$(proc VmHWM)
	polledLive=$(awk '$1 == "go_gc_heap_live_bytes" && $2 > m { m = $2 } END { print m + 0 }' "$polls")
	polledAlloc=$(awk '$1 == "go_memstats_heap_alloc_bytes" && $2 > m { m = $2 } END { print m + 0 }' "$polls")
	highest=$((polledLive > live1 ? polledLive : live1))
	if [ "$peak1" -gt "$peak0" ] && [ "$peak1" -gt "$highest" ]; then highest=$peak1; fi
	printf '%s: %.1f s; ' "$*" "$elapsed"
	jq -r '"\(.blobs) blob records, \(.live.files) used by files, \(.live.snapshots) by the snapshot only, \(.garbage) garbage (\([.volumes[].bytes] | add) bytes)" +
		(if .freed then ", freed \([.freed[].blobs] | add) blobs, \([.freed[].bytes] | add) bytes" else "" end) +
		(if .kept then ", \(.kept) kept" else "" end)' <<<"$report"
	printf '  live heap: %s MiB before, %s MiB at its highest (+%s MiB), %s MiB after; allocated heap at its highest %s MiB\n' \
		"$(mib "$live0")" "$(mib "$highest")" "$(mib $((highest - live0)))" "$(mib "$live1")" "$(mib "$polledAlloc")"
	printf '  VmRSS %s -> %s MiB (RssAnon %s -> %s MiB, the rest mapped files: Badger'"'"'s tables and logs), VmHWM %s -> %s MiB\n' \
		"$(mib "$rss0")" "$(mib "$rss1")" "$(mib "$anon0")" "$(mib "$anon1")" "$(mib "$hwm0")" "$(mib "$hwm1")"
}

before=$(du -sb "$volume" | cut -f1)
files=$(find "$volume" -type f | wc -l)
printf 'mounted (daemon pid %d): live heap %s MiB, VmRSS %s MiB; volume: %d files, %d bytes (du -sb)\n' \
	"$pid" "$(mib "$(metric go_gc_heap_live_bytes)")" "$(mib "$(proc VmRSS)")" "$files" "$before"
phase dry-run gc --dry-run --grace 0
phase gc gc --grace 0
after=$(du -sb "$volume" | cut -f1)
printf 'volume after: %d files, du -sb %d (dropped by %d)\n' "$(find "$volume" -type f | wc -l)" "$after" "$((before - after))"
"$work/stofuse" unmount "$mnt"
