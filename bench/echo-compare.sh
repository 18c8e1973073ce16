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
builddir=$1
shift
rounds=${ECHO_ROUNDS:-3}
duration=${ECHO_DURATION:-5}
workers=${ECHO_WORKERS:-2}
cells=${ECHO_CELLS:-"50x64 50x4096 1000x64 1000x4096"}
threads=${ECHO_THREADS:-2}
syscalls=${ECHO_SYSCALLS:-0}
while [ $# -gt 0 ]; do
	case $1 in
	--rounds=*) rounds=${1#*=} ;;
	--duration=*) duration=${1#*=} ;;
	--workers=*) workers=${1#*=} ;;
	--cells=*) cells=${1#*=} ;;
	--threads=*) threads=${1#*=} ;;
	--syscalls) syscalls=1 ;;
	--rounds | --duration | --workers | --cells | --threads)
		[ $# -ge 2 ] || usage
		case $1 in
		--rounds) rounds=$2 ;;
		--duration) duration=$2 ;;
		--workers) workers=$2 ;;
		--cells) cells=$2 ;;
		--threads) threads=$2 ;;
		esac
		shift
		;;
	*) usage ;;
	esac
	shift
done
for n in "$rounds" "$workers" "$threads"; do
	case $n in
	'' | *[!0-9]* | 0)
		echo "echo-compare: --rounds/--workers/--threads want a" \
		     "positive number" >&2
		exit 2
		;;
	esac
done
case $duration in
'' | *[!0-9.]* | .*) echo "echo-compare: --duration wants seconds" >&2; exit 2 ;;
esac
for cell in $cells; do
	case $cell in
	*[!0-9x]* | x* | *x | *x*x*) cell= ;;
	*x*) ;;
	*) cell= ;;
	esac
	if [ -z "$cell" ]; then
		echo "echo-compare: --cells wants CONNSxSIZE words, e.g." \
		     "\"50x64 1000x4096\"" >&2
		exit 2
	fi
done
case $syscalls in 0 | '') syscalls=0 ;; *) syscalls=1 ;; esac

srcdir=$(cd "$(dirname "$0")/.." && pwd) || exit 1
weft_server=$builddir/examples/echo-server
weft_args=${ECHO_WEFT_ARGS---streams}
client=$builddir/bench/echo-client
startup_timeout=10 # seconds to wait for the "listening on" line
for prog in "$weft_server" "$client"; do
	if [ ! -x "$prog" ]; then
		echo "echo-compare: $prog: not built" >&2
		exit 1
	fi
done

# 1,000 connections: ~1,000 fds in each of client and server.
hard=$(ulimit -H -n)
[ "$hard" = unlimited ] && hard=1048576
ulimit -S -n "$hard" 2>/dev/null || ulimit -S -n 4096 2>/dev/null

tmp=$(mktemp -d "${TMPDIR:-/tmp}/echo-compare.XXXXXX") || exit 1
server_pid=
perf_pid=
cleanup() {
	for p in $perf_pid $server_pid; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	server_pid=
	perf_pid=
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# ---------------------------------------------------------- build Tokio
. "$srcdir/bench/tokio/build.sh"
tokio_build "$builddir" "$srcdir" echo-compare
tokio_skip=${tokio_skip:-}
tokio_server=
[ -z "$tokio_skip" ] &&
	tokio_server=$tokio_dir/target/release/tokio-echo-server

# ------------------------------------------------------------------ runs
# start_server NAME BINARY: start it on a kernel-picked port; sets
# server_pid and port. Returns 1 (after saying why) if it does not listen
# within startup_timeout.
start_server() {
	# Emptied here, not by the redirection below: that one happens in
	# the background child, maybe after the first grep has read the
	# previous server's line.
	: >"$tmp/server.out"
	extra=
	[ "$1" = weft ] && extra=$weft_args
	# shellcheck disable=SC2086 # $extra: words on purpose
	"$2" --port 0 --workers "$workers" $extra >"$tmp/server.out" \
		2>"$tmp/server.err" &
	server_pid=$!
	port=
	tries=$((startup_timeout * 10))
	while [ "$tries" -gt 0 ]; do
		line=$(grep -m 1 'listening on' "$tmp/server.out" 2>/dev/null)
		if [ -n "$line" ]; then
			port=${line##*:}
			return 0
		fi
		if ! kill -0 "$server_pid" 2>/dev/null; then
			wait "$server_pid"
			echo "echo-compare: $1 server exited with status $?" \
			     "before listening" >&2
			server_pid=
			sed 's/^/echo-compare:   /' "$tmp/server.err" >&2
			return 1
		fi
		sleep 0.1
		tries=$((tries - 1))
	done
	echo "echo-compare: no 'listening on' line from the $1 server" \
	     "within ${startup_timeout}s" >&2
	stop_server
	return 1
}

# server_bin: sets bin to $cur's server; returns 1 when there is none
# (Tokio skipped).
server_bin() {
	if [ "$cur" = weft ]; then
		bin=$weft_server
	else
		bin=$tokio_server
	fi
	[ -n "$bin" ]
}

# stop_server: SIGTERM (both servers exit 0 on it); returns the server's
# status.
stop_server() {
	[ -n "$server_pid" ] || return 0
	kill -TERM "$server_pid" 2>/dev/null
	wait "$server_pid"
	rc=$?
	server_pid=
	if [ "$rc" -ne 0 ]; then
		echo "echo-compare: $cur server exited with status $rc" >&2
		sed 's/^/echo-compare:   /' "$tmp/server.err" >&2
	fi
	return "$rc"
}

# run_client CONNS SIZE: one timed run against $port; the client's
# "echo:" line goes to $tmp/client.line. Returns the client's status.
run_client() {
	"$client" --port "$port" --duration "$duration" --connections "$1" \
		--size "$2" --threads "$threads" >"$tmp/client.out" \
		2>"$tmp/client.err"
	crc=$?
	grep '^echo:' "$tmp/client.out" >"$tmp/client.line"
	if [ "$crc" -ne 0 ] || [ ! -s "$tmp/client.line" ]; then
		echo "echo-compare: echo-client against $cur failed" \
		     "(status $crc)" >&2
		sed 's/^/echo-compare:   /' "$tmp/client.err" | head -n 12 >&2
		[ "$crc" -ne 0 ] || crc=1
	fi
	return "$crc"
}

# field KEY: a key=value field of the client's line
field() {
	sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" "$tmp/client.line"
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
				stop_server || ok=0
			fi
			if [ "$ok" -eq 1 ]; then
				rate=$(field rtt_per_sec)
				p99=$(field p99_us)
				echo "echo-compare: ${conns}x$size round $r" \
				     "$cur: $rate rt/s, p99 $p99 us"
				echo "$cur $cell $rate $p99" >>"$tmp/results"
			elif [ "$cur" = weft ]; then
				weft_failed=1
			else
				tokio_skip="a tokio-echo-server run failed"
				tokio_server=
			fi
		done
		r=$((r + 1))
	done
done

# ----------------------------------------------------------------- table
echo
awk -v workers="$workers" -v rounds="$rounds" -v secs="$duration" \
    -v cells="$cells" '
function median(key,   n, i, j, t, a) {
	n = cnt[key]
	if (n == 0)
		return ""
	for (i = 1; i <= n; i++)
		a[i] = val[key, i]
	for (i = 2; i <= n; i++)	# insertion sort: a few values
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function fmt(v, f) { return v == "" ? "-" : sprintf(f, v) }
{
	k = $1 SUBSEP $2 SUBSEP "rate"
	val[k, ++cnt[k]] = $3 + 0
	k = $1 SUBSEP $2 SUBSEP "p99"
	val[k, ++cnt[k]] = $4 + 0
}
END {
	printf "echo-compare: weft vs Tokio echo servers, workers=%s, median " \
	       "of %s rounds of %s s (weft/tokio > 1: weft is faster)\n",
	       workers, rounds, secs
	printf "%-10s %12s %12s %11s %12s %12s\n", "conns x B", "weft rt/s",
	       "tokio rt/s", "weft/tokio", "weft p99 us", "tokio p99 us"
	n = split(cells, cl, " ")
	for (i = 1; i <= n; i++) {
		c = cl[i]
		wr[c] = median("weft" SUBSEP c SUBSEP "rate")
		tr[c] = median("tokio" SUBSEP c SUBSEP "rate")
		wp[c] = median("weft" SUBSEP c SUBSEP "p99")
		tp[c] = median("tokio" SUBSEP c SUBSEP "p99")
		ra[c] = (wr[c] != "" && tr[c] > 0) ? \
			sprintf("%.2f", wr[c] / tr[c]) : "-"
		printf "%-10s %12s %12s %11s %12s %12s\n", c,
		       fmt(wr[c], "%.0f"), fmt(tr[c], "%.0f"), ra[c],
		       fmt(wp[c], "%.1f"), fmt(tp[c], "%.1f")
	}
	print ""
	for (i = 1; i <= n; i++) {
		c = cl[i]
		split(c, cs, "x")
		printf "echo-compare: conns=%s size=%s workers=%s " \
		       "weft_rtt_per_sec=%s tokio_rtt_per_sec=%s ratio=%s " \
		       "weft_p99_us=%s tokio_p99_us=%s\n", cs[1], cs[2],
		       workers, fmt(wr[c], "%.1f"), fmt(tr[c], "%.1f"), ra[c],
		       fmt(wp[c], "%.1f"), fmt(tp[c], "%.1f")
	}
}' "$tmp/results"
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
			stop_server
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
