#!/bin/bash
# SPDX-License-Identifier: MIT
#
# chat.sh: examples/chat-server under bench/chat-client. Eight clients send
# 400 lines each while two more connect and never read: every line must
# reach every other fast client in order, none twice, and any gap must be
# one the server announced ("*** skipped N"); the silent clients must not
# stall the room (at least 95% delivered: a fast client on a stalled
# machine may itself lag and be told so, which is allowed). Then a small
# ring (--capacity 16) with a slow reader must make the server announce
# skips rather than block. Exits 0 pass, 1 fail.
set -u
. "$(dirname "$0")/server.sh"

server=./examples/chat-server
client=./bench/chat-client
out=$(mktemp)
pid=
trap 'kill "$pid" 2>/dev/null; rm -f "$out"' EXIT

fail() {
	echo "chat: FAIL: $*"
	cat "$out"
	exit 1
}

start() {
	start_server "$server" --port 0 --workers 2 "$@"
}

stop() {
	kill -TERM "$pid"
	wait "$pid" || fail "server exit status $?"
	pid=
}

start
"$client" --port "$port" --clients 8 --slow 2 --messages 400 \
	--interval-us 1000 --min-delivered 95 ||
	fail "8 clients and 2 silent ones"
stop

# A reader too slow for a 16-message ring must be told what it skipped
# (chat-client fails if a lagging client lost a line it was not told of).
start --capacity 16
line=$("$client" --port "$port" --clients 4 --lagging 1 --messages 1000 \
	--interval-us 0 --min-delivered 0) || fail "lagging reader: $line"
stop
skipped=$(echo "$line" | sed -n 's/.* lag_skipped=\([0-9]*\).*/\1/p')
[ "${skipped:-0}" -ge 1 ] || fail "the lagging reader was not told: $line"
echo "chat: room kept going; the lagging reader was told of $skipped skipped lines"
exit 0
