/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for weft_codec_decode (src/codec/codec.c), built by
 * tests/codec-fuzz.sh with clang -fsanitize=fuzzer,address,undefined.
 *
 * Input: 8 bytes of config, then the stream.
 *   [0] length_bytes - 1 (low 3 bits); [1] flags: bit 0 little-endian,
 *   bit 1 default strip, bit 2 max_frame SIZE_MAX; [2] length_offset % 4;
 *   [3] strip % 16; [4] length_adjust as an int8 (bit 3 of [1]: times
 *   2^56, to reach the checked-overflow paths); [5..6] max_frame, 16 bits
 *   big-endian; [7] seed of the splits.
 *
 * The stream is decoded whole (frame after frame in one buffer), then fed
 * twice more in chunks chosen by the seed (small ones, then large ones),
 * accumulating and decoding after each chunk as a framed reader does.
 * All three must give the same frames and end the same way (the same
 * error at the same place, or the same need). Each decode call sees a
 * heap copy of exactly the bytes it is given, so ASan reports any read
 * past them; every byte of each frame is read, so a frame reaching out of
 * its buffer is reported too. Then the first bytes of the stream, as a
 * payload, go through weft_codec_encode and back.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/codec.h>

#define CHECK(cond)                                                       \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "codec_fuzz: %s:%d: %s\n",        \
				__FILE__, __LINE__, #cond);               \
			abort();                                          \
		}                                                         \
	} while (0)

enum { MAX_FRAMES = 4096 };

struct result {
	size_t n;                 /* frames */
	size_t consumed[MAX_FRAMES];
	size_t off[MAX_FRAMES];
	size_t len[MAX_FRAMES];
	uint64_t sum[MAX_FRAMES]; /* of the frame's bytes */
	int end;                  /* 0 or the error that stopped it */
	size_t need;              /* with end 0: need of the last call */
	size_t rest;              /* bytes left undecoded at the end */
};

static struct result whole, split;

/* Decode @len bytes at @p from an exact-size heap copy. */
static int decode_exact(const weft_codec *c, const uint8_t *p, size_t len,
			weft_frame *fr, uint64_t *sum)
{
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	CHECK(copy);
	if (len)
		memcpy(copy, p, len);
	r = weft_codec_decode(c, copy, len, fr);
	if (r == 1) {
		CHECK(fr->consumed <= len);
		CHECK(fr->off <= fr->consumed);
		CHECK(fr->len <= fr->consumed - fr->off);
		CHECK(fr->off + fr->len == fr->consumed);
		CHECK(fr->need == fr->consumed);
		*sum = 0;
		for (size_t i = 0; i < fr->len; i++)
			*sum = *sum * 31 + copy[fr->off + i];
	} else if (r == 0) {
		CHECK(fr->need == 0 || fr->need > len);
	} else {
		CHECK(r == -EMSGSIZE || r == -EPROTO);
	}
	free(copy);
	return r;
}

/* Decode what is buffered: frames from @at on, into @res. Returns the
 * new @at, or SIZE_MAX once an error ended the stream. */
static size_t drain(const weft_codec *c, const uint8_t *buf, size_t at,
		    size_t have, struct result *res)
{
	weft_frame fr;
	uint64_t sum;
	int r;

	while ((r = decode_exact(c, buf + at, have - at, &fr, &sum)) == 1) {
		CHECK(fr.consumed > 0); /* progress: a frame is never empty */
		CHECK(res->n < MAX_FRAMES);
		res->consumed[res->n] = fr.consumed;
		res->off[res->n] = fr.off;
		res->len[res->n] = fr.len;
		res->sum[res->n] = sum;
		res->n++;
		at += fr.consumed;
	}
	if (r < 0) {
		res->end = r;
		res->rest = have - at;
		return SIZE_MAX;
	}
	res->end = 0;
	res->need = fr.need;
	res->rest = have - at;
	return at;
}

static uint64_t next(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

/* Feed @len bytes in chunks of 1 to @most bytes, decoding after each. */
static void feed(const weft_codec *c, const uint8_t *data, size_t len,
		 uint64_t seed, size_t most, struct result *res)
{
	size_t fed = 0, at = 0;

	memset(res, 0, sizeof(*res));
	while (fed < len) {
		size_t take = 1 + next(&seed) % most;

		if (take > len - fed)
			take = len - fed;
		fed += take;
		/* The reader would keep data[at, fed); decode it. */
		at = drain(c, data, at, fed, res);
		if (at == SIZE_MAX)
			return;
	}
}

static void same(const struct result *a, const struct result *b)
{
	CHECK(a->n == b->n);
	for (size_t i = 0; i < a->n; i++) {
		CHECK(a->consumed[i] == b->consumed[i]);
		CHECK(a->off[i] == b->off[i]);
		CHECK(a->len[i] == b->len[i]);
		CHECK(a->sum[i] == b->sum[i]);
	}
	/* An error ends both at the same frame; the bytes after it that
	 * had arrived depend on the split. */
	CHECK(a->end == b->end);
	if (!a->end) {
		CHECK(a->need == b->need);
		CHECK(a->rest == b->rest);
	}
}

static void round_trip(const weft_codec *c, const uint8_t *p, size_t len)
{
	uint8_t out[256 + 64];
	weft_frame fr;
	ssize_t n;

	if (len > 256)
		len = 256;
	n = weft_codec_encode(c, p, len, out, sizeof(out));
	if (n < 0) {
		CHECK(n == -EMSGSIZE || n == -EINVAL || n == -ENOBUFS);
		return;
	}
	CHECK(weft_codec_decode(c, out, (size_t)n, &fr) == 1);
	CHECK(fr.consumed == (size_t)n);
	CHECK(fr.len >= len);
	CHECK(memcmp(out + fr.consumed - len, p, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	weft_codec c;
	uint64_t seed;

	if (size < 8)
		return 0;
	weft_codec_init(&c);
	c.length_bytes = 1 + (data[0] & 7);
	c.little_endian = data[1] & 1;
	c.length_offset = data[2] % 4;
	c.strip = data[1] & 2 ? WEFT_CODEC_STRIP_HEADER : data[3] % 16;
	c.length_adjust = (int8_t)data[4];
	if (data[1] & 8)
		c.length_adjust *= INT64_C(1) << 56;
	c.max_frame = data[1] & 4 ? SIZE_MAX :
		      (size_t)data[5] << 8 | data[6];
	seed = data[7];
	CHECK(weft_codec_check(&c) == 0);
	data += 8;
	size -= 8;

	memset(&whole, 0, sizeof(whole));
	drain(&c, data, 0, size, &whole);
	feed(&c, data, size, seed, 8, &split);
	same(&whole, &split);
	feed(&c, data, size, seed ^ 0x5bd1e995, size ? size : 1, &split);
	same(&whole, &split);
	round_trip(&c, data, size);
	return 0;
}
