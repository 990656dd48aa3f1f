#!/bin/sh
# The runner cannot pass silently: a skip is printed with its reason and counted, DN_REQUIRE turns the skip of a
# listed requirement into a failure (in the C runner and in the shell tests), and an unknown suite name is an
# error.  Runs the built test_runner (its hidden "selftest" suite always skips) and tests/test_report.sh without
# data.  Builds nothing.
#
#   sh tests/test_runner.sh [BUILD_DIR]        (default: build; run from the repository root)
#
# Exit status 0 when every check passes; the last line is "N passed, N failed, N skipped".
set -u

BUILD=${1:-build}
R=$BUILD/test_runner
PRE=${DN_RUN_PREFIX:-} # a wrapper for every program run (qemu-aarch64 for the cross build), unquoted: it may hold words
. "$(dirname "$0")/tally.sh"
T=$(mktemp -d "${TMPDIR:-/tmp}/test_runner.XXXXXX") || { echo "cannot make a scratch folder"; exit 1; }

check() { # check NAME COMMAND...
    name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
last_line_is() { [ "$(tail -n 1 "$1")" = "$2" ] || { echo "    $1 ends with: $(tail -n 1 "$1")"; return 1; }; }
finish() {
    rm -rf "$T"
    tally
    exit $?
}

if [ ! -x "$R" ]; then
    bad "no test runner at $R (build first: make $BUILD/test_runner)"
    finish
fi

# an unknown suite: the known ones are listed, nothing runs, the exit status is not 0
$PRE "$R" runner nosuch > "$T/unknown.out" 2> "$T/unknown.err"
rc=$?
check "an unknown suite name exits non-zero (got $rc)" test "$rc" -ne 0
check "an unknown suite name lists the suites" grep -q "nosuch.*core.*reliability" "$T/unknown.err"
check "an unknown suite name runs nothing" test ! -s "$T/unknown.out"

# several names: each runs
DN_REQUIRE= $PRE "$R" runner selftest > "$T/two.out" 2>&1
rc=$?
check "two suites run (exit $rc)" last_line_is "$T/two.out" "1 passed, 0 failed, 1 skipped"

# a skip is printed with its reason and counted, not passed
DN_REQUIRE= $PRE "$R" selftest > "$T/skip.out" 2>&1
rc=$?
check "a skip exits 0 (got $rc)" test "$rc" -eq 0
check "a skip prints its reason" grep -qx "skip selftest_skips: this test always skips" "$T/skip.out"
check "a skip counts as skipped" last_line_is "$T/skip.out" "0 passed, 0 failed, 1 skipped"

# a required skip fails
DN_REQUIRE=mnist,selftest $PRE "$R" selftest > "$T/req.out" 2>&1
rc=$?
check "a required skip exits 1 (got $rc)" test "$rc" -eq 1
check "a required skip names the requirement" grep -q "DN_REQUIRE lists 'selftest'" "$T/req.out"
check "a required skip counts as failed" last_line_is "$T/req.out" "0 passed, 1 failed, 0 skipped"

# missing MNIST: the C tests that need it skip, naming the file, and fail when mnist is required
mkdir -p "$T/nodata"
DN_REQUIRE= DN_DATA="$T/nodata" $PRE "$R" data_io > "$T/mnist.out" 2>&1
rc=$?
check "data_io without MNIST exits 0 (got $rc)" test "$rc" -eq 0
check "data_io without MNIST skips test_idx_mnist with the path" \
    grep -q "^skip test_idx_mnist: $T/nodata/mnist/train-images-idx3-ubyte not found" "$T/mnist.out"
DN_REQUIRE=mnist DN_DATA="$T/nodata" $PRE "$R" data_io > "$T/mnist_req.out" 2>&1
rc=$?
check "data_io without MNIST but DN_REQUIRE=mnist exits 1 (got $rc)" test "$rc" -eq 1

# the shell tests honour DN_REQUIRE too
DN_REQUIRE= DN_DATA="$T/nodata" sh tests/test_report.sh "$BUILD" > "$T/report.out" 2>&1
rc=$?
check "the report test without MNIST skips (exit $rc)" last_line_is "$T/report.out" "0 passed, 0 failed, 1 skipped"
DN_REQUIRE=chromium,mnist DN_DATA="$T/nodata" sh tests/test_report.sh "$BUILD" > "$T/report_req.out" 2>&1
rc=$?
check "the report test without MNIST but DN_REQUIRE=mnist fails (exit $rc)" test "$rc" -ne 0

finish
