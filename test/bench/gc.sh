#!/usr/bin/env bash
# Benchmark of gc through a mount's daemon: Go's source tree (about 11,000
# files) copied into files/, deleted, then `stofuse gc --grace 0` run
# while mounted. Prints the copy and gc times, the blobs and bytes gc
# freed, and du of the volume before and after. Not part of the tests.
#
#   test/bench/gc.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-gc.XXXXXX")
mnt="$work/mnt"
cleanup() {
	if grep -q " $mnt " /proc/mounts; then "$work/stofuse" unmount "$mnt" || umount -l "$mnt"; fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt"
go build -o "$work/stofuse" ./cmd/stofuse
export STOFUSE_STORE="$work/store"
"$work/stofuse" init 2>/dev/null
src="$(go env GOROOT)/src"
files=$(find "$src" -type f | wc -l)
"$work/stofuse" mount --background --snapshot-interval 0 "$mnt" 2>/dev/null
volume="$STOFUSE_STORE/volumes/default"
timed() { local start=$(date +%s.%N); eval "$1" >/dev/null; echo "$(date +%s.%N) - $start" | bc -l; }
copy=$(timed "cp -a $src $mnt/files/default/src")
"$work/stofuse" sync
rm -rf "$mnt/files/default/src"
before=$(du -sb "$volume" | cut -f1)
start=$(date +%s.%N)
report=$("$work/stofuse" --json gc --grace 0)
gc=$(echo "$(date +%s.%N) - $start" | bc -l)
after=$(du -sb "$volume" | cut -f1)
"$work/stofuse" unmount "$mnt"
freed=$(jq -r '[.freed[].blobs] | add' <<<"$report")
bytes=$(jq -r '[.freed[].bytes] | add' <<<"$report")
printf 'Go source tree: %d files\n' "$files"
printf 'cp -a into files/: %.1f s\n' "$copy"
printf 'gc --grace 0 through the daemon: %.2f s, %d blobs, %d bytes freed (%.0f us a blob)\n' "$gc" "$freed" "$bytes" "$(echo "$gc * 1000000 / $freed" | bc -l)"
printf 'du -sb of the volume: %d -> %d (dropped by %d)\n' "$before" "$after" "$((before - after))"
