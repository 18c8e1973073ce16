#!/bin/sh
# SPDX-License-Identifier: MIT
#
# compare.sh BUILDDIR [--workers N] [--reps N] [--filter SUBSTR]
#
# Run BUILDDIR/bench/weft-bench, bench/tokio (tokio-bench: the same
# workloads on a Tokio runtime) and bench/go (go-bench: the fiber workloads
# with goroutines) with the same options and print them side by side.
# Against Tokio: median ns per op of each, the ratio tokio/weft (> 1: weft is
# faster), peak RSS and bytes per parked task; then the timer lateness
# workloads (wall time, mean, p99 and max lateness, and the p99 of the wait
# from spawn to first poll, where each sleep starts) and the memory per
# pending sleep. And one line per workload for scripts:
#
#   compare: <workload> workers=<n> weft_ns_per_op=<f> tokio_ns_per_op=<f> speedup=<f>
#   compare: <timers_*> workers=<n> weft_wall_ms=<f> tokio_wall_ms=<f>
#            weft_mean_us=<f> tokio_mean_us=<f> weft_p99_us=<f>
#            tokio_p99_us=<f> weft_max_us=<f> tokio_max_us=<f>
#            weft_start_p99_us=<f> tokio_start_p99_us=<f> ratio=<f>
#   compare: sleep_rss workers=<n> weft_bytes_per_sleep=<f>
#            tokio_bytes_per_sleep=<f> weft_peak_rss_kib=<n>
#            tokio_peak_rss_kib=<n> ratio=<f>
#
# (each on one line). ratio is tokio/weft of the p99 lateness and of the
# bytes per sleep: > 1, weft is better. Against Go, a second table of the
# fiber_* workloads, median ns per op of each and go/weft, and
#
#   compare: <fiber_*> workers=<n> weft_ns_per_op=<f> go_ns_per_op=<f> go_speedup=<f>
#
# tokio-bench is built offline with cargo against Debian's packaged crate
# sources (librust-tokio-dev), in BUILDDIR/bench/tokio-build (a copy of
# bench/tokio plus the target directory), so the source tree is never
# written to (bench/tokio/build.sh, shared with bench/echo-compare.sh). If
# cargo or the crates are missing, or the build or the run fails, the
# comparison is skipped with one "compare: skipped: ..." line and weft-bench
# still runs: the exit status is weft-bench's alone. go-bench is
# built the same way with Debian's golang-go (no dependencies; GOFLAGS=
# -mod=mod, GOPROXY=off, GOCACHE and GOPATH in BUILDDIR/bench/go-build),
# and skipped the same way, on its own, when go is missing or fails. --workers
# defaults to the online CPUs (weft-bench's default), passed to both.

set -u

usage() {
	echo "usage: $0 BUILDDIR [--workers N] [--reps N] [--filter SUBSTR]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
builddir=$1
shift
workers=
reps=10
filter=
while [ $# -gt 0 ]; do
	case $1 in
	--workers=*) workers=${1#*=} ;;
	--reps=*) reps=${1#*=} ;;
	--filter=*) filter=${1#*=} ;;
	--workers | --reps | --filter)
		[ $# -ge 2 ] || usage
		case $1 in
		--workers) workers=$2 ;;
		--reps) reps=$2 ;;
		--filter) filter=$2 ;;
		esac
		shift
		;;
	*) usage ;;
	esac
	shift
done
if [ -z "$workers" ]; then
	workers=$(getconf _NPROCESSORS_ONLN 2>/dev/null) || workers=
	case $workers in '' | *[!0-9]*) workers=1 ;; esac
	[ "$workers" -le 256 ] || workers=256
fi
for n in "$workers" "$reps"; do
	case $n in
	'' | *[!0-9]*) echo "compare: --workers/--reps want a number" >&2; exit 2 ;;
	esac
done

srcdir=$(cd "$(dirname "$0")/.." && pwd) || exit 1
go_src=$srcdir/bench/go
weft=$builddir/bench/weft-bench

if [ ! -x "$weft" ]; then
	echo "compare: $weft: not built" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/compare.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

set -- --workers "$workers" --reps "$reps"
[ -n "$filter" ] && set -- "$@" --filter "$filter"

# ------------------------------------------------------- build tokio-bench
. "$srcdir/bench/tokio/build.sh"
tokio_build "$builddir" "$srcdir" compare
skip=$tokio_skip
tokio_bin=${tokio_dir:+$tokio_dir/target/release/tokio-bench}

# ---------------------------------------------------------- build go-bench
go_skip=
go_bin=
build_go() {
	if ! command -v go >/dev/null 2>&1; then
		go_skip="go not found (apt-get install golang-go)"
		return
	fi
	if [ ! -f "$go_src/go.mod" ]; then
		go_skip="$go_src/go.mod missing"
		return
	fi
	# A copy as for tokio-bench: go may write go.sum beside go.mod.
	gdir=$builddir/bench/go-build
	mkdir -p "$gdir/src" || {
		go_skip="cannot create $gdir"
		return
	}
	gdir=$(cd "$gdir" && pwd)
	echo '*' >"$gdir/.gitignore"
	for f in go.mod main.go; do
		if ! cmp -s "$go_src/$f" "$gdir/src/$f"; then
			cp "$go_src/$f" "$gdir/src/$f" || {
				go_skip="cannot copy $f to $gdir"
				return
			}
		fi
	done

	echo "compare: building go-bench ($(go version 2>/dev/null))"
	# Offline: no proxy, no toolchain download (go >= 1.21), caches in
	# the build tree rather than $HOME.
	if ! (cd "$gdir/src" && unset MAKEFLAGS MFLAGS GOROOT &&
	      GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GO111MODULE=on \
	      GOCACHE=$gdir/cache GOPATH=$gdir/gopath \
	      go build -o "$gdir/go-bench" .) >"$gdir/build.log" 2>&1; then
		go_skip="go build of go-bench failed (log: $gdir/build.log)"
		tail -n 15 "$gdir/build.log" | sed 's/^/compare:   /' >&2
		return
	fi
	go_bin=$gdir/go-bench
}
build_go

# ------------------------------------------------------------------ run
"$weft" "$@" >"$tmp/weft.out"
weft_rc=$?
cat "$tmp/weft.out"
if [ "$weft_rc" -ne 0 ]; then
	echo "compare: weft-bench failed (status $weft_rc)" >&2
	exit "$weft_rc"
fi

# An output file stays empty when its side is skipped: the table leaves
# that side out.
: >"$tmp/tokio.out"
: >"$tmp/go.out"
if [ -z "$skip" ]; then
	echo
	"$tokio_bin" "$@" >"$tmp/tokio.out"
	rc=$?
	cat "$tmp/tokio.out"
	if [ "$rc" -ne 0 ]; then
		skip="tokio-bench failed (status $rc)"
		: >"$tmp/tokio.out"
	fi
fi
if [ -z "$go_skip" ]; then
	echo
	"$go_bin" "$@" >"$tmp/go.out"
	rc=$?
	cat "$tmp/go.out"
	if [ "$rc" -ne 0 ]; then
		go_skip="go-bench failed (status $rc)"
		: >"$tmp/go.out"
	fi
fi
if [ -n "$skip" ]; then
	echo
	echo "compare: skipped: $skip"
fi
if [ -n "$go_skip" ]; then
	echo
	echo "compare: skipped: $go_skip"
fi
[ -n "$skip" ] && [ -n "$go_skip" ] && exit 0

# ---------------------------------------------------------------- table
echo
awk -v workers="$workers" -v reps="$reps" '
# key=value fields of a "bench:" line into kv[]
function fields(   i, p) {
	delete kv
	for (i = 3; i <= NF; i++)
		if ((p = index($i, "=")) > 0)
			kv[substr($i, 1, p - 1)] = substr($i, p + 1)
}
function ratio(t, w) { return w > 0 ? sprintf("%.2f", t / w) : "-" }
function both(w) { return (("weft", w) in ns) && (("tokio", w) in ns) }
function goboth(w) { return (("weft", w) in ns) && (("go", w) in ns) }
function tboth(w) { return (("weft", w) in tim) && (("tokio", w) in tim) }
# One row of the second table: a figure of workload w from tv[] (or
# extra[] when w is empty), whose ratio is tokio/weft.
function trow(label, w, k, fmt,   a, b) {
	a = w == "" ? extra["weft", k] : tv["weft", w, k]
	b = w == "" ? extra["tokio", k] : tv["tokio", w, k]
	printf "%-28s " fmt " " fmt " %11s\n", label, a, b, ratio(b, a)
}
$1 != "bench:" { next }
{
	rt = FILENAME ~ /tokio\.out$/ ? "tokio" : \
	     FILENAME ~ /go\.out$/ ? "go" : "weft"
	if ($2 ~ /=/) {			# bench: peak_rss_kib=N / bytes_per_task=F
		split($2, a, "=")
		extra[rt, a[1]] = a[2]
		next
	}
	fields()
	if ("p99_us" in kv) {		# timers_*: lateness, not ns/op
		if (!($2 in tseen)) {
			tseen[$2] = 1
			torder[++tn] = $2
		}
		tim[rt, $2] = 1
		for (k in kv)
			tv[rt, $2, k] = kv[k]
		next
	}
	if ("bytes_per_sleep" in kv) {	# sleep_rss
		extra[rt, "bytes_per_sleep"] = kv["bytes_per_sleep"]
		extra[rt, "sleep_peak_rss_kib"] = kv["peak_rss_kib"]
		next
	}
	if (!($2 in seen)) {
		seen[$2] = 1
		order[++n] = $2
	}
	ns[rt, $2] = kv["ns_per_op"]
}
END {
	if (tokio_common())
		tokio_tables()
	for (i = 1; i <= n; i++)
		if (goboth(order[i])) {
			go_table()
			break
		}
}
# Whether tokio-bench ran any workload weft-bench did (--filter fiber_
# selects none).
function tokio_common(   i) {
	for (i = 1; i <= n; i++)
		if (both(order[i]))
			return 1
	for (i = 1; i <= tn; i++)
		if (tboth(torder[i]))
			return 1
	return ("tokio", "bytes_per_sleep") in extra ||
	       ("tokio", "bytes_per_task") in extra
}
function go_table(   i, w) {
	print ""
	printf "compare: weft fibers vs goroutines, workers=%s, median of " \
	       "%s reps (ratio = go/weft, > 1: weft is faster)\n", workers,
	       reps
	printf "%-24s %12s %12s %11s\n", "workload", "weft ns/op",
	       "go ns/op", "go/weft"
	for (i = 1; i <= n; i++) {
		w = order[i]
		if (goboth(w))
			printf "%-24s %12.2f %12.2f %11s\n", w, ns["weft", w],
			       ns["go", w], ratio(ns["go", w], ns["weft", w])
	}
	print ""
	for (i = 1; i <= n; i++) {
		w = order[i]
		if (goboth(w))
			printf "compare: %s workers=%s weft_ns_per_op=%.2f " \
			       "go_ns_per_op=%.2f go_speedup=%s\n", w, workers,
			       ns["weft", w], ns["go", w],
			       ratio(ns["go", w], ns["weft", w])
	}
}
function tokio_tables(   i, j, w, nk, ks, sleeps, treps) {
	printf "compare: weft vs tokio, workers=%s, median of %s reps " \
	       "(ratio = tokio/weft, > 1: weft is faster)\n", workers, reps
	printf "%-24s %12s %12s %11s\n", "workload", "weft ns/op",
	       "tokio ns/op", "tokio/weft"
	for (i = 1; i <= n; i++) {
		w = order[i]
		if (!both(w))
			continue
		printf "%-24s %12.2f %12.2f %11s\n", w, ns["weft", w],
		       ns["tokio", w], ratio(ns["tokio", w], ns["weft", w])
	}
	if (("weft", "bytes_per_task") in extra &&
	    ("tokio", "bytes_per_task") in extra)
		printf "%-24s %12.1f %12.1f %11s\n", "bytes/parked task",
		       extra["weft", "bytes_per_task"],
		       extra["tokio", "bytes_per_task"],
		       ratio(extra["tokio", "bytes_per_task"],
			     extra["weft", "bytes_per_task"])
	printf "%-24s %12s %12s %11s\n", "peak RSS KiB",
	       extra["weft", "peak_rss_kib"], extra["tokio", "peak_rss_kib"],
	       ratio(extra["tokio", "peak_rss_kib"],
		     extra["weft", "peak_rss_kib"])

	sleeps = ("weft", "bytes_per_sleep") in extra &&
		 ("tokio", "bytes_per_sleep") in extra
	treps = ""
	for (i = 1; i <= tn; i++)
		if (tboth(torder[i]))
			treps = tv["weft", torder[i], "reps"]
	if (treps != "" || sleeps) {
		# Lateness: wake time - deadline, the median over the reps of
		# each run figure (the timer workloads run fewer reps).
		print ""
		if (treps != "")
			printf "lateness: median of %s reps; start: spawn " \
			       "to first poll, where each sleep begins\n", treps
		printf "%-28s %12s %12s %11s\n", "timers", "weft", "tokio",
		       "tokio/weft"
	}
	for (i = 1; i <= tn; i++) {
		w = torder[i]
		if (!tboth(w))
			continue
		trow(w " wall ms", w, "wall_ms", "%12.1f")
		trow(w " mean us", w, "mean_us", "%12.1f")
		trow(w " p99 us", w, "p99_us", "%12.1f")
		trow(w " max us", w, "max_us", "%12.1f")
		trow(w " start p99 us", w, "start_p99_us", "%12.1f")
		if (tv["weft", w, "early"] + tv["tokio", w, "early"] > 0)
			trow(w " EARLY wakes", w, "early", "%12d")
	}
	if (sleeps) {
		trow("sleep_rss bytes/sleep", "", "bytes_per_sleep", "%12.1f")
		trow("sleep_rss peak RSS KiB", "", "sleep_peak_rss_kib",
		     "%12d")
	}

	print ""
	for (i = 1; i <= n; i++) {
		w = order[i]
		if (!both(w))
			continue
		printf "compare: %s workers=%s weft_ns_per_op=%.2f " \
		       "tokio_ns_per_op=%.2f speedup=%s\n", w, workers,
		       ns["weft", w], ns["tokio", w],
		       ratio(ns["tokio", w], ns["weft", w])
	}
	for (i = 1; i <= tn; i++) {
		w = torder[i]
		if (!tboth(w))
			continue
		printf "compare: %s workers=%s", w, workers
		nk = split("wall_ms mean_us p99_us max_us start_p99_us", ks,
			   " ")
		for (j = 1; j <= nk; j++)
			printf " weft_%s=%s tokio_%s=%s", ks[j],
			       tv["weft", w, ks[j]], ks[j],
			       tv["tokio", w, ks[j]]
		printf " ratio=%s\n", ratio(tv["tokio", w, "p99_us"],
					     tv["weft", w, "p99_us"])
	}
	if (sleeps)
		printf "compare: sleep_rss workers=%s " \
		       "weft_bytes_per_sleep=%s tokio_bytes_per_sleep=%s " \
		       "weft_peak_rss_kib=%s tokio_peak_rss_kib=%s ratio=%s\n",
		       workers, extra["weft", "bytes_per_sleep"],
		       extra["tokio", "bytes_per_sleep"],
		       extra["weft", "sleep_peak_rss_kib"],
		       extra["tokio", "sleep_peak_rss_kib"],
		       ratio(extra["tokio", "bytes_per_sleep"],
			     extra["weft", "bytes_per_sleep"])
	if (("weft", "bytes_per_task") in extra &&
	    ("tokio", "bytes_per_task") in extra)
		printf "compare: bytes_per_task weft=%s tokio=%s\n",
		       extra["weft", "bytes_per_task"],
		       extra["tokio", "bytes_per_task"]
	printf "compare: peak_rss_kib weft=%s tokio=%s\n",
	       extra["weft", "peak_rss_kib"], extra["tokio", "peak_rss_kib"]
}' "$tmp/weft.out" "$tmp/tokio.out" "$tmp/go.out"
exit 0
