/* SPDX-License-Identifier: MIT */
/*
 * A peer node: config, create, the count of its fibers, shutdown, free,
 * stats.
 *
 * Shutdown, in order: mark closing (sends fail, no new dial or accept);
 * shut the listening socket (the acceptor's accept fails and it ends);
 * close the event semaphore (a fiber waiting to queue an event stops
 * waiting); stop wanting every endpoint and wake its dialer; ask every
 * connection to close (CLOSE_DRAIN in WEFT_PEER_FLUSH mode: its writer
 * first writes the endpoint's whole queue, within shutdown_ns); then wait
 * until the last fiber has ended. Only then are endpoints and the table
 * freed, so no fiber ever sees freed memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <weft/fiber.h>
#include <weft/net.h>
#include <weft/runtime.h>
#include <weft/time.h>

#include "peer/peer.h"

void weft_peer_config_init(weft_peer_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
}

static int config_fill(weft_peer_node *n, const weft_peer_config *in)
{
	weft_peer_config *c = &n->cfg;

	weft_peer_config_init(c);
	if (in) {
		if (in->size < sizeof(*in))
			return -EINVAL;
		*c = *in;
	}
	if (c->max_message > WEFT_PEER_MAX_MESSAGE_LIMIT ||
	    (c->shutdown_mode != WEFT_PEER_FLUSH &&
	     c->shutdown_mode != WEFT_PEER_DROP))
		return -EINVAL;
	if (c->stack_size && (c->stack_size < WEFT_FIBER_STACK_MIN ||
			      c->stack_size > WEFT_FIBER_STACK_MAX))
		return -EINVAL;
	if (!c->reconnect_ns)
		c->reconnect_ns = WEFT_PEER_RECONNECT_NS;
	if (!c->handshake_ns)
		c->handshake_ns = WEFT_PEER_HANDSHAKE_NS;
	if (!c->shutdown_ns)
		c->shutdown_ns = WEFT_PEER_SHUTDOWN_NS;
	if (!c->max_message)
		c->max_message = WEFT_PEER_MAX_MESSAGE;
	if (!c->send_queue)
		c->send_queue = WEFT_PEER_SEND_QUEUE;
	if (!c->event_queue)
		c->event_queue = WEFT_PEER_EVENT_QUEUE;
	if (!c->beacon_ns)
		c->beacon_ns = WEFT_PEER_BEACON_NS;
	const char *bind = c->bind ? c->bind : "127.0.0.1";
	if (strlen(bind) >= sizeof(n->bind))
		return -EINVAL;
	strcpy(n->bind, bind);
	c->bind = n->bind;
	if (c->beacon) {
		if (strlen(c->beacon) >= sizeof(n->beacon))
			return -EINVAL;
		strcpy(n->beacon, c->beacon);
		c->beacon = n->beacon;
	}
	n->id = c->node_id;
	while (n->id == 0)
		if (getrandom(&n->id, sizeof(n->id), 0) != sizeof(n->id))
			n->id = (uint64_t)weft_now_ns() * 0x9e3779b97f4a7c15ull;
	weft_codec_init(&n->codec);
	n->codec.max_frame = c->max_message > PEER_HS_LEN ? c->max_message
							  : PEER_HS_LEN;
	return 0;
}

int weft__peer_beacon_start(weft_peer_node *n);

static void node_release(weft_peer_node *n)
{
	struct weft_peer_endpoint *ep, *next;

	for (ep = n->eps; ep; ep = next) {
		next = ep->next;
		weft__peer_ep_unref(ep); /* the list's reference */
	}
	weft__peer_table_fini(&n->table);
	weft__peer_events_fini(n);
	weft_notify_free(n->idle);
	pthread_mutex_destroy(&n->lock);
	pthread_mutex_destroy(&n->live_mu);
	pthread_cond_destroy(&n->live_cv);
	if (n->lfd >= 0)
		close(n->lfd);
	if (n->beacon_fd >= 0)
		close(n->beacon_fd);
	free(n);
}

void *weft__peer_acceptor(void *arg);

int weft_peer_node_new(weft_runtime *rt, const weft_peer_config *cfg,
		       weft_peer_node **out)
{
	weft_peer_node *n;
	int err;

	if (!rt || !out)
		return -EINVAL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->rt = rt;
	n->lfd = -1;
	n->beacon_fd = -1;
	n->next_id = 1;
	pthread_mutex_init(&n->lock, NULL);
	pthread_mutex_init(&n->live_mu, NULL);
	pthread_cond_init(&n->live_cv, NULL);
	err = config_fill(n, cfg);
	if (err)
		goto fail_early;
	err = weft_notify_new(&n->idle);
	if (err)
		goto fail_early;
	err = weft__peer_events_init(n);
	if (err)
		goto fail_events;
	err = weft__peer_table_init(&n->table, rt);
	if (err)
		goto fail_table;
	n->lfd = weft_tcp_listen(n->bind, n->cfg.port, 0);
	if (n->lfd < 0) {
		err = n->lfd;
		goto fail_listen;
	}
	n->port = (uint16_t)weft_tcp_local_port(n->lfd);
	err = weft__peer_go(n, weft__peer_acceptor, n, "peer-accept");
	if (err)
		goto fail_listen;
	if (n->cfg.beacon) {
		err = weft__peer_beacon_start(n);
		if (err) {
			weft_peer_node_free(n);
			return err;
		}
	}
	*out = n;
	return 0;

fail_listen:
	weft__peer_table_fini(&n->table);
fail_table:
	weft__peer_events_fini(n);
fail_events:
	weft_notify_free(n->idle);
fail_early:
	if (n->lfd >= 0)
		close(n->lfd);
	pthread_mutex_destroy(&n->lock);
	pthread_mutex_destroy(&n->live_mu);
	pthread_cond_destroy(&n->live_cv);
	free(n);
	return err;
}

uint16_t weft_peer_port(const weft_peer_node *n)
{
	return n ? n->port : 0;
}

uint64_t weft_peer_node_id(const weft_peer_node *n)
{
	return n ? n->id : 0;
}

/* ---- the node's fibers ---- */

int weft__peer_go(weft_peer_node *n, weft_fiber_fn fn, void *arg,
		  const char *name)
{
	return weft__peer_go_join(n, fn, arg, name, NULL);
}

int weft__peer_go_join(weft_peer_node *n, weft_fiber_fn fn, void *arg,
		       const char *name, weft_join **join)
{
	weft_fiber_opts o;
	int err;

	weft_fiber_opts_init(&o);
	o.stack_size = n->cfg.stack_size;
	o.name = name;
	pthread_mutex_lock(&n->live_mu);
	n->live++;
	pthread_mutex_unlock(&n->live_mu);
	err = weft_go(n->rt, fn, arg, &o, join);
	if (err)
		weft__peer_fiber_exit(n);
	return err;
}

void weft__peer_fiber_exit(weft_peer_node *n)
{
	/* The waiter takes live_mu after it saw live == 0, so it cannot free
	 * the node while this still holds it. */
	pthread_mutex_lock(&n->live_mu);
	if (--n->live == 0) {
		pthread_cond_broadcast(&n->live_cv);
		weft_notify_one(n->idle);
	}
	pthread_mutex_unlock(&n->live_mu);
}

static bool all_ended(weft_peer_node *n)
{
	bool z;

	pthread_mutex_lock(&n->live_mu);
	z = n->live == 0;
	pthread_mutex_unlock(&n->live_mu);
	return z;
}

/* The flush ran past its time (a writer blocked on a remote that does not
 * read, say): close every connection now. */
static void escalate(weft_peer_node *n)
{
	pthread_mutex_lock(&n->lock);
	for (struct peer_conn *c = n->conns; c; c = c->next)
		weft__peer_conn_close(c, CLOSE_NOW, -ECANCELED);
	pthread_mutex_unlock(&n->lock);
}

static int wait_ended(weft_peer_node *n)
{
	uint64_t until = weft_now_ns() + n->cfg.shutdown_ns + 100000000u;
	bool escalated = false;

	if (weft_in_fiber()) {
		while (!all_ended(n)) {
			if (!escalated && weft_now_ns() > until) {
				escalated = true;
				escalate(n);
			}
			/* bounded: a notify that raced the check is not
			 * waited for long */
			int err = weft_co_notified(n->idle,
						   weft_now_ns() + 50000000u);
			if (err == -ECANCELED)
				return err;
		}
		return 0;
	}
	if (weft_runtime_current())
		return -EPERM;
	pthread_mutex_lock(&n->live_mu);
	while (n->live) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&n->live_cv, &n->live_mu, &ts);
		if (!escalated && n->live && weft_now_ns() > until) {
			escalated = true;
			pthread_mutex_unlock(&n->live_mu);
			escalate(n);
			pthread_mutex_lock(&n->live_mu);
		}
	}
	pthread_mutex_unlock(&n->live_mu);
	return 0;
}

int weft_peer_shutdown(weft_peer_node *n)
{
	struct weft_peer_endpoint *ep;
	struct peer_conn *c;
	enum peer_close how;

	if (!n)
		return -EINVAL;
	if (!weft_in_fiber() && weft_runtime_current())
		return -EPERM;
	if (!atomic_exchange(&n->closing, true)) {
		how = n->cfg.shutdown_mode == WEFT_PEER_FLUSH ? CLOSE_DRAIN
							      : CLOSE_NOW;
		shutdown(n->lfd, SHUT_RDWR);
		if (n->beacon_fd >= 0)
			shutdown(n->beacon_fd, SHUT_RDWR);
		weft_semaphore_close(n->evsem);
		pthread_mutex_lock(&n->lock);
		for (ep = n->eps; ep; ep = ep->next) {
			/* sends waiting for room fail (-ESHUTDOWN); what is
			 * queued stays for the flush */
			weft_mpsc_rx_close(ep->rx);
			ep->want = false;
			weft__peer_ep_update(ep);
			weft_notify_one(ep->wake);
		}
		for (c = n->conns; c; c = c->next)
			weft__peer_conn_close(c, c->attached ? how : CLOSE_NOW,
					      -ECANCELED);
		pthread_mutex_unlock(&n->lock);
	}
	int err = wait_ended(n);
	if (err)
		return err;
	/* Every fiber has ended: what is still queued stays unsent. */
	pthread_mutex_lock(&n->lock);
	if (!n->shut_done) {
		for (ep = n->eps; ep; ep = ep->next)
			atomic_fetch_add(&n->st_dropped,
					 weft__peer_queue_drain(ep));
		weft__peer_events_close(n);
	}
	n->shut_done = true;
	pthread_mutex_unlock(&n->lock);
	return 0;
}

int weft_peer_node_free(weft_peer_node *n)
{
	int err;

	if (!n)
		return 0;
	err = weft_peer_shutdown(n);
	if (err)
		return err;
	node_release(n);
	return 0;
}

int weft_peer_stats_get(const weft_peer_node *n, weft_peer_stats *st)
{
	weft_peer_stats s;
	size_t sz;

	if (!n || !st || st->size < sizeof(size_t))
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	sz = st->size < sizeof(s) ? st->size : sizeof(s);
	s.size = sz;
	pthread_mutex_lock((pthread_mutex_t *)&n->lock);
	s.endpoints = n->nendpoints;
	pthread_mutex_unlock((pthread_mutex_t *)&n->lock);
	s.connected = atomic_load(&n->st_connected);
	s.sent = atomic_load(&n->st_sent);
	s.sent_bytes = atomic_load(&n->st_sent_bytes);
	s.received = atomic_load(&n->st_received);
	s.received_bytes = atomic_load(&n->st_received_bytes);
	s.send_failed = atomic_load(&n->st_send_failed);
	s.dropped = atomic_load(&n->st_dropped);
	s.connects = atomic_load(&n->st_connects);
	s.disconnects = atomic_load(&n->st_disconnects);
	s.refused = atomic_load(&n->st_refused);
	s.duplicates = atomic_load(&n->st_duplicates);
	memcpy(st, &s, sz);
	return 0;
}
