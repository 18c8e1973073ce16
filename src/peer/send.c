/* SPDX-License-Identifier: MIT */
/*
 * Sending: a message is copied once into a refcounted struct weft_peer_msg
 * and its pointer queued on each endpoint's bounded mpsc; the connection's
 * writer takes it from there. The endpoint is found in the lock-free table
 * (table.c), so sends from every worker share no lock.
 */
#include <errno.h>
#include <stdlib.h>

#include <weft/fiber.h>

#include "peer/peer.h"

static int check(weft_peer_node *n, const void *msg, size_t len)
{
	if (!n || (!msg && len))
		return -EINVAL;
	if (len > n->cfg.max_message)
		return -EMSGSIZE;
	if (atomic_load_explicit(&n->closing, memory_order_relaxed))
		return -ESHUTDOWN;
	return 0;
}

/* A queue's -EPIPE: it was closed by shutdown or by remove. */
static int closed(struct weft_peer_endpoint *ep, int r)
{
	if (r != -EPIPE)
		return r;
	return atomic_load(&ep->node->closing) ? -ESHUTDOWN : -ENOENT;
}

/* Queue @m (one reference taken for the queue) on @ep without waiting. */
static int queue(struct weft_peer_endpoint *ep, struct weft_peer_msg *m)
{
	int r;

	if (!atomic_load_explicit(&ep->open, memory_order_acquire))
		return -ENOTCONN;
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	r = weft_mpsc_try_send(ep->tx, &m);
	if (r) {
		atomic_fetch_sub_explicit(&m->refs, 1, memory_order_relaxed);
		return closed(ep, r);
	}
	return 0;
}

static int queue_fn(struct weft_peer_endpoint *ep, void *m)
{
	return queue(ep, m);
}

int weft_peer_try_send(weft_peer_node *n, weft_peer_id id, const void *msg,
		       size_t len)
{
	struct weft_peer_msg *m;
	int r = check(n, msg, len);

	if (r)
		return r;
	m = weft__peer_msg_new(msg, len);
	if (!m)
		return -ENOMEM;
	/* queued inside the table's read section: no reference needed */
	r = weft__peer_table_call(&n->table, id, queue_fn, m);
	weft__peer_msg_unref(m);
	return r;
}

int weft_peer_multicast(weft_peer_node *n, const weft_peer_id *ids,
			size_t count, const void *msg, size_t len, int *errs)
{
	struct weft_peer_msg *m;
	int r = check(n, msg, len), k = 0;

	if (r)
		return r;
	if (!ids && count)
		return -EINVAL;
	m = weft__peer_msg_new(msg, len);
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		r = weft__peer_table_call(&n->table, ids[i], queue_fn, m);
		if (errs)
			errs[i] = r;
		k += r == 0;
	}
	weft__peer_msg_unref(m);
	return k;
}

struct bcast {
	struct weft_peer_msg *m;
	size_t full;
	int queued;
};

static void bcast_one(struct weft_peer_endpoint *ep, void *arg)
{
	struct bcast *b = arg;
	int r;

	if (!atomic_load_explicit(&ep->up, memory_order_acquire))
		return;
	r = queue(ep, b->m);
	b->queued += r == 0;
	b->full += r == -EAGAIN;
}

int weft_peer_broadcast(weft_peer_node *n, const void *msg, size_t len,
			size_t *full)
{
	struct bcast b = { 0 };
	int r = check(n, msg, len);

	if (full)
		*full = 0;
	if (r)
		return r;
	b.m = weft__peer_msg_new(msg, len);
	if (!b.m)
		return -ENOMEM;
	weft__peer_table_each(&n->table, bcast_one, &b);
	weft__peer_msg_unref(b.m);
	if (full)
		*full = b.full;
	return b.queued;
}

/* ---- the waiting send ---- */

int weft_peer_send_init(weft_peer_send *s, weft_peer_node *n, weft_peer_id id,
			const void *msg, size_t len)
{
	if (!s || !n || (!msg && len))
		return -EINVAL;
	s->_node = n;
	s->_id = id;
	s->_ep = NULL;
	s->_started = false;
	if (len > n->cfg.max_message)
		return -EMSGSIZE;
	s->_msg = weft__peer_msg_new(msg, len);
	return s->_msg ? 0 : -ENOMEM;
}

weft_poll weft_peer_send_poll(weft_peer_send *s, weft_cx *cx, int *res)
{
	int r = -EINVAL;

	if (!s || !s->_node || !cx)
		goto out;
	if (!s->_started) {
		r = check(s->_node, s->_msg->data, 0);
		if (r)
			goto out;
		s->_ep = weft__peer_table_get(&s->_node->table, s->_id);
		if (!s->_ep) {
			r = -ENOENT;
			goto out;
		}
		if (!atomic_load_explicit(&s->_ep->open,
					  memory_order_acquire)) {
			r = -ENOTCONN;
			goto out;
		}
		weft_mpsc_send_init(&s->_send, s->_ep->tx, &s->_msg);
		s->_started = true;
	}
	if (weft_mpsc_send_poll(&s->_send, cx, &r) == WEFT_PENDING)
		return WEFT_PENDING;
	if (r == 0)
		s->_msg = NULL; /* the queue's now */
	else
		r = closed(s->_ep, r);
out:
	if (res)
		*res = r;
	return WEFT_READY;
}

void weft_peer_send_drop(weft_peer_send *s)
{
	if (!s || !s->_node)
		return;
	if (s->_started)
		weft_mpsc_send_drop(&s->_send);
	if (s->_ep)
		weft__peer_ep_unref(s->_ep);
	weft__peer_msg_unref(s->_msg);
	s->_ep = NULL;
	s->_msg = NULL;
	s->_node = NULL;
}

static weft_poll send_poll(void *state, weft_cx *cx, void *out)
{
	return weft_peer_send_poll(state, cx, out);
}

static void send_drop(void *state)
{
	weft_peer_send_drop(state);
}

const weft_future_desc weft_peer_send_desc = {
	.poll = send_poll,
	.drop = send_drop,
	.size = sizeof(weft_peer_send),
	.output_size = sizeof(int),
};

/* ---- waiting multicast and broadcast (fibers) ---- */

/* Queue @m on @ep, waiting for room until @deadline. */
static int queue_wait(struct weft_peer_endpoint *ep, struct weft_peer_msg *m,
		      uint64_t deadline)
{
	weft_mpsc_send s;
	int r = queue(ep, m), res = 0;

	if (r != -EAGAIN)
		return r;
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	weft_mpsc_send_init(&s, ep->tx, &m);
	r = weft_await_until(&weft_mpsc_send_desc, &s, &res, deadline);
	if (!r)
		r = closed(ep, res);
	if (r)
		weft__peer_msg_unref(m); /* the queue did not take it */
	return r;
}

int weft_co_peer_multicast(weft_peer_node *n, const weft_peer_id *ids,
			   size_t count, const void *msg, size_t len,
			   int *errs, uint64_t deadline_ns)
{
	struct weft_peer_msg *m;
	int r = check(n, msg, len), k = 0;

	if (r)
		return r;
	if (!ids && count)
		return -EINVAL;
	if (!weft_in_fiber())
		return -EPERM;
	m = weft__peer_msg_new(msg, len);
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		struct weft_peer_endpoint *ep =
			weft__peer_table_get(&n->table, ids[i]);
		r = ep ? queue_wait(ep, m, deadline_ns) : -ENOENT;
		if (ep)
			weft__peer_ep_unref(ep);
		if (errs)
			errs[i] = r;
		k += r == 0;
		if (r == -ECANCELED) {
			for (size_t j = i + 1; errs && j < count; j++)
				errs[j] = r;
			break;
		}
	}
	weft__peer_msg_unref(m);
	return k;
}

struct collect {
	weft_peer_id *ids;
	size_t n, cap;
	bool oom;
};

static void collect_up(struct weft_peer_endpoint *ep, void *arg)
{
	struct collect *c = arg;

	if (!atomic_load_explicit(&ep->up, memory_order_acquire))
		return;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		weft_peer_id *ids = realloc(c->ids, cap * sizeof(*ids));
		if (!ids) {
			c->oom = true;
			return;
		}
		c->ids = ids;
		c->cap = cap;
	}
	c->ids[c->n++] = ep->id;
}

int weft_co_peer_broadcast(weft_peer_node *n, const void *msg, size_t len,
			   uint64_t deadline_ns)
{
	struct collect c = { 0 };
	int r = check(n, msg, len);

	if (r)
		return r;
	if (!weft_in_fiber())
		return -EPERM;
	weft__peer_table_each(&n->table, collect_up, &c);
	r = c.oom ? -ENOMEM
		  : weft_co_peer_multicast(n, c.ids, c.n, msg, len, NULL,
					   deadline_ns);
	free(c.ids);
	return r;
}

int weft_co_peer_send(weft_peer_node *n, weft_peer_id id, const void *msg,
		      size_t len, uint64_t deadline_ns)
{
	struct weft_peer_endpoint *ep;
	struct weft_peer_msg *m;
	int r = check(n, msg, len);

	if (r)
		return r;
	if (!weft_in_fiber())
		return -EPERM;
	m = weft__peer_msg_new(msg, len);
	if (!m)
		return -ENOMEM;
	/* try first, inside the read section: no reference, no future */
	r = weft__peer_table_call(&n->table, id, queue_fn, m);
	if (r == -EAGAIN) {
		ep = weft__peer_table_get(&n->table, id);
		r = ep ? queue_wait(ep, m, deadline_ns) : -ENOENT;
		if (ep)
			weft__peer_ep_unref(ep);
	}
	weft__peer_msg_unref(m);
	return r;
}
