#!/usr/bin/env bash
# Listing snapshots/<collection>/ with N snapshots (default 10,000) against
# `ls -f` of an N-entry directory on tmpfs: the mount should take at most
# twice as long. One real snapshot is taken; the other N-1 names are copies
# of its record's name object on the volume (a listing reads names only, so
# that is what it measures), made while unmounted. Reports the median of
# RUNS runs of each (default 21) and their ratio, and the first listing of
# the mount on its own (it reads the names from the volume; the others
# are served from the daemon's listing, kept until a snapshot is taken).
#
#   test/bench/snapshots_listing.sh [N [RUNS]]
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${1:-10000}
runs=${2:-21}
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-snapshots.XXXXXX")
tmpfs=$(mktemp -d /dev/shm/stofuse-bench-ls.XXXXXX)
mnt="$work/mnt"
cleanup() {
	if grep -q " $mnt " /proc/mounts; then "$work/stofuse" unmount "$mnt" || umount -l "$mnt"; fi
	rm -rf "$work" "$tmpfs"
}
trap cleanup EXIT
mkdir -p "$mnt"
go build -o "$work/stofuse" ./cmd/stofuse
export STOFUSE_STORE="$work/store" STOFUSE_KEY_FILE= STOFUSE_PASSPHRASE=
"$work/stofuse" init 2>/dev/null
"$work/stofuse" mount --background "$mnt" 2>/dev/null
echo hello >"$mnt/files/default/hello"
"$work/stofuse" snapshot >/dev/null
"$work/stofuse" unmount "$mnt" 2>/dev/null

objects=$(echo "$STOFUSE_STORE"/volumes/*/objects)
record=$(cd "$objects" && ls | grep '^snapshots+')
prefix=${record%+*}
python3 - "$objects" "$record" "$prefix" "$count" "$tmpfs" <<'PY'
import os, shutil, sys, datetime
objects, record, prefix, count, tmpfs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
start = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
for i in range(count):
    name = (start + datetime.timedelta(minutes=10 * i)).strftime("%Y-%m-%dt%H-%M-%S") + ".%09dz" % i
    open(os.path.join(tmpfs, name.upper()), "w").close()
    if i < count - 1:
        shutil.copyfile(os.path.join(objects, record), os.path.join(objects, prefix + "+" + name))
PY
"$work/stofuse" mount --background "$mnt" 2>/dev/null

# millis CMD...: runs CMD once and prints how long it took, in ms.
millis() { local s=$(date +%s%N); "$@" >/dev/null; echo "scale=3; ($(date +%s%N) - $s) / 1000000" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
first=$(millis ls -f "$mnt/snapshots/default")
listed=$(ls -f "$mnt/snapshots/default" | grep -c Z)
[ "$listed" -eq "$count" ] || { echo "listed $listed snapshots, want $count" >&2; exit 1; }
fuse=$(for _ in $(seq "$runs"); do millis ls -f "$mnt/snapshots/default"; done | median)
tmp=$(for _ in $(seq "$runs"); do millis ls -f "$tmpfs"; done | median)
echo "snapshots: $count; median of $runs runs"
echo "ls -f tmpfs directory:            $tmp ms"
echo "ls -f snapshots/default/:         $fuse ms (first listing of the mount: $first ms)"
echo "ratio: $(echo "scale=2; $fuse / $tmp" | bc)"
