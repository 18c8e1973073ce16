/* SPDX-License-Identifier: MIT */
/*
 * The weft side of tests/tokio-diff/run.sh: reads the cases of gen.py,
 * one a line ("D|E width le offset strip adjust max hex"; strip -1 is the
 * default), and answers each as src/main.rs does for tokio-util: decoded
 * frames in hex, each followed by a comma, then END (more input needed)
 * or ERR; or the encoded bytes in hex, or ERR.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/codec.h>

static unsigned char data[1 << 16], out[1 << 16];
static char line[1 << 18], hex[1 << 18];

static void decode(const weft_codec *c, size_t n)
{
	size_t at = 0;
	weft_frame f;
	int r;

	while ((r = weft_codec_decode(c, data + at, n - at, &f)) == 1) {
		for (size_t i = 0; i < f.len; i++)
			printf("%02x", data[at + f.off + i]);
		printf(",");
		at += f.consumed;
	}
	printf("%s\n", r == 0 ? "END" : "ERR");
}

static void encode(const weft_codec *c, size_t n)
{
	ssize_t r = weft_codec_encode(c, data, n, out, sizeof(out));

	if (r < 0)
		printf("ERR\n");
	for (ssize_t i = 0; i < r; i++)
		printf("%02x%s", out[i], i + 1 == r ? "\n" : "");
	if (r == 0)
		printf("\n");
}

int main(void)
{
	while (fgets(line, sizeof(line), stdin)) {
		char kind;
		unsigned w, v;
		int le;
		size_t off, max, n = 0;
		long long strip, adj;
		weft_codec c;

		hex[0] = 0;
		if (sscanf(line, "%c %u %d %zu %lld %lld %zu %s", &kind, &w, &le,
			   &off, &strip, &adj, &max, hex) < 7)
			return 1;
		for (size_t i = 0; hex[i] && hex[i + 1] && n < sizeof(data);
		     i += 2, n++) {
			sscanf(hex + i, "%2x", &v);
			data[n] = (unsigned char)v;
		}
		weft_codec_init(&c);
		c.length_bytes = w;
		c.little_endian = le;
		c.length_offset = off;
		c.strip = strip < 0 ? WEFT_CODEC_STRIP_HEADER : (size_t)strip;
		c.length_adjust = adj;
		c.max_frame = max;
		if (kind == 'D')
			decode(&c, n);
		else
			encode(&c, n);
	}
	return 0;
}
