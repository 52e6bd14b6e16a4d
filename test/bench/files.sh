#!/usr/bin/env bash
# Benchmark of the files/ tree against a plain directory on the same disk,
# with Go's own source tree (about 11,000 files): untar, ls -lR, md5sum of
# every file, rm -rf. Prints the times, their ratios (mount / plain), and
# the Badger directory's size per file. Medians over RUNS runs (default 1:
# one untar into the mount takes a minute or more).
#
#   test/bench/files.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-1}
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-files.XXXXXX")
mnt="$work/mnt"
cleanup() {
	if grep -q " $mnt " /proc/mounts; then "$work/stofuse" unmount "$mnt" || umount -l "$mnt"; fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt" "$work/plain"
go build -o "$work/stofuse" ./cmd/stofuse
export STOFUSE_STORE="$work/store"
"$work/stofuse" init 2>/dev/null
tar -C "$(go env GOROOT)/src" -cf "$work/src.tar" .
files=$(tar -tf "$work/src.tar" | grep -cv '/$')

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
timed() { local start=$(date +%s.%N); eval "$1" >/dev/null; echo "$(date +%s.%N) - $start" | bc -l; }
declare -A r
steps=(untar ls md5 rm)
run_steps() { # DIR KIND
	local dir=$1 kind=$2
	sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
	r[$kind-untar]+="$(timed "mkdir -p $dir && tar -C $dir -xf $work/src.tar") "
	r[$kind-ls]+="$(timed "ls -lR $dir") "
	r[$kind-md5]+="$(timed "find $dir -type f -exec md5sum {} +") "
	if [ "$kind" = mount ]; then
		r[meta]+="$(echo "$(du -s -B1 "$STOFUSE_STORE/meta" | cut -f1) / $files" | bc -l) "
	fi
	r[$kind-rm]+="$(timed "rm -rf $dir") "
}
"$work/stofuse" mount --background "$mnt" 2>/dev/null
for run in $(seq 1 "$runs"); do
	run_steps "$work/plain/src" plain
	run_steps "$mnt/files/default/src" mount
done
"$work/stofuse" unmount "$mnt"

m() { tr ' ' '\n' <<<"${r[$1]}" | grep . | median; }
printf '%-34s %10s %10s %8s\n' "Go source tree ($files files)" "plain s" "mount s" "ratio"
for step in "${steps[@]}"; do
	printf '%-34s %10.2f %10.2f %7.1fx\n' "$step" "$(m plain-$step)" "$(m mount-$step)" "$(echo "$(m mount-$step) / $(m plain-$step)" | bc -l)"
done
printf "%-34s %10.0f\n" "Badger bytes per file (allocated)" "$(m meta)"
