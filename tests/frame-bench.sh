#!/bin/bash
# SPDX-License-Identifier: MIT
#
# frame-bench.sh: bench/frame-bench against examples/frame-echo, 1 s each
# with windows of 1 and 16 frames of 64 and 4096 bytes (the four runs at
# once), must exit 0 having counted frames; against a python3 echo server
# that flips one byte of what it echoes it must exit non-zero, saying the
# echo differs. Run by `make check` from the build directory. Exits 0
# pass, 1 fail, 77 skip (no python3).

[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
command -v python3 >/dev/null || exit 77
. "$(dirname "$0")/server.sh"

tmp=$(mktemp -d)
out=$tmp/server.out
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

fail() {
	echo "frame-bench: FAIL: $*"
	cat "$out"
	exit 1
}

bench() {
	timeout 30 ./bench/frame-bench --port "$port" --duration 1 \
		--connections 4 --threads 1 "$@"
}

# Created here: start_server's first look may come before the server's
# redirection has made it.
: >"$out"
start_server ./examples/frame-echo --port 0 --workers 2
runs="64x1 64x16 4096x1 4096x16"
for r in $runs; do
	bench --size "${r%x*}" --window "${r#*x}" >"$tmp/$r.out" \
		2>"$tmp/$r.err" &
	echo $! >"$tmp/$r.pid"
done
for r in $runs; do
	wait "$(cat "$tmp/$r.pid")"
	rc=$?
	line=$(grep '^frame:' "$tmp/$r.out")
	echo "size x window $r: $line"
	[ "$rc" -eq 0 ] || { cat "$tmp/$r.out" "$tmp/$r.err"; fail "$r: exit $rc"; }
	case $line in
	*" size=${r%x*} window=${r#*x} "*" errors=0") ;;
	*) fail "$r: bad line: $line" ;;
	esac
	rate=$(sed -n 's/.* msgs_per_sec=\([0-9.]*\) .*/\1/p' <<<"$line")
	awk -v r="$rate" 'BEGIN { exit !(r > 0) }' || fail "$r: no frames"
done
kill -TERM "$pid"
wait "$pid" || fail "frame-echo exit status $?"
pid=

# An echo server that flips bit 0 of the 100th byte of each connection's
# stream (the payload of the second 64-byte frame).
out=$tmp/flip.out
: >"$out"
start_server python3 -c '
import socket, sys, threading
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(16)
print("python3: listening on 127.0.0.1:%d" % ls.getsockname()[1], flush=True)
def serve(s):
    off = 0
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return
            if off <= 100 < off + len(b):
                b = bytearray(b)
                b[100 - off] ^= 1
            off += len(b)
            s.sendall(b)
    except OSError:     # the client has gone
        pass
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'
bench --size 64 --window 4 >"$tmp/flip-bench.out" 2>&1
rc=$?
[ "$rc" -ne 0 ] || fail "frame-bench exit 0 against a corrupting server"
grep -q "differs" "$tmp/flip-bench.out" ||
	{ cat "$tmp/flip-bench.out"; fail "no mismatch reported (exit $rc)"; }
echo "corrupting server: exit $rc, $(grep -m 1 differs "$tmp/flip-bench.out")"
echo "frame-bench: ok"
exit 0
