#!/bin/sh
# SPDX-License-Identifier: MIT
#
# fiber-switch-aarch64.sh: tests/fiber_switch.c built for AArch64 with
# src/fiber/switch_aarch64.S and run under qemu-user, so the AArch64
# context switch is tested on an x86-64 machine too. Needs Debian's
# gcc-aarch64-linux-gnu and qemu-user; skips (77) without them.
srcdir=${srcdir:-.}
cc=aarch64-linux-gnu-gcc
command -v "$cc" >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1 ||
	{ echo "fiber-switch-aarch64: no $cc or qemu-aarch64: skipped"; exit 77; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$cc" -O2 -static -o "$out" "$srcdir/tests/fiber_switch.c" \
	"$srcdir/src/fiber/switch_aarch64.S" || exit 1
qemu-aarch64 "$out"
