# The shell test scripts' tally, sourced by each (. "$(dirname "$0")/tally.sh"): ok NAME and bad NAME count a check,
# skip REQUIREMENT "NAME: reason" skips one (a failure instead when DN_REQUIRE, comma-separated, lists REQUIREMENT),
# tally prints the suite's last line "N passed, N failed, N skipped" and is true when nothing failed.
passed=0
failed=0
skipped=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; }
skip() {
    case ",${DN_REQUIRE:-}," in
    *",$1,"*) bad "$2 (DN_REQUIRE lists $1)" ;;
    *) skipped=$((skipped + 1)); echo "skip $2" ;;
    esac
}
tally() {
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
}
