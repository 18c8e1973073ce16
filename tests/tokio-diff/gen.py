# SPDX-License-Identifier: MIT
# Cases for tests/tokio-diff/run.sh: random length-delimited configs (every
# width, both byte orders, offsets, strips, adjustments, small maxima) and
# streams of well-formed frames mixed with junk, cut short at random; and
# encodes with the configs tokio-util's encoder handles (offset 0, default
# strip). Usage: gen.py SEED COUNT.
import random, sys
r = random.Random(int(sys.argv[1]))
def enc_field(v, w, le):
    b = v.to_bytes(8, 'little')[:w]
    return b if le else b[::-1]
lines = []
for case in range(int(sys.argv[2])):
    w = r.randint(1, 8); le = r.randint(0, 1); off = r.randint(0, 3)
    strip = -1 if r.random() < 0.4 else r.randint(0, 12)
    adj = r.randint(-8, 8); mx = r.choice([0, 3, 5, 100, 1000, 65535])
    fe = off + w; s = fe if strip < 0 else strip; head = max(fe, s)
    if r.random() < 0.25:
        # encoder case, tokio-comparable configs only
        pl = bytes(r.randrange(256) for _ in range(r.randint(0, 40)))
        lines.append("E %d %d 0 -1 %d %d %s" % (w, le, adj, mx, pl.hex()))
        continue
    stream = b''
    for _ in range(r.randint(0, 6)):
        if r.random() < 0.15:
            stream += bytes(r.randrange(256) for _ in range(r.randint(1, 12)))
            continue
        n = r.randint(0, 30)  # bytes after strip
        field = n - adj
        if r.random() < 0.1: field = r.randint(0, 300)
        if field < 0 or field >= 256 ** w: continue
        hdr = bytearray(r.randrange(256) for _ in range(head))
        hdr[off:off + w] = enc_field(field, w, le)
        body_len = s + n - head
        if body_len < 0:
            stream += bytes(hdr)
            continue
        stream += bytes(hdr) + bytes(r.randrange(256) for _ in range(body_len))
    if r.random() < 0.3 and stream:
        stream = stream[:r.randint(0, len(stream))]
    lines.append("D %d %d %d %d %d %d %s" % (w, le, off, strip, adj, mx, stream.hex()))
print("\n".join(lines))
