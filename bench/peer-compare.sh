#!/bin/sh
# SPDX-License-Identifier: MIT
#
# peer-compare.sh BUILDDIR [--rounds R] [--workers W] [--peers P]
#                          [--cells "MODE:SIZE:COUNT ..."]
#
# The peer benchmark of issue 10 on weft (BUILDDIR/bench/peer-bench, on
# include/weft/peer.h) and on Tokio + tokio-util (tokio-peer-bench,
# bench/tokio/src/peer_bench.rs: the same nodes, framing, handshake and
# messages built from tokio mpsc queues, FramedRead and FramedWrite). Both
# take the same command line, --mode pair|broadcast --size S --count M
# --workers W --peers P, and print the same line,
#
#   peer: mode=<m> size=<S> count=<M> secs=<f> msgs_per_sec=<f>
#         p50_us=<f> p99_us=<f> errors=<n>
#
# (one line; msgs_per_sec is deliveries, P per message in broadcast mode).
# Per cell (default: pair:64:5000000 pair:4096:500000
# broadcast:64:500000, that is mode, message size and messages sent), the
# two run alternately, weft, Tokio, weft, Tokio..., R rounds each (default
# 5), with --workers W (default 2) and --peers P (default 10; broadcast
# only). Then a markdown table on stdout: per cell the median over the
# rounds of deliveries/s of each, the ratio weft/Tokio (> 1: weft is
# faster) and the median p99 latency of each; and one line per cell for
# scripts:
#
#   peer-compare: mode=<m> size=<S> count=<M> workers=<W>
#                 weft_msgs_per_sec=<f> tokio_msgs_per_sec=<f> ratio=<f>
#                 weft_p99_us=<f> tokio_p99_us=<f>
#
# (on one line). Environment, when the option is not given: PEER_ROUNDS,
# PEER_WORKERS, PEER_PEERS, PEER_CELLS.
#
# tokio-peer-bench is built by bench/tokio/build.sh (the package of
# bench/tokio/frames/Cargo.toml, in BUILDDIR/bench/tokio-build); if cargo or
# the crates (librust-tokio-util-dev) are missing or the build fails, the
# Tokio columns say "-". While weft's bench/peer-bench is not built, the
# weft columns say "-" instead. Each run is stopped after 10 minutes.
# Exit status: 1 if a weft run failed (non-zero exit, errors, no line),
# else 0; a failed Tokio run only drops the Tokio side.

set -u

usage() {
	echo "usage: $0 BUILDDIR [--rounds R] [--workers W] [--peers P]" \
	     "[--cells \"MODE:SIZE:COUNT ...\"]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
srcdir=$(cd "$(dirname "$0")/.." && pwd) || exit 1
cmp_name=peer-compare
. "$srcdir/bench/compare-lib.sh"
builddir=$1
shift
rounds=${PEER_ROUNDS:-5}
workers=${PEER_WORKERS:-2}
peers=${PEER_PEERS:-10}
cells=${PEER_CELLS:-"pair:64:5000000 pair:4096:500000 broadcast:64:500000"}
cmp_parse_opts "rounds workers peers cells" "$@"
cmp_check_counts "$rounds" "$workers" "$peers"
for cell in $cells; do
	case $cell in
	pair:[0-9]*:[0-9]* | broadcast:[0-9]*:[0-9]*)
		case ${cell#*:} in *[!0-9:]* | *:*:*) cell= ;; esac ;;
	*) cell= ;;
	esac
	if [ -z "$cell" ]; then
		echo "peer-compare: --cells wants MODE:SIZE:COUNT words" \
		     "(MODE pair or broadcast), e.g. \"pair:64:100000\"" >&2
		exit 2
	fi
done

if [ ! -d "$builddir" ]; then
	echo "peer-compare: $builddir: not a build directory" >&2
	exit 1
fi
cmp_setup
weft_bench=$builddir/bench/peer-bench
weft_skip=
[ -x "$weft_bench" ] ||
	weft_skip="$weft_bench not built (weft's peer layer, issue 10)"
limit=
command -v timeout >/dev/null 2>&1 && limit="timeout 600"

# ---------------------------------------------------------- build Tokio
. "$srcdir/bench/tokio/build.sh"
tokio_build "$builddir" "$srcdir" peer-compare frames
tokio_bin=
[ -z "$tokio_skip" ] &&
	tokio_bin=$tokio_dir/target/release/tokio-peer-bench

# ------------------------------------------------------------------ runs
weft_failed=0
: >"$tmp/results"
echo "peer-compare: workers=$workers rounds=$rounds broadcast peers=$peers" \
     "cells (mode:size:count): $cells"
[ -n "$weft_skip" ] && echo "peer-compare: weft skipped: $weft_skip"
[ -n "$tokio_skip" ] && echo "peer-compare: Tokio skipped: $tokio_skip"
for cell in $cells; do
	mode=${cell%%:*}
	count=${cell##*:}
	size=${cell#*:}
	size=${size%:*}
	r=1
	while [ "$r" -le "$rounds" ]; do
		for cur in weft tokio; do
			bin=$weft_bench
			[ -n "$weft_skip" ] && bin=
			[ "$cur" = tokio ] && bin=$tokio_bin
			[ -n "$bin" ] || continue
			line=$tmp/bench.line
			# shellcheck disable=SC2086 # $limit: words on purpose
			cmp_run "$cur" "$tmp/bench.out" $limit "$bin" \
				--mode "$mode" --size "$size" --count "$count" \
				--workers "$workers" --peers "$peers"
			ok=$((! $?))
			grep '^peer:' "$tmp/bench.out" >"$line" 2>/dev/null
			[ -s "$line" ] || ok=0
			cmp_record "$ok" "$cell" "$r" "$line" msgs_per_sec \
				msgs/s
		done
		r=$((r + 1))
	done
done

# ----------------------------------------------------------------- table
echo
cmp_title="peer-compare: weft vs Tokio + tokio-util peers, workers=$workers,\
 broadcast to $peers peers, median of $rounds rounds (weft/Tokio > 1: weft\
 is faster)"
cmp_cells=$cells cmp_cell_sep=: cmp_cell_keys="mode size count" \
	cmp_cell_label="mode x bytes x messages" cmp_style=markdown \
	cmp_rate_unit=msgs/s cmp_rate_key=msgs_per_sec cmp_table
[ -n "$weft_skip" ] && echo "peer-compare: weft skipped: $weft_skip"
[ -n "$tokio_skip" ] && echo "peer-compare: Tokio skipped: $tokio_skip"
exit "$weft_failed"
