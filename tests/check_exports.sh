#!/bin/sh
# The shared library exports the public API (include/dendrite.h, every name dn_...) and nothing else: internal
# helpers, kernels and op tables stay hidden (-fvisibility=hidden), so they can change without breaking programs
# linked against libdendrite.so.  Usage: tests/check_exports.sh BUILD_DIR
set -u
so=${1:-build}/libdendrite.so
[ -f "$so" ] || { echo "check_exports: $so is missing"; exit 1; }
syms=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v -e '^_init$' -e '^_fini$' -e '^_edata$' -e '^_end$' -e '^__bss_start$')
bad=$(printf '%s\n' "$syms" | grep -v '^dn_' || true)
# every exported name is declared in the public header
undeclared=$(printf '%s\n' "$syms" | grep '^dn_' | while read -r s; do grep -q "\\b$s\\b" include/dendrite.h || echo "$s"; done)
# and the API is really there (a handful of names a program cannot do without)
missing=""
for s in dn_tensor_new dn_backward dn_model_forward dn_set_isa dn_last_error; do
    printf '%s\n' "$syms" | grep -qx "$s" || missing="$missing $s"
done
n=$(printf '%s\n' "$syms" | grep -c '^dn_')
if [ -n "$bad" ] || [ -n "$undeclared" ] || [ -n "$missing" ]; then
    [ -n "$bad" ] && printf 'exported but not dn_:\n%s\n' "$bad"
    [ -n "$undeclared" ] && printf 'exported but not in include/dendrite.h:\n%s\n' "$undeclared"
    [ -n "$missing" ] && echo "not exported:$missing"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "$n dn_ symbols exported, all declared in include/dendrite.h"
echo "1 passed, 0 failed"
