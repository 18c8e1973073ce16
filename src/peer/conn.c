/* SPDX-License-Identifier: MIT */
/*
 * Connections: the acceptor, the inbound handshake, the dialer, and the
 * reader and writer of a kept connection (docs/peer.md has the protocol).
 *
 * Which connection is kept (under node->lock, so both directions of one
 * node decide in one order): an inbound HELLO from identity R for an
 * endpoint that
 *   - has no connection and is not being dialed: kept;
 *   - is being dialed by this node: kept if R < this node's identity (the
 *     remote applies the same rule and refuses this node's dial), else
 *     refused as a duplicate (this node's dial wins);
 *   - has a connection to identity R': kept, replacing it, if R != R' (the
 *     remote restarted) or R < this node's identity (the remote dials again,
 *     so it lost the old one); else refused as a duplicate.
 * A dialer whose HELLO is welcomed keeps its connection unless one was
 * kept meanwhile.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/fiber.h>
#include <weft/future.h>
#include <weft/net.h>
#include <weft/time.h>

#include "peer/peer.h"

#define CLOSE_ERR_NONE 1

/* ---- a connection object ---- */

static void conn_unref(struct peer_conn *c)
{
	weft_peer_node *n = c->node;
	struct peer_conn **pp;

	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	pthread_mutex_lock(&n->lock);
	for (pp = &n->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_mutex_unlock(&n->lock);
	weft_framed_reader_free(&c->r);
	weft_framed_writer_free(&c->w);
	close(c->fd);
	weft_notify_free(c->stop);
	weft_notify_free(c->rdone);
	weft_join_drop(atomic_load(&c->reader_join));
	if (c->ep)
		weft__peer_ep_unref(c->ep);
	free(c->pending);
	free(c);
}

/* A connection on @fd (taken: closed on failure), listed on the node so
 * that shutdown reaches it. NULL when out of memory or shutting down. */
static struct peer_conn *conn_new(weft_peer_node *n, int fd, bool inbound)
{
	struct peer_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return NULL;
	}
	c->node = n;
	c->fd = fd;
	c->inbound = inbound;
	atomic_init(&c->refs, 1);
	atomic_init(&c->close_err, CLOSE_ERR_NONE);
	c->addrlen = sizeof(c->addr);
	if (getpeername(fd, (struct sockaddr *)&c->addr, &c->addrlen) < 0)
		c->addrlen = 0;
	if (weft_notify_new(&c->stop) || weft_notify_new(&c->rdone) ||
	    weft_framed_reader_init(&c->r, fd, &n->codec) ||
	    weft_framed_writer_init(&c->w, fd, &n->codec, 0)) {
		weft_framed_reader_free(&c->r);
		weft_notify_free(c->stop);
		weft_notify_free(c->rdone);
		close(fd);
		free(c);
		return NULL;
	}
	pthread_mutex_lock(&n->lock);
	bool closing = atomic_load(&n->closing);
	if (!closing) {
		c->next = n->conns;
		n->conns = c;
	}
	pthread_mutex_unlock(&n->lock);
	if (closing) {
		atomic_store(&c->refs, 1);
		conn_unref(c);
		return NULL;
	}
	return c;
}

void weft__peer_conn_close(struct peer_conn *c, enum peer_close how, int err)
{
	int cur = atomic_load(&c->close_how), e = CLOSE_ERR_NONE;

	if (how == CLOSE_DRAIN && !c->drain_until)
		c->drain_until = weft_now_ns() + c->node->cfg.shutdown_ns;
	while ((int)how > cur &&
	       !atomic_compare_exchange_weak(&c->close_how, &cur, (int)how))
		;
	atomic_compare_exchange_strong(&c->close_err, &e, err);
	if (how == CLOSE_NOW) {
		shutdown(c->fd, SHUT_RDWR);
		/* The shutdown ends a pending recv, but not one that is
		 * waiting for a provided buffer of its worker, nor a reader
		 * waiting to report: abort it. */
		weft_task_abort(atomic_load(&c->reader_join));
	}
	weft_notify_one(c->stop);
}

/* ---- handshake ---- */

static int hs_send(struct peer_conn *c, unsigned type, unsigned port_or_why,
		   uint64_t deadline)
{
	unsigned char b[PEER_HS_LEN];
	struct peer_hs h = {
		.version = PEER_VERSION,
		.type = type,
		.port = port_or_why,
		.id = c->node->id,
	};

	weft__peer_hs_encode(b, &h);
	return weft_co_frame_send(&c->w, b, sizeof(b), true, deadline);
}

static int hs_recv(struct peer_conn *c, struct peer_hs *h, uint64_t deadline)
{
	weft_frame_view v;
	int r = weft_co_frame_read(&c->r, &v, deadline);

	if (r < 0 && r != -ECANCELED)
		return -EPROTO;
	if (r <= 0)
		return r == 0 ? -EPROTO : r;
	return weft__peer_hs_decode(v.data, v.len, h);
}

/* ---- the reader ---- */

static void *reader(void *arg)
{
	struct peer_conn *c = arg;
	weft_peer_node *n = c->node;
	weft_frame_view v;
	int r;

	for (;;) {
		/* a burst of small frames is taken without waiting */
		r = weft_framed_try_read(&c->r, &v);
		if (r == -EAGAIN)
			r = weft_co_frame_read(&c->r, &v, 0);
		if (r != 1)
			break;
		struct peer_ev ev = {
			.kind = WEFT_PEER_MESSAGE,
			.peer = c->ep->id,
			.node_id = c->remote_id,
			.len = v.len,
		};
		if (weft__peer_ev_on(n, WEFT_PEER_MESSAGE)) {
			ev.data = malloc(v.len ? v.len : 1);
			if (!ev.data) {
				r = -ENOMEM;
				break;
			}
			memcpy(ev.data, v.data, v.len);
			/* Fails only when this reader is aborted (the
			 * connection is closed at once): the message is
			 * discarded, like bytes left in the socket. */
			if (weft__peer_emit_msg(n, &ev) < 0)
				continue;
		}
		atomic_fetch_add_explicit(&n->st_received, 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&n->st_received_bytes, v.len,
					  memory_order_relaxed);
	}
	weft__peer_conn_close(c, CLOSE_NOW, r);
	atomic_store(&c->reader_done, true);
	weft_notify_one(c->rdone);
	conn_unref(c);
	weft__peer_fiber_exit(n);
	return NULL;
}

/* Wait for the reader to end; past @deadline (0: none) -ETIMEDOUT. */
static int reader_wait(struct peer_conn *c, uint64_t deadline)
{
	while (!atomic_load(&c->reader_done)) {
		uint64_t now = weft_now_ns(), step = now + 20000000u;
		if (deadline && now >= deadline)
			return -ETIMEDOUT;
		weft_co_notified(c->rdone, deadline && deadline < step
						   ? deadline : step);
	}
	return 0;
}

/* ---- the writer ---- */

/* Report the @k oldest pending messages: SENT (@err 0) or SEND_FAILED. */
static void settle(struct peer_conn *c, size_t k, int err)
{
	weft_peer_node *n = c->node;
	int kind = err ? WEFT_PEER_SEND_FAILED : WEFT_PEER_SENT;
	bool report = weft__peer_ev_on(n, kind);
	uint64_t bytes = 0;

	for (size_t i = 0; i < k; i++) {
		bytes += c->pending[i].len;
		if (report) {
			struct peer_ev ev = {
				.kind = kind,
				.peer = c->ep->id,
				.node_id = c->remote_id,
				.len = c->pending[i].len,
				.error = err,
			};
			weft__peer_emit_msg(n, &ev);
		}
	}
	if (err) {
		atomic_fetch_add(&n->st_send_failed, k);
	} else {
		atomic_fetch_add_explicit(&n->st_sent, k, memory_order_relaxed);
		atomic_fetch_add_explicit(&n->st_sent_bytes, bytes,
					  memory_order_relaxed);
	}
	c->npending -= k;
	memmove(c->pending, c->pending + k,
		c->npending * sizeof(c->pending[0]));
}

/* SENT for every pending message the socket has taken all of. */
static void confirm(struct peer_conn *c)
{
	uint64_t w = weft_framed_writer_written(&c->w);
	size_t k = 0;

	while (k < c->npending && c->pending[k].end <= w)
		k++;
	if (k)
		settle(c, k, 0);
}

/* Write @m (consumed) to the connection, flushed when @flush. It is
 * reported SENT once the socket took it; a connection that ends first
 * reports it SEND_FAILED (its bytes may still have left in part). */
static int write_msg(struct peer_conn *c, struct weft_peer_msg *m, bool flush,
		     uint64_t deadline)
{
	weft_peer_node *n = c->node;
	size_t len = m->len;
	int r;

	if (c->npending == c->cap_pending) {
		size_t cap = c->cap_pending ? 2 * c->cap_pending : 64;
		struct peer_pending *p = realloc(c->pending, cap * sizeof(*p));
		if (!p) {
			weft__peer_msg_unref(m);
			return -ENOMEM;
		}
		c->pending = p;
		c->cap_pending = cap;
	}
	/* More to come: into the buffer without a wait, while it has room
	 * (it leaves with the next flush, or the send that finds it full). */
	r = flush ? -EAGAIN : weft_framed_try_send(&c->w, m->data, len);
	if (r == -EAGAIN)
		r = weft_co_frame_send(&c->w, m->data, len, flush, deadline);
	weft__peer_msg_unref(m);
	if (r == -ETIMEDOUT) {
		atomic_fetch_add(&n->st_dropped, 1); /* flush ran out of time */
		return r;
	}
	if (r == 0)
		c->queued_bytes += n->codec.length_bytes + len;
	/* A failed one is reported with the pending ones when the
	 * connection ends (SEND_FAILED). */
	c->pending[c->npending++] = (struct peer_pending){
		.len = len,
		.end = r == 0 ? c->queued_bytes : UINT64_MAX,
	};
	confirm(c);
	return r;
}

/* The next message, waiting for one or for a close request. 0 (*@m set),
 * 1 (a close was asked), -EPIPE (the queue is closed: removed). */
static int next_msg(struct peer_conn *c, struct weft_peer_msg **m)
{
	weft_mpsc_rx *rx = c->ep->rx;
	int r = weft_mpsc_try_recv(rx, m);

	if (r != -EAGAIN)
		return r;
	weft_notified nt;
	weft_mpsc_recv rv;
	weft_future arms[2];
	weft_select sel;
	int r0 = 0, r1 = 0;
	size_t win = 0;

	weft_notified_init(&nt, c->stop);
	weft_mpsc_recv_init(&rv, rx, m);
	weft_future_init(&arms[0], &weft_notified_desc, &nt, &r0);
	weft_future_init(&arms[1], &weft_mpsc_recv_desc, &rv, &r1);
	weft_select_init(&sel, arms, 2);
	if (weft_await(&weft_select_desc, &sel, &win) != 0)
		return 1; /* the fiber was aborted */
	return win == 0 ? 1 : r1;
}

/* Write the endpoint's messages until the connection fails or is asked to
 * close. Returns the write error, or 0. */
static int writer_loop(struct peer_conn *c)
{
	weft_mpsc_rx *rx = c->ep->rx;
	struct weft_peer_msg *m;
	int how, r;

	for (;;) {
		how = atomic_load(&c->close_how);
		if (how == CLOSE_DRAIN)
			break;
		if (how != CLOSE_NONE)
			return 0;
		r = next_msg(c, &m);
		if (r == 1)
			continue; /* look at close_how again */
		if (r < 0)
			return 0; /* removed: the remover closes it */
		r = write_msg(c, m, weft_mpsc_len(rx) == 0, 0);
		if (r)
			return r;
	}
	/* Shutdown in flush mode: the whole queue, within shutdown_ns. */
	uint64_t deadline = c->drain_until;
	while (weft_mpsc_try_recv(rx, &m) == 0) {
		r = write_msg(c, m, weft_mpsc_len(rx) == 0, deadline);
		if (r)
			return r;
	}
	return 0;
}

/* Take the endpoint's queue: a connection that replaced another waits for
 * the old writer to let go of it. false: asked to close meanwhile. */
static bool take_queue(struct peer_conn *c)
{
	weft_peer_node *n = c->node;

	for (;;) {
		bool got = false;
		pthread_mutex_lock(&n->lock);
		if (!c->ep->rx_busy)
			got = c->ep->rx_busy = true;
		pthread_mutex_unlock(&n->lock);
		if (got)
			return true;
		if (atomic_load(&c->close_how) == CLOSE_NOW ||
		    weft_co_sleep(1000000) != 0)
			return false;
	}
}

static void detach(struct peer_conn *c, bool had_queue, int err)
{
	weft_peer_node *n = c->node;
	struct weft_peer_endpoint *ep = c->ep;
	bool start, drain;
	int e = atomic_load(&c->close_err);

	if (e == CLOSE_ERR_NONE)
		e = err;
	/* Not connected any more before DISCONNECTED is reported: a send
	 * after the event sees it. */
	pthread_mutex_lock(&n->lock);
	if (ep->conn == c) {
		ep->conn = NULL;
		atomic_fetch_sub(&n->st_connected, 1);
		weft__peer_ep_update(ep);
		weft_notify_one(ep->wake);
	}
	pthread_mutex_unlock(&n->lock);
	if (had_queue) {
		atomic_fetch_add(&n->st_disconnects, 1);
		weft__peer_emit_addr(n, WEFT_PEER_DISCONNECTED, ep->id,
				     c->remote_id, e, c->inbound, &c->addr,
				     c->addrlen, NULL);
	}
	/* Then the queue goes to a connection that replaced this one, so
	 * its CONNECTED comes after this DISCONNECTED. */
	pthread_mutex_lock(&n->lock);
	if (had_queue)
		ep->rx_busy = false;
	start = weft__peer_need_dialer(ep);
	drain = weft__peer_ep_claim_drain(ep);
	pthread_mutex_unlock(&n->lock);
	if (start)
		weft__peer_start_dialer(ep);
	if (drain)
		weft__peer_ep_drain(ep);
}

/* Run the kept connection @c (attached to c->ep) on the calling fiber,
 * which is its writer, until it ends. */
static void run_conn(struct peer_conn *c)
{
	weft_peer_node *n = c->node;
	bool had_queue = take_queue(c);
	int err = 0;

	if (had_queue) {
		atomic_fetch_add(&n->st_connects, 1);
		weft__peer_emit_addr(n, WEFT_PEER_CONNECTED, c->ep->id,
				     c->remote_id, 0, c->inbound, &c->addr,
				     c->addrlen, NULL);
		weft_join *j = NULL;
		atomic_fetch_add(&c->refs, 1);
		if (weft__peer_go_join(n, reader, c, "peer-read", &j) != 0) {
			atomic_fetch_sub(&c->refs, 1);
			atomic_store(&c->reader_done, true);
			weft__peer_conn_close(c, CLOSE_NOW, -ENOMEM);
		} else {
			atomic_store(&c->reader_join, j);
			if (atomic_load(&c->close_how) == CLOSE_NOW)
				weft_task_abort(j); /* closed meanwhile */
			err = writer_loop(c);
		}
	}
	if (!had_queue)
		atomic_store(&c->reader_done, true);
	if (err)
		weft__peer_conn_close(c, CLOSE_NOW, err);
	if (atomic_load(&c->close_how) != CLOSE_NOW) {
		/* graceful: what is buffered, our FIN, then the remote's */
		uint64_t until = atomic_load(&c->close_how) == CLOSE_DRAIN
					 ? c->drain_until
					 : weft_now_ns() + n->cfg.handshake_ns;
		weft_co_frame_flush(&c->w, until);
		confirm(c);
		shutdown(c->fd, SHUT_WR);
		reader_wait(c, until);
	}
	weft__peer_conn_close(c, CLOSE_NOW, err);
	if (c->npending) {
		/* the send in flight has ended (the socket is shut): count
		 * what it wrote; the rest never reached the socket */
		weft_co_frame_flush(&c->w, weft_now_ns() + 1000000000u);
		confirm(c);
		if (c->npending)
			settle(c, c->npending, err ? err : -ECANCELED);
	}
	reader_wait(c, 0);
	detach(c, had_queue, err);
}

/* Attach @c to @ep as its kept connection: under lock. */
static void attach(struct peer_conn *c, struct weft_peer_endpoint *ep,
		   uint64_t rid)
{
	weft_peer_node *n = c->node;
	struct peer_conn *old = ep->conn;

	weft__peer_ep_ref(ep);
	c->ep = ep;
	c->remote_id = rid;
	c->attached = true;
	ep->conn = c;
	if (old)
		weft__peer_conn_close(old, CLOSE_NOW, -ECANCELED);
	else
		atomic_fetch_add(&n->st_connected, 1);
	weft__peer_ep_update(ep);
}

/* ---- inbound ---- */

static bool keep_inbound(weft_peer_node *n, struct weft_peer_endpoint *ep,
			 uint64_t rid)
{
	if (ep->conn)
		return ep->conn->remote_id != rid || rid < n->id;
	if (ep->dialing)
		return rid < n->id;
	return true;
}

static void refused(struct peer_conn *c, uint64_t rid, int err)
{
	weft_peer_node *n = c->node;

	atomic_fetch_add(&n->st_refused, 1);
	weft__peer_emit_addr(n, WEFT_PEER_REFUSED, 0, rid, err, true, &c->addr,
			     c->addrlen, NULL);
}

void *weft__peer_inbound(void *arg)
{
	struct peer_conn *c = arg;
	weft_peer_node *n = c->node;
	uint64_t deadline = weft_now_ns() + n->cfg.handshake_ns;
	struct weft_peer_endpoint *ep;
	struct peer_hs h;
	unsigned why = 0;
	int r = hs_recv(c, &h, deadline);

	if (r == 0 && h.type != HS_HELLO)
		r = -EPROTO;
	if (r) {
		if (!atomic_load(&n->closing))
			refused(c, 0, -EPROTO);
		goto out;
	}
	if (h.version != PEER_VERSION) {
		hs_send(c, HS_REFUSE, REFUSE_VERSION, deadline);
		refused(c, h.id, -EPROTONOSUPPORT);
		goto out;
	}
	if (h.id == n->id) {
		hs_send(c, HS_REFUSE, REFUSE_SELF, deadline);
		refused(c, h.id, -EEXIST);
		goto out;
	}
	pthread_mutex_lock(&n->lock);
	ep = atomic_load(&n->closing)
		     ? NULL
		     : weft__peer_match(n, (struct sockaddr *)&c->addr,
					(uint16_t)h.port);
	if (!ep)
		why = REFUSE_UNKNOWN;
	else if (!keep_inbound(n, ep, h.id))
		why = REFUSE_DUPLICATE;
	else
		attach(c, ep, h.id);
	pthread_mutex_unlock(&n->lock);
	if (why) {
		hs_send(c, HS_REFUSE, why, deadline);
		if (why == REFUSE_UNKNOWN)
			refused(c, h.id, -EACCES);
		else
			atomic_fetch_add(&n->st_duplicates, 1);
		goto out;
	}
	r = hs_send(c, HS_WELCOME, n->port, deadline);
	if (r)
		weft__peer_conn_close(c, CLOSE_NOW, r);
	run_conn(c);
out:
	conn_unref(c);
	weft__peer_fiber_exit(n);
	return NULL;
}

void *weft__peer_acceptor(void *arg)
{
	weft_peer_node *n = arg;

	while (!atomic_load(&n->closing)) {
		int fd = weft_co_accept(n->lfd, 0);
		if (fd < 0) {
			if (fd == -EINVAL || fd == -EBADF || fd == -ECANCELED)
				break;
			continue;
		}
		struct peer_conn *c = conn_new(n, fd, true);
		if (c && weft__peer_go(n, weft__peer_inbound, c, "peer-in"))
			conn_unref(c);
	}
	weft__peer_fiber_exit(n);
	return NULL;
}

/* ---- outbound ---- */

/* Connect to @ep, or give up when its wake fires (disconnect, remove,
 * shutdown) or at @deadline. The fd, or a negative errno. */
static int dial(struct weft_peer_endpoint *ep, uint64_t deadline)
{
	weft_tcp_connect tc;
	weft_notified nt;
	weft_future arms[2];
	weft_select sel;
	int64_t fd = -ECONNREFUSED;
	int r0 = 0;
	size_t win = 0;
	int err = weft_tcp_connect_init(&tc, ep->host, ep->port);

	if (err)
		return err;
	weft_notified_init(&nt, ep->wake);
	weft_future_init(&arms[0], &weft_notified_desc, &nt, &r0);
	weft_future_init(&arms[1], &weft_tcp_connect_desc, &tc, &fd);
	weft_select_init(&sel, arms, 2);
	err = weft_await_until(&weft_select_desc, &sel, &win, deadline);
	if (err)
		return err;
	if (win == 0) {
		/* woken: let the loop look again (the permit is spent, so
		 * give it back for the loop's own wait) */
		weft_notify_one(ep->wake);
		return -EINTR;
	}
	return (int)fd;
}

/* One dial and handshake. Returns true when a connection was kept and
 * ran. */
static bool dial_once(struct weft_peer_endpoint *ep)
{
	weft_peer_node *n = ep->node;
	uint64_t deadline = weft_now_ns() + n->cfg.handshake_ns;
	struct peer_conn *c;
	struct peer_hs h;
	bool kept = false;
	int fd = dial(ep, deadline), r;

	if (fd < 0)
		return false;
	c = conn_new(n, fd, false);
	if (!c)
		return false;
	pthread_mutex_lock(&n->lock);
	bool taken = ep->conn != NULL; /* an inbound one was kept meanwhile */
	pthread_mutex_unlock(&n->lock);
	if (!taken) {
		r = hs_send(c, HS_HELLO, n->port, deadline);
		if (r == 0)
			r = hs_recv(c, &h, deadline);
		if (r == 0 && h.type == HS_WELCOME &&
		    h.version == PEER_VERSION) {
			pthread_mutex_lock(&n->lock);
			ep->dialing = false;
			if (!ep->conn && ep->listed && ep->want &&
			    !atomic_load(&n->closing)) {
				attach(c, ep, h.id);
				kept = true;
			}
			pthread_mutex_unlock(&n->lock);
		} else if (r == 0 && h.type == HS_REFUSE &&
			   h.port == REFUSE_DUPLICATE) {
			atomic_fetch_add(&n->st_duplicates, 1);
		}
	}
	if (kept)
		run_conn(c);
	conn_unref(c);
	return kept;
}

void *weft__peer_dialer(void *arg)
{
	struct weft_peer_endpoint *ep = arg;
	weft_peer_node *n = ep->node;

	for (;;) {
		pthread_mutex_lock(&n->lock);
		if (!ep->want || !ep->listed || atomic_load(&n->closing))
			break;
		bool connected = ep->conn != NULL;
		if (!connected)
			ep->dialing = true;
		pthread_mutex_unlock(&n->lock);
		uint64_t start = weft_now_ns();
		if (connected) {
			/* kept an inbound one: wait until it is lost */
			weft_co_notified(ep->wake, start + n->cfg.reconnect_ns);
			continue;
		}
		bool ran = dial_once(ep);
		pthread_mutex_lock(&n->lock);
		ep->dialing = false;
		pthread_mutex_unlock(&n->lock);
		/* Redial at once after a connection that lasted; otherwise
		 * wait the interval (woken early by connect, disconnect,
		 * remove and shutdown). */
		if (!ran || weft_now_ns() - start < n->cfg.reconnect_ns)
			weft_co_notified(ep->wake, weft_now_ns() +
							   n->cfg.reconnect_ns);
	}
	weft__peer_dialer_gone(ep);
	weft__peer_fiber_exit(n);
	return NULL;
}
