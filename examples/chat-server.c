/* SPDX-License-Identifier: MIT */
/*
 * chat-server: a line-based chat room on weft (docs/sync.md, broadcast).
 *
 *   chat-server [--host ADDR] [--port N] [--workers N] [--capacity N]
 *
 * Clients connect over TCP; every line a client sends goes to every other
 * client as "<sender id>: <line>". Test it with `nc 127.0.0.1 7001` in two
 * terminals, or load it with bench/chat-client.
 *
 * The room is one weft_broadcast channel of fixed-size messages. Each
 * connection is one task running two small state machines in the same
 * poll:
 *  - the reader receives bytes, cuts them into lines and broadcasts each
 *    one (weft_broadcast_send never waits: the room never blocks);
 *  - the writer receives from its own broadcast receiver and sends every
 *    message not its own to the socket with weft_send_all.
 * A slow client's writer sits in its send while the room moves on; the
 * ring keeps the last --capacity messages, so when that client's socket
 * drains its receiver reports how many it missed (-EOVERFLOW) and the
 * client gets "*** skipped N messages" and continues from the oldest
 * message retained. It never holds anyone else up.
 *
 * SIGINT or SIGTERM: weft_runtime_shutdown() cancels every task (each drop
 * releases the connection's receiver, sender and fd) and the room goes.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#define TEXT_MAX 240  /* longer lines are cut into pieces of this size */
#define IN_BUF 4096
#define OUT_BUF (TEXT_MAX + 32)

/* A message in the room: the value type of the broadcast channel. */
struct msg {
	uint32_t from;
	uint32_t len;
	char text[TEXT_MAX];
};

static weft_broadcast_tx *room; /* main's sender: the room exists */
static atomic_uint next_id;
static atomic_ulong served;

/* ------------------------------------------------------- connection */

enum { R_RECV, R_RECVING, R_DONE };          /* reader */
enum { W_RECV, W_RECVING, W_SEND, W_DONE };  /* writer */

struct conn {
	int fd; /* owned */
	uint32_t id;
	weft_broadcast_tx *tx;
	weft_broadcast_rx *rx;
	/* reader */
	int rstep;
	weft_io recv;
	size_t in_len;
	char in[IN_BUF];
	/* writer */
	int wstep;
	weft_broadcast_recv next;
	struct msg m;
	uint64_t missed;
	weft_send_all send;
	char out[OUT_BUF];
	/* the end */
	weft_io close;
	bool closing;
};

/* Broadcast one line (without its newline) from @c. */
static void say(struct conn *c, const char *line, size_t len)
{
	struct msg m = { .from = c->id };

	while (len && (line[len - 1] == '\r'))
		len--;
	do { /* long lines go out in pieces */
		size_t n = len < TEXT_MAX ? len : TEXT_MAX;

		m.len = (uint32_t)n;
		memcpy(m.text, line, n);
		weft_broadcast_send(c->tx, &m); /* never waits */
		line += n;
		len -= n;
	} while (len);
}

/* The reader: PENDING, or READY when the client is gone. */
static weft_poll reader(struct conn *c, weft_cx *cx)
{
	int64_t res;

	for (;;) {
		switch (c->rstep) {
		case R_RECV:
			weft_io_prep_recv(&c->recv, c->fd, c->in + c->in_len,
					  sizeof(c->in) - c->in_len, 0);
			c->rstep = R_RECVING;
			/* fall through */
		case R_RECVING:
			if (weft_io_poll(&c->recv, cx, &res) == WEFT_PENDING)
				return WEFT_PENDING;
			if (res <= 0) { /* EOF or error: the client is gone */
				c->rstep = R_DONE;
				return WEFT_READY;
			}
			c->in_len += (size_t)res;
			char *start = c->in, *nl;
			while ((nl = memchr(start, '\n',
					    c->in_len -
						    (size_t)(start - c->in)))) {
				say(c, start, (size_t)(nl - start));
				start = nl + 1;
			}
			c->in_len -= (size_t)(start - c->in);
			memmove(c->in, start, c->in_len);
			if (c->in_len == sizeof(c->in)) { /* no newline */
				say(c, c->in, c->in_len);
				c->in_len = 0;
			}
			c->rstep = R_RECV;
			break;
		default:
			return WEFT_READY;
		}
	}
}

/* The writer: PENDING, or READY when it can write no more. */
static weft_poll writer(struct conn *c, weft_cx *cx)
{
	int64_t res;
	int st;

	for (;;) {
		switch (c->wstep) {
		case W_RECV:
			weft_broadcast_recv_init(&c->next, c->rx, &c->m,
						 &c->missed);
			c->wstep = W_RECVING;
			/* fall through */
		case W_RECVING: {
			int n;

			if (weft_broadcast_recv_poll(&c->next, cx, &st) ==
			    WEFT_PENDING)
				return WEFT_PENDING;
			weft_broadcast_recv_drop(&c->next);
			if (st == -EOVERFLOW) { /* this client was too slow */
				n = snprintf(c->out, sizeof(c->out),
					     "*** skipped %lu messages\n",
					     (unsigned long)c->missed);
			} else if (st == 0 && c->m.from != c->id) {
				n = snprintf(c->out, sizeof(c->out),
					     "%u: %.*s\n", c->m.from,
					     (int)c->m.len, c->m.text);
			} else if (st == 0) { /* our own line */
				c->wstep = W_RECV;
				break;
			} else { /* -EPIPE: the room is closed */
				c->wstep = W_DONE;
				return WEFT_READY;
			}
			weft_send_all_init(&c->send, c->fd, c->out, (size_t)n,
					   0);
			c->wstep = W_SEND;
		}
			/* fall through */
		case W_SEND:
			if (weft_send_all_poll(&c->send, cx, &res) ==
			    WEFT_PENDING)
				return WEFT_PENDING;
			if (res < 0) { /* the client is gone */
				c->wstep = W_DONE;
				return WEFT_READY;
			}
			c->wstep = W_RECV;
			break;
		default:
			return WEFT_READY;
		}
	}
}

static weft_poll conn_poll(void *self, weft_cx *cx, void *out)
{
	struct conn *c = self;
	int64_t res;

	(void)out;
	if (!c->closing) {
		/* Both halves run until either one is done. */
		if (reader(c, cx) == WEFT_PENDING &&
		    writer(c, cx) == WEFT_PENDING)
			return WEFT_PENDING;
		weft_io_drop(&c->recv);  /* cancel the other half's op */
		weft_send_all_drop(&c->send);
		weft_broadcast_recv_drop(&c->next);
		weft_io_prep_close(&c->close, c->fd);
		c->fd = -1; /* the close op owns it */
		c->closing = true;
	}
	if (weft_io_poll(&c->close, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	return WEFT_READY;
}

/* After READY, or when the task is cancelled at shutdown. */
static void conn_drop(void *self)
{
	struct conn *c = self;

	weft_io_drop(&c->recv);
	weft_send_all_drop(&c->send);
	weft_broadcast_recv_drop(&c->next);
	weft_io_drop(&c->close);
	weft_broadcast_rx_drop(c->rx);
	weft_broadcast_tx_drop(c->tx);
	if (c->fd >= 0)
		close(c->fd);
}

static const weft_future_desc conn_desc = {
	.poll = conn_poll,
	.drop = conn_drop,
	.size = sizeof(struct conn),
};

/* Join the room and serve @fd in a task of its own. */
static void conn_spawn(int fd)
{
	struct conn *c = calloc(1, sizeof(*c)); /* zeroed ops: io.h */
	int err, one = 1;

	if (!c) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->id = atomic_fetch_add(&next_id, 1);
	/* Subscribe now: the client sees every line sent from here on. */
	if ((err = weft_broadcast_subscribe(room, &c->rx)) ||
	    (err = weft_broadcast_tx_clone(room, &c->tx)) ||
	    (err = weft_spawn(NULL, &conn_desc, c, NULL))) {
		fprintf(stderr, "chat-server: %s\n", weft_strerror(err));
		weft_broadcast_rx_drop(c->rx);
		weft_broadcast_tx_drop(c->tx);
		close(fd);
	} else {
		atomic_fetch_add(&served, 1);
	}
	free(c); /* weft_spawn copied it into the task */
}

/* ----------------------------------------------------------- accept */

struct acceptor {
	int listen_fd; /* borrowed: main owns it */
	bool busy;        /* an accept or a back-off sleep is prepared */
	bool backing_off; /* it is the sleep */
	weft_io io;
};

static weft_poll acceptor_poll(void *self, weft_cx *cx, void *out)
{
	struct acceptor *a = self;
	int64_t res;

	(void)out;
	for (;;) {
		if (!a->busy)
			weft_io_prep_accept(&a->io, a->listen_fd);
		a->busy = true;
		if (weft_io_poll(&a->io, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		a->busy = false;
		if (a->backing_off) {
			a->backing_off = false;
		} else if (res >= 0) {
			conn_spawn((int)res);
		} else if (res == -EBADF || res == -EINVAL) {
			return WEFT_READY; /* no socket: stop */
		} else if (res != -ECONNABORTED) { /* out of fds: wait */
			weft_io_prep_sleep(&a->io, 100 * 1000 * 1000);
			a->busy = a->backing_off = true;
		}
	}
}

static void acceptor_drop(void *self)
{
	struct acceptor *a = self;

	weft_io_drop(&a->io);
}

static const weft_future_desc acceptor_desc = {
	.poll = acceptor_poll,
	.drop = acceptor_drop,
	.size = sizeof(struct acceptor),
};

/* ------------------------------------------------------------- main */

static unsigned long number(const char *name, const char *s,
			    unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno || v < lo || v > hi) {
		fprintf(stderr, "chat-server: %s wants a number in %lu..%lu\n",
			name, lo, hi);
		exit(1);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "workers", required_argument, NULL, 'w' },
		{ "capacity", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1";
	unsigned long port = 7001, capacity = 1024;
	weft_runtime_config cfg;
	weft_broadcast_rx *first;
	weft_runtime *rt;
	struct acceptor a = { 0 };
	sigset_t sigs;
	int lfd, sig = 0, err, c;

	weft_runtime_config_init(&cfg);
	while ((c = getopt_long(argc, argv, "H:p:w:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = number("--port", optarg, 0, 65535);
			break;
		case 'w':
			cfg.workers = (unsigned)number("--workers", optarg, 1,
						       256);
			break;
		case 'c':
			capacity = number("--capacity", optarg, 1, 1 << 20);
			break;
		case 'h':
			printf("usage: chat-server [--host ADDR] [--port N] "
			       "[--workers N] [--capacity N]\n");
			return 0;
		default:
			fprintf(stderr, "usage: chat-server [--host ADDR] "
				"[--port N] [--workers N] [--capacity N]\n");
			return 1;
		}
	}

	/* Only sigwait() below takes these (threads inherit the mask). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if ((err = weft_broadcast_new(sizeof(struct msg), capacity, &room,
				      &first))) {
		fprintf(stderr, "chat-server: room: %s\n", weft_strerror(err));
		return 1;
	}
	weft_broadcast_rx_drop(first); /* connections subscribe their own */
	lfd = weft_tcp_listen(host, (uint16_t)port, 0);
	if (lfd < 0) {
		fprintf(stderr, "chat-server: listen on %s:%lu: %s\n", host,
			port, weft_strerror(lfd));
		return 1;
	}
	if ((err = weft_runtime_new(&cfg, &rt))) {
		fprintf(stderr, "chat-server: runtime: %s\n",
			weft_strerror(err));
		return 1;
	}
	a.listen_fd = lfd;
	if ((err = weft_spawn(rt, &acceptor_desc, &a, NULL))) {
		fprintf(stderr, "chat-server: spawn: %s\n", weft_strerror(err));
		return 1;
	}
	printf("chat-server: listening on %s:%d\n", host,
	       weft_tcp_local_port(lfd));
	fflush(stdout);

	do
		err = sigwait(&sigs, &sig);
	while (err == EINTR);

	err = weft_runtime_shutdown(rt); /* every connection's drop runs */
	weft_runtime_free(rt);
	weft_broadcast_tx_drop(room);
	close(lfd);
	printf("chat-server: served %lu connections\n",
	       atomic_load(&served));
	return err ? 1 : 0;
}
