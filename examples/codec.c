/* SPDX-License-Identifier: MIT */
/*
 * codec: length-delimited frames with two framings (docs/codec.md).
 *
 * First tokio-util's default framing (a 4-byte big-endian length before
 * each payload), then a protocol with a version byte, a 2-byte
 * little-endian length that counts the whole frame, and the version kept
 * in each decoded frame. Each framing encodes three messages into one
 * buffer, which then arrives three bytes at a time as from a socket; a
 * reader decodes whatever it holds after each read. Prints the frames and
 * exits 0 when every message came back intact and in order.
 */
#include <stdio.h>
#include <string.h>

#include <weft.h>

static const char *const messages[] = { "hello", "", "a longer message" };
#define N (sizeof(messages) / sizeof(messages[0]))

/* Encode the messages, feed them 3 bytes at a time, check what comes out.
 * @version: the byte to put at offset 0 of each header, or -1 for none. */
static int run(const char *name, const weft_codec *c, int version)
{
	unsigned char wire[256], held[256];
	size_t wire_len = 0, have = 0, fed = 0, got = 0;

	for (size_t i = 0; i < N; i++) {
		ssize_t n = weft_codec_encode(c, messages[i],
					      strlen(messages[i]),
					      wire + wire_len,
					      sizeof(wire) - wire_len);

		if (n < 0) {
			fprintf(stderr, "%s: encode: %s\n", name,
				weft_strerror((int)n));
			return 1;
		}
		if (version >= 0) /* the header's other bytes are ours */
			wire[wire_len] = (unsigned char)version;
		wire_len += (size_t)n;
	}
	printf("%s: %zu bytes on the wire for %zu messages\n", name, wire_len,
	       N);

	while (fed < wire_len) {
		size_t take = wire_len - fed < 3 ? wire_len - fed : 3;
		size_t at = 0;
		weft_frame f;
		int r;

		memcpy(held + have, wire + fed, take); /* a "read" */
		have += take;
		fed += take;
		while ((r = weft_codec_decode(c, held + at, have - at, &f)) == 1) {
			const unsigned char *frame = held + at + f.off;
			size_t skip = version >= 0 ? 3 : 0; /* kept header */

			printf("  frame %zu: %zu bytes: \"%.*s\"\n", got, f.len,
			       (int)(f.len - skip), (const char *)frame + skip);
			if (got >= N || f.len - skip != strlen(messages[got]) ||
			    memcmp(frame + skip, messages[got], f.len - skip) ||
			    (version >= 0 && frame[0] != version)) {
				fprintf(stderr, "%s: frame %zu is wrong\n",
					name, got);
				return 1;
			}
			at += f.consumed;
			got++;
		}
		if (r < 0) { /* a real reader closes the connection here */
			fprintf(stderr, "%s: decode: %s\n", name,
				weft_strerror(r));
			return 1;
		}
		memmove(held, held + at, have - at);
		have -= at;
	}
	if (got != N || have) {
		fprintf(stderr, "%s: %zu frames, %zu bytes left\n", name, got,
			have);
		return 1;
	}
	return 0;
}

int main(void)
{
	weft_codec tokio, versioned;

	/* tokio-util's LengthDelimitedCodec::new(). */
	weft_codec_init(&tokio);

	/* [version: u8][len: u16 LE, counts all 3 header bytes][payload],
	 * the whole frame kept: tokio-util's length_field_offset(1),
	 * length_field_length(2), little_endian(), num_skip(0). No
	 * adjustment: field + length_adjust counts the bytes after strip,
	 * here the whole frame, which is what this field holds. */
	weft_codec_init(&versioned);
	versioned.length_offset = 1;
	versioned.length_bytes = 2;
	versioned.little_endian = true;
	versioned.strip = 0;
	versioned.max_frame = 1024;
	if (weft_codec_check(&versioned) != 0)
		return 1;

	if (run("tokio-util default", &tokio, -1) ||
	    run("versioned", &versioned, 7))
		return 1;
	printf("ok\n");
	return 0;
}
