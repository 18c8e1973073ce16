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
 *  - main blocks SIGINT and SIGTERM (before the runtime exists, so that
 *    worker threads inherit the mask and never take them), opens the
 *    listening socket with weft_tcp_listen() and spawns the accept task.
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

#define BUF_SIZE (16 * 1024)

/* Connections accepted so far; bumped by the accept task, read by main. */
static atomic_ulong served;
/* Connections closed by --idle-timeout. */
static atomic_ulong idle_closed;
/* --idle-timeout in ns; 0: none. Set before the runtime starts. */
static uint64_t idle_timeout_ns;
/* Set by main when the drain begins, before drain_notify is notified. */
static atomic_bool draining;
/* notify_waiters at the drain: wakes connections waiting for a request. */
static weft_notify *drain_notify;
/* During the drain a connection closes after this long without a byte. */
#define DRAIN_IDLE_NS (1000 * 1000 * 1000)

/* ------------------------------------------------------- connection */

enum conn_step { CONN_RECV, CONN_RECVING, CONN_SEND, CONN_CLOSE };

struct conn {
	int fd;             /* owned; -1 once handed to the close op */
	enum conn_step step;
	bool drain_recv;    /* the recv in flight began during the drain */
	weft_io io;         /* the recv or close in flight, if any */
	weft_send_all send; /* sends everything received, however split */
	weft_notified drain; /* on drain_notify: the drain has begun */
	unsigned char buf[BUF_SIZE];
};

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
			c->drain_recv = atomic_load(&draining);
			if (c->drain_recv)
				weft_io_set_timeout(&c->io, DRAIN_IDLE_NS);
			else if (idle_timeout_ns)
				weft_io_set_timeout(&c->io, idle_timeout_ns);
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
						&idle_closed, 1,
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
		case CONN_CLOSE:
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
	c.step = CONN_RECV;
	/* weft_io and weft_send_all start zeroed (weft/io.h, Preparing). */
	memset(&c.io, 0, sizeof(c.io));
	memset(&c.send, 0, sizeof(c.send));
	/* Prepared here, before the task exists, so a drain that begins
	 * from now on reaches it (a weft_notified may be copied until its
	 * first poll). */
	weft_notified_init(&c.drain, drain_notify);
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
	atomic_fetch_add_explicit(&served, 1, memory_order_relaxed);
}

/* ----------------------------------------------------------- accept */

enum accept_step {
	ACCEPT,       /* start an accept */
	ACCEPTING,    /* an accept is in flight */
	BACKING_OFF,  /* sleeping after a failed accept (e.g. out of fds) */
};

struct acceptor {
	int listen_fd; /* borrowed: main owns it */
	enum accept_step step;
	weft_io io;
};

static weft_poll acceptor_poll(void *self, weft_cx *cx, void *out)
{
	struct acceptor *a = self;
	int64_t res;

	(void)out;
	for (;;) {
		switch (a->step) {
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
				 * Out of fds or memory: retrying at once would
				 * spin. Wait a little instead.
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
}

static const weft_future_desc acceptor_desc = {
	.poll = acceptor_poll,
	.drop = acceptor_drop,
	.size = sizeof(struct acceptor),
};

/* ------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: echo-server [--host ADDR] [--port N] [--workers N]\n"
		"                   [--idle-timeout S] [--grace-ms N]\n"
		"\n"
		"  --host ADDR   numeric IPv4 or IPv6 address (default "
		"127.0.0.1)\n"
		"  --port N      TCP port; 0 lets the kernel pick (default "
		"7000)\n"
		"  --workers N   worker threads (default: online CPUs)\n"
		"  --idle-timeout S\n"
		"                close a connection that sends nothing for S "
		"seconds\n"
		"                (decimals allowed; default: never)\n"
		"  --grace-ms N  on SIGINT or SIGTERM, let requests in flight "
		"finish for\n"
		"                up to N ms before closing what is left "
		"(default 5000)\n"
		"\n"
		"Runs until SIGINT or SIGTERM.\n");
}

static unsigned long parse_number(const char *name, const char *s,
				  unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno || v > max) {
		fprintf(stderr, "echo-server: %s wants a number in 0..%lu\n",
			name, max);
		exit(1);
	}
	return v;
}

/* Seconds, decimals allowed, in ns: (0, 10^6] s. */
static uint64_t parse_seconds(const char *name, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno || !(v > 0) || v > 1e6) {
		fprintf(stderr, "echo-server: %s wants seconds in (0, 1e6]\n",
			name);
		exit(1);
	}
	return (uint64_t)(v * 1e9);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "workers", required_argument, NULL, 'w' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "grace-ms", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1";
	unsigned long port = 7000;
	unsigned long grace_ms = 5000;
	uint64_t t0;
	weft_join *acceptor;
	weft_runtime_config cfg;
	weft_runtime *rt;
	struct acceptor a;
	sigset_t sigs;
	int lfd, local_port, sig = 0, err, c;

	weft_runtime_config_init(&cfg);
	while ((c = getopt_long(argc, argv, "H:p:w:i:g:h", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = parse_number("--port", optarg, 65535);
			break;
		case 'w':
			cfg.workers = (unsigned)parse_number("--workers",
							     optarg, 256);
			break;
		case 'i':
			idle_timeout_ns = parse_seconds("--idle-timeout", optarg);
			break;
		case 'g':
			grace_ms = parse_number("--grace-ms", optarg,
						86400000);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 1;
	}

	/*
	 * Threads inherit the signal mask, so block first: then only
	 * sigwait() below ever takes SIGINT and SIGTERM. A send to a closed
	 * peer gives -EPIPE (weft adds MSG_NOSIGNAL), so SIGPIPE needs nothing.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	lfd = weft_tcp_listen(host, (uint16_t)port, 0);
	if (lfd < 0) {
		fprintf(stderr, "echo-server: listen on %s:%lu: %s\n", host,
			port, weft_strerror(lfd));
		return 1;
	}
	local_port = weft_tcp_local_port(lfd);
	if (local_port < 0) {
		fprintf(stderr, "echo-server: getsockname: %s\n",
			weft_strerror(local_port));
		goto out_close;
	}

	err = weft_notify_new(&drain_notify);
	if (err) {
		fprintf(stderr, "echo-server: notify: %s\n",
			weft_strerror(err));
		goto out_close;
	}
	err = weft_runtime_new(&cfg, &rt);
	if (err) {
		fprintf(stderr, "echo-server: runtime: %s\n",
			weft_strerror(err));
		goto out_notify;
	}

	memset(&a, 0, sizeof(a));
	a.listen_fd = lfd;
	a.step = ACCEPT;
	err = weft_spawn(rt, &acceptor_desc, &a, &acceptor);
	if (err) {
		fprintf(stderr, "echo-server: spawn: %s\n", weft_strerror(err));
		goto out_free;
	}

	printf("echo-server: listening on %s:%d\n", host, local_port);
	fflush(stdout);

	do {
		err = sigwait(&sigs, &sig);
	} while (err == EINTR);

	/*
	 * Drain: no new connections (the acceptor is cancelled, and spawns
	 * fail from now on anyway), idle connections close, requests in
	 * flight finish within the grace period; then whatever is left is
	 * cancelled and the workers are joined.
	 */
	t0 = weft_now_ns();
	atomic_store(&draining, true);
	weft_notify_waiters(drain_notify);
	weft_task_abort(acceptor);
	err = weft_runtime_shutdown_timeout(rt, grace_ms * UINT64_C(1000000));
	if (err == -ETIMEDOUT) {
		printf("echo-server: grace period of %lu ms over: closed the "
		       "connections left\n", grace_ms);
		err = 0;
	} else if (!err) {
		printf("echo-server: drained in %llu ms\n",
		       (unsigned long long)((weft_now_ns() - t0) / 1000000));
	} else {
		fprintf(stderr, "echo-server: shutdown: %s\n",
			weft_strerror(err));
	}
	weft_join_drop(acceptor);
	weft_runtime_free(rt);
	weft_notify_free(drain_notify);
	close(lfd);
	printf("echo-server: %s, served %lu connections, %lu closed idle\n",
	       sig == SIGINT ? "SIGINT" : "SIGTERM",
	       atomic_load_explicit(&served, memory_order_relaxed),
	       atomic_load_explicit(&idle_closed, memory_order_relaxed));
	return err ? 1 : 0;

out_free:
	weft_runtime_free(rt);
out_notify:
	weft_notify_free(drain_notify);
out_close:
	close(lfd);
	return 1;
}
