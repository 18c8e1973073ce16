# shellcheck shell=sh
# SPDX-License-Identifier: MIT
#
# bench/compare-lib.sh: what the weft-against-Tokio scripts that alternate
# runs share (bench/echo-compare.sh, bench/frame-compare.sh,
# bench/peer-compare.sh). Sourced, not run, after setting cmp_name (the
# script's name: the prefix of its messages). Provides:
#
#   cmp_parse_opts "NAME..." ARGS...
#                        each --NAME VALUE or --NAME=VALUE among ARGS sets
#                        the variable NAME; a NAME written NAME! in the
#                        list is a flag: --NAME sets it to 1; anything
#                        else calls the script's usage (which exits)
#   cmp_setup            make $tmp (a private directory) and the traps
#                        that remove it and stop a server left running
#   cmp_check_counts N.. exit 2 unless each is a positive integer
#   cmp_check_secs D     exit 2 unless D is seconds (decimals allowed)
#   cmp_check_cells N FORM EXAMPLE
#                        exit 2 (saying "--cells wants FORM words, e.g.
#                        EXAMPLE") unless each word of $cells is N numbers
#                        joined by "x"
#   cmp_raise_nofile     soft open-file limit up to the hard one
#   cmp_start_server LABEL PROG ARGS...
#                        run PROG ARGS (a server that prints "...listening
#                        on HOST:PORT"), set server_pid and port; return 1
#                        after saying why if it does not listen within 10 s
#   cmp_stop_server LABEL
#                        SIGTERM and wait (the servers exit 0 on it); return
#                        the server's status, saying why if not 0
#   cmp_run LABEL OUT PROG ARGS...
#                        run a client or benchmark, output in OUT; return its
#                        status, with its stderr's head on stderr on failure
#   cmp_field FILE KEY   a key=value field of FILE's line
#   cmp_record OK CELL ROUND LINE RATE_KEY UNIT
#                        after a run of $cur (weft or tokio): if OK is 1,
#                        take RATE_KEY and p99_us from the file LINE, say
#                        them and add them to $tmp/results; else note the
#                        failure: weft_failed=1 for weft; for tokio,
#                        tokio_skip says why and tokio_bin is emptied (no
#                        more Tokio runs)
#   cmp_table            the table of medians of $tmp/results (see there)

cmp_parse_opts() {
	_cnames=" $1 "
	shift
	while [ $# -gt 0 ]; do
		_copt=${1%%=*}
		_copt=${_copt#--}
		case $1 in
		--*) ;;
		*) usage ;;
		esac
		case $_cnames in
		*" $_copt! "*)
			[ "$1" = "--$_copt" ] || usage
			eval "$_copt=1"
			;;
		*" $_copt "*)
			case $1 in
			--*=*) _cv=${1#*=} ;;
			*)
				[ $# -ge 2 ] || usage
				_cv=$2
				shift
				;;
			esac
			eval "$_copt=\$_cv"
			;;
		*) usage ;;
		esac
		shift
	done
}

cmp_setup() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/$cmp_name.XXXXXX") || exit 1
	server_pid=
	perf_pid=
	trap cmp_cleanup EXIT
	trap 'exit 1' HUP INT TERM
}

cmp_cleanup() {
	for _cp in $perf_pid $server_pid; do
		kill -KILL "$_cp" 2>/dev/null
		wait "$_cp" 2>/dev/null
	done
	server_pid=
	perf_pid=
	rm -rf "$tmp"
}

cmp_check_counts() {
	for _cn in "$@"; do
		case $_cn in
		'' | *[!0-9]* | 0)
			echo "$cmp_name: --rounds/--workers/--threads want a" \
			     "positive number" >&2
			exit 2
			;;
		esac
	done
}

cmp_check_secs() {
	case $1 in
	'' | *[!0-9.]* | .*)
		echo "$cmp_name: --duration wants seconds" >&2
		exit 2
		;;
	esac
}

cmp_check_cells() {
	for _cc in $cells; do
		_cr=$_cc
		_ck=0
		while :; do
			_cf=${_cr%%x*}
			case $_cf in '' | *[!0-9]*) _ck=-1; break ;; esac
			_ck=$((_ck + 1))
			[ "$_cr" = "$_cf" ] && break
			_cr=${_cr#*x}
		done
		if [ "$_ck" -ne "$1" ]; then
			echo "$cmp_name: --cells wants $2 words, e.g. \"$3\"" >&2
			exit 2
		fi
	done
}

# 1,000 connections: ~1,000 fds in each of client and server.
cmp_raise_nofile() {
	_ch=$(ulimit -H -n)
	[ "$_ch" = unlimited ] && _ch=1048576
	ulimit -S -n "$_ch" 2>/dev/null || ulimit -S -n 4096 2>/dev/null
}

cmp_start_server() {
	_cl=$1
	shift
	# Emptied here, not by the redirection below: that one happens in
	# the background child, maybe after the first grep has read the
	# previous server's line.
	: >"$tmp/server.out"
	"$@" >"$tmp/server.out" 2>"$tmp/server.err" &
	server_pid=$!
	port=
	_ct=100 # tenths of a second
	while [ "$_ct" -gt 0 ]; do
		_cline=$(grep -m 1 'listening on' "$tmp/server.out" 2>/dev/null)
		if [ -n "$_cline" ]; then
			# shellcheck disable=SC2034 # for the caller
			port=${_cline##*:}
			return 0
		fi
		if ! kill -0 "$server_pid" 2>/dev/null; then
			wait "$server_pid"
			echo "$cmp_name: $_cl server exited with status $?" \
			     "before listening" >&2
			server_pid=
			sed "s/^/$cmp_name:   /" "$tmp/server.err" >&2
			return 1
		fi
		sleep 0.1
		_ct=$((_ct - 1))
	done
	echo "$cmp_name: no 'listening on' line from the $_cl server" \
	     "within 10s" >&2
	cmp_stop_server "$_cl"
	return 1
}

cmp_stop_server() {
	[ -n "$server_pid" ] || return 0
	kill -TERM "$server_pid" 2>/dev/null
	wait "$server_pid"
	_crc=$?
	server_pid=
	if [ "$_crc" -ne 0 ]; then
		echo "$cmp_name: $1 server exited with status $_crc" >&2
		sed "s/^/$cmp_name:   /" "$tmp/server.err" >&2
	fi
	return "$_crc"
}

cmp_run() {
	_cl=$1
	_co=$2
	shift 2
	"$@" >"$_co" 2>"$tmp/run.err"
	_crc=$?
	if [ "$_crc" -ne 0 ]; then
		echo "$cmp_name: the $_cl run failed (status $_crc)" >&2
		sed "s/^/$cmp_name:   /" "$tmp/run.err" | head -n 12 >&2
	fi
	return "$_crc"
}

cmp_field() {
	sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" "$1"
}

# shellcheck disable=SC2034 # weft_failed, tokio_skip: for the caller
cmp_record() {
	if [ "$1" -eq 1 ]; then
		_crate=$(cmp_field "$4" "$5")
		_cp99=$(cmp_field "$4" p99_us)
		echo "$cmp_name: $2 round $3 $cur: $_crate $6, p99 $_cp99 us"
		echo "$cur $2 $_crate $_cp99" >>"$tmp/results"
	elif [ "$cur" = weft ]; then
		weft_failed=1
	else
		tokio_skip="a ${tokio_bin##*/} run failed"
		tokio_bin=
	fi
}

# cmp_table: one table of $tmp/results, whose lines are
# "SIDE CELL RATE P99" (SIDE weft or tokio; one line per run), for the
# cells $cmp_cells (in that order; each is fields joined by
# $cmp_cell_sep, named by $cmp_cell_keys). Per cell, the median over the
# runs of each side's RATE and P99, and the ratio weft/tokio of the RATE
# medians; first $cmp_title, then a table ($cmp_style: "plain", with
# $cmp_cell_label over the cells, or "markdown"), a blank line, and one
# line per cell for scripts:
#   $cmp_name: KEY=FIELD... workers=$workers weft_$cmp_rate_key=F
#   tokio_$cmp_rate_key=F ratio=F weft_p99_us=F tokio_p99_us=F
# (on one line). $cmp_rate_unit names the rate in the table's header.
cmp_table() {
	awk -v name="$cmp_name" -v title="$cmp_title" -v cells="$cmp_cells" \
	    -v sep="$cmp_cell_sep" -v keys="$cmp_cell_keys" \
	    -v label="$cmp_cell_label" -v style="$cmp_style" \
	    -v unit="$cmp_rate_unit" -v ratekey="$cmp_rate_key" \
	    -v workers="$workers" '
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
	print title
	if (style == "markdown") {
		printf "| %s | weft %s | Tokio %s | weft/Tokio | weft p99 us " \
		       "| Tokio p99 us |\n", label, unit, unit
		print "| --- | ---: | ---: | ---: | ---: | ---: |"
	} else {
		printf "%-10s %12s %12s %11s %12s %12s\n", label,
		       "weft " unit, "tokio " unit, "weft/tokio",
		       "weft p99 us", "tokio p99 us"
	}
	n = split(cells, cl, " ")
	nk = split(keys, kn, " ")
	for (i = 1; i <= n; i++) {
		c = cl[i]
		wr[c] = median("weft" SUBSEP c SUBSEP "rate")
		tr[c] = median("tokio" SUBSEP c SUBSEP "rate")
		wp[c] = median("weft" SUBSEP c SUBSEP "p99")
		tp[c] = median("tokio" SUBSEP c SUBSEP "p99")
		ra[c] = (wr[c] != "" && tr[c] > 0) ? \
			sprintf("%.2f", wr[c] / tr[c]) : "-"
		if (style == "markdown") {
			shown = c
			gsub(sep, " x ", shown)
			printf "| %s | %s | %s | %s | %s | %s |\n", shown,
			       fmt(wr[c], "%.0f"), fmt(tr[c], "%.0f"), ra[c],
			       fmt(wp[c], "%.1f"), fmt(tp[c], "%.1f")
		} else {
			printf "%-10s %12s %12s %11s %12s %12s\n", c,
			       fmt(wr[c], "%.0f"), fmt(tr[c], "%.0f"), ra[c],
			       fmt(wp[c], "%.1f"), fmt(tp[c], "%.1f")
		}
	}
	print ""
	for (i = 1; i <= n; i++) {
		c = cl[i]
		split(c, cs, sep)
		line = name ":"
		for (j = 1; j <= nk; j++)
			line = line " " kn[j] "=" cs[j]
		printf "%s workers=%s weft_%s=%s tokio_%s=%s ratio=%s " \
		       "weft_p99_us=%s tokio_p99_us=%s\n", line, workers,
		       ratekey, fmt(wr[c], "%.1f"), ratekey,
		       fmt(tr[c], "%.1f"), ra[c], fmt(wp[c], "%.1f"),
		       fmt(tp[c], "%.1f")
	}
}' "$tmp/results"
}
