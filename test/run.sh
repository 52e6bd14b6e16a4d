#!/usr/bin/env bash
# Runs the whole stofuse test suite: go vet, then every test with the race
# detector, including the end-to-end tests that mount real FUSE filesystems
# and run real cp, rsync, tar and sha256sum against them.
#
# As root it installs what the tests need (fuse3, rsync, and for
# pjdfstest autoconf, automake, gcc, make and perl's prove) when missing.
# With CI=true, tests that need /dev/fuse, root, or pjdfstest (built by
# ../shared/tools/pjdfstest.sh, beside the repository) fail instead of
# skipping when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v fusermount3 >/dev/null || missing+=(fuse3)
command -v rsync >/dev/null || missing+=(rsync)
command -v autoreconf >/dev/null || missing+=(autoconf)
command -v automake >/dev/null || missing+=(automake)
command -v gcc >/dev/null || missing+=(gcc)
command -v make >/dev/null || missing+=(make)
command -v prove >/dev/null || missing+=(perl)
if ((${#missing[@]})); then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "test/run.sh: installing ${missing[*]}" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	else
		echo "test/run.sh: missing ${missing[*]}; tests that need them will fail or skip" >&2
	fi
fi

# --- versitygw (S3 tests) ---
# blobstore/s3 tests run a real S3 server, Versity Gateway, on 127.0.0.1.
# They look for it in PATH and where go install puts it ($(go env GOBIN), else
# $(go env GOPATH)/bin); with CI=true they fail when it is missing.
versitygw_dir="$(go env GOBIN)"
versitygw_dir="${versitygw_dir:-$(go env GOPATH | cut -d: -f1)/bin}"
if ! command -v versitygw >/dev/null && [ ! -x "$versitygw_dir/versitygw" ]; then
	echo "test/run.sh: installing versitygw" >&2
	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
# --- end versitygw ---

go vet ./...
# -count=1: the end-to-end tests drive a binary they build themselves,
# which go test's cache does not know about; a cached pass could be stale.
go test -race -count=1 -timeout 60m ./...
