#!/bin/sh
# Every complete program in the documentation compiles and runs.  A fenced block that opens with ```c and whose
# first line is the marker `/* tutorial: NAME.c */` is a complete program: it is extracted to NAME.c, compiled
# against the built library with -Wall -Wextra -Werror, and run (at most 120 s) in a scratch folder whose data/
# points at the real data.  Blocks without the marker are fragments and are left alone.
#
#   sh tests/test_docs.sh [BUILD_DIR [FILE.md ...]]   (default: build, docs/*.md README.md; run from the repository root)
#
# CC (default cc) compiles and links with LDLIBS (default -lm -lpthread; the ONNX build adds -lprotobuf-c);
# EXTRA_CFLAGS is added (the sanitizer flags of `make asan` must reach the link too).
# DN_DATA: the folder holding mnist/ and fortunes.txt (default: data).  A program that reads data/mnist is compiled
# but not run when MNIST is absent, and counts as skipped ("skip NAME: reason"); with mnist listed in DN_REQUIRE
# (comma-separated) that is a failure instead.  DN_KEEP=1 keeps the scratch folder.  Exit status 0 when every
# program passes; the last line is "N passed, N failed, N skipped".
# DN_RUN_PREFIX runs each program through a wrapper (a cross build under qemu-aarch64: `make test-aarch64`, with CC
# the cross compiler), with 600 s instead of 120 s each.
set -u

BUILD=${1:-build}
[ $# -gt 0 ] && shift
if [ $# -eq 0 ]; then
    set -- docs/*.md README.md
fi
CC=${CC:-cc}
EXTRA_CFLAGS=${EXTRA_CFLAGS:-}
RUN_PREFIX=${DN_RUN_PREFIX:-}
LIMIT=120
[ -n "$RUN_PREFIX" ] && LIMIT=600
. "$(dirname "$0")/tally.sh"
finish() {
    if [ "${DN_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
    tally
    exit $?
}

work=$(mktemp -d "${TMPDIR:-/tmp}/test_docs.XXXXXX") || { echo "cannot make a scratch folder"; exit 1; }
if [ ! -f "$BUILD/libdendrite.a" ]; then
    bad "no library at $BUILD/libdendrite.a (build first: make)"
    finish
fi
data=$(cd "${DN_DATA:-data}" 2>/dev/null && pwd) || data=
have_mnist=no
[ -n "$data" ] && [ -r "$data/mnist/train-images-idx3-ubyte" ] && [ -r "$data/mnist/t10k-images-idx3-ubyte" ] &&
    have_mnist=yes

# Extraction.  Prints one line per program, "NAME FILE:LINE", and "ERROR message" for a marker that is malformed,
# a name used twice, or a block that never closes (each of those is a failure: the program would silently vanish).
awk -v dir="$work" '
    function close_block() {
        if (out != "") { close(out); print name " " where }
        out = ""; inblock = 0
    }
    FNR == 1 && inblock { if (out != "") print "ERROR " where ": the block of " name " never closes"; out = ""; inblock = 0 }
    inblock && /^```[ \t]*$/ { close_block(); next }
    inblock && first {
        first = 0
        if ($0 ~ /^\/\* tutorial:/) {
            if ($0 !~ /^\/\* tutorial: [A-Za-z0-9_-]+\.c \*\/[ \t]*$/) {
                print "ERROR " where ": malformed marker (want /* tutorial: NAME.c */): " $0
                next
            }
            name = $3
            if (name in seen) { print "ERROR " where ": " name " is also at " seen[name]; next }
            seen[name] = where
            out = dir "/" name
        }
    }
    inblock { if (out != "") print > out; next }
    /^```c[ \t]*$/ { inblock = 1; first = 1; where = FILENAME ":" FNR + 1 }
    END { if (inblock && out != "") print "ERROR " where ": the block of " name " never closes" }
' "$@" > "$work/programs" || { bad "could not read $*"; finish; }

count=0
while read -r name where; do
    if [ "$name" = ERROR ]; then
        bad "$where"
        continue
    fi
    count=$((count + 1))
    src=$work/$name
    bin=$work/${name%.c}
    # shellcheck disable=SC2086 # EXTRA_CFLAGS holds several flags
    if ! $CC -std=c11 -Wall -Wextra -Werror -Iinclude $EXTRA_CFLAGS "$src" "$BUILD/libdendrite.a" ${LDLIBS:--lm -lpthread} \
        -o "$bin" > "$work/$name.cc.log" 2>&1; then
        bad "$name ($where) does not compile:"
        head -n 30 "$work/$name.cc.log" | sed 's/^/    /'
        continue
    fi
    if grep -q 'data/mnist' "$src" && [ "$have_mnist" = no ]; then
        skip mnist "$name ($where): compiles, not run: no MNIST in ${DN_DATA:-data}/mnist (scripts/fetch-mnist.sh)"
        continue
    fi
    # Its own folder, so that files a program writes (checkpoints, text) neither collide nor land in the tree.
    run=$work/run-${name%.c}
    mkdir -p "$run"
    [ -n "$data" ] && ln -s "$data" "$run/data"
    limiter=
    command -v timeout > /dev/null 2>&1 && limiter="timeout $LIMIT"
    # shellcheck disable=SC2086 # the limiter and the prefix are commands with their arguments
    (cd "$run" && $limiter $RUN_PREFIX "$bin") < /dev/null > "$work/$name.run.log" 2>&1 # stdin: not the list being read
    rc=$?
    if [ "$rc" -eq 0 ]; then
        ok "$name ($where) compiles and runs"
    else
        if [ "$rc" -eq 124 ]; then bad "$name ($where) ran past $LIMIT s:"; else bad "$name ($where) exits with status $rc:"; fi
        tail -n 20 "$work/$name.run.log" | sed 's/^/    /'
    fi
done < "$work/programs"

[ "$count" -eq 0 ] && bad "no complete programs (blocks starting with /* tutorial: NAME.c */) in $*"
finish
