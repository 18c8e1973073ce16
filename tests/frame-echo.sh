#!/bin/bash
# SPDX-License-Identifier: MIT
#
# frame-echo.sh: examples/frame-echo echoes length-delimited frames
# (4-byte big-endian length, tokio-util's defaults), written by a python3
# client in odd splits: 0-byte, small, 100 KiB frames, several pipelined in
# one write, a header cut across writes; then an oversize header closes
# that connection only (a second connection still echoes); SIGTERM exits 0.
# Run by `make check` from the build directory. Exits 0 pass, 1 fail, 77
# skip (no python3).

[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
command -v python3 >/dev/null || exit 77
. "$(dirname "$0")/server.sh"

out=$(mktemp)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -f "$out"' EXIT

fail() {
	echo "frame-echo: FAIL: $*"
	cat "$out"
	exit 1
}

start_server ./examples/frame-echo --port 0 --workers 2 --max-frame 200000

python3 - "$port" <<'PY' || fail "client"
import socket, struct, sys, time
port = int(sys.argv[1])

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def frame(b):
    return struct.pack(">I", len(b)) + b

def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise SystemExit("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf

def read_frame(s):
    (n,) = struct.unpack(">I", recv_exact(s, 4))
    return recv_exact(s, n)

s = conn()
payloads = [b"", b"x", bytes(range(256)) * 4, bytes(i % 251 for i in range(100000))]
for p in payloads:                       # one at a time
    s.sendall(frame(p))
    if read_frame(s) != p:
        raise SystemExit("echo differs (%d bytes)" % len(p))
s.sendall(b"".join(frame(p) for p in payloads))   # pipelined in one write
for p in payloads:
    if read_frame(s) != p:
        raise SystemExit("pipelined echo differs")
whole = frame(b"split across writes")
for i in range(len(whole)):              # byte by byte, header included
    s.sendall(whole[i:i + 1])
    time.sleep(0.001)
if read_frame(s) != b"split across writes":
    raise SystemExit("split echo differs")

bad = conn()                             # oversize: that connection closes
bad.sendall(struct.pack(">I", 200001))
bad.settimeout(10)
if bad.recv(1) != b"":
    raise SystemExit("oversize frame did not close the connection")
s.sendall(frame(b"still here"))          # the other one goes on
if read_frame(s) != b"still here":
    raise SystemExit("first connection broken by the second's error")
PY

kill -TERM "$pid"
wait "$pid" || fail "exit status $?"
pid=
grep -q "frame-echo: SIGTERM" "$out" || fail "exit report"
grep -q "Message too long\|message too long\|EMSGSIZE" "$out" ||
	fail "the oversize frame was not reported"
echo "frame-echo: ok"
exit 0
