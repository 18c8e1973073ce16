#!/bin/bash
# SPDX-License-Identifier: MIT
#
# http-hello.sh: examples/http-hello speaks HTTP/1.1 as its comment says.
# Run by `make check` from the build directory; clients are bash's
# /dev/tcp, so every byte of each response is checked:
#  - keep-alive: two requests, one after the other, on one connection;
#  - pipelining: GET, GET, HEAD with "Connection: close" and one more GET
#    sent at once: three responses in order (the HEAD's without a body,
#    saying "Connection: close"), then EOF, the last GET unanswered;
#  - HTTP/1.0: closes after the response, unless "Connection:
#    keep-alive", which the response repeats and the connection honours;
#  - errors: garbage gets 400, 9 KiB of headers 431, a declared body of
#    100 KB 413, each followed by EOF.
# Exits 0 pass, 1 fail, 77 skip (http-hello not built: configure did not
# find libhttp-parser-dev; or no bash /dev/tcp).

[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
. "$(dirname "$0")/server.sh"

server=./examples/http-hello
if [ ! -x "$server" ]; then
	echo "http-hello: not built (configure found no libhttp-parser-dev)"
	exit 77
fi
out=$(mktemp)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -f "$out"' EXIT

fail() {
	echo "http-hello: FAIL: $*"
	cat "$out"
	exit 1
}

start_server "$server" --port 0 --workers 2

CR=$'\r'
head200="HTTP/1.1 200 OK$CR
Content-Type: text/plain$CR
Content-Length: 13$CR
"
ok="$head200$CR
Hello, World!"
ok_close="${head200}Connection: close$CR
$CR
Hello, World!"
ok_keep10="${head200}Connection: keep-alive$CR
$CR
Hello, World!"
head_close="${head200}Connection: close$CR
$CR
"
err() { # status reason: sets $e ($(...) would drop the final newline)
	printf -v e 'HTTP/1.1 %s %s\r\n%s\r\n%s\r\n\r\n' "$1" "$2" \
		'Content-Length: 0' 'Connection: close'
}
req() { # [extra header line]
	printf 'GET / HTTP/1.1\r\nHost: t\r\n%s\r\n' "${1:+$1$CR$'\n'}"
}

# Read exactly ${#2} bytes from fd 3 and compare them with $2.
expect() { # what expected
	local got
	IFS= read -r -d '' -N "${#2}" -t 5 got <&3
	[ "$got" = "$2" ] || fail "$1: got '$got'"
}
# Everything up to EOF from fd 3 must be $2.
expect_eof() { # what expected
	local got
	got=$(timeout 5 cat <&3; echo x)
	[ "$got" = "${2}x" ] || fail "$1: got '${got%x}' then EOF (or not)"
}
open() { exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 77; }

open
req >&3
expect "keep-alive, first" "$ok"
req >&3
expect "keep-alive, second" "$ok"
exec 3<&-

open
{ req; req; printf 'HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'
  req; } >&3
expect_eof "pipelining" "$ok$ok$head_close"
exec 3<&-

open
printf 'GET / HTTP/1.0\r\n\r\n' >&3
expect_eof "HTTP/1.0" "$ok_close"
exec 3<&-

open
printf 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' >&3
expect "HTTP/1.0 keep-alive, first" "$ok_keep10"
printf 'GET / HTTP/1.0\r\n\r\n' >&3
expect_eof "HTTP/1.0 keep-alive, second" "$ok_close"
exec 3<&-

open
printf 'GARBAGE\r\n\r\n' >&3
err 400 'Bad Request'
expect_eof "bad request" "$e"
exec 3<&-

open
req "X-Big: $(head -c 9216 /dev/zero | tr '\0' a)" >&3
err 431 'Request Header Fields Too Large'
expect_eof "9 KiB of headers" "$e"
exec 3<&-

open
printf 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n' >&3
err 413 'Content Too Large'
expect_eof "100 KB body" "$e"
exec 3<&-

kill -TERM "$pid"
wait "$pid" || fail "server exit status $?"
pid=
grep -q "SIGTERM, served 7 connections, 8 requests" "$out" ||
	fail "exit report"
echo "http-hello: keep-alive, pipelining, HTTP/1.0, 400, 431, 413: ok"
exit 0
