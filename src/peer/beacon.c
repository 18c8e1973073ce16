/* SPDX-License-Identifier: MIT */
/*
 * Local discovery: every beacon_ns the node sends one 16-byte datagram (the
 * handshake layout, type HS_BEACON, with its listen port and identity) to
 * the configured multicast group or broadcast address, and listens there
 * (SO_REUSEPORT, so several nodes of one host share the port). A node
 * heard for the first time is reported as WEFT_PEER_DISCOVERED with
 * "tcp://ITS-ADDRESS:ITS-PORT"; adding it is the application's decision.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/fiber.h>
#include <weft/net.h>
#include <weft/time.h>
#include <weft/udp.h>

#include "peer/peer.h"

struct beacon {
	weft_peer_node *node;
	struct sockaddr_in to;
	uint64_t *seen;
	size_t nseen, cap;
};

static bool first_time(struct beacon *b, uint64_t id)
{
	for (size_t i = 0; i < b->nseen; i++)
		if (b->seen[i] == id)
			return false;
	if (b->nseen == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		uint64_t *s = realloc(b->seen, cap * sizeof(*s));
		if (!s)
			return true; /* reported again later: harmless */
		b->seen = s;
		b->cap = cap;
	}
	b->seen[b->nseen++] = id;
	return true;
}

static void heard(struct beacon *b, const unsigned char *buf, int64_t len,
		  const struct sockaddr_storage *from, socklen_t fromlen)
{
	weft_peer_node *n = b->node;
	const struct sockaddr_in *f = (const void *)from;
	char ip[INET_ADDRSTRLEN], url[WEFT_PEER_URL_MAX];
	struct peer_hs h;

	if (len != PEER_HS_LEN || weft__peer_hs_decode(buf, (size_t)len, &h) ||
	    h.type != HS_BEACON || h.version != PEER_VERSION || h.id == n->id ||
	    from->ss_family != AF_INET || !first_time(b, h.id))
		return;
	inet_ntop(AF_INET, &f->sin_addr, ip, sizeof(ip));
	snprintf(url, sizeof(url), "tcp://%s:%u", ip, h.port);
	weft__peer_emit_addr(n, WEFT_PEER_DISCOVERED, 0, h.id, 0, false, from,
			     fromlen, url);
}

static void *beacon_fiber(void *arg)
{
	struct beacon *b = arg;
	weft_peer_node *n = b->node;
	unsigned char out[PEER_HS_LEN], in[64];
	struct peer_hs h = {
		.version = PEER_VERSION,
		.type = HS_BEACON,
		.port = n->port,
		.id = n->id,
	};
	uint64_t next = weft_now_ns();

	weft__peer_hs_encode(out, &h);
	while (!atomic_load(&n->closing)) {
		if (weft_now_ns() >= next) {
			weft_co_send_to(n->beacon_fd, out, sizeof(out),
					(struct sockaddr *)&b->to,
					sizeof(b->to), 0, 0);
			next += n->cfg.beacon_ns;
		}
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		int64_t r = weft_co_recv_from(n->beacon_fd, in, sizeof(in), 0,
					      &from, &fl, next);
		if (r > 0)
			heard(b, in, r, &from, fl);
		else if (r == -ECANCELED)
			break;
		else if (r != -ETIMEDOUT && atomic_load(&n->closing))
			break;
	}
	free(b->seen);
	free(b);
	weft__peer_fiber_exit(n);
	return NULL;
}

int weft__peer_beacon_start(weft_peer_node *n)
{
	char host[PEER_HOST_MAX];
	uint16_t port;
	struct beacon *b;
	int fd, one = 1, err;

	if (weft__peer_url_parse(n->cfg.beacon, "udp://", host, &port))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->node = n;
	b->to.sin_family = AF_INET;
	b->to.sin_port = htons(port);
	if (inet_pton(AF_INET, host, &b->to.sin_addr) != 1) {
		free(b);
		return -EINVAL;
	}
	fd = weft_udp_bind("0.0.0.0", port,
			   WEFT_UDP_REUSEADDR | WEFT_UDP_REUSEPORT);
	if (fd < 0) {
		free(b);
		return fd;
	}
	if (IN_MULTICAST(ntohl(b->to.sin_addr.s_addr))) {
		struct ip_mreq m = { .imr_multiaddr = b->to.sin_addr };
		m.imr_interface.s_addr = htonl(INADDR_ANY);
		err = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m,
				 sizeof(m));
		if (!err)
			err = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP,
					 &one, sizeof(one));
	} else {
		err = setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one,
				 sizeof(one));
	}
	if (err) {
		err = -errno;
		close(fd);
		free(b);
		return err;
	}
	n->beacon_fd = fd;
	err = weft__peer_go(n, beacon_fiber, b, "peer-beacon");
	if (err)
		free(b);
	return err;
}
