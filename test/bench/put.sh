#!/usr/bin/env bash
# Benchmark of `stofuse put`: 1,000 files of 64 KiB (random), and one 1 GiB
# file (random), into a fresh store on the disk holding $BENCH_DIR (default
# /var/tmp). Prints MB/s, files/s and the Badger directory's size per blob.
#
#   test/bench/put.sh [RUNS]     (default 3 runs; medians are printed)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-put.XXXXXX")
trap 'rm -rf "$work"' EXIT
go build -o "$work/stofuse" ./cmd/stofuse

mkdir -p "$work/small"
for i in $(seq 1 1000); do head -c 65536 /dev/urandom > "$work/small/f$i"; done
head -c 1073741824 /dev/urandom > "$work/big"
sync

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
seconds() { local start=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $start" | bc -l; }

small_mbs=(); small_fps=(); big_mbs=(); meta_per_blob=()
for run in $(seq 1 "$runs"); do
	export STOFUSE_STORE="$work/store-$run"
	"$work/stofuse" init 2>/dev/null
	t=$(seconds "$work/stofuse" put "$work"/small/f*)
	small_mbs+=("$(echo "1000 * 65536 / $t / 1000000" | bc -l)")
	small_fps+=("$(echo "1000 / $t" | bc -l)")
	t=$(seconds "$work/stofuse" put "$work/big")
	big_mbs+=("$(echo "1073741824 / $t / 1000000" | bc -l)")
	meta=$(du -s -B1 "$STOFUSE_STORE/meta" | cut -f1)
	meta_per_blob+=("$(echo "$meta / 1001" | bc -l)")
	rm -rf "$STOFUSE_STORE"
done

printf '%-40s %12s\n' "stofuse put ($runs runs, medians)" ""
printf '%-40s %12.1f\n' "1,000 x 64 KiB: MB/s" "$(printf '%s\n' "${small_mbs[@]}" | median)"
printf '%-40s %12.1f\n' "1,000 x 64 KiB: files/s" "$(printf '%s\n' "${small_fps[@]}" | median)"
printf '%-40s %12.1f\n' "1 x 1 GiB: MB/s" "$(printf '%s\n' "${big_mbs[@]}" | median)"
printf '%-40s %12.0f\n' "Badger directory bytes per blob (allocated)" "$(printf '%s\n' "${meta_per_blob[@]}" | median)"
