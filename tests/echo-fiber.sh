#!/bin/bash
# SPDX-License-Identifier: MIT
#
# echo-fiber.sh: examples/echo-fiber (the echo server written with fibers)
# behaves as examples/echo-server. Run by `make check` from the build
# directory.
#  1. Load: bench/echo-client, 20 connections of 512-byte messages for
#     1.5 s on 2 workers (so fibers migrate): every byte of every echo is
#     checked by the client, which must exit 0 with errors=0; the server
#     must then drain on SIGTERM, exit 0 and report 20 connections.
#  2. --idle-timeout and 3. the SIGTERM drain: tests/echo-idle.sh and
#     tests/echo-drain.sh, run against echo-fiber.
# Exits 0 pass, 1 fail, 77 skip (no bash /dev/tcp, from the scripts).

[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
. "$(dirname "$0")/server.sh"

# $1: the server (default ./examples/echo-fiber); ECHO_ARGS: extra options
# for every run (tests/echo-streams.sh passes --streams).
server=${1:-./examples/echo-fiber}
client=./bench/echo-client
out=$(mktemp)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -f "$out"' EXIT

fail() {
	echo "echo-fiber: $server ${ECHO_ARGS:-}: FAIL: $*"
	cat "$out"
	exit 1
}

start_server "$server" --port 0 --workers 2 ${ECHO_ARGS:-}

res=$("$client" --port "$port" --duration 1.5 --connections 20 --size 512 \
	2>&1) || fail "echo-client: $res"
line=$(printf '%s\n' "$res" | grep '^echo:')
case $line in
*" errors=0") ;;
*) fail "echo-client: $res" ;;
esac
kill -TERM "$pid"
wait "$pid" || fail "server exit status $?"
pid=
grep -q "SIGTERM, served 20 connections" "$out" || fail "exit report"
echo "echo-fiber: load: $line"

bash "$(dirname "$0")/echo-idle.sh" "$server" || exit $?
bash "$(dirname "$0")/echo-drain.sh" "$server" || exit $?
exit 0
