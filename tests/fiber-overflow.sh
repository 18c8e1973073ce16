#!/bin/bash
# SPDX-License-Identifier: MIT
#
# fiber-overflow.sh: a fiber that recurses off the bottom of its stack
# (tests/fiber_overflow) hits the guard page: weft writes "weft: fiber
# 'deep-recursion' overflowed its stack of N bytes" on stderr and the
# process dies by SIGSEGV (status 139), never running on into other memory.
# Under ASan or TSan, weft's handler passes the signal on to the
# sanitizer's, which reports it (stack-overflow) and exits by itself: then
# that report is accepted in place of the status. Run by `make check` from the build
# directory. Exits 0 pass, 1 fail.

[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

prog=./tests/fiber_overflow
err=$(mktemp)
trap 'rm -f "$err"' EXIT

fail() {
	echo "fiber-overflow: FAIL: $*"
	cat "$err"
	exit 1
}

san=$("$prog" --sanitizer) || fail "$prog --sanitizer"
ulimit -c 0
timeout 60 "$prog" 2>"$err"
st=$?
[ $st -eq 124 ] && fail "hung"
grep -q "weft: fiber 'deep-recursion' overflowed its stack of [0-9]* bytes" \
	"$err" || fail "no overflow report (status $st)"
if [ "$san" != none ]; then
	grep -q "Sanitizer" "$err" || fail "no $san report (status $st)"
	[ $st -ne 0 ] || fail "exit status 0"
else
	[ $st -eq 139 ] || fail "exit status $st, want 139 (SIGSEGV)"
fi
echo "fiber-overflow: $(grep -m1 overflowed "$err") (status $st)"
exit 0
