/* SPDX-License-Identifier: MIT */
/*
 * Endpoints: the node's list (add, remove), what the application wants of
 * each (connect, disconnect), matching inbound connections to them, and
 * their lifetime.
 *
 * An endpoint's references: one while it is listed (node->eps and the
 * table), one per fiber working for it (its dialer, the connection
 * attached to it), one per send in progress. The last one frees it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include <weft/fiber.h>
#include <weft/net.h>

#include "peer/peer.h"

void weft__peer_ep_ref(struct weft_peer_endpoint *ep)
{
	atomic_fetch_add_explicit(&ep->refs, 1, memory_order_acq_rel);
}

static void msg_drop_value(void *value, void *ctx)
{
	(void)ctx;
	weft__peer_msg_unref(*(struct weft_peer_msg **)value);
}

void weft__peer_ep_unref(struct weft_peer_endpoint *ep)
{
	if (atomic_fetch_sub_explicit(&ep->refs, 1, memory_order_acq_rel) != 1)
		return;
	weft_mpsc_tx_drop(ep->tx);
	weft_mpsc_rx_drop(ep->rx); /* frees what is queued (drop_value) */
	weft_notify_free(ep->wake);
	free(ep);
}

void weft__peer_ep_update(struct weft_peer_endpoint *ep)
{
	atomic_store(&ep->up, ep->conn != NULL);
	atomic_store(&ep->open, ep->conn != NULL || ep->want);
}

size_t weft__peer_queue_drain(struct weft_peer_endpoint *ep)
{
	struct weft_peer_msg *m;
	size_t k = 0;

	while (weft_mpsc_try_recv(ep->rx, &m) == 0) {
		weft__peer_msg_unref(m);
		k++;
	}
	return k;
}

/* ---- addresses ---- */

static bool same_ip(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;
	struct in_addr v4;

	/* an IPv4 peer seen on an IPv6 socket: ::ffff:a.b.c.d */
	if (a->sa_family == AF_INET6 && b->ss_family == AF_INET &&
	    IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
		memcpy(&v4, &a6->sin6_addr.s6_addr[12], 4);
		return v4.s_addr == b4->sin_addr.s_addr;
	}
	if (a->sa_family != b->ss_family)
		return false;
	if (a->sa_family == AF_INET)
		return a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return !memcmp(&a6->sin6_addr, &b6->sin6_addr,
			       sizeof(a6->sin6_addr));
	return false;
}

struct weft_peer_endpoint *weft__peer_match(weft_peer_node *n,
					    const struct sockaddr *addr,
					    uint16_t port)
{
	struct weft_peer_endpoint *ep;

	for (ep = n->eps; ep; ep = ep->next) {
		if (ep->port != port)
			continue;
		for (unsigned i = 0; i < ep->naddrs; i++)
			if (same_ip(addr, &ep->addrs[i]))
				return ep;
	}
	return NULL;
}

/* A name: look it up on a fiber (the blocking pool does getaddrinfo), so
 * add never blocks its caller. */
static void *resolver(void *arg)
{
	struct weft_peer_endpoint *ep = arg;
	weft_peer_node *n = ep->node;
	weft_resolve r;
	int res = -EINVAL;
	struct sockaddr_storage a[PEER_ADDRS];
	unsigned k = 0;

	if (weft_resolve_init(&r, ep->host, ep->port) == 0 &&
	    weft_await(&weft_resolve_desc, &r, &res) == 0 && res > 0) {
		for (unsigned i = 0; i < (unsigned)res && k < PEER_ADDRS; i++) {
			socklen_t len = sizeof(a[k]);
			if (weft_resolve_addr(&r, i, &a[k], &len) == 0)
				k++;
		}
	}
	pthread_mutex_lock(&n->lock);
	memcpy(ep->addrs, a, k * sizeof(a[0]));
	ep->naddrs = k;
	pthread_mutex_unlock(&n->lock);
	weft__peer_ep_unref(ep);
	weft__peer_fiber_exit(n);
	return NULL;
}

/* ---- the list ---- */

static struct weft_peer_endpoint *find_url(weft_peer_node *n, const char *url)
{
	struct weft_peer_endpoint *ep;

	for (ep = n->eps; ep; ep = ep->next)
		if (!strcmp(ep->url, url))
			return ep;
	return NULL;
}

static struct weft_peer_endpoint *ep_new(weft_peer_node *n, const char *url,
					 const char *host, uint16_t port)
{
	struct weft_peer_endpoint *ep = calloc(1, sizeof(*ep));
	weft_mpsc_config qc = {
		.value_size = sizeof(struct weft_peer_msg *),
		.capacity = n->cfg.send_queue,
		.drop_value = msg_drop_value,
	};

	if (!ep)
		return NULL;
	if (weft_notify_new(&ep->wake)) {
		free(ep);
		return NULL;
	}
	if (weft_mpsc_new(&qc, &ep->tx, &ep->rx)) {
		weft_notify_free(ep->wake);
		free(ep);
		return NULL;
	}
	ep->node = n;
	strcpy(ep->url, url);
	strcpy(ep->host, host);
	ep->port = port;
	ep->listed = true;
	return ep;
}

int weft_peer_add(weft_peer_node *n, const char *url, weft_peer_id *id)
{
	char host[PEER_HOST_MAX];
	struct weft_peer_endpoint *ep;
	uint16_t port;
	int err;

	if (!n || !url || strlen(url) >= WEFT_PEER_URL_MAX)
		return -EINVAL;
	err = weft__peer_url_parse(url, "tcp://", host, &port);
	if (err)
		return err;
	ep = ep_new(n, url, host, port);
	if (!ep)
		return -ENOMEM;
	socklen_t alen = sizeof(ep->addrs[0]);
	bool numeric = weft_addr_parse(host, port, &ep->addrs[0], &alen) == 0;
	ep->naddrs = numeric;

	pthread_mutex_lock(&n->lock);
	if (atomic_load(&n->closing)) {
		err = -ESHUTDOWN;
	} else if (find_url(n, url)) {
		if (id)
			*id = find_url(n, url)->id;
		err = -EEXIST;
	} else {
		ep->id = n->next_id++;
		/* references: the list's, and the resolver's; the release
		 * store publishes the fields to the table's readers */
		atomic_store_explicit(&ep->refs, numeric ? 1 : 2,
				      memory_order_release);
		err = weft__peer_table_put(&n->table, ep);
		if (!err) {
			ep->next = n->eps;
			n->eps = ep;
			n->nendpoints++;
			if (id)
				*id = ep->id;
		}
	}
	pthread_mutex_unlock(&n->lock);
	if (err) {
		atomic_store(&ep->refs, 1);
		weft__peer_ep_unref(ep);
		return err;
	}
	weft__peer_emit_addr(n, WEFT_PEER_ADDED, ep->id, 0, 0, false, NULL, 0,
			     url);
	if (!numeric && weft__peer_go(n, resolver, ep, "peer-resolve"))
		weft__peer_ep_unref(ep); /* the resolver's reference */
	return 0;
}

bool weft__peer_ep_claim_drain(struct weft_peer_endpoint *ep)
{
	if (ep->listed || ep->rx_busy || ep->dialer || ep->conn)
		return false;
	ep->rx_busy = true; /* nobody else drains it */
	return true;
}

void weft__peer_ep_drain(struct weft_peer_endpoint *ep)
{
	weft_peer_node *n = ep->node;
	size_t k = weft__peer_queue_drain(ep);
	struct peer_ev ev = {
		.kind = WEFT_PEER_REMOVED,
		.peer = ep->id,
		.dropped = k,
	};

	/* Senders waiting for room see the queue closed: -ENOENT. */
	weft_mpsc_rx_close(ep->rx);
	k += weft__peer_queue_drain(ep);
	ev.dropped = k;
	atomic_fetch_add(&n->st_dropped, k);
	weft__peer_emit(n, &ev);
}

int weft_peer_remove(weft_peer_node *n, weft_peer_id id)
{
	struct weft_peer_endpoint **pp, *ep = NULL;
	bool drain;

	if (!n)
		return -EINVAL;
	pthread_mutex_lock(&n->lock);
	for (pp = &n->eps; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			ep = *pp;
			*pp = ep->next;
			break;
		}
	if (!ep) {
		pthread_mutex_unlock(&n->lock);
		return -ENOENT;
	}
	n->nendpoints--;
	ep->listed = false;
	ep->want = false;
	weft__peer_ep_update(ep);
	weft__peer_table_del(&n->table, ep);
	weft_notify_one(ep->wake);
	if (ep->conn)
		weft__peer_conn_close(ep->conn, CLOSE_NOW, -ECANCELED);
	drain = weft__peer_ep_claim_drain(ep);
	pthread_mutex_unlock(&n->lock);
	if (drain)
		weft__peer_ep_drain(ep);
	weft__peer_ep_unref(ep); /* the list's */
	return 0;
}

bool weft__peer_need_dialer(struct weft_peer_endpoint *ep)
{
	weft_peer_node *n = ep->node;

	if (!ep->want || ep->dialer || !ep->listed ||
	    atomic_load(&n->closing))
		return false;
	ep->dialer = true;
	weft__peer_ep_ref(ep);
	return true;
}

void weft__peer_start_dialer(struct weft_peer_endpoint *ep)
{
	weft_peer_node *n = ep->node;

	if (weft__peer_go(n, weft__peer_dialer, ep, "peer-dial") == 0)
		return;
	/* Out of memory for a fiber: want stays set, so the next connect()
	 * or lost connection tries again. */
	pthread_mutex_lock(&n->lock);
	weft__peer_dialer_gone(ep);
}

void weft__peer_dialer_gone(struct weft_peer_endpoint *ep)
{
	bool drain;

	ep->dialer = false;
	ep->dialing = false;
	drain = weft__peer_ep_claim_drain(ep);
	pthread_mutex_unlock(&ep->node->lock);
	if (drain)
		weft__peer_ep_drain(ep);
	weft__peer_ep_unref(ep);
}

static struct weft_peer_endpoint *listed(weft_peer_node *n, weft_peer_id id)
{
	struct weft_peer_endpoint *ep;

	for (ep = n->eps; ep; ep = ep->next)
		if (ep->id == id)
			return ep;
	return NULL;
}

int weft_peer_connect(weft_peer_node *n, weft_peer_id id)
{
	struct weft_peer_endpoint *ep;
	bool start = false;
	int err = 0;

	if (!n)
		return -EINVAL;
	pthread_mutex_lock(&n->lock);
	ep = listed(n, id);
	if (atomic_load(&n->closing)) {
		err = -ESHUTDOWN;
	} else if (!ep) {
		err = -ENOENT;
	} else {
		ep->want = true;
		weft__peer_ep_update(ep);
		start = weft__peer_need_dialer(ep);
		if (!start)
			weft_notify_one(ep->wake); /* dial now, not later */
	}
	pthread_mutex_unlock(&n->lock);
	if (start)
		weft__peer_start_dialer(ep);
	return err;
}

int weft_peer_disconnect(weft_peer_node *n, weft_peer_id id)
{
	struct weft_peer_endpoint *ep;
	int err = 0;

	if (!n)
		return -EINVAL;
	pthread_mutex_lock(&n->lock);
	ep = listed(n, id);
	if (!ep) {
		err = -ENOENT;
	} else {
		ep->want = false;
		weft_notify_one(ep->wake);
		if (ep->conn)
			weft__peer_conn_close(ep->conn, CLOSE_GRACEFUL,
					      -ECANCELED);
		/* sends fail from now on, though the connection still
		 * writes what it holds */
		atomic_store(&ep->open, false);
		atomic_store(&ep->up, false);
	}
	pthread_mutex_unlock(&n->lock);
	return err;
}
