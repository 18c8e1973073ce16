/* SPDX-License-Identifier: MIT */
/*
 * The peer network's insides (include/weft/peer.h is the API; docs/peer.md
 * the wire). Objects and who owns them:
 *
 *   node      the handle. Lists its endpoints (node->eps, under node->lock)
 *             and its connections (node->conns); counts its fibers
 *             (live) so that shutdown can wait for every one.
 *   endpoint  one listed "tcp://host:port": refcounted (the table holds one
 *             reference while it is listed; sends, dialers and connections
 *             hold others). Its send queue is a bounded mpsc of
 *             struct weft_peer_msg pointers whose receiver is used by one
 *             writer at a time (ep->rx_busy).
 *   conn      one TCP connection, from accept or dial to close: a framed
 *             reader and writer over the fd; refcounted by its two fibers
 *             (the writer, which is the fiber that made it, and the
 *             reader). Attached to its endpoint (ep->conn) once the
 *             handshake decided to keep it.
 *   msg       a queued message: refcounted, so a multicast shares one copy.
 *
 * Lock order: node->lock, then nothing (events and notifies are sent
 * after it is released, or are lock-free).
 */
#ifndef WEFT_SRC_PEER_PEER_H
#define WEFT_SRC_PEER_PEER_H

#include <pthread.h>
#include <stdatomic.h>

#include <ck_epoch.h>
#include <ck_hs.h>

#include <weft/fiber.h>
#include <weft/framed.h>
#include <weft/peer.h>
#include <weft/sync.h>

#include "spinlock.h"

/* ---- wire (docs/peer.md) ---- */
#define PEER_HS_LEN 16
#define PEER_VERSION 1
enum { HS_HELLO = 1, HS_WELCOME = 2, HS_REFUSE = 3, HS_BEACON = 4 };
enum {
	REFUSE_UNKNOWN = 1,
	REFUSE_DUPLICATE = 2,
	REFUSE_VERSION = 3,
	REFUSE_SELF = 4,
};
struct peer_hs {
	unsigned version, type, port; /* port: REFUSE's reason */
	uint64_t id;
};
void weft__peer_hs_encode(unsigned char b[PEER_HS_LEN],
			  const struct peer_hs *h);
/* 0, or -EPROTO (not a handshake). */
int weft__peer_hs_decode(const void *b, size_t len, struct peer_hs *h);

/* ---- URLs ---- */
#define PEER_HOST_MAX 256
/* "SCHEMEhost:port" (@scheme: "tcp://", "udp://") into @host (brackets
 * of an IPv6 literal removed) and *@port. 0 or -EINVAL. */
int weft__peer_url_parse(const char *url, const char *scheme,
			 char host[PEER_HOST_MAX], uint16_t *port);

/* ---- messages ---- */
struct weft_peer_msg {
	atomic_uint refs;
	size_t len;
	unsigned char data[];
};
struct weft_peer_msg *weft__peer_msg_new(const void *data, size_t len);
void weft__peer_msg_unref(struct weft_peer_msg *m);

/* ---- endpoint table: ck_hs (SPMC) keyed by id, ck_epoch ---- */
struct peer_table {
	ck_hs_t hs;
	ck_epoch_t epoch;
	ck_epoch_record_t *recs; /* one per worker of rt */
	unsigned nrecs;
	ck_epoch_record_t ext;   /* any other thread, under ext_lock */
	weft__spinlock ext_lock;
	weft_runtime *rt;
};
int weft__peer_table_init(struct peer_table *t, weft_runtime *rt);
void weft__peer_table_fini(struct peer_table *t);
/* Writers, under node->lock. put: 0 or -ENOMEM. del: the endpoint is no
 * longer found once this returns, and no reader still holds it without a
 * reference (a grace period passed). */
int weft__peer_table_put(struct peer_table *t, struct weft_peer_endpoint *ep);
void weft__peer_table_del(struct peer_table *t, struct weft_peer_endpoint *ep);
/* Any thread: the endpoint with @id, referenced (ep_unref it), or NULL. */
struct weft_peer_endpoint *weft__peer_table_get(struct peer_table *t,
						weft_peer_id id);
/* Any thread: @fn(ep, @arg) on the endpoint with @id inside a read section
 * (no reference taken: @fn must not wait); its result, or -ENOENT. */
int weft__peer_table_call(struct peer_table *t, weft_peer_id id,
			  int (*fn)(struct weft_peer_endpoint *, void *),
			  void *arg);
/* Any thread: @fn(ep, @arg) for each listed endpoint, in a read section:
 * @fn must not wait. */
void weft__peer_table_each(struct peer_table *t,
			   void (*fn)(struct weft_peer_endpoint *, void *),
			   void *arg);

/* ---- endpoint ---- */
#define PEER_ADDRS 8
struct peer_conn;
struct weft_peer_endpoint {
	weft_peer_id id; /* first: the table compares ids through it */
	atomic_uint refs;
	weft_peer_node *node;
	char url[WEFT_PEER_URL_MAX];
	char host[PEER_HOST_MAX];
	uint16_t port;
	weft_mpsc_tx *tx;         /* the send queue */
	weft_mpsc_rx *rx;
	weft_notify *wake;        /* the dialer's sleep */
	struct weft_peer_endpoint *next; /* node->eps */
	/* under node->lock: */
	struct sockaddr_storage addrs[PEER_ADDRS];
	unsigned naddrs;
	bool listed;              /* false once removed */
	bool want;                /* connect() and no disconnect() since */
	bool dialing;             /* a dial between connect and handshake end */
	bool dialer;              /* the dialer fiber runs */
	bool rx_busy;             /* a writer holds the queue's receiver */
	struct peer_conn *conn;   /* the connection kept */
	/* read without the lock by sends: want || conn, and conn */
	atomic_bool open, up;
};
/* Recompute ep->open and ep->up: under lock after want or conn changed. */
void weft__peer_ep_update(struct weft_peer_endpoint *ep);
void weft__peer_ep_ref(struct weft_peer_endpoint *ep);
void weft__peer_ep_unref(struct weft_peer_endpoint *ep);

/* ---- connection ---- */
enum peer_close {
	CLOSE_NONE = 0,
	CLOSE_GRACEFUL, /* write what is buffered, then FIN */
	CLOSE_DRAIN,    /* write the whole queue first (shutdown, flush) */
	CLOSE_NOW,      /* abort */
};
struct peer_conn {
	atomic_uint refs;
	weft_peer_node *node;
	struct weft_peer_endpoint *ep; /* referenced once attached */
	int fd;
	bool inbound;
	bool attached;
	uint64_t remote_id;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	weft_framed_reader r;
	weft_framed_writer w;
	weft_notify *stop;     /* wakes the writer */
	weft_notify *rdone;    /* the reader ended */
	atomic_bool reader_done;
	atomic_int close_how;  /* enum peer_close, the strongest asked */
	atomic_int close_err;  /* what DISCONNECTED says, first one wins;
				* 1: none yet */
	uint64_t drain_until;  /* CLOSE_DRAIN: the flush's deadline, set
				* before close_how */
	_Atomic(weft_join *) reader_join; /* aborted by CLOSE_NOW */
	/* Messages handed to the framed writer that the socket has not
	 * taken yet (as weft_framed_writer_written tells): each its size and
	 * the writer's byte count at its end. SENT once the socket took it,
	 * SEND_FAILED if the connection ends first. */
	struct peer_pending {
		size_t len;
		uint64_t end;
	} *pending;
	size_t npending, cap_pending;
	uint64_t queued_bytes;
	struct peer_conn *next; /* node->conns */
};
/* The fibers. arg: a struct peer_conn * (inbound: handshake first) or a
 * struct weft_peer_endpoint * (dialer). */
void *weft__peer_inbound(void *arg);
void *weft__peer_dialer(void *arg);
/* Ask @c to close (under node->lock or not); @err for DISCONNECTED. */
void weft__peer_conn_close(struct peer_conn *c, enum peer_close how, int err);

/* ---- node ---- */
struct weft_peer_node {
	weft_runtime *rt;
	weft_peer_config cfg;
	char bind[64];
	char beacon[WEFT_PEER_URL_MAX];
	uint64_t id;
	uint16_t port;
	int lfd;
	int beacon_fd;          /* -1: no beacon */
	weft_codec codec;
	pthread_mutex_t lock;
	struct weft_peer_endpoint *eps;
	struct peer_conn *conns;
	weft_peer_id next_id;
	struct peer_table table;
	/* events: unbounded mpsc of struct peer_ev; message-class ones hold a
	 * permit of evsem. */
	weft_mpsc_tx *evtx;
	weft_mpsc_rx *evrx;
	weft_semaphore *evsem;
	atomic_bool closing;
	bool shut_done;
	/* fibers running, and how shutdown waits for them */
	unsigned live;
	pthread_mutex_t live_mu;
	pthread_cond_t live_cv;
	weft_notify *idle;
	/* stats */
	atomic_uint_fast64_t st_connected, st_sent, st_sent_bytes,
		st_received, st_received_bytes, st_send_failed, st_dropped,
		st_connects, st_disconnects, st_refused, st_duplicates;
	uint64_t nendpoints; /* under lock */
};

/* Start @fn(@arg) as one of @n's fibers (counted in live). 0 or -errno
 * (nothing started). @join may be NULL. */
int weft__peer_go(weft_peer_node *n, weft_fiber_fn fn, void *arg,
		  const char *name);
int weft__peer_go_join(weft_peer_node *n, weft_fiber_fn fn, void *arg,
		       const char *name, weft_join **join);
/* Every node fiber calls this last. */
void weft__peer_fiber_exit(weft_peer_node *n);
/* Start the endpoint's dialer if it is wanted and none runs: under lock.
 * Returns true when the caller must weft__peer_go(dialer, ep) after
 * unlocking (a reference for it was taken). */
bool weft__peer_need_dialer(struct weft_peer_endpoint *ep);
void weft__peer_start_dialer(struct weft_peer_endpoint *ep);
/* Claim @ep's queue for the final drain if it is removed and nothing
 * works for it any more: under lock; true when the caller must call
 * ep_drain after unlocking. */
bool weft__peer_ep_claim_drain(struct weft_peer_endpoint *ep);
/* The dialer of @ep is gone: called under lock, which it releases; drops
 * the dialer's reference. */
void weft__peer_dialer_gone(struct weft_peer_endpoint *ep);
void weft__peer_ep_drain(struct weft_peer_endpoint *ep);
/* Free every message queued to @ep (nobody else uses its receiver);
 * returns how many. */
size_t weft__peer_queue_drain(struct weft_peer_endpoint *ep);
/* The endpoint matching an inbound connection from @addr whose HELLO
 * announced @port, or NULL: under lock. */
struct weft_peer_endpoint *weft__peer_match(weft_peer_node *n,
					    const struct sockaddr *addr,
					    uint16_t port);

/* ---- events ---- */
struct peer_ev_aux {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char url[WEFT_PEER_URL_MAX];
};
struct peer_ev {
	int kind;
	int error;
	bool inbound;
	bool nopermit; /* message-class, queued at shutdown without one */
	weft_peer_id peer;
	uint64_t node_id;
	void *data;
	size_t len;
	size_t dropped;
	struct peer_ev_aux *aux;
};
int weft__peer_events_init(weft_peer_node *n);
/* End the stream: takers get what is queued, then -EPIPE. Under lock, once
 * every node fiber has ended. */
void weft__peer_events_close(weft_peer_node *n);
void weft__peer_events_fini(weft_peer_node *n);
bool weft__peer_ev_on(const weft_peer_node *n, int kind);
/* Queue a control event (never waits; owns ev's data and aux: freed on
 * failure). */
void weft__peer_emit(weft_peer_node *n, struct peer_ev *ev);
/* Queue an event with an address and/or url. */
void weft__peer_emit_addr(weft_peer_node *n, int kind, weft_peer_id peer,
			  uint64_t node_id, int error, bool inbound,
			  const struct sockaddr_storage *addr,
			  socklen_t addrlen, const char *url);
/* A message-class event: waits (fiber) for a permit. 0, or -EPIPE (the
 * node is shutting down: ev freed). */
int weft__peer_emit_msg(weft_peer_node *n, struct peer_ev *ev);

#endif /* WEFT_SRC_PEER_PEER_H */
