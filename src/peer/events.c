/* SPDX-License-Identifier: MIT */
/*
 * The node's events: one unbounded mpsc of struct peer_ev. The
 * message-class events (MESSAGE, SENT, SEND_FAILED) each hold a permit of
 * evsem (event_queue permits), taken by the fiber that queues the event and
 * given back when the application takes it: so a reader waits while the
 * application is behind, and TCP backpressure reaches the remote. Other
 * events are rare and never wait, so add/remove/connect can be called from
 * any thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <weft/fiber.h>

#include "peer/peer.h"

static bool msg_class(int kind)
{
	return kind == WEFT_PEER_MESSAGE || kind == WEFT_PEER_SENT ||
	       kind == WEFT_PEER_SEND_FAILED;
}

static void ev_free(struct peer_ev *ev)
{
	free(ev->data);
	free(ev->aux);
}

static void ev_drop_value(void *value, void *ctx)
{
	(void)ctx;
	ev_free(value);
}

int weft__peer_events_init(weft_peer_node *n)
{
	weft_mpsc_config c = {
		.value_size = sizeof(struct peer_ev),
		.drop_value = ev_drop_value,
	};
	int err = weft_mpsc_new(&c, &n->evtx, &n->evrx);

	if (err)
		return err;
	err = weft_semaphore_new(n->cfg.event_queue, &n->evsem);
	if (err) {
		weft_mpsc_tx_drop(n->evtx);
		weft_mpsc_rx_drop(n->evrx);
	}
	return err;
}

void weft__peer_events_fini(weft_peer_node *n)
{
	if (n->evtx)
		weft_mpsc_tx_drop(n->evtx);
	weft_mpsc_rx_drop(n->evrx); /* frees what nobody took */
	weft_semaphore_free(n->evsem);
}

bool weft__peer_ev_on(const weft_peer_node *n, int kind)
{
	return !(n->cfg.events_off & WEFT_PEER_EV(kind));
}

void weft__peer_emit(weft_peer_node *n, struct peer_ev *ev)
{
	int err = -EPIPE;

	/* Under the lock: shutdown closes the stream (drops evtx) under it,
	 * and remove may run after that. Never called with the lock held. */
	if (weft__peer_ev_on(n, ev->kind)) {
		pthread_mutex_lock(&n->lock);
		if (n->evtx)
			err = weft_mpsc_try_send(n->evtx, ev);
		pthread_mutex_unlock(&n->lock);
	}
	if (err)
		ev_free(ev);
}

void weft__peer_events_close(weft_peer_node *n)
{
	weft_mpsc_tx_drop(n->evtx);
	n->evtx = NULL;
}

void weft__peer_emit_addr(weft_peer_node *n, int kind, weft_peer_id peer,
			  uint64_t node_id, int error, bool inbound,
			  const struct sockaddr_storage *addr,
			  socklen_t addrlen, const char *url)
{
	struct peer_ev ev = {
		.kind = kind,
		.peer = peer,
		.node_id = node_id,
		.error = error,
		.inbound = inbound,
	};

	if (!weft__peer_ev_on(n, kind))
		return;
	if ((addr && addrlen) || url) {
		ev.aux = calloc(1, sizeof(*ev.aux));
		if (!ev.aux)
			return; /* out of memory: the event is lost, not the node */
		if (addr && addrlen <= sizeof(ev.aux->addr)) {
			memcpy(&ev.aux->addr, addr, addrlen);
			ev.aux->addrlen = addrlen;
		}
		if (url)
			strncpy(ev.aux->url, url, sizeof(ev.aux->url) - 1);
	}
	weft__peer_emit(n, &ev);
}

/* Only node fibers call this, and they have all ended before shutdown
 * closes the stream: evtx is read without the lock. */
int weft__peer_emit_msg(weft_peer_node *n, struct peer_ev *ev)
{
	int err;

	if (!weft__peer_ev_on(n, ev->kind)) {
		ev_free(ev);
		return 0;
	}
	err = weft_semaphore_try_acquire(n->evsem, 1);
	if (err == -EAGAIN)
		err = weft_co_semaphore_acquire(n->evsem, 1, 0);
	if (err && atomic_load(&n->closing)) {
		/* Shutdown closed the permits: what happens while it runs
		 * (the flush's SENT, the last messages) is still reported;
		 * it is bounded by the flush. */
		ev->nopermit = true;
		err = weft_mpsc_try_send(n->evtx, ev);
	} else if (err == 0) {
		err = weft_mpsc_try_send(n->evtx, ev);
		if (err)
			weft_semaphore_release(n->evsem, 1);
	}
	if (err) {
		ev_free(ev);
		return -EPIPE;
	}
	return 0;
}

/* ---- taking events ---- */

/* Fill the caller's event. Only the head is written for a plain event:
 * the address and url (about 430 bytes) only when the event has them, or
 * emptied with their first bytes, so a message costs no big memset. */
static void ev_out(weft_peer_node *n, struct peer_ev *in, weft_peer_event *ev)
{
	ev->kind = in->kind;
	ev->peer = in->peer;
	ev->inbound = in->inbound;
	ev->error = in->error;
	ev->node_id = in->node_id;
	ev->data = in->data;
	ev->len = in->len;
	ev->dropped = in->dropped;
	if (in->aux) {
		memcpy(&ev->addr, &in->aux->addr, sizeof(ev->addr));
		ev->addrlen = in->aux->addrlen;
		memcpy(ev->url, in->aux->url, sizeof(ev->url));
		free(in->aux);
	} else {
		ev->addr.ss_family = AF_UNSPEC;
		ev->addrlen = 0;
		ev->url[0] = '\0';
	}
	if (msg_class(in->kind) && !in->nopermit)
		weft_semaphore_release(n->evsem, 1);
}

void weft_peer_event_clear(weft_peer_event *ev)
{
	if (!ev)
		return;
	free(ev->data);
	ev->kind = 0;
	ev->peer = 0;
	ev->inbound = false;
	ev->error = 0;
	ev->node_id = 0;
	ev->data = NULL;
	ev->len = 0;
	ev->dropped = 0;
	ev->addr.ss_family = AF_UNSPEC;
	ev->addrlen = 0;
	ev->url[0] = '\0';
}

int weft_peer_try_event(weft_peer_node *n, weft_peer_event *ev)
{
	struct peer_ev in;
	int err;

	if (!n || !ev)
		return -EINVAL;
	err = weft_mpsc_try_recv(n->evrx, &in);
	if (err == 0)
		ev_out(n, &in, ev);
	return err;
}

int weft_peer_event_blocking(weft_peer_node *n, weft_peer_event *ev)
{
	struct peer_ev in;
	int err;

	if (!n || !ev)
		return -EINVAL;
	err = weft_mpsc_recv_blocking(n->evrx, &in);
	if (err == 0)
		ev_out(n, &in, ev);
	return err;
}

_Static_assert(sizeof(struct peer_ev) <= sizeof(((weft_peer_next_event *)0)->_raw),
	       "weft_peer_next_event._raw holds a raw event");

int weft_peer_next_event_init(weft_peer_next_event *f, weft_peer_node *n,
			      weft_peer_event *ev)
{
	if (!f || !n || !ev)
		return -EINVAL;
	f->_node = n;
	f->_ev = ev;
	return weft_mpsc_recv_init(&f->_recv, n->evrx, f->_raw);
}

static weft_poll next_poll(void *state, weft_cx *cx, void *out)
{
	weft_peer_next_event *f = state;
	int res = -EINVAL;

	if (!f || !f->_node) {
		if (out)
			*(int *)out = -EINVAL;
		return WEFT_READY;
	}
	if (weft_mpsc_recv_poll(&f->_recv, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	if (res == 0) {
		struct peer_ev in;
		memcpy(&in, f->_raw, sizeof(in));
		ev_out(f->_node, &in, f->_ev);
	}
	if (out)
		*(int *)out = res;
	return WEFT_READY;
}

static void next_drop(void *state)
{
	weft_peer_next_event *f = state;

	if (f && f->_node)
		weft_mpsc_recv_drop(&f->_recv);
}

const weft_future_desc weft_peer_next_event_desc = {
	.poll = next_poll,
	.drop = next_drop,
	.size = sizeof(weft_peer_next_event),
	.output_size = sizeof(int),
};

int weft_co_peer_event(weft_peer_node *n, weft_peer_event *ev,
		       uint64_t deadline_ns)
{
	weft_peer_next_event f;
	int res, err;

	if (!weft_in_fiber())
		return -EPERM;
	err = weft_peer_try_event(n, ev); /* no future while events wait */
	if (err != -EAGAIN)
		return err;
	err = weft_peer_next_event_init(&f, n, ev);
	if (err)
		return err;
	err = weft_await_until(&weft_peer_next_event_desc, &f, &res,
			       deadline_ns);
	return err ? err : res;
}
