#!/usr/bin/env bash
# Benchmark of an S3 volume next to a localfs volume: `stofuse put` of a
# 1 GiB random file, and `stofuse cat REF > /dev/null` of it, on a local
# Versity Gateway (versitygw, posix backend) that the script starts on
# 127.0.0.1 over a directory on the disk holding $BENCH_DIR (default
# /var/tmp), and on the default localfs volume on the same disk. Prints MB/s
# (10^6 bytes per second), medians over RUNS runs (default 3):
#
#   test/bench/s3.sh [RUNS]
#
# Each run uses two fresh stores: one with only its default localfs volume,
# and one whose blob is put only on its S3 volume (its own key prefix), so
# that cat reads from S3. The page cache is kept warm (the file was just
# written), so both columns measure stofuse and the server, not the disk.
# The server and every temporary file are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}

# versitygw: in PATH, else where go install puts it ($(go env GOBIN), else
# $(go env GOPATH)/bin), as the tests look for it.
versitygw=$(command -v versitygw || true)
if [ -z "$versitygw" ]; then
	IFS=: read -ra gopaths <<<"$(go env GOPATH)"
	for dir in "$(go env GOBIN)" "${gopaths[@]/%//bin}"; do
		if [ -n "$dir" ] && [ -x "$dir/versitygw" ]; then versitygw="$dir/versitygw"; break; fi
	done
fi
if [ -z "$versitygw" ]; then
	echo "s3.sh: versitygw not found; install it with: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0" >&2
	exit 2
fi

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stofuse-bench-s3.XXXXXX")
gw_pid=
cleanup() {
	if [ -n "$gw_pid" ]; then
		kill -9 "$gw_pid" 2>/dev/null || true
		wait "$gw_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$work/stofuse" ./cmd/stofuse
go build -o "$work/mkbucket" ./test/bench/mkbucket

export AWS_ACCESS_KEY_ID=stofusebenchkey AWS_SECRET_ACCESS_KEY=stofuse-bench-secret-0123456789
export AWS_SESSION_TOKEN= AWS_PROFILE= STOFUSE_KEY_FILE= STOFUSE_PASSPHRASE=
# No periodic progress lines between the results.
export STOFUSE_PROGRESS_INTERVAL=24h
bucket=bench

# Start the server on a free port; a port taken between the check and the
# start (the server exits at once) is retried with another.
mkdir -p "$work/s3root"
for try in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 40000))
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
	"$versitygw" --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" \
		--port "127.0.0.1:$port" --quiet posix "$work/s3root" >>"$work/versitygw.log" 2>&1 &
	gw_pid=$!
	if "$work/mkbucket" -endpoint "http://127.0.0.1:$port" -access "$AWS_ACCESS_KEY_ID" \
		-secret "$AWS_SECRET_ACCESS_KEY" -bucket "$bucket" -wait 30s; then
		break
	fi
	kill -9 "$gw_pid" 2>/dev/null || true
	wait "$gw_pid" 2>/dev/null || true
	gw_pid=
done
if [ -z "$gw_pid" ]; then
	echo "s3.sh: versitygw did not start; its log:" >&2
	cat "$work/versitygw.log" >&2
	exit 1
fi
endpoint="http://127.0.0.1:$port"

gib=1073741824
head -c $gib /dev/urandom >"$work/big"
sync

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# seconds CMD... runs CMD with its output to /dev/null and prints how long it
# took; a failing CMD stops the script.
seconds() {
	local start
	start=$(date +%s.%N)
	"$@" >/dev/null || exit 1
	echo "$(date +%s.%N) - $start" | bc -l
}
mbs() { echo "$gib / $1 / 1000000" | bc -l; }
# on_local and on_s3 run stofuse on this run's localfs-only and S3 stores.
on_local() { STOFUSE_STORE=$local_store "$work/stofuse" "$@"; }
on_s3() { STOFUSE_STORE=$s3_store "$work/stofuse" "$@"; }

put_local=(); put_s3=(); cat_local=(); cat_s3=()
for run in $(seq 1 "$runs"); do
	local_store="$work/store-local-$run" s3_store="$work/store-s3-$run"
	on_local init 2>/dev/null
	on_s3 init 2>/dev/null
	on_s3 volume add s3vol --s3-endpoint "$endpoint" \
		--s3-bucket "$bucket" --s3-prefix "run$run/" >/dev/null

	put_local+=("$(mbs "$(seconds on_local put --volume default "$work/big")")")
	put_s3+=("$(mbs "$(seconds on_s3 put --volume s3vol "$work/big")")")
	ref=$(sha256sum "$work/big" | cut -c1-64)
	volumes=$(on_s3 stat "$ref" | sed -n 's/^volumes: *//p')
	[ "$volumes" = s3vol ] || { echo "s3.sh: the S3 store holds the blob on '$volumes', not only on s3vol" >&2; exit 1; }
	cat_local+=("$(mbs "$(seconds on_local cat "$ref")")")
	cat_s3+=("$(mbs "$(seconds on_s3 cat "$ref")")")

	rm -rf "$local_store" "$s3_store" "$work/s3root/$bucket/run$run"
done

printf '%-34s %12s %16s\n' "stofuse, 1 GiB ($runs runs, medians)" "localfs" "S3 (versitygw)"
printf '%-34s %12.1f %16.1f\n' "put: MB/s" \
	"$(printf '%s\n' "${put_local[@]}" | median)" "$(printf '%s\n' "${put_s3[@]}" | median)"
printf '%-34s %12.1f %16.1f\n' "cat > /dev/null: MB/s" \
	"$(printf '%s\n' "${cat_local[@]}" | median)" "$(printf '%s\n' "${cat_s3[@]}" | median)"
