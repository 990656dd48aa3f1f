#!/usr/bin/env bash
# Puts a plain-text corpus for the character language model in data/fortunes.txt (or $1): the fortune files
# of Debian's `fortunes` package, concatenated in name order.  Nothing is written unless the whole download
# and extraction worked, and an existing corpus is left alone.
#
#   scripts/fetch-fortunes.sh              -> <repo>/data/fortunes.txt
#   scripts/fetch-fortunes.sh some/file    -> some/file
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/data/fortunes.txt}"
die() { echo "fetch-fortunes: error: $*" >&2; exit 1; }

if [ -s "$dest" ]; then
    echo "fetch-fortunes: $dest is already there"
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get is needed (Debian's fortunes package is the source)"
command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb is needed to unpack the package"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
( cd "$work" && apt-get download fortunes >/dev/null 2>&1 ) ||
    { apt-get update -qq >/dev/null 2>&1 && ( cd "$work" && apt-get download fortunes >/dev/null ); } ||
    die "apt-get download fortunes failed"
deb="$(ls "$work"/fortunes_*.deb 2>/dev/null | head -n 1)"
[ -n "$deb" ] || die "no fortunes package was downloaded"
dpkg-deb -x "$deb" "$work/x"
dir="$work/x/usr/share/games/fortunes"
[ -d "$dir" ] || die "the package has no $dir"
mkdir -p "$(dirname "$dest")"
tmp="$dest.tmp.$$"
# the text files themselves: not the .dat indexes, not the .u8 links
find "$dir" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | LC_ALL=C sort | xargs cat > "$tmp"
[ -s "$tmp" ] || { rm -f "$tmp"; die "the corpus came out empty"; }
mv "$tmp" "$dest"
echo "fetch-fortunes: $(wc -c < "$dest") bytes in $dest"
