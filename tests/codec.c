/* SPDX-License-Identifier: MIT */
/*
 * weft_codec: tokio-util's golden vectors byte for byte (its own tests,
 * tokio-util 0.7 tests/length_delimited.rs, and its documented examples),
 * the edges (0-byte frame, exactly max_frame, one over refused from the
 * header alone, every prefix of a frame, 8-byte fields near 2^64), the
 * round trip for every width, byte order, offset, adjustment and strip,
 * and frames fed in random splits through an accumulate-and-decode loop.
 * Inputs that end at a page boundary followed by a PROT_NONE page turn a
 * read past buf + len into a crash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <weft/codec.h>

/* ------------------------------------------------------------ helpers */

/* A copy of @n bytes that ends where an unreadable page starts. */
struct fenced {
	unsigned char *map;
	size_t map_len;
	unsigned char *p;
};

static struct fenced fence(const void *src, size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_pages = (n + pg - 1) / pg + 1;
	struct fenced f;

	f.map_len = (data_pages + 1) * pg;
	f.map = mmap(NULL, f.map_len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(f.map, MAP_FAILED);
	cr_assert_eq(mprotect(f.map + data_pages * pg, pg, PROT_NONE), 0);
	f.p = f.map + data_pages * pg - n;
	if (n)
		memcpy(f.p, src, n);
	return f;
}

static void unfence(struct fenced *f)
{
	munmap(f->map, f->map_len);
}

/* Decode @in (fenced) and expect one whole frame equal to @want. */
static void expect_frame(const weft_codec *c, const void *in, size_t in_len,
			 size_t consumed, const void *want, size_t want_len)
{
	struct fenced f = fence(in, in_len);
	weft_frame fr;

	cr_assert_eq(weft_codec_decode(c, f.p, in_len, &fr), 1);
	cr_assert_eq(fr.consumed, consumed);
	cr_assert_eq(fr.need, consumed);
	cr_assert_eq(fr.len, want_len, "len %zu, want %zu", fr.len, want_len);
	cr_assert_arr_eq(f.p + fr.off, want, want_len);
	unfence(&f);
}

struct bytes {
	const char *p;
	size_t n;
};

#define B(lit) { (lit), sizeof(lit) - 1 }

/* Decode a stream of frames whole and expect exactly @n frames @want[i]. */
static void expect_frames(const weft_codec *c, const void *in, size_t in_len,
			  const struct bytes *want, size_t n)
{
	struct fenced f = fence(in, in_len);
	size_t at = 0;
	weft_frame fr;

	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(weft_codec_decode(c, f.p + at, in_len - at, &fr),
			     1, "frame %zu", i);
		cr_assert_eq(fr.len, want[i].n, "frame %zu", i);
		cr_assert_arr_eq(f.p + at + fr.off, want[i].p, fr.len);
		at += fr.consumed;
	}
	cr_assert_eq(at, in_len);
	cr_assert_eq(weft_codec_decode(c, f.p + at, 0, &fr), 0);
	cr_assert_eq(fr.need, 0);
	unfence(&f);
}

static void expect_encoded(const weft_codec *c, const char *payload,
			   const void *want, size_t want_len)
{
	unsigned char out[256];
	ssize_t n = weft_codec_encode(c, payload, strlen(payload), out,
				      sizeof(out));

	cr_assert_eq(n, (ssize_t)want_len, "encode returned %zd", n);
	cr_assert_arr_eq(out, want, want_len);
}

#define S(lit) (lit), (sizeof(lit) - 1)

/* ------------------------------------------------------ config, check */

Test(codec, defaults_are_tokio_util_new)
{
	weft_codec c;

	weft_codec_init(&c);
	cr_assert_eq(c.size, sizeof(c));
	cr_assert_eq(c.length_bytes, 4);
	cr_assert_eq(c.little_endian, false);
	cr_assert_eq(c.length_offset, 0);
	cr_assert_eq(c.length_adjust, 0);
	cr_assert_eq(c.strip, WEFT_CODEC_STRIP_HEADER);
	cr_assert_eq(c.max_frame, 8 * 1024 * 1024);
	cr_assert_eq(weft_codec_check(&c), 0);
	weft_codec_init(NULL); /* no crash */
}

Test(codec, check_refuses_bad_configs)
{
	weft_codec c;
	weft_frame fr;
	unsigned char b[16] = { 0 };

	cr_assert_eq(weft_codec_check(NULL), -EINVAL);
	for (unsigned w = 0; w <= 9; w++) {
		weft_codec_init(&c);
		c.length_bytes = w;
		cr_assert_eq(weft_codec_check(&c), w >= 1 && w <= 8 ? 0 : -EINVAL,
			     "width %u", w);
	}
	weft_codec_init(&c);
	c.size = sizeof(c) - 1;
	cr_assert_eq(weft_codec_check(&c), -EINVAL);
	weft_codec_init(&c);
	c.length_offset = WEFT_CODEC_HEADER_MAX - 4;
	cr_assert_eq(weft_codec_check(&c), 0);
	c.length_offset++;
	cr_assert_eq(weft_codec_check(&c), -EINVAL);
	c.length_offset = SIZE_MAX - 1; /* offset + width must not wrap */
	cr_assert_eq(weft_codec_check(&c), -EINVAL);
	weft_codec_init(&c);
	c.strip = WEFT_CODEC_HEADER_MAX;
	cr_assert_eq(weft_codec_check(&c), 0);
	c.strip++;
	cr_assert_eq(weft_codec_check(&c), -EINVAL);
	/* Every call refuses it too, and writes nothing. */
	cr_assert_eq(weft_codec_decode(&c, b, sizeof(b), &fr), -EINVAL);
	cr_assert_eq(weft_codec_header(&c, 1, b, sizeof(b)), -EINVAL);
	cr_assert_eq(weft_codec_encode(&c, b, 1, b + 8, 8), -EINVAL);
}

Test(codec, null_arguments)
{
	weft_codec c;
	weft_frame fr;
	unsigned char b[16] = { 0 };

	weft_codec_init(&c);
	cr_assert_eq(weft_codec_decode(NULL, b, 4, &fr), -EINVAL);
	cr_assert_eq(weft_codec_decode(&c, b, 4, NULL), -EINVAL);
	cr_assert_eq(weft_codec_decode(&c, NULL, 4, &fr), -EINVAL);
	cr_assert_eq(weft_codec_decode(&c, NULL, 0, &fr), 0);
	cr_assert_eq(weft_codec_header(NULL, 1, b, sizeof(b)), -EINVAL);
	cr_assert_eq(weft_codec_header(&c, 1, NULL, 8), -EINVAL);
	cr_assert_eq(weft_codec_encode(NULL, b, 1, b + 8, 8), -EINVAL);
	cr_assert_eq(weft_codec_encode(&c, NULL, 1, b, 8), -EINVAL);
	cr_assert_eq(weft_codec_encode(&c, b, 1, NULL, 8), -EINVAL);
	cr_assert_eq(weft_codec_encode(&c, NULL, 0, b, 8), 4);
}

/* ------------------------------------ tokio-util golden vectors: decode */

Test(codec, tokio_read_single_frame)
{
	weft_codec c;

	weft_codec_init(&c);
	expect_frame(&c, S("\x00\x00\x00\x09" "abcdefghi"), 13, S("abcdefghi"));
	c.little_endian = true;
	expect_frame(&c, S("\x09\x00\x00\x00" "abcdefghi"), 13, S("abcdefghi"));
}

Test(codec, tokio_read_multi_frame_one_packet)
{
	static const struct bytes want[] = { B("abcdefghi"), B("123"),
					     B("hello world") };
	weft_codec c;

	weft_codec_init(&c);
	expect_frames(&c, S("\x00\x00\x00\x09" "abcdefghi"
			    "\x00\x00\x00\x03" "123"
			    "\x00\x00\x00\x0b" "hello world"), want, 3);
}

Test(codec, tokio_read_max_frame_len)
{
	weft_codec c;
	weft_frame fr;

	weft_codec_init(&c);
	c.max_frame = 5;
	cr_assert_eq(weft_codec_decode(&c, S("\x00\x00\x00\x09" "abcdefghi"),
				       &fr), -EMSGSIZE);
}

Test(codec, tokio_read_one_byte_length_field)
{
	weft_codec c;

	weft_codec_init(&c);
	c.length_bytes = 1;
	expect_frame(&c, S("\x09" "abcdefghi"), 10, S("abcdefghi"));
}

Test(codec, tokio_read_header_offset)
{
	weft_codec c;

	weft_codec_init(&c);
	c.length_bytes = 2;
	c.length_offset = 4;
	expect_frame(&c, S("zzzz\x00\x09" "abcdefghi"), 15, S("abcdefghi"));
}

Test(codec, tokio_read_skip_none_adjusted)
{
	static const struct bytes want[] = { B("xx\x00\x09" "abcdefghi"),
					     B("yy\x00\x03" "123"),
					     B("zz\x00\x0b" "hello world") };
	weft_codec c;

	weft_codec_init(&c);
	c.length_bytes = 2;
	c.length_offset = 2;
	c.strip = 0;
	c.length_adjust = 4;
	expect_frames(&c, S("xx\x00\x09" "abcdefghi" "yy\x00\x03" "123"
			    "zz\x00\x0b" "hello world"), want, 3);
}

Test(codec, tokio_read_length_adjusted_skip_past_field)
{
	weft_codec c;

	weft_codec_init(&c);
	c.length_bytes = 3;
	c.strip = 4;
	expect_frame(&c, S("\x00\x00\x0b\x0c" "Hello world"), 15,
		     S("Hello world"));
}

Test(codec, tokio_read_length_includes_head)
{
	static const struct bytes want[] = { B("abcdefghi"), B("123"),
					     B("hello world") };
	weft_codec c;

	weft_codec_init(&c);
	c.length_bytes = 2;
	c.length_adjust = -2;
	expect_frames(&c, S("\x00\x0b" "abcdefghi" "\x00\x05" "123"
			    "\x00\x0d" "hello world"), want, 3);
}

/* tokio-util's doc examples 5 and 6: hdr1, a u16 length, hdr2, payload. */
Test(codec, tokio_doc_examples_5_and_6)
{
	weft_codec c;

	weft_codec_init(&c);
	c.length_bytes = 2;
	c.length_offset = 1;
	c.length_adjust = 1;
	c.strip = 3;
	expect_frame(&c, S("\xca\x00\x0b\xfe" "Hello world"), 15,
		     S("\xfe" "Hello world"));
	c.length_adjust = -3;
	expect_frame(&c, S("\xca\x00\x0f\xfe" "Hello world"), 15,
		     S("\xfe" "Hello world"));
}

/* ------------------------------------ tokio-util golden vectors: encode */

Test(codec, tokio_write_vectors)
{
	weft_codec c;

	weft_codec_init(&c);
	expect_encoded(&c, "abcdefghi", S("\x00\x00\x00\x09" "abcdefghi"));
	expect_encoded(&c, "hello world", S("\x00\x00\x00\x0b" "hello world"));
	expect_encoded(&c, "", S("\x00\x00\x00\x00"));
	c.length_adjust = -2;
	expect_encoded(&c, "abcdefghi", S("\x00\x00\x00\x0b" "abcdefghi"));
	weft_codec_init(&c);
	c.little_endian = true;
	expect_encoded(&c, "abcdefghi", S("\x09\x00\x00\x00" "abcdefghi"));
	weft_codec_init(&c);
	c.length_bytes = 1;
	expect_encoded(&c, "abcdefghi", S("\x09" "abcdefghi"));
	weft_codec_init(&c);
	c.length_bytes = 2;
	expect_encoded(&c, "hello world", S("\x00\x0b" "hello world"));
}

Test(codec, tokio_write_max_frame_len)
{
	weft_codec c;
	unsigned char out[64];

	weft_codec_init(&c);
	c.max_frame = 5;
	cr_assert_eq(weft_codec_encode(&c, "abcdef", 6, out, sizeof(out)),
		     -EMSGSIZE);
	cr_assert_eq(weft_codec_encode(&c, "abcde", 5, out, sizeof(out)), 9);
}

/* weft writes the whole header where tokio-util's encoder leaves out the
 * offset bytes: a header the caller fills, then the field. */
Test(codec, write_offset_and_kept_header)
{
	weft_codec c;
	unsigned char out[64];
	ssize_t n;

	weft_codec_init(&c);
	c.length_bytes = 2;
	c.length_offset = 2;
	c.strip = 0;
	c.length_adjust = 4;
	n = weft_codec_encode(&c, "abcdefghi", 9, out, sizeof(out));
	cr_assert_eq(n, 13);
	cr_assert_arr_eq(out, "\x00\x00\x00\x09" "abcdefghi", 13);
	memcpy(out, "xx", 2);
	expect_frame(&c, out, 13, 13, "xx\x00\x09" "abcdefghi", 13);
}

/* ------------------------------------------------------------- edges */

Test(codec, zero_byte_frame)
{
	weft_codec c;
	unsigned char out[8];

	weft_codec_init(&c);
	expect_frame(&c, S("\x00\x00\x00\x00"), 4, "", 0);
	cr_assert_eq(weft_codec_encode(&c, "", 0, out, sizeof(out)), 4);
	cr_assert_arr_eq(out, "\0\0\0\0", 4);
	cr_assert_eq(weft_codec_header(&c, 0, out, 4), 4);
}

Test(codec, exactly_max_and_one_over)
{
	weft_codec c;
	weft_frame fr;
	unsigned char hdr[4];
	unsigned char *big, *payload;
	size_t max = 1000;

	weft_codec_init(&c);
	c.max_frame = max;
	big = calloc(1, max + 8);
	payload = malloc(max + 1);
	cr_assert(big && payload);
	memset(payload, 'p', max + 1);
	cr_assert_eq(weft_codec_encode(&c, payload, max, big, max + 4),
		     (ssize_t)(max + 4));
	expect_frame(&c, big, max + 4, max + 4, payload, max);
	/* One over: refused by the encoder, and by the decoder from the four
	 * header bytes alone, however little of the payload is there. */
	cr_assert_eq(weft_codec_encode(&c, payload, max + 1, big, max + 8),
		     -EMSGSIZE);
	cr_assert_eq(weft_codec_header(&c, max + 1, hdr, 4), -EMSGSIZE);
	hdr[0] = 0;
	hdr[1] = 0;
	hdr[2] = (unsigned char)((max + 1) >> 8);
	hdr[3] = (unsigned char)(max + 1);
	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(weft_codec_decode(&c, hdr, i, &fr), 0);
	cr_assert_eq(weft_codec_decode(&c, hdr, 4, &fr), -EMSGSIZE);
	/* The default maximum, 8 MiB: the same from the header. */
	weft_codec_init(&c);
	cr_assert_eq(weft_codec_decode(&c, S("\x00\x80\x00\x00"), &fr), 0);
	cr_assert_eq(fr.need, 4 + (8u << 20));
	cr_assert_eq(weft_codec_decode(&c, S("\x00\x80\x00\x01"), &fr),
		     -EMSGSIZE);
	free(payload);
	free(big);
}

/* A frame in every prefix: nothing known before the header, the whole
 * size once it is there, the frame only when all of it is. */
Test(codec, every_prefix_of_a_frame)
{
	weft_codec c;
	unsigned char frame[64];
	weft_frame fr;
	ssize_t n;

	weft_codec_init(&c);
	c.length_offset = 3;
	c.length_bytes = 3;
	c.little_endian = true;
	c.strip = 8; /* two header bytes after the field */
	n = weft_codec_encode(&c, "payload", 7, frame, sizeof(frame));
	cr_assert_eq(n, 15);
	for (size_t i = 0; i <= (size_t)n; i++) {
		struct fenced f = fence(frame, i);
		int r = weft_codec_decode(&c, f.p, i, &fr);

		if (i < 8) {
			cr_assert_eq(r, 0, "prefix %zu", i);
			cr_assert_eq(fr.need, 0, "prefix %zu", i);
		} else if (i < 15) {
			cr_assert_eq(r, 0, "prefix %zu", i);
			cr_assert_eq(fr.need, 15, "prefix %zu", i);
		} else {
			cr_assert_eq(r, 1);
			cr_assert_eq(fr.off, 8);
			cr_assert_eq(fr.len, 7);
			cr_assert_arr_eq(f.p + 8, "payload", 7);
		}
		unfence(&f);
	}
}

Test(codec, adjustment_underflow_and_overflow)
{
	weft_codec c;
	weft_frame fr;
	unsigned char b[8];

	/* A field counting its own 2 bytes that says 1. */
	weft_codec_init(&c);
	c.length_bytes = 2;
	c.length_adjust = -2;
	cr_assert_eq(weft_codec_decode(&c, S("\x00\x01"), &fr), -EPROTO);
	expect_frame(&c, S("\x00\x02"), 2, "", 0);
	/* 8-byte fields near 2^64, the maximum out of the way. */
	weft_codec_init(&c);
	c.length_bytes = 8;
	c.max_frame = SIZE_MAX;
	c.length_adjust = 1;
	cr_assert_eq(weft_codec_decode(&c, S("\xff\xff\xff\xff\xff\xff\xff\xff"),
				       &fr), -EPROTO);
	/* field + adjust fits, strip + that does not. */
	c.length_adjust = 0;
	cr_assert_eq(weft_codec_decode(&c, S("\xff\xff\xff\xff\xff\xff\xff\xf8"),
				       &fr), -EPROTO);
	cr_assert_eq(weft_codec_decode(&c, S("\xff\xff\xff\xff\xff\xff\xff\xf7"),
				       &fr), 0);
	cr_assert_eq(fr.need, SIZE_MAX);
	/* strip past the field: strip + n would wrap to a small size. */
	c.strip = 20;
	cr_assert_eq(weft_codec_decode(&c, S("\xff\xff\xff\xff\xff\xff\xff\xfb"
					     "123456789abc"), &fr), -EPROTO);
	c.strip = WEFT_CODEC_STRIP_HEADER;
	c.length_adjust = INT64_MIN;
	cr_assert_eq(weft_codec_decode(&c, S("\x7f\xff\xff\xff\xff\xff\xff\xff"),
				       &fr), -EPROTO);
	cr_assert_eq(weft_codec_decode(&c, S("\x80\x00\x00\x00\x00\x00\x00\x00"),
				       &fr), 1);
	cr_assert_eq(fr.len, 0);
	c.length_adjust = INT64_MAX;
	cr_assert_eq(weft_codec_decode(&c, S("\x00\x00\x00\x00\x00\x00\x00\x01"),
				       &fr), 0);
	cr_assert_eq(fr.need, (size_t)INT64_MAX + 9);
	/* The encoder: a payload shorter than a positive adjustment. */
	weft_codec_init(&c);
	c.length_adjust = 3;
	cr_assert_eq(weft_codec_header(&c, 2, b, sizeof(b)), -EINVAL);
	cr_assert_eq(weft_codec_header(&c, 3, b, sizeof(b)), 4);
	cr_assert_arr_eq(b, "\0\0\0\0", 4);
}

/* A frame that ends before its own length field does (possible only when
 * strip keeps part of the header) is refused, not returned. */
Test(codec, frame_ending_inside_its_header)
{
	weft_codec c;
	weft_frame fr;

	weft_codec_init(&c);
	c.length_offset = 2;
	c.length_bytes = 2;
	c.strip = 0;
	cr_assert_eq(weft_codec_decode(&c, S("ab\x00\x03"), &fr), -EPROTO);
	expect_frame(&c, S("ab\x00\x04"), 4, S("ab\x00\x04"));
	/* Stripping part of the header: the rest counts toward the frame. */
	c.strip = 1;
	cr_assert_eq(weft_codec_decode(&c, S("ab\x00\x02"), &fr), -EPROTO);
	expect_frame(&c, S("ab\x00\x03"), 4, S("b\x00\x03"));
}

Test(codec, encoder_field_limits)
{
	weft_codec c;
	unsigned char b[300];

	weft_codec_init(&c);
	c.length_bytes = 1;
	cr_assert_eq(weft_codec_header(&c, 255, b, sizeof(b)), 1);
	cr_assert_eq(b[0], 255);
	cr_assert_eq(weft_codec_header(&c, 256, b, sizeof(b)), -EMSGSIZE);
	/* The field counts the header: the payload may not reach max. */
	weft_codec_init(&c);
	c.max_frame = 10;
	c.length_adjust = -4;
	cr_assert_eq(weft_codec_header(&c, 6, b, sizeof(b)), 4);
	cr_assert_eq(weft_codec_header(&c, 7, b, sizeof(b)), -EMSGSIZE);
	/* Too small a buffer: nothing written. */
	memset(b, 0xaa, sizeof(b));
	cr_assert_eq(weft_codec_header(&c, 1, b, 3), -ENOBUFS);
	cr_assert_eq(weft_codec_encode(&c, "abc", 3, b, 6), -ENOBUFS);
	cr_assert_eq(b[0], 0xaa);
	cr_assert_eq(weft_codec_encode(&c, "abc", 3, b, 7), 7);
}

/* ---------------------------------------------------------- round trip */

static const int64_t adjusts[] = { 0, 1, 2, 5, -1, -4, -12 };

/* The round trip for one config: every payload length 0..40 comes back,
 * after the header bytes at and after strip, when the encoder accepts the
 * length. Returns how many lengths the encoder accepted. */
static int round_trip(const weft_codec *c)
{
	unsigned char payload[40], wire[128], want[128];
	size_t field_end = c->length_offset + c->length_bytes;
	size_t strip = c->strip == WEFT_CODEC_STRIP_HEADER ? field_end : c->strip;
	size_t head = strip > field_end ? strip : field_end;
	int ok = 0;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (unsigned char)(i * 7 + 1);
	for (size_t len = 0; len <= sizeof(payload); len++) {
		ssize_t n = weft_codec_encode(c, payload, len, wire,
					      sizeof(wire));

		if (n == -EMSGSIZE || n == -EINVAL)
			continue; /* that length has no header here */
		cr_assert_eq(n, (ssize_t)(head + len), "len %zu: %zd", len, n);
		/* Whatever the caller puts in the other header bytes. */
		for (size_t i = 0; i < head; i++)
			if (i < c->length_offset || i >= field_end)
				wire[i] = (unsigned char)(0xc0 + i);
		memcpy(want, wire + strip, head - strip);
		memcpy(want + head - strip, payload, len);
		expect_frame(c, wire, (size_t)n, (size_t)n, want,
			     head - strip + len);
		ok++;
	}
	return ok;
}

Test(codec, round_trip_every_config)
{
	static const size_t offsets[] = { 0, 1, 3 };
	weft_codec c;
	int configs = 0;

	for (unsigned w = 1; w <= 8; w++)
		for (int le = 0; le < 2; le++)
			for (size_t o = 0; o < 3; o++)
				for (size_t a = 0; a < 7; a++)
					for (int s = 0; s < 4; s++) {
		size_t field_end = offsets[o] + w;

		weft_codec_init(&c);
		c.length_bytes = w;
		c.little_endian = le;
		c.length_offset = offsets[o];
		c.length_adjust = adjusts[a];
		c.max_frame = 1000;
		c.strip = s == 0 ? WEFT_CODEC_STRIP_HEADER :
			  s == 1 ? 0 : s == 2 ? field_end - 1 : field_end + 2;
		/* A 1-byte field fits lengths up to 255: every config
		 * here takes at least the longer payloads. */
		cr_assert_gt(round_trip(&c), 0, "w %u le %d o %zu a %zu s %d",
			     w, le, offsets[o], a, s);
		configs++;
	}
	cr_assert_eq(configs, 8 * 2 * 3 * 7 * 4);
}

/* -------------------------------------------------- split independence */

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

/*
 * Random frames concatenated, then fed in random splits (1 byte to the
 * whole rest) into a buffer that a loop decodes after each read, as a
 * framed reader will: the same frames, in order, for every split.
 */
Test(codec, split_independent, .timeout = 60)
{
	enum { FRAMES = 60, MAXLEN = 300 };
	static unsigned char stream[FRAMES * (MAXLEN + 16)];
	static unsigned char acc[sizeof(stream)];
	static size_t starts[FRAMES], lens[FRAMES];

	for (uint64_t seed = 1; seed <= 200; seed++) {
		weft_codec c;
		size_t total = 0, have = 0, fed = 0, got = 0;

		rng_state = seed * 0x9E3779B97F4A7C15ull;
		weft_codec_init(&c);
		c.length_bytes = 2 + rng() % 7; /* fits MAXLEN + header */
		c.little_endian = rng() & 1;
		c.length_offset = rng() % 3;
		c.length_adjust = (int64_t)(rng() % 9) - 4;
		c.strip = rng() % 2 ? WEFT_CODEC_STRIP_HEADER : rng() % 12;
		c.max_frame = MAXLEN + 16;
		for (int i = 0; i < FRAMES; i++) {
			unsigned char payload[MAXLEN];
			size_t len = rng() % 4 ? rng() % 40 : rng() % MAXLEN;
			ssize_t n;

			for (size_t k = 0; k < len; k++)
				payload[k] = (unsigned char)rng();
			n = weft_codec_encode(&c, payload, len, stream + total,
					      sizeof(stream) - total);
			if (n < 0) { /* too short for the adjustment */
				i--;
				continue;
			}
			starts[i] = total;
			lens[i] = (size_t)n;
			total += (size_t)n;
		}
		while (fed < total) {
			size_t take = 1 + rng() % (rng() % 2 ? 8 : total - fed);
			size_t at = 0;
			weft_frame fr;
			int r;

			if (take > total - fed)
				take = total - fed;
			memcpy(acc + have, stream + fed, take);
			have += take;
			fed += take;
			while ((r = weft_codec_decode(&c, acc + at, have - at,
						      &fr)) == 1) {
				cr_assert_lt(got, FRAMES);
				cr_assert_eq(fr.consumed, lens[got],
					     "seed %lu frame %zu", seed, got);
				cr_assert_arr_eq(acc + at, stream + starts[got],
						 fr.consumed);
				at += fr.consumed;
				got++;
			}
			cr_assert_eq(r, 0, "seed %lu: %d", seed, r);
			if (fr.need)
				cr_assert_eq(fr.need, lens[got]);
			memmove(acc, acc + at, have - at);
			have -= at;
		}
		cr_assert_eq(got, FRAMES, "seed %lu", seed);
		cr_assert_eq(have, 0);
	}
}
