#!/usr/bin/env bash
# Benchmark of the mount against the same work done in-process through the
# Controller, on the disk holding $BENCH_DIR (default /var/tmp). Needs root
# (to drop the page cache and mount directly). Prints one table of medians
# over RUNS runs (default 3):
#
#   test/bench/mount.sh [RUNS]
#
# - cold read: a 1 GiB blob read sequentially (dd bs=1M) after dropping the
#   page cache, through the mount and in-process (Controller.Fetch);
# - warm re-read through the mount (kernel page cache kept between opens;
#   no request reaches the daemon): the first re-read after the cold read,
#   timed like the plain cat below (the second read after the cache was
#   filled), and a second re-read;
# - write: a 1 GiB file (in the page cache) copied into the mount (cp,
#   timed until close returns, which stores it), under its hex name (the
#   writes stream into WriteBlob) and under another name (spooled, stored
#   at close), and in-process (WriteBlob);
# - plain cat of a 1 GiB file on the same disk, warm;
# - ls -f of 100,000 blobs, and the daemon's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
[ "$(id -u)" = 0 ] || { echo "mount.sh needs root (drop_caches, direct mount)" >&2; exit 2; }
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-mount.XXXXXX")
mnt="$work/mnt"
cleanup() {
	if grep -q " $mnt " /proc/mounts; then "$work/stofuse" unmount "$mnt" || umount -l "$mnt"; fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt" "$work/bin"
go build -o "$work/stofuse" ./cmd/stofuse
go build -o "$work/bin/inprocess" ./test/bench/inprocess
go build -o "$work/bin/mkstore" ./test/bench/mkstore
export STOFUSE_STORE="$work/store"
"$work/stofuse" init 2>/dev/null

gib=1073741824
for f in a b c d; do head -c $gib /dev/urandom > "$work/$f"; done
ref_a=$("$work/stofuse" put "$work/a" | cut -c1-64)
ref_b=$(sha256sum "$work/b" | cut -c1-64)

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }
mbs() { echo "$gib / ($2 - $1) / 1000000" | bc -l; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
ddrate() { dd if="$1" of=/dev/null bs=1M 2>&1 | awk '/copied/ {print $(NF-1) * ($NF == "GB/s" ? 1000 : 1)}'; }

declare -A r
for run in $(seq 1 "$runs"); do
	drop
	r[inproc_read]+="$("$work/bin/inprocess" -store "$STOFUSE_STORE" -fetch "$ref_a") "
	cat "$work/c" > /dev/null
	r[inproc_write]+="$("$work/bin/inprocess" -store "$STOFUSE_STORE" -write "$work/c") "

	"$work/stofuse" mount --background "$mnt" 2>"$work/mount.err"
	pid=$(grep -o 'pid [0-9]*' "$work/mount.err" | cut -d' ' -f2)
	drop
	r[mount_read]+="$(ddrate "$mnt/ref/$ref_a") "
	r[mount_reread]+="$(ddrate "$mnt/ref/$ref_a") "
	r[mount_reread2]+="$(ddrate "$mnt/ref/$ref_a") "
	cat "$work/b" > /dev/null
	start=$(now); cp "$work/b" "$mnt/ref/$ref_b"; end=$(now)
	r[mount_write]+="$(mbs "$start" "$end") "
	cat "$work/d" > /dev/null
	start=$(now); cp "$work/d" "$mnt/ref/d.bin"; end=$(now)
	r[mount_write_named]+="$(mbs "$start" "$end") "
	r[rss]+="$(awk '/VmHWM/ {print $2 / 1024}' /proc/$pid/status) "
	"$work/stofuse" unmount "$mnt"

	cat "$work/a" > /dev/null
	r[cat]+="$(ddrate "$work/a") "
	# The next run writes b and c anew: forget them.
	rm -rf "$STOFUSE_STORE" && "$work/stofuse" init 2>/dev/null && "$work/stofuse" put "$work/a" >/dev/null
done

"$work/bin/mkstore" -store "$STOFUSE_STORE" -blobs 100000 >/dev/null
"$work/stofuse" mount --background "$mnt" 2>"$work/mount.err"
for run in $(seq 1 "$runs"); do
	start=$(now); count=$(ls -f "$mnt/ref" | wc -l); end=$(now)
	r[ls]+="$(echo "$end - $start" | bc -l) "
done
"$work/stofuse" unmount "$mnt"

m() { tr ' ' '\n' <<<"${r[$1]}" | grep . | median; }
printf '%-52s %10s\n' "stofuse mount benchmark ($runs runs, medians)" ""
printf '%-52s %10.0f MB/s\n' "cold sequential read of 1 GiB, mount" "$(m mount_read)"
printf '%-52s %10.0f MB/s\n' "cold sequential read of 1 GiB, in-process Fetch" "$(m inproc_read)"
printf '%-52s %10.0f %%   (target >= 80)\n' "  mount / in-process" "$(echo "100 * $(m mount_read) / $(m inproc_read)" | bc -l)"
printf '%-52s %10.0f MB/s\n' "warm re-read of 1 GiB, mount" "$(m mount_reread)"
printf '%-52s %10.0f MB/s\n' "plain cat of 1 GiB on the same disk, warm" "$(m cat)"
printf '%-52s %10.0f %%   (target >= 50)\n' "  warm re-read / plain cat" "$(echo "100 * $(m mount_reread) / $(m cat)" | bc -l)"
printf '%-52s %10.0f MB/s\n' "second warm re-read of 1 GiB, mount" "$(m mount_reread2)"
printf '%-52s %10.0f %%\n' "  second warm re-read / plain cat" "$(echo "100 * $(m mount_reread2) / $(m cat)" | bc -l)"
printf '%-52s %10.0f MB/s\n' "sequential write of 1 GiB, mount, cp to ref/<hex>" "$(m mount_write)"
printf '%-52s %10.0f MB/s\n' "sequential write of 1 GiB, in-process WriteBlob" "$(m inproc_write)"
printf '%-52s %10.0f %%   (target >= 70)\n' "  mount / in-process" "$(echo "100 * $(m mount_write) / $(m inproc_write)" | bc -l)"
printf '%-52s %10.0f MB/s\n' "sequential write of 1 GiB, mount, cp to ref/d.bin" "$(m mount_write_named)"
printf '%-52s %10.0f %%\n' "  mount (other name: spooled) / in-process" "$(echo "100 * $(m mount_write_named) / $(m inproc_write)" | bc -l)"
printf '%-52s %10.3f s   (%d entries)\n' "ls -f of 100,000 blobs" "$(m ls)" "$count"
printf '%-52s %10.0f MiB\n' "daemon peak RSS (1 GiB read and write)" "$(m rss)"
