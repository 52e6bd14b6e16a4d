#!/usr/bin/env bash
# Benchmark of snapshots and recovery, on the disk holding $BENCH_DIR
# (default /var/tmp). Needs root (drop_caches, direct mount). Prints one
# table at the end (progress goes to stderr):
#
#   BLOBS=100000 TREE_DIRS=100 TREE_FILES=1000 test/bench/snapshot.sh
#
# STOFUSE_BIN=FILE uses that stofuse binary instead of building ./cmd/stofuse.
#
# 1. Go's source tree copied (cp -a) into files/default of a fresh mount
#    (--snapshot-interval 0: no automatic snapshot), then `stofuse
#    snapshot` into a volume with no snapshot yet: wall time, the elapsed
#    time it reports, the bytes it reports written (new_bytes) and the
#    growth of the volume directory (du -sb); then one line appended to
#    src/fmt/print.go and a snapshot again (3 times, median), and the
#    ratios second / first.
# 2. 100,000 small files (100 directories of 1,000, test/bench/mktree,
#    through the mount): first snapshot and a snapshot after changing one
#    file (3 times, median), and the daemon's anonymous memory (RssAnon,
#    sampled every 50 ms) before and at its peak during the first one,
#    after SETTLE seconds (default 30) for Badger's compactions of the
#    tree's writes to finish.
# 3. Latency of creating 4 KiB files through the mount (test/bench/
#    writelat: create+write+close), with no snapshot, and while a snapshot
#    of the 100,000-file tree runs, made dirty in every directory first
#    (one file touched per directory); 3 runs each, medians.
# 4. A store of BLOBS blobs (default 100,000) of 64 KiB random data (put in
#    batches of 500 per `stofuse put`): `stofuse scrub`, then `rm -rf
#    STORE/meta` and `stofuse recover --from STORE/volumes/default`, timed,
#    and recover's speed as a fraction of scrub's. BLOBS is lowered to
#    what fits if the disk lacks room for them (the output says so).
#
# 5. 1,000,000 entries (BIG_DIRS x BIG_FILES) loaded into a second store's
#    metadata by test/bench/mkfiles: first snapshot, and after a chmod of
#    one file (3 times, median).
#
# The page cache is dropped before every timed snapshot, writelat run,
# scrub and recover: those rows are cold (Badger's own caches in the
# daemon are not dropped).
set -euo pipefail
cd "$(dirname "$0")/../.."
blobs=${BLOBS:-100000}
tree_dirs=${TREE_DIRS:-100} tree_files=${TREE_FILES:-1000}
tree=$((tree_dirs * tree_files))
[ "$(id -u)" = 0 ] || { echo "snapshot.sh needs root (drop_caches, direct mount)" >&2; exit 2; }
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-snapshot.XXXXXX")
shm=$(mktemp -d /dev/shm/stofuse-bench-snapshot.XXXXXX)
mnt="$work/mnt"
poller=""
cleanup() {
	if [ -n "$poller" ]; then kill "$poller" 2>/dev/null || true; fi
	if grep -q " $mnt " /proc/mounts; then "$work/stofuse" unmount "$mnt" || umount -l "$mnt"; fi
	rm -rf "$work" "$shm"
}
trap cleanup EXIT
mkdir -p "$mnt"
if [ -n "${STOFUSE_BIN:-}" ]; then cp "$STOFUSE_BIN" "$work/stofuse"; else go build -o "$work/stofuse" ./cmd/stofuse; fi
go build -o "$work/mktree" ./test/bench/mktree
go build -o "$work/writelat" ./test/bench/writelat
export STOFUSE_STORE="$work/store"

sf() { "$work/stofuse" "$@"; }
say() { echo "snapshot.sh: $*" >&2; }
now() { date +%s.%N; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# col N: the median of column N of the lines on stdin.
col() { awk -v c="$1" '{print $c}' | median; }
jnum() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
volbytes() { du -sb "$STOFUSE_STORE/volumes/default" | cut -f1; }
rssanon() { awk '/^RssAnon/ {print $2}' "/proc/$pid/status"; } # KiB
# snap: one cold snapshot of collection default; prints wall s, reported
# elapsed s, new_bytes, volume growth (du -sb), directories encoded.
snap() {
	local before start out end
	before=$(volbytes)
	drop
	start=$(now)
	out=$(sf --json snapshot default)
	end=$(now)
	if grep -q '"unchanged":true' <<<"$out"; then say "snapshot unchanged: $out"; exit 1; fi
	echo "$(echo "$end - $start" | bc -l) $(echo "$(jnum elapsed_ns <<<"$out") / 1000000000" | bc -l)" \
		"$(jnum new_bytes <<<"$out") $(($(volbytes) - before)) $(jnum dirs_encoded <<<"$out")"
}
pct() { echo "100 * $1 / $2" | bc -l; }
kib() { echo "$1 / 1024" | bc -l; }
rows=()
row() { rows+=("$(printf "$@")"); }
header() { rows+=("" "$1"); }

sf init 2>/dev/null
sf mount --background --snapshot-interval 0 "$mnt" 2>"$work/mount.err"
pid=$(sf --json status | jnum pid)
say "mounted, daemon pid $pid"

# 1. Go's source tree.
src=$(go env GOROOT)/src
files=$(find "$src" -type f | wc -l)
dirs=$(find "$src" -type d | wc -l)
srcbytes=$(du -sb "$src" | cut -f1)
say "cp -a of $src ($files files) into the mount"
start=$(now)
cp -a "$src" "$mnt/files/default/src"
cp_s=$(echo "$(now) - $start" | bc -l)
say "first snapshot of the Go tree"
read -r f_wall f_el f_new f_du f_dirs <<<"$(snap)"
second=""
for i in 1 2 3; do
	echo "// stofuse snapshot benchmark, change $i" >> "$mnt/files/default/src/fmt/print.go"
	second+="$(snap)"$'\n'
done
s_wall=$(col 1 <<<"$second"); s_el=$(col 2 <<<"$second"); s_new=$(col 3 <<<"$second")
s_du=$(col 4 <<<"$second"); s_dirs=$(col 5 <<<"$second")

fmtrow='%-58s %9s %9s %11s %11s %6s'
header "$(printf "$fmtrow" "1. Go source tree: $files files, $dirs dirs, $(echo "$srcbytes / 1048576" | bc) MiB" "wall s" "report s" "new_bytes" "du growth" "dirs")"
row '%-58s %9.2f' "cp -a into files/default (once)" "$cp_s"
row '%-58s %9.3f %9.3f %11d %11d %6d' "first snapshot, empty volume (cold, once)" "$f_wall" "$f_el" "$f_new" "$f_du" "$f_dirs"
row '%-58s %9.3f %9.3f %11.0f %11.0f %6.0f' "after appending a line to fmt/print.go (cold, median of 3)" "$s_wall" "$s_el" "$s_new" "$s_du" "$s_dirs"
row '%-58s %8.1f%% %8.1f%% %10.1f%% %10.1f%%' "  second / first (target: time <= 5%)" "$(pct "$s_wall" "$f_wall")" "$(pct "$s_el" "$f_el")" "$(pct "$s_new" "$f_new")" "$(pct "$s_du" "$f_du")"
row '%-58s %9s %9s %10.1fK %10.1fK' "  second snapshot's bytes in KiB (target: < 100 KiB)" "" "" "$(kib "$s_new")" "$(kib "$s_du")"

# 2. 100,000 files.
say "making $tree_dirs x $tree_files files through the mount"
start=$(now)
"$work/mktree" -dirs "$tree_dirs" -files "$tree_files" -workers 4 "$mnt/files/default/big" >&2
mk_s=$(echo "$(now) - $start" | bc -l)
# Badger compacts what the writers left for a while after they stop, and a
# compaction allocates its table buffers in the daemon: let it settle, so
# that the memory row measures the snapshot (SETTLE=0 measures both).
sleep "${SETTLE:-30}"
say "first snapshot of the $tree-file tree, sampling RssAnon"
drop
rss_before=$(rssanon)
(while :; do rssanon; sleep 0.05; done) > "$work/rss" 2>/dev/null &
poller=$!
read -r b_wall b_el b_new b_du b_dirs <<<"$(snap)"
kill "$poller"; wait "$poller" 2>/dev/null || true; poller=""
rss_peak=$( (cat "$work/rss"; echo "$rss_before") | sort -n | tail -1)
rss_after=$(rssanon)
second=""
for i in 1 2 3; do
	echo "changed $i" >> "$mnt/files/default/big/$(printf 'd%03d/f%04d' $((i * tree_dirs / 4)) $((i * tree_files / 4)))"
	second+="$(snap)"$'\n'
done
t_wall=$(col 1 <<<"$second"); t_el=$(col 2 <<<"$second"); t_new=$(col 3 <<<"$second")
t_du=$(col 4 <<<"$second"); t_dirs=$(col 5 <<<"$second")

header "$(printf "$fmtrow" "2. $tree files in $tree_dirs dirs (besides the Go tree)" "wall s" "report s" "new_bytes" "du growth" "dirs")"
row '%-58s %9.2f   (%.0f files/s)' "made by mktree through the mount, 4 writers (once)" "$mk_s" "$(echo "$tree / $mk_s" | bc -l)"
row '%-58s %9.3f %9.3f %11d %11d %6d' "first snapshot with the new tree (cold, once)" "$b_wall" "$b_el" "$b_new" "$b_du" "$b_dirs"
row '%-58s %9.3f %9.3f %11.0f %11.0f %6.0f' "after changing one file (cold, median of 3)" "$t_wall" "$t_el" "$t_new" "$t_du" "$t_dirs"
row '%-58s %8.1f%% %8.1f%%' "  second / first (target: <= 5%, i.e. 1/20)" "$(pct "$t_wall" "$b_wall")" "$(pct "$t_el" "$b_el")"
row '%-58s %9.1f MiB before, %.1f peak, %.1f after' "daemon RssAnon during the first snapshot" "$(echo "$rss_before / 1024" | bc -l)" "$(echo "$rss_peak / 1024" | bc -l)" "$(echo "$rss_after / 1024" | bc -l)"
row '%-58s %9.1f MiB   (target: < 64 MiB; %d samples)' "  growth (peak - before)" "$(echo "($rss_peak - $rss_before) / 1024" | bc -l)" "$(wc -l < "$work/rss")"

# 3. Write latency with and without a snapshot running.
say "write latency, no snapshot"
base=""
for i in 1 2 3; do
	drop
	base+="$("$work/writelat" -n 1000 "$mnt/files/default/lat/base$i")"$'\n'
done
during=""
snaps=""
for i in 1 2 3; do
	say "write latency during a snapshot ($i of 3)"
	for d in "$mnt"/files/default/big/d*; do touch "$d/f0000"; done
	drop
	sf --json snapshot default > "$work/snap.out" &
	spid=$!
	sleep 0.05
	during+="$("$work/writelat" -n 100000 -while "$spid" "$mnt/files/default/lat/snap$i")"$'\n'
	wait "$spid"
	snaps+="$(echo "$(jnum elapsed_ns < "$work/snap.out") / 1000000000" | bc -l) $(jnum dirs_encoded < "$work/snap.out")"$'\n'
done

header "$(printf '%-58s %9s %9s %9s' "3. create+write+close of a 4 KiB file, through the mount" "files" "p50 ms" "p99 ms")"
row '%-58s %9.0f %9.2f %9.2f' "no snapshot (cold, median of 3 runs)" "$(col 1 <<<"$base")" "$(col 2 <<<"$base")" "$(col 3 <<<"$base")"
row '%-58s %9.0f %9.2f %9.2f' "while a snapshot runs (cold, median of 3 runs)" "$(col 1 <<<"$during")" "$(col 2 <<<"$during")" "$(col 3 <<<"$during")"
row '%-58s %9.3f s reported, %.0f dirs encoded (median)' "  that snapshot: a file touched in each of the $tree_dirs dirs" "$(col 1 <<<"$snaps")" "$(col 2 <<<"$snaps")"

sf unmount "$mnt"
rm -rf "$STOFUSE_STORE"

# 4. Recover vs scrub.
avail=$(df -B1 --output=avail "$work" | tail -1)
need=$((blobs * 65536 * 12 / 10 + (2 << 30))) # blobs, 20% for metadata and framing, 2 GiB spare
note=""
if [ "$need" -gt "$avail" ]; then
	wanted=$blobs
	blobs=$(((avail - (2 << 30)) * 10 / 12 / 65536 / 500 * 500))
	note=" (BLOBS=$wanted does not fit in $(df -h --output=avail "$work" | tail -1 | tr -d ' '): lowered)"
	[ "$blobs" -gt 0 ] || { say "no room for section 4"; exit 1; }
fi
export STOFUSE_STORE="$work/store-r"
sf init 2>/dev/null
say "putting $blobs blobs of 64 KiB$note"
start=$(now)
for ((done = 0; done < blobs; done += 500)); do
	n=$((blobs - done < 500 ? blobs - done : 500))
	head -c $((n * 65536)) /dev/urandom | split -b 65536 -a 3 - "$shm/b."
	sf put "$shm"/b.* > /dev/null
	rm -f "$shm"/b.*
done
put_s=$(echo "$(now) - $start" | bc -l)
volume=$(du -sb "$STOFUSE_STORE/volumes/default" | cut -f1)
say "scrub"
drop
start=$(now)
sf --json scrub > "$work/scrub.out"
scrub_s=$(echo "$(now) - $start" | bc -l)
scrub_bytes=$(jnum bytes < "$work/scrub.out")
scrub_blobs=$(jnum blobs < "$work/scrub.out")
rm -rf "$STOFUSE_STORE/meta"
say "recover"
drop
start=$(now)
rc=0
sf --json recover --from "$STOFUSE_STORE/volumes/default" > "$work/recover.out" || rc=$?
recover_s=$(echo "$(now) - $start" | bc -l)
sum=$(grep '"summary"' "$work/recover.out")
rec_blobs=$(jnum blobs <<<"$sum")
rec_bytes=$(jnum bytes <<<"$sum")

header "$(printf '%-58s %9s %9s %9s' "4. $blobs blobs of 64 KiB random$note" "s" "MB/s" "blobs")"
row '%-58s %9.1f %9.1f %9d' "stofuse put, 500 files per invocation (once)" "$put_s" "$(echo "$blobs * 65536 / $put_s / 1000000" | bc -l)" "$blobs"
row '%-58s %9.1f %9.1f %9d' "stofuse scrub of the volume (cold, once)" "$scrub_s" "$(echo "$scrub_bytes / $scrub_s / 1000000" | bc -l)" "$scrub_blobs"
row '%-58s %9.1f %9.1f %9d' "stofuse recover --from the volume, meta/ gone (cold, once)" "$recover_s" "$(echo "$rec_bytes / $recover_s / 1000000" | bc -l)" "$rec_blobs"
row '%-58s %8.1f%%   (target: >= 50%%)' "  recover's speed / scrub's" "$(pct "$scrub_s" "$recover_s")"
row '%-58s %9s   (volume %.2f GB on disk, du -sb)' "  recover exit code" "$rc" "$(echo "$volume / 1000000000" | bc -l)"

# 5. A million entries: too many to copy through the mount here, so the
# tree is loaded into a second store's metadata directly (test/bench/
# mkfiles: BIG_DIRS x BIG_FILES files sharing one blob), the compactions
# of that load are let settle, and the store is snapshotted by the CLI
# (no mount): first, then after one chmod (3 times, median).
big_dirs=${BIG_DIRS:-1000} big_files=${BIG_FILES:-1000}
go build -o "$work/mkfiles" ./test/bench/mkfiles
export STOFUSE_STORE="$work/big"
sf init 2>/dev/null
say "loading $((big_dirs * big_files)) entries into the metadata"
"$work/mkfiles" -store "$STOFUSE_STORE" -collection big -dirs "$big_dirs" -files "$big_files" >&2
sleep 30
drop
start=$(now)
sf --json snapshot big > "$work/big1.out"
m_wall=$(echo "$(now) - $start" | bc -l)
m_el=$(echo "$(jnum elapsed_ns < "$work/big1.out") / 1000000000" | bc -l)
m_new=$(jnum new_bytes < "$work/big1.out")
for i in 1 2 3; do
	"$work/mkfiles" -store "$STOFUSE_STORE" -collection big -touch
	drop
	start=$(now)
	sf --json snapshot big > "$work/big2.out"
	echo "$(echo "$(now) - $start" | bc -l) $(echo "$(jnum elapsed_ns < "$work/big2.out") / 1000000000" | bc -l) $(jnum new_bytes < "$work/big2.out")"
done > "$work/big2.runs"
n_wall=$(col 1 < "$work/big2.runs") n_el=$(col 2 < "$work/big2.runs") n_new=$(col 3 < "$work/big2.runs")
header "$(printf '%-58s %9s %9s %11s' "5. $((big_dirs * big_files)) files in $big_dirs dirs, loaded into the metadata" "wall s" "report s" "new_bytes")"
row '%-58s %9.3f %9.3f %11d' "first snapshot (cold, once)" "$m_wall" "$m_el" "$m_new"
row '%-58s %9.3f %9.3f %11.0f' "after a chmod of one file (cold, median of 3)" "$n_wall" "$n_el" "$n_new"
row '%-58s %8.1f%% %8.1f%%' "  second / first (target: <= 5%, i.e. 1/20)" "$(pct "$n_wall" "$m_wall")" "$(pct "$n_el" "$m_el")"

printf '%s\n' "stofuse snapshot benchmark ($(nproc) cores, work dir on $(df --output=source "$work" | tail -1))"
printf '%s\n' "${rows[@]}"
