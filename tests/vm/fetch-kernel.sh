#!/usr/bin/env bash
# Fetches (once) the Debian kernel image and the matching headers into
# tests/vm/cache/ without installing anything on the host.
#   tests/vm/fetch-kernel.sh        -> prints the cache dir of the kernel (cache/<kver>)
# Layout of cache/<kver>/:
#   vmlinuz              the kernel image; vmlinux: the same, uncompressed (PVH boot)
#   root/                the .debs unpacked (dpkg-deb -x), symlinks fixed to stay inside
#   kdir                 -> root/usr/src/linux-headers-<kver>   (KDIR for kbuild)
#   modules/             root/lib/modules/<kver> of the image package (built-in list)
# Env: MB_KVER_PKG=linux-image-6.1.0-56-amd64 pins a version; default is whatever
# Debian's linux-image-amd64 resolves to.  Exit 77 if nothing can be fetched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${MB_VM_CACHE:-$here/cache}
mkdir -p "$cache"

log() { echo "fetch-kernel: $*" >&2; }
# Newest complete cached kernel, for when apt cannot give us the current one.
fallback() {
	local last
	last=$(ls -d "$cache"/*/.complete 2>/dev/null | sort -V | tail -1 || true)
	if [ -n "$last" ] && [ -z "${MB_KVER_PKG:-}" ]; then
		log "$*; using the cached $(basename "$(dirname "$last")")"
		dirname "$last"; exit 0
	fi
	log "$*"; exit 77
}
# apt's lists may be missing (an image whose lists were cleaned, with every
# package of `make deps` already installed, so it ran no apt-get update) or
# stale (the security archive keeps only the newest kernel: an old list names a
# .deb that is gone). Refresh them once, as root, and start again; else fall back.
refresh_or_fallback() {
	if [ -z "${MB_APT_REFRESHED:-}" ] && [ "$(id -u)" = 0 ]; then
		log "$*; refreshing apt's lists (apt-get update) and retrying"
		apt-get update -qq >&2 || fallback "$* (apt-get update failed)"
		MB_APT_REFRESHED=1 exec "$0"
	fi
	fallback "$*"
}

pkg=${MB_KVER_PKG:-}
# apt-cache takes ~2 s: re-resolve linux-image-amd64 at most every 6 hours.
resolved=$cache/resolved
if [ -z "$pkg" ] && [ -n "$(find "$resolved" -mmin -360 2>/dev/null)" ]; then
	d=$cache/$(cat "$resolved")
	if [ -f "$d/.complete" ] && [ -f "$d/vmlinux" ] && grep -q "^include $d/root/" "$d/kdir/Makefile"; then
		echo "$d"; exit 0
	fi
fi
if [ -z "$pkg" ]; then
	# Reuse a fully unpacked kernel if one exists and apt cannot tell us better.
	cand=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1 || true)
	if [ -n "$cand" ]; then
		pkg=$cand
	else
		refresh_or_fallback "cannot resolve linux-image-amd64 (apt-cache)"
	fi
fi
kver=${pkg#linux-image-}
dir=$cache/$kver

# An uncompressed vmlinux (ELF with a PVH entry) boots several seconds faster
# under TCG than the xz-compressed bzImage, which decompresses itself slowly.
extract_vmlinux() { # $1 = bzImage, $2 = output
	local magic cmd off
	for pair in '\xfd7zXZ\x00:xz -dc --single-stream' '\x28\xb5\x2f\xfd:zstd -dc' '\x1f\x8b\x08:gzip -dc'; do
		magic=${pair%%:*}; cmd=${pair#*:}
		off=$(LC_ALL=C grep -obUaP "$magic" "$1" 2>/dev/null | head -1 | cut -d: -f1 || true)
		[ -n "$off" ] || continue
		tail -c +$((off + 1)) "$1" | $cmd > "$2.tmp" 2>/dev/null
		if file "$2.tmp" | grep -q 'ELF 64-bit'; then mv "$2.tmp" "$2"; return 0; fi
	done
	rm -f "$2.tmp"; return 1
}
# Debian's headers Makefile includes the common one by absolute path.
fix_makefile() { # $1 = unpacked root
	sed -i "s#^include .*/usr/src/\(linux-headers-[^/]*-common\)/Makefile#include $1/usr/src/\1/Makefile#" \
		"$1/usr/src/linux-headers-$kver/Makefile"
}
[ -n "${MB_KVER_PKG:-}" ] || echo "$kver" > "$resolved"
if [ -f "$dir/.complete" ]; then
	[ -f "$dir/vmlinux" ] || extract_vmlinux "$dir/vmlinuz" "$dir/vmlinux" || true
	grep -q "^include $dir/root/" "$dir/kdir/Makefile" || fix_makefile "$dir/root" # cache moved
	echo "$dir"; exit 0
fi

ver=$(apt-cache show "$pkg" 2>/dev/null | sed -n "s/^Version: //p" | head -1 || true)
[ -n "$ver" ] || refresh_or_fallback "no package $pkg"
common=$(apt-cache show "linux-headers-$kver" 2>/dev/null | sed -n 's/^Depends: //p' | head -1 | tr ',' '\n' | sed -n 's/^ *\(linux-headers-[^ ]*-common\).*/\1/p' | head -1 || true)
kbuild=$(apt-cache show "linux-headers-$kver" 2>/dev/null | sed -n 's/^Depends: //p' | head -1 | tr ',' '\n' | sed -n 's/^ *\(linux-kbuild-[^ ]*\).*/\1/p' | head -1 || true)
[ -n "$common" ] && [ -n "$kbuild" ] || refresh_or_fallback "cannot resolve headers deps of linux-headers-$kver"

rm -rf "$dir.tmp"; mkdir -p "$dir.tmp/debs" "$dir.tmp/root"
log "downloading $pkg linux-headers-$kver $common $kbuild ($ver)"
( cd "$dir.tmp/debs" && apt-get download -q "$pkg=$ver" "linux-headers-$kver=$ver" "$common=$ver" "$kbuild" >&2 ) \
	|| { rm -rf "$dir.tmp"; refresh_or_fallback "apt-get download failed"; }
for d in "$dir.tmp"/debs/*.deb; do dpkg-deb -x "$d" "$dir.tmp/root"; done
root=$dir.tmp/root
# Absolute symlinks inside the unpacked tree point at the host's /usr/...;
# rewrite them relative to root/ so the tree works where it lies.
find "$root" -type l | while read -r l; do
	t=$(readlink "$l")
	case "$t" in
	/*) ln -sfn "$(realpath -m --relative-to="$(dirname "$l")" "$root$t")" "$l" ;;
	esac
done
cp "$root/boot/vmlinuz-$kver" "$dir.tmp/vmlinuz"
extract_vmlinux "$dir.tmp/vmlinuz" "$dir.tmp/vmlinux" || log "no vmlinux extracted; booting the bzImage (slower)"
ln -s "root/usr/src/linux-headers-$kver" "$dir.tmp/kdir"
ln -s "root/lib/modules/$kver" "$dir.tmp/modules"
echo "$kver" > "$dir.tmp/kver"
rm -rf "$dir.tmp/debs"
touch "$dir.tmp/.complete"
rm -rf "$dir"; mv "$dir.tmp" "$dir"
fix_makefile "$dir/root"
echo "$dir"
