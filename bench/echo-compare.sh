#!/bin/sh
# SPDX-License-Identifier: MIT
#
# echo-compare.sh BUILDDIR [--rounds R] [--duration D] [--workers W]
#                          [--cells "CxS ..."] [--threads T] [--syscalls]
#
# The echo servers of weft (BUILDDIR/examples/echo-server) and Tokio
# (tokio-echo-server, bench/tokio/src/echo_server.rs) under the same
# closed-loop load, BUILDDIR/bench/echo-client with T threads (default 2),
# for each cell of C connections x S-byte messages (default: 50 and 1000
# connections x 64 and 4096 bytes). Both servers get --workers W (default
# 2). Within a cell the two run alternately, weft, Tokio, weft, Tokio...,
# R rounds each (default 3) of D seconds (default 5; decimals allowed), each
# run against a freshly started server, so that a slow patch of a shared
# machine hits both. Then one table: per cell, the median over the rounds of
# round trips/s of each, the ratio weft/Tokio (> 1: weft is faster) and the
# median p99 latency of each; and one line per cell for scripts:
#
#   echo-compare: conns=<C> size=<S> workers=<W> weft_rtt_per_sec=<f>
#                 tokio_rtt_per_sec=<f> ratio=<f> weft_p99_us=<f>
#                 tokio_p99_us=<f>
#
# (on one line). With --syscalls (or ECHO_SYSCALLS=1), a separate, untimed
# pass afterwards: per cell and server one more D-second run with
# `perf stat` attached to the server, counting raw_syscalls:sys_enter and the
# syscalls an echo server might make (io_uring_enter, futex, epoll_wait,
# read/write, recvfrom/sendto, ...), divided by the round trips the client
# completed; the connect phase (accept, setsockopt) is counted too, a few
# per connection. One line each:
#
#   echo-syscalls: conns=<C> size=<S> server=<weft|tokio> rtts=<n>
#                  syscalls=<n> per_rtt=<f> top=<name>:<per rtt>,...
#
# If perf is missing or cannot count (perf_event_paranoid, no tracefs), that
# pass says so and is skipped.
#
# Environment, when the option is not given: ECHO_ROUNDS, ECHO_DURATION,
# ECHO_WORKERS, ECHO_CELLS, ECHO_THREADS, ECHO_SYSCALLS; and ECHO_WEFT_ARGS,
# options for weft's echo-server (default --streams: an accept stream and
# multishot recv into provided buffers; "" for a recv op per message).
#
# The soft limit on open files is raised to the hard limit (1,000
# connections on loopback take ~1,000 fds in the client and as many in the
# server). tokio-echo-server is built as bench/compare.sh builds
# tokio-bench (bench/tokio/build.sh, in BUILDDIR/bench/tokio-build); if
# cargo or the crates are missing or the build fails, weft runs alone and
# the Tokio columns say "-". Exit status: 1 if a weft run failed (the server
# did not start or exited non-zero, or the client reported errors), else 0;
# a failed Tokio run only drops the Tokio side.

set -u

usage() {
	echo "usage: $0 BUILDDIR [--rounds R] [--duration D] [--workers W]" \
	     "[--cells \"CxS ...\"] [--threads T] [--syscalls]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
srcdir=$(cd "$(dirname "$0")/.." && pwd) || exit 1
cmp_name=echo-compare
. "$srcdir/bench/compare-lib.sh"
builddir=$1
shift
rounds=${ECHO_ROUNDS:-3}
duration=${ECHO_DURATION:-5}
workers=${ECHO_WORKERS:-2}
cells=${ECHO_CELLS:-"50x64 50x4096 1000x64 1000x4096"}
threads=${ECHO_THREADS:-2}
syscalls=${ECHO_SYSCALLS:-0}
cmp_parse_opts "rounds duration workers cells threads syscalls!" "$@"
cmp_check_counts "$rounds" "$workers" "$threads"
cmp_check_secs "$duration"
cmp_check_cells 2 CONNSxSIZE "50x64 1000x4096"
case $syscalls in 0 | '') syscalls=0 ;; *) syscalls=1 ;; esac

weft_server=$builddir/examples/echo-server
weft_args=${ECHO_WEFT_ARGS---streams}
client=$builddir/bench/echo-client
for prog in "$weft_server" "$client"; do
	if [ ! -x "$prog" ]; then
		echo "echo-compare: $prog: not built" >&2
		exit 1
	fi
done

cmp_raise_nofile
cmp_setup

# ---------------------------------------------------------- build Tokio
. "$srcdir/bench/tokio/build.sh"
tokio_build "$builddir" "$srcdir" echo-compare
tokio_skip=${tokio_skip:-}
tokio_bin=
[ -z "$tokio_skip" ] &&
	tokio_bin=$tokio_dir/target/release/tokio-echo-server

# ------------------------------------------------------------------ runs
# start_server NAME BINARY: start it on a kernel-picked port; sets
# server_pid and port. Returns 1 (after saying why) if it does not listen.
start_server() {
	extra=
	[ "$1" = weft ] && extra=$weft_args
	# shellcheck disable=SC2086 # $extra: words on purpose
	cmp_start_server "$1" "$2" --port 0 --workers "$workers" $extra
}

# server_bin: sets bin to $cur's server; returns 1 when there is none
# (Tokio skipped).
server_bin() {
	if [ "$cur" = weft ]; then
		bin=$weft_server
	else
		bin=$tokio_bin
	fi
	[ -n "$bin" ]
}

# run_client CONNS SIZE: one timed run against $port; the client's
# "echo:" line goes to $tmp/client.line. Returns the client's status.
run_client() {
	cmp_run "$cur" "$tmp/client.out" "$client" --port "$port" \
		--duration "$duration" --connections "$1" --size "$2" \
		--threads "$threads"
	crc=$?
	grep '^echo:' "$tmp/client.out" >"$tmp/client.line"
	if [ "$crc" -eq 0 ] && [ ! -s "$tmp/client.line" ]; then
		echo "echo-compare: no echo: line from echo-client" >&2
		crc=1
	fi
	return "$crc"
}

weft_failed=0
: >"$tmp/results"
echo "echo-compare: workers=$workers rounds=$rounds duration=${duration}s" \
     "client threads=$threads cells: $cells"
[ -n "$tokio_skip" ] && echo "echo-compare: Tokio skipped: $tokio_skip"
for cell in $cells; do
	conns=${cell%x*}
	size=${cell#*x}
	r=1
	while [ "$r" -le "$rounds" ]; do
		for cur in weft tokio; do
			server_bin || continue
			ok=1
			start_server "$cur" "$bin" || ok=0
			if [ "$ok" -eq 1 ]; then
				run_client "$conns" "$size" || ok=0
				cmp_stop_server "$cur" || ok=0
			fi
			cmp_record "$ok" "$cell" "$r" "$tmp/client.line" \
				rtt_per_sec rt/s
		done
		r=$((r + 1))
	done
done

# ----------------------------------------------------------------- table
echo
cmp_title="echo-compare: weft vs Tokio echo servers, workers=$workers,\
 median of $rounds rounds of $duration s (weft/tokio > 1: weft is faster)"
cmp_cells=$cells cmp_cell_sep=x cmp_cell_keys="conns size" \
	cmp_cell_label="conns x B" cmp_style=plain cmp_rate_unit=rt/s \
	cmp_rate_key=rtt_per_sec cmp_table
[ -n "$tokio_skip" ] && echo "echo-compare: Tokio skipped: $tokio_skip"

# -------------------------------------------------------------- syscalls
# The syscalls counted one by one; the rest are "other".
sc_names="io_uring_enter futex epoll_wait epoll_pwait epoll_ctl read write
readv writev recvfrom sendto recvmsg sendmsg accept4 setsockopt close
sched_yield madvise mmap munmap"

syscall_pass() {
	if ! command -v perf >/dev/null 2>&1; then
		echo "echo-syscalls: skipped: perf not found (apt-get install" \
		     "linux-perf)"
		return
	fi
	events=raw_syscalls:sys_enter
	for s in $sc_names; do
		events=$events,syscalls:sys_enter_$s
	done
	if ! perf stat -x, -e "$events" -- true >/dev/null 2>"$tmp/perf.err"
	then
		echo "echo-syscalls: skipped: perf cannot count syscalls here:"
		sed 's/^/echo-syscalls:   /' "$tmp/perf.err" | head -n 5
		return
	fi
	echo
	echo "echo-syscalls: one untimed run of ${duration}s per cell and" \
	     "server, perf stat on the server (connect phase included)"
	for cell in $cells; do
		conns=${cell%x*}
		size=${cell#*x}
		for cur in weft tokio; do
			server_bin || continue
			start_server "$cur" "$bin" || continue
			perf stat -x, -e "$events" -p "$server_pid" \
				-o "$tmp/perf.csv" &
			perf_pid=$!
			sleep 0.5 # let perf attach
			run_client "$conns" "$size"
			crc=$?
			kill -INT "$perf_pid" 2>/dev/null
			wait "$perf_pid"
			perf_pid=
			cmp_stop_server "$cur"
			[ "$crc" -eq 0 ] || continue
			rtts=$(sed -n 's/^ *round trips  *\([0-9]*\)$/\1/p' \
				"$tmp/client.out")
			awk -F, -v cell="$cell" -v cur="$cur" -v rtts="$rtts" '
			/^#/ || NF < 3 { next }
			{
				ev = $3
				sub(/^(raw_)?syscalls:sys_enter_?/, "", ev)
				if (ev == "")
					total = $1 + 0
				else if ($1 ~ /^[0-9]+$/ && $1 > 0) {
					cnt[ev] = $1 + 0
					named += $1
				}
			}
			END {
				if (rtts <= 0)
					exit
				cnt["other"] = total - named
				top = ""
				for (k = 0; k < 5; k++) {
					best = ""
					for (e in cnt)
						if (cnt[e] > 0 && (best == "" ||
						    cnt[e] > cnt[best]))
							best = e
					if (best == "" ||
					    cnt[best] / rtts < 0.0005)
						break
					top = top (top == "" ? "" : ",") \
					      sprintf("%s:%.3f", best,
						      cnt[best] / rtts)
					delete cnt[best]
				}
				split(cell, cs, "x")
				printf "echo-syscalls: conns=%s size=%s " \
				       "server=%s rtts=%d syscalls=%d " \
				       "per_rtt=%.3f top=%s\n", cs[1], cs[2],
				       cur, rtts, total, total / rtts, top
			}' "$tmp/perf.csv"
		done
	done
}
[ "$syscalls" -eq 1 ] && syscall_pass

exit "$weft_failed"
