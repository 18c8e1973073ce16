/* SPDX-License-Identifier: MIT */
/**
 * @file weft/peer.h
 * A peer network: a node that keeps TCP connections to a list of known
 * endpoints and exchanges byte messages with them (docs/peer.md).
 *
 * Shape (as a gossip node in Rust: a config, a handle for commands, a
 * stream of events, a shutdown):
 *   - weft_peer_node_new() binds, listens, and starts the node's tasks.
 *   - weft_peer_add() puts an endpoint ("tcp://host:port") on the node's
 *     list: only listed endpoints may connect in, and weft_peer_connect()
 *     dials one, again every reconnect interval whenever the connection is
 *     lost, until weft_peer_disconnect() or weft_peer_remove().
 *   - Messages go to one endpoint (weft_peer_send, weft_peer_try_send), a
 *     list (weft_peer_multicast) or every connected one
 *     (weft_peer_broadcast), through a bounded send queue per endpoint:
 *     a send to a full queue waits (future, fiber) or fails with -EAGAIN
 *     (try); none is dropped silently.
 *   - Everything that happens comes out as a weft_peer_event: endpoint
 *     added/removed, connected/disconnected, message received, message
 *     sent, send failed, connection refused, node discovered.
 *   - weft_peer_shutdown() stops accepting, flushes or drops what is
 *     queued (as configured), closes every connection and joins every
 *     task of the node.
 *
 * Wire: every connection carries length-delimited frames in the default
 * weft_codec format (4-byte big-endian length, as tokio-util's
 * LengthDelimitedCodec), the first frame each way being a 16-byte
 * handshake; every later frame is one message. When two nodes dial each
 * other at once, both keep the connection dialed by the node with the
 * lower identity. docs/peer.md has the handshake byte by byte.
 *
 * Tasks: a node runs on fibers of its runtime: one accepts, one per
 * endpoint dials while it is wanted, and each connection has a reader and
 * a writer. Shut a node down (weft_peer_shutdown) before freeing its
 * runtime.
 *
 * Threads: every call is thread-safe (any thread, worker or not), except
 * where it says it must be called from a fiber or a plain thread. The
 * endpoint table is read on every send without a lock (Concurrency Kit's
 * ck_hs in SPMC mode, memory reclaimed with ck_epoch) and written under
 * the node's lock by add and remove.
 *
 * Errors are negative errno values; no call prints or aborts.
 * NULL: see weft/core.h.
 */
#ifndef WEFT_PEER_H
#define WEFT_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <weft/core.h>
#include <weft/mpsc.h>
#include <weft/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An endpoint of a node: 1, 2, ... in the order they were added, never
 * reused by that node; 0 is no endpoint. */
typedef uint64_t weft_peer_id;

/** The node (opaque). */
typedef struct weft_peer_node weft_peer_node;

/** What weft_peer_shutdown does with messages still queued. */
enum weft_peer_shutdown_mode {
	/** Write every queued message to its connection, then close it
	 * (bounded by weft_peer_config.shutdown_ns). */
	WEFT_PEER_FLUSH = 0,
	/** Close at once; queued messages are freed (counted in
	 * weft_peer_stats.dropped). */
	WEFT_PEER_DROP = 1,
};

/** Defaults of weft_peer_config (0 in a field selects them). */
#define WEFT_PEER_RECONNECT_NS (1000ull * 1000 * 1000)      /**< 1 s */
#define WEFT_PEER_HANDSHAKE_NS (5000ull * 1000 * 1000)      /**< 5 s */
#define WEFT_PEER_SHUTDOWN_NS (5000ull * 1000 * 1000)       /**< 5 s */
#define WEFT_PEER_MAX_MESSAGE ((size_t)8 * 1024 * 1024)     /**< 8 MiB */
#define WEFT_PEER_SEND_QUEUE ((size_t)1024)                 /**< messages */
#define WEFT_PEER_EVENT_QUEUE ((size_t)4096)                /**< events */
#define WEFT_PEER_BEACON_NS (1000ull * 1000 * 1000)         /**< 1 s */

/**
 * A node's configuration. Initialise with weft_peer_config_init(), then
 * set fields; zero fields take the defaults above. Strings are copied by
 * weft_peer_node_new().
 */
typedef struct weft_peer_config {
	size_t size;            /**< sizeof(weft_peer_config) */
	/** Address to listen on: a numeric IPv4 or IPv6 address; NULL:
	 * "127.0.0.1". */
	const char *bind;
	/** TCP port to listen on; 0: the kernel picks one
	 * (weft_peer_port() tells which). */
	uint16_t port;
	/** Wait between two dials of a wanted endpoint that is not
	 * connected, ns. */
	uint64_t reconnect_ns;
	/** Longest a dial plus handshake, or an inbound handshake, may
	 * take, ns. */
	uint64_t handshake_ns;
	/** Largest message sent or accepted, bytes (at most
	 * WEFT_PEER_MAX_MESSAGE_LIMIT). A peer that sends a larger one is
	 * disconnected (-EMSGSIZE). */
	size_t max_message;
	/** Messages queued per endpoint before sends wait or fail. */
	size_t send_queue;
	/** Message-class events (MESSAGE, SENT, SEND_FAILED) not yet taken
	 * by the application before the node stops reading from its
	 * connections (backpressure to the remote senders). Other events
	 * are few and always queued. */
	size_t event_queue;
	/** Event kinds NOT to deliver: a mask of WEFT_PEER_EV(kind); 0:
	 * deliver all. */
	unsigned events_off;
	/** enum weft_peer_shutdown_mode. */
	int shutdown_mode;
	/** Longest weft_peer_shutdown waits for queued messages to be
	 * written in WEFT_PEER_FLUSH mode, ns; then it closes anyway and
	 * counts what was left as dropped. */
	uint64_t shutdown_ns;
	/** This node's identity, sent in the handshake; 0: a random one.
	 * Two nodes of a network must not share one. */
	uint64_t node_id;
	/** Local discovery: NULL (off), or "udp://GROUP:PORT" with an IPv4
	 * multicast group (e.g. "udp://239.255.77.77:47777") or a broadcast
	 * address ("udp://255.255.255.255:47777"). The node announces itself
	 * there every beacon_ns and reports nodes it hears as
	 * WEFT_PEER_DISCOVERED events; it never adds them itself. */
	const char *beacon;
	/** Interval between two announcements, ns. */
	uint64_t beacon_ns;
	/** Fiber stack size for the node's tasks, bytes; 0: 64 KiB. */
	size_t stack_size;
} weft_peer_config;

/** Largest max_message a node accepts. */
#define WEFT_PEER_MAX_MESSAGE_LIMIT ((size_t)1 << 30)

/** Set @cfg to the defaults (size set, everything else 0). NULL is
 * accepted. */
WEFT_API void weft_peer_config_init(weft_peer_config *cfg);

/**
 * Create a node on @rt: bind and listen on cfg->bind:cfg->port (so the
 * port is known when this returns), then start its accept task (and the
 * beacon's, when configured). @cfg (NULL: the defaults) is copied.
 * *@out receives the node; free it with weft_peer_node_free().
 * Returns 0, or -EINVAL (NULL @rt or @out, a bad @cfg: size too small,
 * bind not a numeric address, max_message over the limit, an
 * unknown shutdown_mode, a bad beacon URL), -EADDRINUSE (the port is
 * taken), -ENOMEM, -ESHUTDOWN (@rt is shutting down), or another
 * negative errno from socket/bind/listen. Thread-safe.
 */
WEFT_API int weft_peer_node_new(weft_runtime *rt, const weft_peer_config *cfg,
				weft_peer_node **out);

/** The TCP port @n listens on (host order), 0 for NULL. */
WEFT_API uint16_t weft_peer_port(const weft_peer_node *n);

/** @n's identity (the configured one, or the random one chosen), 0 for
 * NULL. */
WEFT_API uint64_t weft_peer_node_id(const weft_peer_node *n);

/**
 * Put the endpoint @url on @n's list. @url is "tcp://HOST:PORT" with HOST
 * an IPv4 address, an IPv6 address in brackets ("tcp://[::1]:7000") or a
 * name (resolved with getaddrinfo on the runtime's blocking pool, now and
 * at every dial; until the first lookup ends, connections from that name
 * are refused), PORT 1-65535. Only listed endpoints may connect in: a
 * connection is matched by its source address and the listen port its
 * handshake announces. A WEFT_PEER_ADDED event follows. Adding does not
 * dial: see weft_peer_connect().
 * *@id (may be NULL) receives the endpoint's id.
 * Returns 0, or -EINVAL (NULL @n or @url; no "tcp://" scheme, no port, a
 * port out of range, an empty or over-long host, trailing characters),
 * -EEXIST (@url is already listed: *@id receives that endpoint's id),
 * -ENOMEM, -ESHUTDOWN (@n is shutting down). Thread-safe.
 */
WEFT_API int weft_peer_add(weft_peer_node *n, const char *url,
			   weft_peer_id *id);

/**
 * Take endpoint @id off @n's list: stop dialing it, close its connection,
 * and free the messages queued to it (counted in the REMOVED event's
 * `dropped` and in weft_peer_stats.dropped; a send waiting for room there
 * fails with -ENOENT). A WEFT_PEER_DISCONNECTED event (if it was
 * connected) and a WEFT_PEER_REMOVED event follow. Its id is not reused.
 * Returns 0, or -EINVAL (NULL @n), -ENOENT (no such endpoint).
 * Thread-safe.
 */
WEFT_API int weft_peer_remove(weft_peer_node *n, weft_peer_id id);

/**
 * Want endpoint @id connected: dial it now unless it is connected or
 * being dialed, and again every reconnect_ns while it is not, until
 * weft_peer_disconnect() or weft_peer_remove(). Failed dials make no
 * event; each connection made gives WEFT_PEER_CONNECTED.
 * Returns 0 (also when already connected), -EINVAL, -ENOENT, -ENOMEM,
 * -ESHUTDOWN. Thread-safe.
 */
WEFT_API int weft_peer_connect(weft_peer_node *n, weft_peer_id id);

/**
 * Stop wanting endpoint @id: no more dials, and its connection, if any,
 * is closed after the frames being written (WEFT_PEER_DISCONNECTED
 * follows). Messages still queued stay queued for a later connection;
 * new sends fail with -ENOTCONN until it is connected again. The endpoint
 * stays listed, so it may still connect in.
 * Returns 0, -EINVAL, -ENOENT. Thread-safe.
 */
WEFT_API int weft_peer_disconnect(weft_peer_node *n, weft_peer_id id);

/**
 * Queue a copy of the @len bytes at @msg for endpoint @id without waiting.
 * A message is queued when the endpoint is connected or wanted
 * (weft_peer_connect: it goes out once connected); it is written to the
 * connection in order, and WEFT_PEER_SENT follows once the socket took all
 * of it (or WEFT_PEER_SEND_FAILED, when the connection ended before: some
 * of its bytes may have left).
 * Returns 0, or -EINVAL (NULL @n, NULL @msg with @len > 0), -EMSGSIZE
 * (@len over max_message), -ENOENT (no such endpoint), -ENOTCONN (neither
 * connected nor wanted), -EAGAIN (its queue is full: nothing queued),
 * -ENOMEM, -ESHUTDOWN. Thread-safe.
 */
WEFT_API int weft_peer_try_send(weft_peer_node *n, weft_peer_id id,
				const void *msg, size_t len);

/**
 * A send that waits for room in the endpoint's queue: the future. Prepare
 * with weft_peer_send_init, poll until READY (output int: 0 or the
 * errors of weft_peer_try_send, -EAGAIN excepted, plus -ENOENT when the
 * endpoint is removed while it waits), drop. The message is copied at
 * init, so @msg is the caller's again when init returns. Fields are
 * private.
 */
typedef struct weft_peer_send {
	weft_peer_node *_node;
	weft_peer_id _id;
	struct weft_peer_msg *_msg;
	bool _started;
	weft_mpsc_send _send;
	struct weft_peer_endpoint *_ep;
} weft_peer_send;

/**
 * Prepare @s to queue a copy of @msg/@len for @id.
 * Returns 0, or -EINVAL (NULL @s or @n, NULL @msg with @len > 0), -EMSGSIZE,
 * -ENOMEM. On failure @s needs no drop.
 */
WEFT_API int weft_peer_send_init(weft_peer_send *s, weft_peer_node *n,
				 weft_peer_id id, const void *msg,
				 size_t len);

/** Poll @s (from a task): READY with *@res, or PENDING while the queue is
 * full (woken when there is room). NULL: see core.h. */
WEFT_API weft_poll weft_peer_send_poll(weft_peer_send *s, weft_cx *cx,
				       int *res);

/** Drop @s (before READY: nothing is queued and the copy is freed). */
WEFT_API void weft_peer_send_drop(weft_peer_send *s);

/** weft_peer_send as a future: output int. */
WEFT_API extern const weft_future_desc weft_peer_send_desc;

/**
 * Queue one shared copy of @msg/@len for each of the @count endpoints at
 * @ids, without waiting. @errs (may be NULL) receives, for each, 0 or
 * the error weft_peer_try_send would have returned (-EAGAIN for a full
 * queue: that endpoint did not get it).
 * Returns how many endpoints it was queued for (0..@count), or -EINVAL
 * (NULL @n, NULL @ids with @count > 0, NULL @msg with @len > 0),
 * -EMSGSIZE, -ENOMEM, -ESHUTDOWN (nothing queued). Thread-safe.
 */
WEFT_API int weft_peer_multicast(weft_peer_node *n, const weft_peer_id *ids,
				 size_t count, const void *msg, size_t len,
				 int *errs);

/**
 * Queue one shared copy of @msg/@len for every connected endpoint,
 * without waiting. *@full (may be NULL) receives how many connected
 * endpoints were skipped because their queue was full.
 * Returns how many endpoints it was queued for, or -EINVAL, -EMSGSIZE,
 * -ENOMEM, -ESHUTDOWN. Thread-safe.
 */
WEFT_API int weft_peer_broadcast(weft_peer_node *n, const void *msg,
				 size_t len, size_t *full);

/** Event kinds. */
enum weft_peer_event_kind {
	WEFT_PEER_ADDED = 1,    /**< peer, url */
	WEFT_PEER_REMOVED,      /**< peer, dropped */
	WEFT_PEER_CONNECTED,    /**< peer, node_id, addr, inbound */
	WEFT_PEER_DISCONNECTED, /**< peer, node_id, addr, error */
	WEFT_PEER_MESSAGE,      /**< peer, data, len */
	WEFT_PEER_SENT,         /**< peer, len: the socket took it */
	WEFT_PEER_SEND_FAILED,  /**< peer, len, error */
	WEFT_PEER_REFUSED,      /**< addr, node_id (0 if none), error */
	WEFT_PEER_DISCOVERED,   /**< url, node_id, addr */
};

/** The bit of @kind in weft_peer_config.events_off. */
#define WEFT_PEER_EV(kind) (1u << (kind))

/** Longest url an event carries, with its NUL. */
#define WEFT_PEER_URL_MAX 300

/**
 * An event. Which fields are set depends on kind (see
 * enum weft_peer_event_kind); the others are 0, addrlen 0 and url "" when
 * the kind has none (the rest of addr and url is not cleared).
 */
typedef struct weft_peer_event {
	int kind;                     /**< enum weft_peer_event_kind */
	weft_peer_id peer;            /**< the endpoint, 0 if none */
	/** CONNECTED: true when the remote dialed. */
	bool inbound;
	/**
	 * DISCONNECTED: why: 0 (the remote closed the connection at a
	 * message boundary), -ECONNRESET, -EPIPE, -EPROTO (a malformed
	 * frame, or the connection ended inside one), -EMSGSIZE (a message
	 * over max_message), -ECANCELED (closed here: disconnect, remove,
	 * shutdown, or the other connection of a simultaneous dial won),
	 * or another socket error.
	 * SEND_FAILED: the connection's error.
	 * REFUSED: -EACCES (the address and port are not on the list),
	 * -EPROTO (no valid handshake within handshake_ns),
	 * -EPROTONOSUPPORT (the remote speaks another handshake version),
	 * -EEXIST (the remote has this node's identity).
	 */
	int error;
	uint64_t node_id;             /**< the remote's identity */
	struct sockaddr_storage addr; /**< the remote's address */
	socklen_t addrlen;            /**< 0: no address */
	/** MESSAGE: the message, malloc'd: the event owns it until
	 * weft_peer_event_clear(), or the application takes it (then sets
	 * data to NULL and frees it with free()). */
	void *data;
	size_t len;                   /**< MESSAGE, SENT, SEND_FAILED: bytes */
	size_t dropped;               /**< REMOVED: queued messages freed */
	/** ADDED: the url as given; DISCOVERED: "tcp://ADDR:PORT" of the
	 * node heard. */
	char url[WEFT_PEER_URL_MAX];
} weft_peer_event;

/** Free what @ev owns (its data) and empty it: every field 0 or NULL,
 * addr's family AF_UNSPEC, url "" (the bytes of addr and url past those
 * are not cleared). NULL is accepted. */
WEFT_API void weft_peer_event_clear(weft_peer_event *ev);

/**
 * Take the next event without waiting.
 * Returns 0 (*@ev filled: the caller owns it, see weft_peer_event_clear),
 * -EAGAIN (none now), -EPIPE (the node is shut down and every event was
 * taken), -EINVAL (NULL @n or @ev). The events are one stream with one
 * taker at a time (as an mpsc receiver): the event calls of a node must not
 * run concurrently.
 */
WEFT_API int weft_peer_try_event(weft_peer_node *n, weft_peer_event *ev);

/**
 * The next event as a future, output int (weft_peer_try_event's values,
 * never -EAGAIN). Prepare with weft_peer_next_event_init; @ev is written
 * when READY with 0. Fields are private.
 */
typedef struct weft_peer_next_event {
	weft_peer_node *_node;
	weft_peer_event *_ev;
	weft_mpsc_recv _recv;
	uint64_t _raw[12];
} weft_peer_next_event;

/** Prepare @f to take @n's next event into @ev (borrowed until READY or
 * the drop). Returns 0 or -EINVAL. */
WEFT_API int weft_peer_next_event_init(weft_peer_next_event *f,
				       weft_peer_node *n, weft_peer_event *ev);

/** weft_peer_next_event as a future: output int. */
WEFT_API extern const weft_future_desc weft_peer_next_event_desc;

/**
 * Wait for the next event on a plain thread (not a worker of any runtime).
 * Returns weft_peer_try_event's values (never -EAGAIN), or -EDEADLK on a
 * worker thread.
 */
WEFT_API int weft_peer_event_blocking(weft_peer_node *n, weft_peer_event *ev);

/** Counters of a node (monotonic, since it was created). */
typedef struct weft_peer_stats {
	size_t size;             /**< sizeof(weft_peer_stats), set by caller */
	uint64_t endpoints;      /**< listed now */
	uint64_t connected;      /**< connected now */
	/** messages the socket took (SENT events): counted once all of
	 * their bytes were written to the connection's socket */
	uint64_t sent;
	uint64_t sent_bytes;     /**< their bytes */
	/** messages received and reported (MESSAGE events; all received
	 * when those are off). A connection closed at once (remove, DROP
	 * shutdown, an error) discards what it had not reported yet. */
	uint64_t received;
	uint64_t received_bytes; /**< their bytes */
	uint64_t send_failed;    /**< SEND_FAILED messages */
	/** Queued messages freed unsent: by weft_peer_remove, or by
	 * weft_peer_shutdown in WEFT_PEER_DROP mode, or left when the
	 * flush ran out of time or had no connection. */
	uint64_t dropped;
	uint64_t connects;       /**< connections made, both ways */
	uint64_t disconnects;    /**< connections lost or closed */
	uint64_t refused;        /**< inbound connections refused */
	uint64_t duplicates;     /**< connections closed by the tie-break */
} weft_peer_stats;

/**
 * Copy @n's counters into @st (@st->size set by the caller: fields past
 * it are not written). Returns 0 or -EINVAL. Thread-safe.
 */
WEFT_API int weft_peer_stats_get(const weft_peer_node *n, weft_peer_stats *st);

/**
 * Shut @n down: stop accepting and dialing, flush or drop the queued
 * messages (cfg.shutdown_mode, cfg.shutdown_ns), close every connection
 * (each gives WEFT_PEER_DISCONNECTED with -ECANCELED, unless it ended
 * otherwise first), and return once every task of the node has ended.
 * Sends fail with -ESHUTDOWN from the start of it. Events queued before
 * stay readable; then the event calls return -EPIPE.
 * Call from a fiber (it suspends) or from a plain thread (it blocks), not
 * from a task that is not a fiber. Calling it again waits for the same
 * shutdown and returns 0.
 * Returns 0, or -EINVAL (NULL @n), -EPERM (on a worker, not in a fiber).
 */
WEFT_API int weft_peer_shutdown(weft_peer_node *n);

/**
 * Shut @n down if that was not done (as weft_peer_shutdown, so the same
 * threads rule holds) and free it, with the events nobody took.
 * NULL is accepted. Returns 0, or -EPERM (nothing was freed).
 */
WEFT_API int weft_peer_node_free(weft_peer_node *n);

/*
 * From a fiber (weft/fiber.h): past @deadline_ns (weft_now_ns clock; 0:
 * none) they return -ETIMEDOUT with nothing queued or taken; -ECANCELED
 * when the fiber is aborted; -EPERM off a fiber.
 */

/** Send, waiting for room: weft_peer_send's values. */
WEFT_API int weft_co_peer_send(weft_peer_node *n, weft_peer_id id,
			       const void *msg, size_t len,
			       uint64_t deadline_ns);

/**
 * Multicast, waiting for room in each full queue in turn (one shared copy):
 * returns how many endpoints it was queued for; @errs (may be NULL) as
 * for weft_peer_multicast, with -ETIMEDOUT for those not reached by the
 * deadline and -ECANCELED for the rest when the fiber is aborted.
 * -EINVAL, -EMSGSIZE, -ENOMEM, -ESHUTDOWN, -EPERM: nothing queued.
 */
WEFT_API int weft_co_peer_multicast(weft_peer_node *n,
				    const weft_peer_id *ids, size_t count,
				    const void *msg, size_t len, int *errs,
				    uint64_t deadline_ns);

/** Broadcast to every connected endpoint, waiting for room as
 * weft_co_peer_multicast: how many it was queued for, or its errors. */
WEFT_API int weft_co_peer_broadcast(weft_peer_node *n, const void *msg,
				    size_t len, uint64_t deadline_ns);

/** The next event: weft_peer_next_event's values. */
WEFT_API int weft_co_peer_event(weft_peer_node *n, weft_peer_event *ev,
				uint64_t deadline_ns);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_PEER_H */
