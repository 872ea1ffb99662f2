#!/usr/bin/env bash
# Regenerates tests/unit/data/profile-v2.prof (ProfileFile.ReadsAVersion2FileAsBefore):
# builds make_profile_v2.cpp against the profile writer of the last commit that
# wrote version 2 (the parent of d373258, which introduced version 3), taken
# with `git archive` into a temporary directory, runs it, and checks that the
# result is byte for byte the committed file.
#   tests/unit/data/make_profile_v2.sh          check (status 1 on a difference)
#   tests/unit/data/make_profile_v2.sh --write  replace the committed file
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
want=$repo/tests/unit/data/profile-v2.prof
commit=$(git -C "$repo" rev-parse d373258^)
tmp=$(mktemp -d /tmp/mb-profile-v2.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
git -C "$repo" archive "$commit" include membalancer | tar -x -C "$tmp"
src=$tmp/membalancer
g++ -std=c++20 -O1 -I"$tmp/include" -I"$tmp" "$repo/tests/unit/data/make_profile_v2.cpp" "$src/profile_file.cpp" \
	"$src/safe_file.cpp" "$src/sysfs.cpp" "$src/topology.cpp" -lz -lelf -ldw -o "$tmp/make_profile_v2"
"$tmp/make_profile_v2" "$tmp/profile-v2.prof"
if [ "${1:-}" = --write ]; then
	cp "$tmp/profile-v2.prof" "$want"
	echo "wrote $want (writer of $commit)"
elif cmp "$tmp/profile-v2.prof" "$want"; then
	echo "$want: reproduced byte for byte (writer of $commit)"
else
	echo "$want: differs from what the writer of $commit writes" >&2
	exit 1
fi
