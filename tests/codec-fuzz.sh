#!/bin/sh
# SPDX-License-Identifier: MIT
#
# codec-fuzz.sh: tests/fuzz/codec_fuzz.c, the libFuzzer target of the frame
# decoder, built with clang -fsanitize=fuzzer,address,undefined from
# src/codec/codec.c (which needs nothing but libc) and run for
# CODEC_FUZZ_SECONDS (default 20) from the seed corpus
# tests/fuzz/corpus/codec. New inputs go to a temporary directory, or to
# CODEC_FUZZ_CORPUS when set (make fuzz-long keeps them there between
# runs); a crashing input is kept as tests/codec-fuzz-crash-* in the build
# directory. Skips (77) without clang and libFuzzer (Debian: clang,
# libclang-rt-dev), or when CODEC_FUZZ_SECONDS is 0.
srcdir=${srcdir:-.}
secs=${CODEC_FUZZ_SECONDS:-20}
cc=${FUZZ_CC:-clang}
[ "$secs" != 0 ] || { echo "codec-fuzz: CODEC_FUZZ_SECONDS=0: skipped"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)
{ (void)d; (void)n; return 0; }' >"$tmp/probe.c"
command -v "$cc" >/dev/null 2>&1 &&
	"$cc" -fsanitize=fuzzer -o "$tmp/probe" "$tmp/probe.c" >/dev/null 2>&1 ||
	{ echo "codec-fuzz: $cc -fsanitize=fuzzer does not link (apt-get install clang libclang-rt-dev): skipped"; exit 77; }
"$cc" -g -O1 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-I"$srcdir/include" -o "$tmp/codec_fuzz" \
	"$srcdir/tests/fuzz/codec_fuzz.c" "$srcdir/src/codec/codec.c" || exit 1
corpus=${CODEC_FUZZ_CORPUS:-$tmp/corpus}
mkdir -p "$corpus" tests || exit 1
# -max_len: the seeds are small; 4 KiB frames still cover every path.
# libFuzzer's own failure status is 77, automake's SKIP: make it 1.
ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16} \
"$tmp/codec_fuzz" -max_total_time="$secs" -max_len=4096 -timeout=10 \
	-rss_limit_mb=1024 -print_final_stats=1 \
	-error_exitcode=1 -timeout_exitcode=1 \
	-artifact_prefix=tests/codec-fuzz- \
	"$corpus" "$srcdir/tests/fuzz/corpus/codec"
