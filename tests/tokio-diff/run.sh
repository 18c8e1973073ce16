#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run.sh: weft's frame codec against tokio-util's LengthDelimitedCodec
# (make codec-tokio-diff). Builds src/main.rs offline with cargo against
# Debian's crates (librust-tokio-util-dev) in BUILDDIR/tests/tokio-diff-build,
# runs both sides on COUNT (default 20000) cases of gen.py, and fails on
# any difference but the two weft makes on purpose (docs/codec.md):
#  - a frame that ends inside its own length field: tokio-util returns it
#    (and with strip 0 and a zero length, returns empty frames forever);
#    main.rs stops there with ERR, weft refuses it (-EPROTO);
#  - an encode whose field would be over max_frame: tokio-util writes it,
#    weft refuses it (-EMSGSIZE).
# Usage: run.sh SRCDIR BUILDDIR [SEED [COUNT]]. Exit 0, 1, or 77 (skipped:
# no cargo, python3 or tokio-util).
src=$1/tests/tokio-diff
dir=$2/tests/tokio-diff-build
seed=${3:-1}
count=${4:-20000}
cc=${CC:-cc}
command -v cargo >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 ||
	{ echo "codec-tokio-diff: needs cargo and python3: skipped"; exit 77; }
ls -d /usr/share/cargo/registry/tokio-util-0.7* >/dev/null 2>&1 ||
	{ echo "codec-tokio-diff: apt-get install librust-tokio-util-dev: skipped"; exit 77; }
mkdir -p "$dir/src" "$dir/.cargo" || exit 1
cp "$src/Cargo.toml" "$dir/" && cp "$src/src/main.rs" "$dir/src/" &&
	cp "$src/.cargo/config.toml" "$dir/.cargo/" || exit 1
(cd "$dir" && cargo build --release -q) || exit 1
"$cc" -O2 -I"$1/include" -o "$dir/weft-side" "$src/weft_side.c" \
	"$1/src/codec/codec.c" || exit 1
python3 "$src/gen.py" "$seed" "$count" >"$dir/cases" || exit 1
"$dir/target/release/tokio-codec-diff" <"$dir/cases" >"$dir/tokio.out" \
	2>"$dir/tokio.err" || exit 1
"$dir/weft-side" <"$dir/cases" >"$dir/weft.out" || exit 1
echo "codec-tokio-diff: $count cases, seed $seed;" \
	"$(grep -c inside "$dir/tokio.err") frames ending inside their header"
paste -d'|' "$dir/cases" "$dir/tokio.out" "$dir/weft.out" | python3 -c '
import sys
bad = known = 0
for l in sys.stdin:
    case, tok, weft = l.rstrip("\n").split("|")
    if tok == weft:
        continue
    f = case.split(" ")
    w, adj, mx = int(f[1]), int(f[5]), int(f[6])
    pl = bytes.fromhex(f[7]) if len(f) > 7 else b""
    if f[0] == "E" and weft == "ERR" and tok != "ERR" and len(pl) - adj > mx:
        known += 1
        continue
    bad += 1
    if bad <= 10:
        print("differs:", case[:120], "| tokio-util:", tok[:80], "| weft:", weft[:80])
print("codec-tokio-diff: %d encodes over max_frame refused by weft only; %d other differences" % (known, bad))
sys.exit(1 if bad else 0)'
