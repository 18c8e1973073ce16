/* SPDX-License-Identifier: MIT */
/*
 * Length-delimited frames (weft/codec.h), tokio-util's LengthDelimitedCodec
 * in C (tokio-util 0.7, src/codec/length_delimited.rs).
 *
 * Decoding, as tokio-util's decode_head/decode_data do it:
 *  1. wait for head = max(length_offset + length_bytes, strip) bytes;
 *  2. read the field at length_offset; over max_frame: -EMSGSIZE (the raw
 *     field, before the adjustment, as tokio-util compares it);
 *  3. n = field + length_adjust, checked (tokio-util: checked_add/sub);
 *  4. the frame is the n bytes after the first strip bytes, so the whole
 *     frame is strip + n bytes.
 * Unlike tokio-util the decoder keeps no state between calls (tokio-util
 * remembers n between reads): it re-reads the header each time, which
 * costs a few loads and makes the result independent of how the input was
 * split. Every size is computed in uint64_t/size_t with explicit overflow
 * checks, since an 8-byte field can hold any value.
 *
 * This file includes nothing but weft/codec.h and libc, so that the fuzz
 * target (tests/fuzz/codec_fuzz.c) can be built from it with clang alone.
 */
#include <errno.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>

#include <weft/codec.h>

/* The first release's struct: the floor of c->size. */
#define CODEC_V1_SIZE \
	(offsetof(weft_codec, max_frame) + sizeof(((weft_codec *)0)->max_frame))

void weft_codec_init(weft_codec *c)
{
	if (!c)
		return;
	memset(c, 0, sizeof(*c));
	c->size = sizeof(*c);
	c->length_bytes = 4;
	c->little_endian = false;
	c->length_offset = 0;
	c->length_adjust = 0;
	c->strip = WEFT_CODEC_STRIP_HEADER;
	c->max_frame = 8u << 20;
}

/* The resolved geometry of a valid codec. */
struct geom {
	size_t field_end; /* length_offset + length_bytes */
	size_t strip;     /* the default resolved */
	size_t head;      /* max(field_end, strip): bytes to read the header */
};

static int load(const weft_codec *c, struct geom *g)
{
	if (!c || c->size < CODEC_V1_SIZE)
		return -EINVAL;
	if (c->length_bytes < 1 || c->length_bytes > 8)
		return -EINVAL;
	if (c->length_offset > WEFT_CODEC_HEADER_MAX)
		return -EINVAL; /* also keeps the sum below from overflowing */
	g->field_end = c->length_offset + c->length_bytes;
	g->strip = c->strip == WEFT_CODEC_STRIP_HEADER ? g->field_end : c->strip;
	g->head = g->strip > g->field_end ? g->strip : g->field_end;
	if (g->head > WEFT_CODEC_HEADER_MAX)
		return -EINVAL;
	return 0;
}

int weft_codec_check(const weft_codec *c)
{
	struct geom g;

	return load(c, &g);
}

static uint64_t get_field(const weft_codec *c, const unsigned char *p)
{
	uint64_t v = 0;

	if (c->little_endian) {
		for (unsigned i = c->length_bytes; i-- > 0;)
			v = v << 8 | p[i];
	} else {
		for (unsigned i = 0; i < c->length_bytes; i++)
			v = v << 8 | p[i];
	}
	return v;
}

static void put_field(const weft_codec *c, unsigned char *p, uint64_t v)
{
	unsigned n = c->length_bytes;

	for (unsigned i = 0; i < n; i++, v >>= 8)
		p[c->little_endian ? i : n - 1 - i] = (unsigned char)v;
}

/* |adj| as a uint64_t, INT64_MIN included. */
static uint64_t magnitude(int64_t adj)
{
	return adj < 0 ? (uint64_t)(-(adj + 1)) + 1 : (uint64_t)adj;
}

int weft_codec_decode(const weft_codec *c, const void *buf, size_t len,
		      weft_frame *out)
{
	const unsigned char *p = buf;
	struct geom g;
	uint64_t field, n, mag;
	int r;

	if (!out || (!buf && len))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	r = load(c, &g);
	if (r)
		return r;
	if (len < g.head)
		return 0;
	field = get_field(c, p + c->length_offset);
	if (field > (uint64_t)c->max_frame)
		return -EMSGSIZE;
	mag = magnitude(c->length_adjust);
	if (c->length_adjust < 0) {
		if (field < mag)
			return -EPROTO;
		n = field - mag;
	} else {
		if (field > UINT64_MAX - mag)
			return -EPROTO;
		n = field + mag;
	}
	/* The whole frame must fit a size_t: strip + n. */
	if (n > (uint64_t)(SIZE_MAX - g.strip))
		return -EPROTO;
	if (g.strip + n < g.field_end)
		return -EPROTO;
	out->need = g.strip + (size_t)n;
	if (len < out->need)
		return 0;
	out->consumed = out->need;
	out->off = g.strip;
	out->len = (size_t)n;
	return 1;
}

/*
 * The field value that frames a payload of @payload_len bytes, checked as
 * weft_codec_header() documents; nothing is written.
 */
static int field_for(const weft_codec *c, const struct geom *g,
		     size_t payload_len, uint64_t *field)
{
	uint64_t n, mag, width_max;

	if (payload_len > c->max_frame)
		return -EMSGSIZE;
	/* The decoder's n: every byte after strip, kept header included. */
	if ((uint64_t)payload_len > UINT64_MAX - (g->head - g->strip))
		return -EMSGSIZE;
	n = (uint64_t)(g->head - g->strip) + payload_len;
	mag = magnitude(c->length_adjust);
	if (c->length_adjust < 0) {
		if (n > UINT64_MAX - mag)
			return -EMSGSIZE;
		*field = n + mag;
	} else {
		if (n < mag)
			return -EINVAL;
		*field = n - mag;
	}
	width_max = c->length_bytes == 8 ? UINT64_MAX :
		    (UINT64_C(1) << (8 * c->length_bytes)) - 1;
	if (*field > (uint64_t)c->max_frame || *field > width_max)
		return -EMSGSIZE;
	return 0;
}

static void write_header(const weft_codec *c, const struct geom *g,
			 uint64_t field, unsigned char *hdr)
{
	memset(hdr, 0, g->head);
	put_field(c, hdr + c->length_offset, field);
}

/* load() then field_for(): the geometry and field of a payload's header. */
static int plan(const weft_codec *c, size_t payload_len, struct geom *g,
		uint64_t *field)
{
	int r = load(c, g);

	return r ? r : field_for(c, g, payload_len, field);
}

int weft_codec_header(const weft_codec *c, size_t payload_len, void *hdr,
		      size_t hdr_cap)
{
	struct geom g;
	uint64_t field;
	int r;

	if (!hdr)
		return -EINVAL;
	r = plan(c, payload_len, &g, &field);
	if (r)
		return r;
	if (hdr_cap < g.head)
		return -ENOBUFS;
	write_header(c, &g, field, hdr);
	return (int)g.head;
}

ssize_t weft_codec_encode(const weft_codec *c, const void *payload, size_t len,
			  void *out, size_t cap)
{
	struct geom g;
	uint64_t field;
	int r;

	if (!out || (!payload && len))
		return -EINVAL;
	r = plan(c, len, &g, &field);
	if (r)
		return r;
	/* Not reachable with a real payload (no object is that big), but
	 * the sum below and the ssize_t result must not wrap. */
	if (len > (size_t)SSIZE_MAX - g.head)
		return -EMSGSIZE;
	if (cap < g.head + len)
		return -ENOBUFS;
	write_header(c, &g, field, out);
	if (len)
		memcpy((unsigned char *)out + g.head, payload, len);
	return (ssize_t)(g.head + len);
}
