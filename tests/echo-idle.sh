#!/bin/bash
# SPDX-License-Identifier: MIT
#
# echo-idle.sh: examples/echo-server --idle-timeout closes a connection
# that sends nothing for that long, and only then. Run by `make check` from
# the build directory. One client (bash's /dev/tcp) sends a line, reads the
# echo, then goes silent: the server must close it no sooner than the idle
# timeout after the last byte (and well within 10 s), and report it at exit.
# The echo itself proves a recv with a deadline still receives.
# Exits 0 pass, 1 fail, 77 skip (no bash /dev/tcp).

[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
. "$(dirname "$0")/server.sh"

# $1: the server to test (default ./examples/echo-server; tests/echo-fiber.sh
# passes ./examples/echo-fiber), which prints lines prefixed with its name.
server=${1:-./examples/echo-server}
name=${server##*/}
idle_ms=300
out=$(mktemp)
trap 'kill "$pid" 2>/dev/null; rm -f "$out"' EXIT

fail() {
	echo "echo-idle: FAIL: $*"
	cat "$out"
	exit 1
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

start_server "$server" --port 0 --workers 1 --idle-timeout 0.3 ${ECHO_ARGS:-}

exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 77
# Before the send: the server arms its deadline after echoing, so the
# close comes at least idle_ms after this.
sent=$(now_ms)
printf 'ping\n' >&3
IFS= read -r -t 5 line <&3 || fail "no echo"
[ "$line" = ping ] || fail "echo was '$line'"
# Silent now: the next read ends at EOF when the server closes us.
# (The status must be taken from read itself: after `if`, $? is 0.)
IFS= read -r -t 10 line <&3
st=$?
[ $st -eq 0 ] && fail "read '$line' instead of EOF"
[ $st -gt 128 ] && fail "not closed within 10 s"
elapsed=$(( $(now_ms) - sent ))
exec 3<&-
[ "$elapsed" -ge $idle_ms ] || fail "closed after $elapsed ms < $idle_ms ms"

kill -INT "$pid"
wait "$pid" || fail "server exit status $?"
grep -q "served 1 connections, 1 closed idle" "$out" ||
	fail "exit report"
echo "echo-idle: closed after $elapsed ms of silence (timeout $idle_ms ms)"
exit 0
