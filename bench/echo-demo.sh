#!/bin/sh
# SPDX-License-Identifier: MIT
#
# echo-demo.sh BUILDDIR SECONDS CONNECTIONS SIZE
#
# Start BUILDDIR/examples/echo-server on a port the kernel picks, learn the
# port from its "listening on HOST:PORT" line, load it with
# BUILDDIR/bench/echo-client for SECONDS with CONNECTIONS connections and
# SIZE-byte messages, then stop the server with SIGTERM. Exits non-zero if
# the client or the server failed. The server is killed on any way out.

set -u

if [ $# -ne 4 ]; then
	echo "usage: $0 BUILDDIR SECONDS CONNECTIONS SIZE" >&2
	exit 2
fi
builddir=$1
secs=$2
conns=$3
size=$4
server=$builddir/examples/echo-server
client=$builddir/bench/echo-client
startup_timeout=10 # seconds to wait for the "listening on" line

for prog in "$server" "$client"; do
	if [ ! -x "$prog" ]; then
		echo "echo-demo: $prog: not built" >&2
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/echo-demo.XXXXXX") || exit 1
server_pid=

cleanup() {
	if [ -n "$server_pid" ]; then
		kill -KILL "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
		server_pid=
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

fail() {
	echo "echo-demo: $*" >&2
	if [ -s "$tmp/server.err" ]; then
		echo "echo-demo: server stderr:" >&2
		sed 's/^/  /' "$tmp/server.err" >&2
	fi
	exit 1
}

"$server" --port 0 >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!

# Poll for the line; fail early if the server dies first.
port=
tries=$((startup_timeout * 10))
while [ "$tries" -gt 0 ]; do
	line=$(grep -m 1 'listening on' "$tmp/server.out" 2>/dev/null)
	if [ -n "$line" ]; then
		port=${line##*:}
		break
	fi
	if ! kill -0 "$server_pid" 2>/dev/null; then
		wait "$server_pid"
		rc=$?
		server_pid=
		fail "echo-server exited with status $rc before listening"
	fi
	sleep 0.1
	tries=$((tries - 1))
done
case $port in
'' | *[!0-9]*)
	fail "no 'listening on HOST:PORT' line from echo-server within" \
	     "${startup_timeout}s"
	;;
esac
echo "echo-demo: $line"

"$client" --port "$port" --duration "$secs" --connections "$conns" \
	--size "$size"
client_rc=$?

kill -TERM "$server_pid" 2>/dev/null
wait "$server_pid"
server_rc=$?
server_pid=
sed 's/^/echo-demo: /' "$tmp/server.out" | grep -v 'listening on'

if [ "$client_rc" -ne 0 ]; then
	fail "echo-client failed (status $client_rc)"
fi
if [ "$server_rc" -ne 0 ]; then
	fail "echo-server failed (status $server_rc)"
fi
echo "echo-demo: ok"
