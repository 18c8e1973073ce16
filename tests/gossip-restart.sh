#!/bin/bash
# SPDX-License-Identifier: MIT
#
# gossip-restart.sh: five examples/gossip nodes as separate processes on
# fixed ports (BASE..BASE+4, a base python3 found free), reconnect interval
# 100 ms; node 0 floods a message every second (--send). Run by `make
# check` from the build directory. Checks, each within a few seconds:
#  1. the mesh forms: nodes 1-4 all get one of node 0's messages;
#  2. node 3 killed (SIGKILL): nodes 1, 2 and 4 get a message sent after
#     that;
#  3. node 3 restarted --passive (it dials nobody, so only the others'
#     reconnects can bring it back: a node that dialed them itself would
#     hide a broken reconnect): it is connected in by all four, and nodes
#     1-4 all get a message sent after the restart;
#  4. node 4 killed and restarted as a normal node (it dials the others
#     while they redial it: simultaneous dials of a new identity): nodes
#     1-4 all get a message sent after that;
#  5. SIGTERM: every node shuts down gracefully and exits 0.
# Exits 0 pass, 1 fail, 77 skip (no python3).

[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
command -v python3 >/dev/null || exit 77

gossip=./examples/gossip
dir=$(mktemp -d)
declare -a pid out
cleanup() {
	local p
	for p in "${pid[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

fail() {
	local f
	echo "gossip-restart: FAIL: $*"
	for f in "$dir"/*.out; do
		echo "== ${f##*/}"
		tail -n 30 "$f"
	done
	exit 1
}

# Five consecutive free ports below the ephemeral range (32768 up), so no
# outgoing connection takes one of them meanwhile.
base=$(python3 - <<'PY'
import random, socket, sys
for _ in range(200):
    base = random.randrange(20000, 32000)
    socks = []
    try:
        for i in range(5):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", base + i))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    sys.exit(0)
sys.exit(1)
PY
) || fail "no five free ports"

# wait_line SECONDS FILE REGEX: wait until FILE has a line matching REGEX.
wait_line() {
	for _ in $(seq $(($1 * 10))); do
		grep -q "$3" "$2" && return 0
		sleep 0.1
	done
	return 1
}

# start I NAME [OPTIONS]: run node I with its output in $dir/NAME.out.
start() {
	local i=$1 name=$2
	shift 2
	out[$i]=$dir/$name.out
	"$gossip" --node "$i" --port "$base" --reconnect-ms 100 "$@" \
		>"${out[$i]}" 2>&1 &
	pid[$i]=$!
	wait_line 5 "${out[$i]}" "listening on" || fail "node $i did not start"
}

# The last message node 0 has flooded (0: none yet).
last_sent() {
	local s
	s=$(sed -n 's/^sent 0:\([0-9]*\) .*/\1/p' "${out[0]}" | tail -n 1)
	echo "${s:-0}"
}

# got_all SECONDS MIN NODE...: wait until every NODE has got one same
# message 0:S with S >= MIN; prints S.
got_all() {
	local secs=$1 min=$2 s i n
	shift 2
	for _ in $(seq $((secs * 10))); do
		for s in $(seq "$min" "$(last_sent)"); do
			n=0
			for i in "$@"; do
				grep -q "^got 0:$s from" "${out[$i]}" || break
				n=$((n + 1))
			done
			if [ "$n" = $# ]; then
				echo "$s"
				return 0
			fi
		done
		sleep 0.1
	done
	return 1
}

t0=$SECONDS
start 0 node0 --send
for i in 1 2 3 4; do
	start "$i" "node$i"
done

s=$(got_all 5 1 1 2 3 4) || fail "the mesh did not deliver to nodes 1-4"
echo "gossip-restart: message 0:$s reached nodes 1-4"

kill -9 "${pid[3]}"
wait "${pid[3]}" 2>/dev/null
k=$(last_sent)
s=$(got_all 4 $((k + 1)) 1 2 4) ||
	fail "with node 3 killed, nodes 1, 2, 4 got nothing after 0:$k"
echo "gossip-restart: node 3 killed; 0:$s reached nodes 1, 2, 4"

start 3 node3-passive --passive
k=$(last_sent)
s=$(got_all 4 $((k + 1)) 1 2 3 4) ||
	fail "node 3 restarted: nodes 1-4 got nothing after 0:$k"
for j in 0 1 2 4; do
	wait_line 3 "${out[3]}" "^connected to node $j (inbound)" ||
		fail "node $j did not reconnect to the restarted node 3"
done
echo "gossip-restart: node 3 restarted, reconnected by 0, 1, 2, 4;" \
	"0:$s reached nodes 1-4"

kill -9 "${pid[4]}"
wait "${pid[4]}" 2>/dev/null
start 4 node4-restarted
k=$(last_sent)
s=$(got_all 4 $((k + 1)) 1 2 3 4) ||
	fail "node 4 restarted: nodes 1-4 got nothing after 0:$k"
echo "gossip-restart: node 4 restarted; 0:$s reached nodes 1-4"

kill -TERM "${pid[@]}"
for i in 0 1 2 3 4; do
	# wait returns the exit status; a hang is cut by the trap's
	# SIGKILL when make check's harness gives up, so bound it here.
	for _ in $(seq 50); do
		kill -0 "${pid[$i]}" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "${pid[$i]}" 2>/dev/null &&
		fail "node $i still running 5 s after SIGTERM"
	wait "${pid[$i]}" || fail "node $i exited with status $?"
	grep -q "^gossip: node $i: received" "${out[$i]}" ||
		fail "node $i did not shut down gracefully"
done
pid=()
echo "gossip-restart: ok in $((SECONDS - t0)) s"
