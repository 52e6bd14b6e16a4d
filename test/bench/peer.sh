#!/usr/bin/env bash
# Benchmark of stofuse against its peer gocryptfs 2.6.1 (an encrypted FUSE
# overlay over a plain directory), on a tmpfs and on the disk holding
# $BENCH_DIR (default /var/tmp). Needs root (to mount the tmpfs and drop the
# page cache) and fusermount3 (apt-get install fuse3). gocryptfs is built
# from the Go module proxy in a throwaway module under the work directory;
# nothing of it stays behind.
#
#   ROUNDS=3 DD_MB=512 ONLY=tmpfs|disk STOFUSE_BIN=... test/bench/peer.sh
#
# Each round runs both tools, alternating which goes first (gocryptfs in
# odd rounds, stofuse in even ones), each on a fresh store (cipher
# directory) and a fresh mount, with the store on the backing fs measured:
# 1. dd write (bs=1M conv=fsync) of DD_MB MiB of random data, generated
#    once on the same backing fs and read into the page cache before:
#    gocryptfs into a plain file, stofuse into ref/<its sha256>; MB/s
#    (10^6 bytes), timed around the whole dd (close included);
# 2. dd read of it back (bs=1M) after dropping the page cache; MB/s;
#    then, untimed, cmp against the data;
# 3. untar of Go's source tree (tar -xf, the tar on the same backing fs and
#    in the page cache) into src/ under gocryptfs's root and under
#    stofuse's files/<default collection>/; seconds;
# 4. ls -lR of that tree; 5. md5sum of every file, after dropping the page
#    cache; 6. rm -rf of it; seconds.
# Only the command is timed, the same for both tools: no extra sync.
# Prints every round's values, then one table of medians with ratios
# (> 1: stofuse is better; times gocryptfs/stofuse, MB/s stofuse/gocryptfs).
# STOFUSE_BIN uses a prebuilt stofuse instead of building ./cmd/stofuse;
# GOCRYPTFS_BIN a prebuilt gocryptfs.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-3}
dd_mb=${DD_MB:-512}
case ${ONLY:-} in
"") fss=(tmpfs disk) ;;
tmpfs | disk) fss=("$ONLY") ;;
*) echo "ONLY must be tmpfs or disk" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "peer.sh needs root (tmpfs mount, drop_caches)" >&2; exit 2; }
command -v fusermount3 >/dev/null || { echo "peer.sh needs fusermount3 (apt-get install -y fuse3)" >&2; exit 2; }
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-peer.XXXXXX")
mounts_under_work() { # FUSE|OTHER: mount points under $work, deepest first
	awk -v w="$work/" -v want="$1" 'index($2, w) == 1 && (($3 ~ /^fuse/) == (want == "FUSE")) {print $2}' /proc/mounts | sort -r
}
cleanup() {
	set +e
	local m
	# The FUSE mounts first: their stores may lie on the tmpfs.
	for m in $(mounts_under_work FUSE); do
		if [ "$m" = "$work/mnt-stofuse" ]; then "${sf:-false}" unmount "$m" 2>/dev/null && continue; fi
		fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || umount -l "$m"
	done
	for m in $(mounts_under_work OTHER); do umount "$m" 2>/dev/null || umount -l "$m"; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { echo "peer.sh: $*" >&2; }
if [ -n "${STOFUSE_BIN:-}" ]; then
	sf=$(realpath "$STOFUSE_BIN")
	sf_what="$sf (prebuilt)"
else
	sf=$work/stofuse
	go build -o "$sf" ./cmd/stofuse
	sf_what="./cmd/stofuse at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' + uncommitted changes')"
fi
if [ -n "${GOCRYPTFS_BIN:-}" ]; then
	gcf=$(realpath "$GOCRYPTFS_BIN")
else
	log "building gocryptfs 2.6.1"
	gcf=$work/gocryptfs
	mkdir "$work/gocryptfs-build"
	if ! (cd "$work/gocryptfs-build" && export GOWORK=off GOFLAGS=-mod=mod &&
		go mod init tmp && go get github.com/rfjakob/gocryptfs/v2@v2.6.1 &&
		go build -tags without_openssl -o "$gcf" github.com/rfjakob/gocryptfs/v2) >"$work/gocryptfs-build.log" 2>&1; then
		cat "$work/gocryptfs-build.log" >&2
		exit 1
	fi
fi
gcf_what=$("$gcf" -version | head -1)

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
timed() { # COMMAND: seconds
	local start end
	start=$(now)
	eval "$1" >/dev/null || { log "failed: $1"; return 1; }
	end=$(now)
	echo "$end - $start" | bc -l
}
bytes=$((dd_mb * 1048576))
mbs() { echo "$bytes / $1 / 1000000" | bc -l; }

declare -A r
bench() { # FS TOOL FILE TREE: the six steps on a mounted tool
	local fs=$1 tool=$2 file=$3 tree=$4 b=${back[$1]}
	local k=$fs-$tool t
	cat "$b/data" >/dev/null
	t=$(timed "dd if=$b/data of=$file bs=1M conv=fsync status=none")
	r[$k-write]+="$(mbs "$t") "
	drop
	t=$(timed "dd if=$file of=/dev/null bs=1M status=none")
	r[$k-read]+="$(mbs "$t") "
	cmp "$b/data" "$file" || { log "$tool: $file does not read back as written"; return 1; }
	cat "$b/src.tar" >/dev/null
	mkdir "$tree"
	t=$(timed "tar -C $tree -xf $b/src.tar")
	r[$k-untar]+="$t "
	t=$(timed "ls -lR $tree")
	r[$k-ls]+="$t "
	drop
	t=$(timed "find $tree -type f -exec md5sum {} +")
	r[$k-md5]+="$t "
	t=$(timed "rm -rf $tree")
	r[$k-rm]+="$t "
}
run_gocryptfs() { # FS
	local b=${back[$1]} mnt=$work/mnt-gocryptfs
	mkdir "$b/cipher"
	"$gcf" -init -q -scryptn 10 -extpass 'echo pw' "$b/cipher" >/dev/null
	"$gcf" -q -nosyslog -extpass 'echo pw' "$b/cipher" "$mnt"
	bench "$1" gocryptfs "$mnt/data" "$mnt/src"
	fusermount3 -u "$mnt"
	rm -rf "$b/cipher"
}
run_stofuse() { # FS
	local b=${back[$1]} mnt=$work/mnt-stofuse coll
	export STOFUSE_STORE=$b/store
	"$sf" init 2>/dev/null
	"$sf" mount --background "$mnt" 2>"$work/mount.err" || { cat "$work/mount.err" >&2; return 1; }
	coll=$(ls "$mnt/files")
	[ "$(wc -w <<<"$coll")" = 1 ] || { log "files/ of a new store holds '$coll', not one collection"; return 1; }
	bench "$1" stofuse "$mnt/ref/$hex" "$mnt/files/$coll/src"
	"$sf" unmount "$mnt"
	rm -rf "$STOFUSE_STORE"
}

mkdir "$work/mnt-gocryptfs" "$work/mnt-stofuse"
declare -A back
for fs in "${fss[@]}"; do
	if [ "$fs" = tmpfs ]; then
		back[$fs]=$work/tmpfs
		mkdir "${back[$fs]}"
		mount -t tmpfs -o size=$((4 * dd_mb + 4096))m tmpfs "${back[$fs]}"
	else
		back[$fs]=$work/disk
		mkdir "${back[$fs]}"
	fi
done
# The data and the tar, once, then a copy on every backing fs.
first=${back[${fss[0]}]}
head -c "$bytes" /dev/urandom >"$first/data"
tar -C "$(go env GOROOT)/src" -cf "$first/src.tar" .
for fs in "${fss[@]:1}"; do cp "$first/data" "$first/src.tar" "${back[$fs]}/"; done
hex=$(sha256sum "$first/data" | cut -c1-64)
tarfile=$first/src.tar
files=$(tar -tvf "$tarfile" | grep -c '^-')
tar_mb=$(($(stat -c %s "$tarfile") / 1000000))

for fs in "${fss[@]}"; do
	for round in $(seq 1 "$rounds"); do
		if [ $((round % 2)) = 1 ]; then order=(gocryptfs stofuse); else order=(stofuse gocryptfs); fi
		for tool in "${order[@]}"; do
			log "$fs, round $round/$rounds: $tool"
			"run_$tool" "$fs"
		done
	done
done

steps=(write read untar ls md5 rm)
declare -A label=([write]="dd write (MB/s)" [read]="dd read, cold (MB/s)" [untar]="untar (s)"
	[ls]="ls -lR (s)" [md5]="md5sum, cold (s)" [rm]="rm -rf (s)")
fmt() { # STEP VALUE
	case $1 in write | read) printf '%.0f' "$2" ;; *) printf '%.2f' "$2" ;; esac
}
m() { tr ' ' '\n' <<<"${r[$1]}" | grep . | median; }
echo "stofuse: $sf_what; gocryptfs: $gcf_what"
echo "dd: $dd_mb MiB of random data; tree: Go's src ($files files, $tar_mb MB tar); $rounds rounds;" \
	"odd rounds run gocryptfs first, even ones stofuse"
for fs in "${fss[@]}"; do
	echo
	read -r type source < <(findmnt -no FSTYPE,SOURCE -T "${back[$fs]}")
	echo "$fs ($type on $source), every round:"
	echo
	head="| |" rule="|---|"
	for tool in gocryptfs stofuse; do
		for round in $(seq 1 "$rounds"); do head+=" $tool $round |"; rule+="---|"; done
	done
	echo "$head"
	echo "$rule"
	for step in "${steps[@]}"; do
		line="| ${label[$step]} |"
		for tool in gocryptfs stofuse; do
			for v in ${r[$fs-$tool-$step]}; do line+=" $(fmt "$step" "$v") |"; done
		done
		echo "$line"
	done
done
echo
echo "Medians of $rounds rounds; ratio > 1: stofuse is better (times: gocryptfs / stofuse; MB/s: stofuse / gocryptfs):"
echo
head="|" rule="|---|"
for fs in "${fss[@]}"; do head+=" | $fs: gocryptfs | stofuse | ratio"; rule+="---|---|---|"; done
echo "$head |"
echo "$rule"
for step in "${steps[@]}"; do
	line="| ${label[$step]} |"
	for fs in "${fss[@]}"; do
		g=$(m "$fs-gocryptfs-$step") s=$(m "$fs-stofuse-$step")
		case $step in write | read) ratio=$(echo "$s / $g" | bc -l) ;; *) ratio=$(echo "$g / $s" | bc -l) ;; esac
		line+=" $(fmt "$step" "$g") | $(fmt "$step" "$s") | $(printf '%.2f' "$ratio")x |"
	done
	echo "$line"
done
