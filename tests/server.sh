# SPDX-License-Identifier: MIT
#
# server.sh: sourced by the script tests that run an example server.
# start_server PROG ARGS... runs PROG (which prints "NAME: listening on
# HOST:PORT", NAME being PROG's file name) in the background with its
# output in $out, and sets $pid and $port; if no such line comes within
# 10 s it calls the script's fail().

start_server() {
	local name=${1##*/}

	"$@" >"$out" 2>&1 &
	pid=$!
	port=
	for _ in $(seq 100); do
		port=$(sed -n "s/^$name: listening on .*:\([0-9]*\)\$/\1/p" "$out")
		[ -n "$port" ] && return 0
		sleep 0.1
	done
	fail "server did not start"
}
