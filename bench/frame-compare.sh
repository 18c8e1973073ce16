#!/bin/sh
# SPDX-License-Identifier: MIT
#
# frame-compare.sh BUILDDIR [--rounds R] [--duration D] [--workers W]
#                           [--cells "CxSxW ..."] [--threads T]
#
# The length-delimited echo servers of weft (BUILDDIR/examples/frame-echo:
# a fiber per connection, framed reader and writer) and Tokio + tokio-util
# (tokio-frame-echo-server, bench/tokio/src/frame_echo_server.rs: a task per
# connection, Framed<TcpStream, LengthDelimitedCodec>) under the same
# closed-loop load, BUILDDIR/bench/frame-bench with T threads (default 2),
# for each cell of C connections x S-byte frames x W frames outstanding per
# connection (default: 50x64x1 50x4096x1 50x64x16). Both servers get
# --workers W (default 2). Within a cell the two run alternately, weft,
# Tokio, weft, Tokio..., R rounds each (default 5) of D seconds (default 3;
# decimals allowed), each run against a freshly started server, so that a
# slow patch of a shared machine hits both. Then a markdown table on
# stdout: per cell, the median over the rounds of frames/s of each, the
# ratio weft/Tokio (> 1: weft is faster) and the median p99 latency of
# each; and one line per cell for scripts:
#
#   frame-compare: conns=<C> size=<S> window=<W> workers=<W>
#                  weft_msgs_per_sec=<f> tokio_msgs_per_sec=<f> ratio=<f>
#                  weft_p99_us=<f> tokio_p99_us=<f>
#
# (on one line). Environment, when the option is not given: FRAME_ROUNDS,
# FRAME_DURATION, FRAME_WORKERS, FRAME_CELLS, FRAME_THREADS.
#
# tokio-frame-echo-server is built by bench/tokio/build.sh (the package of
# bench/tokio/frames/Cargo.toml, in BUILDDIR/bench/tokio-build); if cargo or
# the crates (librust-tokio-util-dev) are missing or the build fails, weft
# runs alone and the Tokio columns say "-". Exit status: 1 if a weft run
# failed (the server did not start or exited non-zero, or frame-bench
# reported errors), else 0; a failed Tokio run only drops the Tokio side.

set -u

usage() {
	echo "usage: $0 BUILDDIR [--rounds R] [--duration D] [--workers W]" \
	     "[--cells \"CxSxW ...\"] [--threads T]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
srcdir=$(cd "$(dirname "$0")/.." && pwd) || exit 1
cmp_name=frame-compare
. "$srcdir/bench/compare-lib.sh"
builddir=$1
shift
rounds=${FRAME_ROUNDS:-5}
duration=${FRAME_DURATION:-3}
workers=${FRAME_WORKERS:-2}
cells=${FRAME_CELLS:-"50x64x1 50x4096x1 50x64x16"}
threads=${FRAME_THREADS:-2}
cmp_parse_opts "rounds duration workers cells threads" "$@"
cmp_check_counts "$rounds" "$workers" "$threads"
cmp_check_secs "$duration"
cmp_check_cells 3 CONNSxSIZExWINDOW "50x64x1 50x64x16"

weft_server=$builddir/examples/frame-echo
bench=$builddir/bench/frame-bench
for prog in "$weft_server" "$bench"; do
	if [ ! -x "$prog" ]; then
		echo "frame-compare: $prog: not built" >&2
		exit 1
	fi
done

cmp_raise_nofile
cmp_setup

# ---------------------------------------------------------- build Tokio
. "$srcdir/bench/tokio/build.sh"
tokio_build "$builddir" "$srcdir" frame-compare frames
tokio_bin=
[ -z "$tokio_skip" ] &&
	tokio_bin=$tokio_dir/target/release/tokio-frame-echo-server

# ------------------------------------------------------------------ runs
weft_failed=0
: >"$tmp/results"
echo "frame-compare: workers=$workers rounds=$rounds duration=${duration}s" \
     "client threads=$threads cells (conns x size x window): $cells"
[ -n "$tokio_skip" ] && echo "frame-compare: Tokio skipped: $tokio_skip"
for cell in $cells; do
	conns=${cell%%x*}
	window=${cell##*x}
	size=${cell#*x}
	size=${size%x*}
	r=1
	while [ "$r" -le "$rounds" ]; do
		for cur in weft tokio; do
			bin=$weft_server
			[ "$cur" = tokio ] && bin=$tokio_bin
			[ -n "$bin" ] || continue
			ok=0
			: >"$tmp/bench.out"
			if cmp_start_server "$cur" "$bin" --port 0 \
			    --workers "$workers"; then
				ok=1
				cmp_run "$cur" "$tmp/bench.out" "$bench" \
					--port "$port" --duration "$duration" \
					--connections "$conns" --size "$size" \
					--window "$window" --threads "$threads" ||
					ok=0
				cmp_stop_server "$cur" || ok=0
			fi
			line=$tmp/bench.line
			grep '^frame:' "$tmp/bench.out" >"$line" 2>/dev/null
			[ -s "$line" ] || ok=0
			cmp_record "$ok" "$cell" "$r" "$line" msgs_per_sec \
				frames/s
		done
		r=$((r + 1))
	done
done

# ----------------------------------------------------------------- table
echo
cmp_title="frame-compare: weft vs Tokio + tokio-util length-delimited echo\
 servers, workers=$workers, median of $rounds rounds of $duration s\
 (weft/Tokio > 1: weft is faster)"
cmp_cells=$cells cmp_cell_sep=x cmp_cell_keys="conns size window" \
	cmp_cell_label="conns x bytes x window" cmp_style=markdown \
	cmp_rate_unit=frames/s cmp_rate_key=msgs_per_sec cmp_table
[ -n "$tokio_skip" ] && echo "frame-compare: Tokio skipped: $tokio_skip"
exit "$weft_failed"
