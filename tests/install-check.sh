#!/bin/sh
# SPDX-License-Identifier: MIT
#
# install-check.sh SRCDIR DESTDIR LIBDIR CC
#
# Build SRCDIR/examples/hello.c against an installed weft using nothing but
# `pkg-config --cflags --libs weft`, run it, and check what it prints. The
# caller sets PKG_CONFIG_PATH to the installed weft.pc. When DESTDIR is set
# (a staged install), the .pc file's paths lack it, so DESTDIR becomes the
# pkg-config sysroot, which pkg-config prepends to the -I and -L paths.
# Exits 0 on success, 1 on failure.

set -u

if [ $# -ne 4 ]; then
	echo "usage: $0 SRCDIR DESTDIR LIBDIR CC" >&2
	exit 1
fi
srcdir=$1
destdir=$2
libdir=$3
cc=$4

fail() {
	echo "install-check: FAIL: $*" >&2
	exit 1
}

if [ -n "$destdir" ]; then
	PKG_CONFIG_SYSROOT_DIR=$destdir
	export PKG_CONFIG_SYSROOT_DIR
	echo "install-check: PKG_CONFIG_SYSROOT_DIR=$destdir"
fi
echo "install-check: PKG_CONFIG_PATH=${PKG_CONFIG_PATH:-}"

flags=$(pkg-config --cflags --libs weft) ||
	fail "pkg-config cannot find weft"
echo "install-check: pkg-config --cflags --libs weft: $flags"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-install-check.XXXXXX") ||
	fail "mktemp"
trap 'rm -rf "$tmp"' EXIT

echo "install-check: $cc $srcdir/examples/hello.c $flags -o $tmp/hello"
# $cc and $flags are word-split on purpose: CC may carry options.
# shellcheck disable=SC2086
$cc "$srcdir/examples/hello.c" $flags -o "$tmp/hello" ||
	fail "cannot build hello.c against the installed weft"

LD_LIBRARY_PATH=$destdir$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
echo "install-check: LD_LIBRARY_PATH=$LD_LIBRARY_PATH $tmp/hello"
out=$("$tmp/hello") || fail "hello exited with status $?: $out"
echo "install-check: hello said: $out"
case $out in
*"hello from weft: 42"*) ;;
*) fail "expected 'hello from weft: 42'" ;;
esac
echo "install-check: PASS"
