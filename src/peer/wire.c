/* SPDX-License-Identifier: MIT */
/*
 * The handshake frame and endpoint URLs (docs/peer.md, "Wire").
 *
 * Handshake: 16 bytes, the payload of the first frame each way:
 *   0..3  "WEFT"
 *   4     version (PEER_VERSION)
 *   5     type: HS_HELLO (dialer), HS_WELCOME (acceptor: kept),
 *         HS_REFUSE (acceptor: closed; bytes 6..7 say why),
 *         HS_BEACON (a discovery datagram, not on a connection)
 *   6..7  the sender's listen port, big-endian (REFUSE: the reason)
 *   8..15 the sender's node identity, big-endian
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "peer/peer.h"

static const unsigned char magic[4] = { 'W', 'E', 'F', 'T' };

void weft__peer_hs_encode(unsigned char b[PEER_HS_LEN],
			  const struct peer_hs *h)
{
	memcpy(b, magic, 4);
	b[4] = (unsigned char)h->version;
	b[5] = (unsigned char)h->type;
	b[6] = (unsigned char)(h->port >> 8);
	b[7] = (unsigned char)h->port;
	for (int i = 0; i < 8; i++)
		b[8 + i] = (unsigned char)(h->id >> (56 - 8 * i));
}

int weft__peer_hs_decode(const void *p, size_t len, struct peer_hs *h)
{
	const unsigned char *b = p;

	if (len != PEER_HS_LEN || memcmp(b, magic, 4) != 0)
		return -EPROTO;
	h->version = b[4];
	h->type = b[5];
	h->port = (unsigned)b[6] << 8 | b[7];
	h->id = 0;
	for (int i = 0; i < 8; i++)
		h->id = h->id << 8 | b[8 + i];
	if (h->type < HS_HELLO || h->type > HS_BEACON)
		return -EPROTO;
	return 0;
}

int weft__peer_url_parse(const char *url, const char *scheme,
			 char host[PEER_HOST_MAX], uint16_t *port)
{
	const char *h, *end, *colon;
	size_t hl;

	if (!url || strncmp(url, scheme, strlen(scheme)) != 0)
		return -EINVAL;
	h = url + strlen(scheme);
	if (*h == '[') { /* [v6]:port */
		end = strchr(h, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		h++;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - h);
		if (memchr(h, ':', hl)) /* a bare IPv6 literal */
			return -EINVAL;
	}
	if (hl == 0 || hl >= PEER_HOST_MAX || memchr(h, '/', hl) ||
	    memchr(h, '@', hl))
		return -EINVAL;
	const char *d = colon + 1;
	unsigned long v = 0;
	if (*d < '0' || *d > '9')
		return -EINVAL;
	for (; *d >= '0' && *d <= '9'; d++) {
		v = v * 10 + (unsigned long)(*d - '0');
		if (v > 65535)
			return -EINVAL;
	}
	if (*d != '\0' || v == 0)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (uint16_t)v;
	return 0;
}

struct weft_peer_msg *weft__peer_msg_new(const void *data, size_t len)
{
	struct weft_peer_msg *m = malloc(sizeof(*m) + len);

	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	m->len = len;
	if (len)
		memcpy(m->data, data, len);
	return m;
}

void weft__peer_msg_unref(struct weft_peer_msg *m)
{
	if (m && atomic_fetch_sub_explicit(&m->refs, 1,
					   memory_order_acq_rel) == 1)
		free(m);
}
