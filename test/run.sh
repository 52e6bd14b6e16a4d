#!/usr/bin/env bash
# Runs the whole stofuse test suite: go vet, then every test with the race
# detector, including the end-to-end tests that mount real FUSE filesystems
# and run real cp, rsync, tar and sha256sum against them.
#
# As root it installs what the tests need (fuse3, rsync) when missing. With
# CI=true, tests that need /dev/fuse fail instead of skipping when it is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v fusermount3 >/dev/null || missing+=(fuse3)
command -v rsync >/dev/null || missing+=(rsync)
if ((${#missing[@]})); then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "test/run.sh: installing ${missing[*]}" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	else
		echo "test/run.sh: missing ${missing[*]}; tests that need them will fail or skip" >&2
	fi
fi

go vet ./...
go test -race -timeout 60m ./...
