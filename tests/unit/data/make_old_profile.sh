#!/usr/bin/env bash
# Regenerates tests/unit/data/profile-vN.prof, an old version's file the
# reader still reads (ProfileFile.ReadsAVersion2FileAsBefore, ...3...):
# builds make_profile_vN.cpp against the profile writer of the last commit
# that wrote version N, taken with `git archive` into a temporary directory,
# runs it, and checks that the result is byte for byte the committed file.
#   tests/unit/data/make_old_profile.sh N          check (status 1 on a difference)
#   tests/unit/data/make_old_profile.sh N --write  replace the committed file
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
version=${1:?usage: make_old_profile.sh VERSION [--write]}
case $version in
2) commit=$(git -C "$repo" rev-parse d373258^) ;;  # d373258 introduced version 3
3) commit=$(git -C "$repo" rev-parse 944656b) ;;   # its child on fix-mapstime introduced version 4
*) echo "make_old_profile.sh: no writer of version $version" >&2; exit 2 ;;
esac
want=$repo/tests/unit/data/profile-v$version.prof
tmp=$(mktemp -d /tmp/mb-profile-v$version.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
git -C "$repo" archive "$commit" include membalancer | tar -x -C "$tmp"
src=$tmp/membalancer
g++ -std=c++20 -O1 -I"$tmp/include" -I"$tmp" "$repo/tests/unit/data/make_profile_v$version.cpp" "$src/profile_file.cpp" \
	"$src/safe_file.cpp" "$src/sysfs.cpp" "$src/topology.cpp" -lz -lelf -ldw -o "$tmp/make_profile"
"$tmp/make_profile" "$tmp/profile-v$version.prof"
if [ "${2:-}" = --write ]; then
	cp "$tmp/profile-v$version.prof" "$want"
	echo "wrote $want (writer of $commit)"
elif cmp "$tmp/profile-v$version.prof" "$want"; then
	echo "$want: reproduced byte for byte (writer of $commit)"
else
	echo "$want: differs from what the writer of $commit writes" >&2
	exit 1
fi
