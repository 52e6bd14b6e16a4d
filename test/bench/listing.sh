#!/usr/bin/env bash
# Listing at scale, next to a local directory: for each N (default 100,000
# and 1,000,000), a store with N blob records (test/bench/mkstore) is
# mounted, and the same N names, sizes and times are made as sparse files
# in a directory on tmpfs. Each listing runs ROUNDS times (default 3),
# alternating between the two, and the medians are printed side by side
# with their ratio (stofuse / tmpfs: 1.00x is as fast as tmpfs):
#
#   ls -f | wc -l          names only (READDIR)
#   find -type f | wc -l   names and types
#   ls -l | wc -l          a stat per entry
#   du -s                  a stat per entry, sizes
#   rsync -a (again)       a second rsync of the directory into a copy:
#                          nothing to transfer, a stat per entry on both sides
#
# "first ls -l" is the first after mounting, which looks every entry up
# (the rounds after find the kernel's cached entries); "first ls -f" is
# the first listing after mounting: once with the page cache
# dropped before the mount (as root: Badger's tables are read from the
# disk), once after a remount with it kept (the daemon's own cold start). Then
# a files/ directory of FILES files (default 100,000; test/bench/mkfiles)
# against FILES empty files on tmpfs: ls -f and ls -l. The daemon's memory
# is printed after each: anonymous (the heap) and file-backed (Badger's
# mapped tables) apart. Needs root or fusermount3.
#
#   test/bench/listing.sh [N...]
#   ROUNDS=5 FILES=0 test/bench/listing.sh 10000000   (FILES=0: no files/ run)
#
# With N of 5,000,000 or more, only ls -f and find run (a stat per entry
# makes as many inodes in the kernel and the daemon), and the tmpfs side is
# left out unless TMPFS=1 (ten million tmpfs inodes take about 10 GiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("$@")
((${#sizes[@]})) || sizes=(100000 1000000)
rounds=${ROUNDS:-3}
files=${FILES:-100000}
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-listing.XXXXXX")
local_dir=$(mktemp -d "${TMPFS_DIR:-/dev/shm}/stofuse-bench-listing.XXXXXX")
mnt="$work/mnt"
cleanup() {
	if grep -q " $mnt " /proc/mounts; then "$work/stofuse" unmount "$mnt" || umount -l "$mnt"; fi
	rm -rf "$work" "$local_dir"
}
trap cleanup EXIT
mkdir -p "$mnt"
go build -o "$work/stofuse" ./cmd/stofuse
go build -o "$work/mkstore" ./test/bench/mkstore
go build -o "$work/mkfiles" ./test/bench/mkfiles
export STOFUSE_STORE="$work/store"

# seconds CMD: runs CMD (output thrown away) and prints its wall time.
seconds() {
	local start end
	start=$(date +%s.%N)
	eval "$1" >/dev/null
	end=$(date +%s.%N)
	echo "$end - $start" | bc -l
}
median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
row() { # row LABEL LOCAL_TIMES STOFUSE_TIMES
	local l s
	l=$(echo "$2" | median)
	s=$(echo "$3" | median)
	if [ -n "$2" ]; then
		printf '%-34s %9.3f s %9.3f s %7.2fx\n' "$1" "$l" "$s" "$(echo "$s / $l" | bc -l)"
	else
		printf '%-34s %11s %9.3f s\n' "$1" "-" "$s"
	fi
}
header() { printf '%-34s %11s %11s %8s\n' "$1" tmpfs stofuse ratio; }
memory() {
	awk '/VmHWM|RssAnon|RssFile/ { printf "%s %.0f MiB  ", $1, $2 / 1024 } END { print "" }' "/proc/$1/status"
}
mount_store() {
	if [ "$(id -u)" = 0 ]; then sync && echo 3 >/proc/sys/vm/drop_caches; fi
	"$work/stofuse" mount --background "$mnt" 2>"$work/mount.err"
	grep -o 'pid [0-9]*' "$work/mount.err" | cut -d' ' -f2
}
# compare LABEL LOCAL_DIR STOFUSE_DIR CMD...: each CMD (with {} for the
# directory) ROUNDS times on both, alternating.
compare() {
	local label=$1 here=$2 there=$3 cmd
	shift 3
	for cmd in "$@"; do
		local l="" s=""
		for ((r = 0; r < rounds; r++)); do
			[ -z "$here" ] || l+="$(seconds "${cmd//\{\}/$here}") "
			s+="$(seconds "${cmd//\{\}/$there}") "
		done
		row "$cmd" "$l" "$s"
	done
}

for n in "${sizes[@]}"; do
	rm -rf "$STOFUSE_STORE" "$local_dir"/*
	"$work/stofuse" init 2>/dev/null
	here="$local_dir/ref"
	mirror=()
	if ((n < 5000000)) || [ "${TMPFS:-}" = 1 ]; then mkdir "$here" && mirror=(-mirror "$here"); else here=""; fi
	"$work/mkstore" -store "$STOFUSE_STORE" -blobs "$n" "${mirror[@]}" >/dev/null
	echo
	echo "== ref/ with $n blobs (Badger directory $(du -sh "$STOFUSE_STORE/meta" | cut -f1)) =="
	pid=$(mount_store)
	mounted=$(memory "$pid")
	first=$(seconds "ls -f $mnt/ref | wc -l")
	header "ROUNDS=$rounds, medians"
	compare "$n" "$here" "$mnt/ref" "ls -f {} | wc -l" "find {} -type f | wc -l"
	# A stat per entry: at ten million, ten million inodes in the kernel
	# and the daemon, whatever the listing does; names only there. The
	# first ls -l looks every entry up; the rounds after find them cached.
	if ((n < 5000000)); then
		first_l=$(seconds "ls -l $mnt/ref | wc -l")
		compare "$n" "$here" "$mnt/ref" "ls -l {} | wc -l" "du -s {}"
		printf '%-34s %11s %9.3f s\n' "first ls -l after mount" "" "$first_l"
	fi
	if [ -n "$here" ] && ((n < 5000000)); then
		rm -rf "$work/copy" "$local_dir/copy"
		# Copies with the same names, sizes and times (mkstore records have
		# no stored content to copy), then a first rsync for the rest (mode).
		cp -a "$here" "$work/copy" && rsync -a "$mnt/ref/" "$work/copy/"
		cp -a "$here" "$local_dir/copy" && rsync -a "$here/" "$local_dir/copy/"
		compare "$n" "$here/ $local_dir/copy/" "$mnt/ref/ $work/copy/" "rsync -a {}"
		rm -rf "$work/copy" "$local_dir/copy"
	fi
	printf '%-34s %11s %9.3f s  (page cache dropped before the mount)\n' "first ls -f after mount" "" "$first"
	[ "$(ls -f "$mnt/ref" | wc -l)" = "$n" ] || { echo "ref/ does not list $n blobs" >&2; exit 1; }
	echo "daemon once mounted: $mounted"
	echo "daemon after:        $(memory "$pid")"
	"$work/stofuse" unmount "$mnt"
	"$work/stofuse" mount --background "$mnt" 2>"$work/mount.err"
	printf '%-34s %11s %9.3f s  (remounted, page cache kept)\n' "first ls -f after mount" "" "$(seconds "ls -f $mnt/ref | wc -l")"
	"$work/stofuse" unmount "$mnt"
	rm -rf "$local_dir"/*
done

if ((files > 0)); then
	rm -rf "$STOFUSE_STORE"
	"$work/stofuse" init 2>/dev/null
	"$work/mkfiles" -store "$STOFUSE_STORE" -collection big -dirs 1 -files "$files" >/dev/null
	mkdir -p "$local_dir/d0000"
	(cd "$local_dir/d0000" && seq -f 'f%05.0f' 0 $((files - 1)) | xargs touch)
	echo
	echo "== files/ directory of $files files =="
	pid=$(mount_store)
	first=$(seconds "ls -f $mnt/files/big/d0000 | wc -l")
	first_l=$(seconds "ls -l $mnt/files/big/d0000 | wc -l")
	header "ROUNDS=$rounds, medians"
	compare "$files" "$local_dir/d0000" "$mnt/files/big/d0000" "ls -f {} | wc -l" "ls -l {} | wc -l"
	printf '%-34s %11s %9.3f s  (page cache dropped before the mount)\n' "first ls -f after mount" "" "$first"
	printf '%-34s %11s %9.3f s\n' "first ls -l after mount" "" "$first_l"
	echo "daemon: $(memory "$pid")"
	"$work/stofuse" unmount "$mnt"
fi
