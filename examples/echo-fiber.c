/* SPDX-License-Identifier: MIT */
/*
 * echo-fiber: examples/echo-server written with fibers.
 *
 *   echo-fiber [--host ADDR] [--port N] [--workers N] [--idle-timeout S]
 *              [--grace-ms N]
 *
 * Same options, output and behaviour as echo-server (read its comment for
 * the drain; the command line, the signals and the drain are in
 * examples/echo-common.h, shared by both), but each task is a fiber
 * (weft/fiber.h) that reads top to bottom: an accept fiber, and one fiber
 * per connection that loops on recv and send-all, then closes. Every
 * weft_co_* call may suspend the fiber; while it waits, the worker runs
 * other tasks, exactly as a poll future's PENDING does. So what
 * echo-server spells as two state machines is two loops here (conn and
 * acceptor below: 40 lines together).
 *
 * The buffer lives on the fiber's stack (64 KiB by default): an op may
 * use it because the stack lives as long as the task, and the task
 * outlives its ops even when cancelled.
 *
 * Drain on SIGINT/SIGTERM: as echo-server, connections waiting for a
 * request close at once, requests in flight finish within --grace-ms.
 * A fiber's recv is one call, so "recv, unless the drain begins" is a
 * weft_select of the recv op and a weft_notified awaited as one future
 * (recv_or_drain): any weft future can be awaited from a fiber. At the
 * end of the grace period the runtime cancels the fibers left: their
 * pending call returns -ECANCELED, later calls fail at once, and each
 * runs its own cleanup (weft_co_close closes synchronously then).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <weft.h>

#include "echo-common.h"

#define BUF_SIZE (16 * 1024)

/*
 * A select arm that polls the connection's drain wait without dropping
 * it (no drop function): a select drops its losing arms, and a
 * weft_notified prepared and dropped around every recv would cost three
 * trips through the shared notify's lock per recv instead of one.
 */
static weft_poll drain_arm_poll(void *self, weft_cx *cx, void *out)
{
	return weft_notified_poll(*(weft_notified **)self, cx, out);
}

static const weft_future_desc drain_arm_desc = {
	.poll = drain_arm_poll,
	.size = sizeof(weft_notified *),
	.output_size = sizeof(int),
};

/*
 * recv with the idle deadline; 0, as at EOF, when the drain begins while
 * waiting for a request (@drain: the connection's wait on
 * echo.drain_notify, prepared before it first read echo.draining, so a
 * drain is seen in one or the other). A recv begun during the drain waits
 * DRAIN_IDLE_NS at most, and its timeout is an EOF too.
 */
static int64_t recv_or_drain(int fd, void *buf, size_t len,
			     weft_notified *drain)
{
	weft_io rx = WEFT_IO_INIT;
	weft_future arms[2];
	weft_select sel;
	int64_t res = 0, r;
	size_t won = 0;
	int dres;

	if (atomic_load(&echo.draining)) {
		r = weft_co_recv(fd, buf, len, 0,
				 weft_now_ns() + DRAIN_IDLE_NS);
		return r == -ETIMEDOUT ? 0 : r;
	}
	weft_io_prep_recv(&rx, fd, buf, len, 0);
	if (echo.idle_timeout_ns)
		weft_io_set_timeout(&rx, echo.idle_timeout_ns);
	/* The recv first: bytes already there win over the drain. */
	weft_future_init(&arms[0], &weft_io_desc, &rx, &res);
	weft_future_init(&arms[1], &drain_arm_desc, &drain, &dres);
	weft_select_init(&sel, arms, 2);
	if ((r = weft_await(&weft_select_desc, &sel, &won)))
		return r;
	return won == 0 ? res : 0;
}

/*
 * --streams: the same on a recv stream (weft/multishot.h). The data
 * arrives in a buffer of the runtime's pool, lent in *@b; the idle
 * deadline bounds the wait for the next chunk, and a stream loses nothing
 * when a wait ends early (drain, deadline).
 */
static int64_t next_or_drain(weft_recv_stream *s, weft_buf *b,
			     weft_notified *drain)
{
	weft_recv_next next = { .stream = s };
	weft_recv_item item = { .res = 0 };
	weft_future arms[2];
	weft_select sel;
	size_t won = 0;
	int64_t r;
	int dres;

	if (atomic_load(&echo.draining)) {
		r = weft_co_recv_next(s, b, weft_now_ns() + DRAIN_IDLE_NS);
		return r == -ETIMEDOUT ? 0 : r;
	}
	weft_future_init(&arms[0], &weft_recv_next_desc, &next, &item);
	weft_future_init(&arms[1], &drain_arm_desc, &drain, &dres);
	weft_select_init(&sel, arms, 2);
	r = weft_await_until(&weft_select_desc, &sel, &won,
			     echo.idle_timeout_ns
				     ? weft_now_ns() + echo.idle_timeout_ns
				     : 0);
	if (r)
		return r;
	if (won != 0)
		return 0;
	*b = item.buf;
	return item.res;
}

/* ------------------------------- the connection handler and accept loop */

static void *conn(void *arg)
{
	int fd = (int)(intptr_t)arg, one = 1;
	unsigned char buf[BUF_SIZE];
	weft_notified drain;
	int64_t n;

	atomic_fetch_add_explicit(&echo.served, 1, memory_order_relaxed);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	weft_notified_init(&drain, echo.drain_notify);
	if (echo.streams) {
		weft_recv_stream s;
		weft_buf b = WEFT_BUF_INIT;

		weft_recv_stream_init(&s, fd);
		while ((n = next_or_drain(&s, &b, &drain)) > 0) {
			int64_t w = weft_co_send_all(fd, b.data, b.len, 0, 0);

			weft_buf_release(&b);
			if (w < 0)
				break;
		}
		weft_recv_stream_drop(&s);
	} else {
		while ((n = recv_or_drain(fd, buf, sizeof(buf), &drain)) > 0)
			if (weft_co_send_all(fd, buf, (size_t)n, 0, 0) < 0)
				break;
	}
	if (n == -ETIMEDOUT)
		atomic_fetch_add_explicit(&echo.idle_closed, 1,
					  memory_order_relaxed);
	weft_notified_drop(&drain);
	weft_co_close(fd); /* also when cancelled: then synchronously */
	return NULL;
}

/* Accept from one multishot accept (--streams) or an accept per call. */
static int accept_next(int lfd, weft_accept_stream *s)
{
	return echo.streams ? weft_co_accept_next(s, 0) : weft_co_accept(lfd, 0);
}

static void *acceptor(void *arg)
{
	int lfd = *(const int *)arg, fd;
	weft_accept_stream s;

	weft_accept_stream_init(&s, lfd);
	while ((fd = accept_next(lfd, &s)) != -ECANCELED) {
		if (fd >= 0) { /* on -ESHUTDOWN the drain began */
			if (weft_go(NULL, conn, (void *)(intptr_t)fd, NULL,
				    NULL))
				close(fd);
		} else if (fd == -EBADF || fd == -EINVAL || fd == -ENOTSOCK) {
			break; /* no socket: stop */
		} else if (fd != -ECONNABORTED) { /* not a client that left */
			/* Out of fds or memory: back off, don't spin. */
			fprintf(stderr, "echo-fiber: accept: %s\n",
				weft_strerror(fd));
			weft_co_sleep(100 * 1000 * 1000);
		}
	}
	weft_accept_stream_drop(&s);
	return NULL;
}

int main(int argc, char **argv)
{
	weft_join *acceptor_join = NULL;
	int err;

	if (echo_start("echo-fiber", argc, argv))
		return 1;
	/* &echo.lfd stays valid: echo outlives the runtime. */
	err = weft_go(echo.rt, acceptor, &echo.lfd, NULL, &acceptor_join);
	if (err)
		fprintf(stderr, "echo-fiber: weft_go: %s\n",
			weft_strerror(err));
	return echo_run(acceptor_join);
}
