/* SPDX-License-Identifier: MIT */
/*
 * echo-server: a TCP echo server on weft, and the example to copy from.
 *
 *   echo-server [--host ADDR] [--port N] [--workers N] [--idle-timeout S]
 *               [--grace-ms N]
 *
 * How it works
 *
 * A weft future is a plain struct (its state) plus a poll function. The
 * runtime copies the struct into a task and calls poll on a worker thread
 * whenever the task is woken. Poll either finishes (WEFT_READY) or returns
 * WEFT_PENDING after something has promised to wake the task: here that is
 * always a nested future: a weft_io op (accept, recv, close) or a
 * weft_send_all (which loops over partial sends) that io_uring completes.
 * So each future below is a state machine: a `step` field says where it
 * is, and poll runs a loop that advances it until an op is not done yet.
 *
 *  - main (with examples/echo-common.h, which echo-fiber shares: the
 *    options, the signals, the drain) blocks SIGINT and SIGTERM (before
 *    the runtime exists, so that worker threads inherit the mask and never
 *    take them), opens the listening socket with weft_tcp_listen() and
 *    spawns the accept task.
 *  - The accept task loops on a weft_io_prep_accept() op and spawns one
 *    detached connection task per accepted fd.
 *  - A connection task loops: recv into the 16 KiB buffer that lives inside
 *    its own state, send all of it back with weft_send_all, and at EOF or on
 *    an error close the fd and finish. With --idle-timeout, each recv
 *    carries a deadline (weft_io_set_timeout: one io_uring linked timeout),
 *    so a client that sends nothing for S seconds gets -ETIMEDOUT and is
 *    closed: a slow or dead client cannot hold a connection forever.
 *  - main waits in sigwait(); on a signal it drains: it aborts the accept
 *    task (no new connections), tells every connection waiting for a
 *    request to close (a weft_notify), and calls
 *    weft_runtime_shutdown_timeout() with the --grace-ms period. Requests
 *    in flight complete: a connection that is echoing finishes, and keeps
 *    serving while its client keeps sending (a recv during the drain
 *    waits 1 s at most, then the connection closes). Connections still
 *    open when the grace period ends are cancelled (each future's drop
 *    function runs: it drops the op in flight and closes the fd the task
 *    owns), and the workers are joined.
 *
 * Ownership rule worth copying: a buffer handed to an op must stay valid
 * while the op may be in flight. Keeping it inside the task's state does
 * that for free, because weft keeps the task's memory until the kernel is
 * done with the op, even when the future is dropped early.
 *
 * Output: one line "echo-server: listening on HOST:PORT" (the actual port,
 * so --port 0 works), and on exit the number of connections served and of
 * those closed for idling.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "echo-common.h"

#define BUF_SIZE (16 * 1024)

/* ------------------------------------------------------- connection */

enum conn_step {
	CONN_RECV, CONN_RECVING, CONN_SEND, CONN_CLOSE,
	CONN_NEXT, CONN_SEND_BUF, /* --streams */
};

struct conn {
	int fd;             /* owned; -1 once handed to the close op */
	enum conn_step step;
	bool drain_recv;    /* the recv in flight began during the drain */
	weft_io io;         /* the recv or close in flight, if any */
	weft_send_all send; /* sends everything received, however split */
	weft_notified drain; /* on drain_notify: the drain has begun */
	/* --streams: a recv stream lends each chunk in a pool buffer. */
	weft_recv_stream rs;
	weft_buf b;         /* the chunk being sent back */
	weft_io timer;      /* --idle-timeout or the drain, while waiting */
	bool timing;        /* timer is armed for the current wait */
	unsigned char buf[BUF_SIZE];
};

/*
 * --streams: the next chunk from the recv stream. While none is there,
 * an idle connection closes when the drain begins or after
 * --idle-timeout; a wait that began during the drain has DRAIN_IDLE_NS.
 * READY with *@res: bytes in c->b, 0 (close), or an error.
 */
static weft_poll conn_next(struct conn *c, weft_cx *cx, int64_t *res)
{
	int64_t r;

	if (weft_recv_stream_next(&c->rs, cx, &c->b, res) == WEFT_READY) {
		if (c->timing)
			weft_io_drop(&c->timer);
		c->timing = false;
		return WEFT_READY;
	}
	if (!c->timing) {
		c->drain_recv = atomic_load(&echo.draining);
		if (c->drain_recv || echo.idle_timeout_ns) {
			weft_io_prep_sleep(&c->timer,
					   c->drain_recv ? DRAIN_IDLE_NS
							 : echo.idle_timeout_ns);
			c->timing = true;
		}
	}
	if (c->timing && weft_io_poll(&c->timer, cx, &r) == WEFT_READY) {
		c->timing = false;
		if (!c->drain_recv)
			atomic_fetch_add_explicit(&echo.idle_closed, 1,
						  memory_order_relaxed);
		*res = 0;
		return WEFT_READY;
	}
	if (!c->drain_recv &&
	    weft_notified_poll(&c->drain, cx, NULL) == WEFT_READY) {
		*res = 0; /* idle when the drain began */
		return WEFT_READY;
	}
	return WEFT_PENDING;
}

static weft_poll conn_poll(void *self, weft_cx *cx, void *out)
{
	struct conn *c = self;
	int64_t res;

	(void)out;
	for (;;) {
		switch (c->step) {
		case CONN_RECV:
			weft_io_prep_recv(&c->io, c->fd, c->buf, sizeof(c->buf),
					  0);
			c->drain_recv = atomic_load(&echo.draining);
			if (c->drain_recv)
				weft_io_set_timeout(&c->io, DRAIN_IDLE_NS);
			else if (echo.idle_timeout_ns)
				weft_io_set_timeout(&c->io, echo.idle_timeout_ns);
			c->step = CONN_RECVING;
			/* fall through */
		case CONN_RECVING:
			if (weft_io_poll(&c->io, cx, &res) == WEFT_PENDING) {
				/* Waiting for a request when the drain began:
				 * idle, so close now (conn_drop cancels the
				 * recv). A recv begun during the drain has
				 * its own short timeout instead. */
				if (c->drain_recv ||
				    weft_notified_poll(&c->drain, cx, NULL) ==
					    WEFT_PENDING)
					return WEFT_PENDING;
				return WEFT_READY;
			}
			if (res <= 0) { /* 0: the peer is done; < 0: error */
				if (res == -ETIMEDOUT && !c->drain_recv)
					atomic_fetch_add_explicit(
						&echo.idle_closed, 1,
						memory_order_relaxed);
				c->step = CONN_CLOSE;
				break;
			}
			weft_send_all_init(&c->send, c->fd, c->buf, (size_t)res, 0);
			c->step = CONN_SEND;
			/* fall through */
		case CONN_SEND:
			if (weft_send_all_poll(&c->send, cx, &res) == WEFT_PENDING)
				return WEFT_PENDING;
			c->step = res < 0 ? CONN_CLOSE : CONN_RECV;
			break;
		case CONN_NEXT:
			if (conn_next(c, cx, &res) == WEFT_PENDING)
				return WEFT_PENDING;
			if (res <= 0) {
				c->step = CONN_CLOSE;
				break;
			}
			weft_send_all_init(&c->send, c->fd, c->b.data, c->b.len,
					   0);
			c->step = CONN_SEND_BUF;
			/* fall through */
		case CONN_SEND_BUF:
			if (weft_send_all_poll(&c->send, cx, &res) == WEFT_PENDING)
				return WEFT_PENDING;
			weft_buf_release(&c->b); /* back to the pool */
			c->step = res < 0 ? CONN_CLOSE : CONN_NEXT;
			break;
		case CONN_CLOSE:
			weft_recv_stream_drop(&c->rs);
			if (c->fd >= 0) {
				weft_io_prep_close(&c->io, c->fd);
				c->fd = -1; /* the op owns it now: drop must not close it */
			}
			if (weft_io_poll(&c->io, cx, &res) == WEFT_PENDING)
				return WEFT_PENDING;
			return WEFT_READY;
		}
	}
}

/* Runs after READY, or when the task is cancelled at shutdown. */
static void conn_drop(void *self)
{
	struct conn *c = self;

	weft_io_drop(&c->io); /* cancels a recv in flight */
	weft_send_all_drop(&c->send);
	weft_recv_stream_drop(&c->rs);
	weft_buf_release(&c->b);
	weft_io_drop(&c->timer);
	weft_notified_drop(&c->drain);
	if (c->fd >= 0)
		close(c->fd);
}

static const weft_future_desc conn_desc = {
	.poll = conn_poll,
	.drop = conn_drop,
	.size = sizeof(struct conn),
};

/* Start serving @fd in a task of its own, which takes the fd over. */
static void conn_spawn(int fd)
{
	/*
	 * weft_spawn() copies the state into the task, so a local does; the
	 * buffer needs no initialising. (16 KiB of worker stack, briefly.)
	 */
	struct conn c;
	int err, one = 1;

	/*
	 * Echo replies are often small tails of a larger message: without
	 * TCP_NODELAY, Nagle holds them until the client's delayed ACK, 40 ms
	 * later. weft's fds are plain fds, so setsockopt() works as ever.
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c.fd = fd;
	c.step = echo.streams ? CONN_NEXT : CONN_RECV;
	/* weft_io and weft_send_all start zeroed (weft/io.h, Preparing). */
	memset(&c.io, 0, sizeof(c.io));
	memset(&c.send, 0, sizeof(c.send));
	memset(&c.timer, 0, sizeof(c.timer));
	c.b = (weft_buf)WEFT_BUF_INIT;
	c.timing = false;
	weft_recv_stream_init(&c.rs, fd);
	/* Prepared here, before the task exists, so a drain that begins
	 * from now on reaches it (a weft_notified may be copied until its
	 * first poll). */
	weft_notified_init(&c.drain, echo.drain_notify);
	err = weft_spawn(NULL, &conn_desc, &c, NULL);
	if (err) {
		/* -ESHUTDOWN: the drain has begun; refuse the client. */
		if (err != -ESHUTDOWN)
			fprintf(stderr, "echo-server: spawn: %s\n",
				weft_strerror(err));
		weft_notified_drop(&c.drain);
		close(fd);
		return;
	}
	atomic_fetch_add_explicit(&echo.served, 1, memory_order_relaxed);
}

/* ----------------------------------------------------------- accept */

enum accept_step {
	ACCEPT,       /* start an accept */
	ACCEPTING,    /* an accept is in flight */
	BACKING_OFF,  /* sleeping after a failed accept */
	STREAM,       /* --streams: the next connection of one multishot */
};

struct acceptor {
	int listen_fd; /* borrowed: main owns it */
	enum accept_step step;
	weft_io io;
	weft_accept_stream as;
};

static weft_poll acceptor_poll(void *self, weft_cx *cx, void *out)
{
	struct acceptor *a = self;
	int64_t res;

	(void)out;
	for (;;) {
		switch (a->step) {
		case STREAM: {
			int fd;

			if (weft_accept_stream_next(&a->as, cx, &fd) ==
			    WEFT_PENDING)
				return WEFT_PENDING;
			if (fd < 0) { /* the stream ended: no listening socket */
				fprintf(stderr, "echo-server: accept: %s\n",
					weft_strerror(fd));
				return WEFT_READY;
			}
			conn_spawn(fd);
			break;
		}
		case ACCEPT:
			weft_io_prep_accept(&a->io, a->listen_fd);
			a->step = ACCEPTING;
			/* fall through */
		case ACCEPTING:
			if (weft_io_poll(&a->io, cx, &res) == WEFT_PENDING)
				return WEFT_PENDING;
			if (res == -ECONNABORTED) { /* that client is gone */
				a->step = ACCEPT;
				break;
			}
			if (res < 0) {
				fprintf(stderr, "echo-server: accept: %s\n",
					weft_strerror((int)res));
				if (res == -EBADF || res == -EINVAL ||
				    res == -ENOTSOCK)
					return WEFT_READY; /* no socket: stop */
				/*
				 * weft's accept already waits out EMFILE and
				 * ENFILE; for anything else, retrying at once
				 * could spin. Wait a little instead.
				 */
				weft_io_prep_sleep(&a->io, 100 * 1000 * 1000);
				a->step = BACKING_OFF;
				break;
			}
			conn_spawn((int)res);
			a->step = ACCEPT;
			break;
		case BACKING_OFF:
			if (weft_io_poll(&a->io, cx, &res) == WEFT_PENDING)
				return WEFT_PENDING;
			a->step = ACCEPT;
			break;
		}
	}
}

static void acceptor_drop(void *self)
{
	struct acceptor *a = self;

	weft_io_drop(&a->io);
	weft_accept_stream_drop(&a->as);
}

static const weft_future_desc acceptor_desc = {
	.poll = acceptor_poll,
	.drop = acceptor_drop,
	.size = sizeof(struct acceptor),
};

/* ------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	weft_join *acceptor = NULL;
	struct acceptor a;
	int err;

	if (echo_start("echo-server", argc, argv))
		return 1;
	memset(&a, 0, sizeof(a));
	a.listen_fd = echo.lfd;
	a.step = echo.streams ? STREAM : ACCEPT;
	weft_accept_stream_init(&a.as, echo.lfd);
	err = weft_spawn(echo.rt, &acceptor_desc, &a, &acceptor);
	if (err)
		fprintf(stderr, "echo-server: spawn: %s\n", weft_strerror(err));
	return echo_run(acceptor);
}
