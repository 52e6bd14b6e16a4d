#!/usr/bin/env bash
# Listing at scale: a store with N blob records (default 1,000,000; see
# test/bench/mkstore), mounted; times `ls -f ref | wc -l` and
# `find ref -type f | wc -l` and reports the daemon's peak RSS. Needs root
# or fusermount3.
#
#   test/bench/listing.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
blobs=${1:-1000000}
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-listing.XXXXXX")
mnt="$work/mnt"
cleanup() {
	if grep -q " $mnt " /proc/mounts; then "$work/stofuse" unmount "$mnt" || umount -l "$mnt"; fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt"
go build -o "$work/stofuse" ./cmd/stofuse
go build -o "$work/mkstore" ./test/bench/mkstore
export STOFUSE_STORE="$work/store"
"$work/stofuse" init 2>/dev/null
"$work/mkstore" -store "$STOFUSE_STORE" -blobs "$blobs"
echo "Badger directory: $(du -sh "$STOFUSE_STORE/meta" | cut -f1) for $blobs blobs"

"$work/stofuse" mount --background "$mnt" 2>"$work/mount.err"
pid=$(grep -o 'pid [0-9]*' "$work/mount.err" | cut -d' ' -f2)
echo "daemon peak RSS once mounted, before listing: $(awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' /proc/$pid/status)"
timed() { local start=$(date +%s.%N); local n=$(eval "$1"); printf '%-40s %9d entries %7.2f s\n' "$1" "$n" "$(echo "$(date +%s.%N) - $start" | bc -l)"; }
timed "ls -f $mnt/ref | wc -l"
timed "find $mnt/ref -type f | wc -l"
timed "ls -f $mnt/ref | wc -l"
echo "daemon peak RSS: $(awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' /proc/$pid/status)" \
	"(now: $(awk '/RssAnon|RssFile/ {printf "%s %.0f MiB ", $1, $2 / 1024}' /proc/$pid/status))"
