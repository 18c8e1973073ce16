/* SPDX-License-Identifier: MIT */
/*
 * timeout: a recv with a deadline, built from weft_select (docs/futures.md).
 *
 * A listener and a client connect over loopback; the client sends nothing
 * at first, so the server's recv loses the race against a 50 ms sleep and
 * is cancelled. Then the client sends "hi" and the same select returns the
 * recv. Prints both outcomes; exits 0 when they are as expected.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

/* A recv of up to sizeof(buf) bytes, or -ETIMEDOUT after @ns. */
struct recv_timeout {
	weft_io recv;
	weft_io sleep;
	int64_t recv_res, sleep_res;
	weft_future arms[2];
	weft_select select;
	char buf[64];
};

/* Prepare: the recv first, so that it wins a tie with the deadline. */
static void recv_timeout_init(struct recv_timeout *r, int fd, uint64_t ns)
{
	memset(r, 0, sizeof(*r));
	weft_io_prep_recv(&r->recv, fd, r->buf, sizeof(r->buf), 0);
	weft_io_prep_sleep(&r->sleep, ns);
	weft_future_init(&r->arms[0], &weft_io_desc, &r->recv, &r->recv_res);
	weft_future_init(&r->arms[1], &weft_io_desc, &r->sleep, &r->sleep_res);
	weft_select_init(&r->select, r->arms, 2);
}

/* READY with bytes received, 0 at EOF, -ETIMEDOUT, or a negative errno. */
static weft_poll recv_timeout_poll(struct recv_timeout *r, weft_cx *cx,
				   int64_t *res)
{
	size_t winner;

	if (weft_select_poll(&r->select, cx, &winner) == WEFT_PENDING)
		return WEFT_PENDING;
	*res = winner == 0 ? r->recv_res : -ETIMEDOUT;
	return WEFT_READY;
}

/* The task: accept, then two timed receives. */
struct server {
	int lfd, fd, step;
	weft_io accept;
	struct recv_timeout rt;
	int64_t first, second;
	int notify[2]; /* tells main when to send */
};

static weft_poll server_poll(void *self, weft_cx *cx, void *out)
{
	struct server *s = self;
	int64_t res;

	switch (s->step) {
	case 0:
		weft_io_prep_accept(&s->accept, s->lfd);
		s->step = 1;
		/* fall through */
	case 1:
		if (weft_io_poll(&s->accept, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		if (res < 0) {
			s->first = s->second = res;
			break;
		}
		s->fd = (int)res;
		recv_timeout_init(&s->rt, s->fd, 50 * 1000 * 1000);
		s->step = 2;
		/* fall through */
	case 2:
		if (recv_timeout_poll(&s->rt, cx, &s->first) == WEFT_PENDING)
			return WEFT_PENDING;
		/* Timed out: the recv was cancelled. Ask for data, retry. */
		if (write(s->notify[1], "x", 1) != 1)
			break;
		recv_timeout_init(&s->rt, s->fd, 5ull * 1000 * 1000 * 1000);
		s->step = 3;
		/* fall through */
	case 3:
		if (recv_timeout_poll(&s->rt, cx, &s->second) == WEFT_PENDING)
			return WEFT_PENDING;
		break;
	}
	((int64_t *)out)[0] = s->first;
	((int64_t *)out)[1] = s->second;
	return WEFT_READY;
}

static void server_drop(void *self)
{
	struct server *s = self;

	weft_io_drop(&s->accept);
	weft_select_drop(&s->rt.select);
	if (s->fd >= 0)
		close(s->fd);
}

static const weft_future_desc server_desc = {
	.poll = server_poll,
	.drop = server_drop,
	.size = sizeof(struct server),
	.output_size = 2 * sizeof(int64_t),
};

int main(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct server s = { .fd = -1 };
	weft_runtime *rt;
	weft_join *join;
	char c;
	int ok = 0;

	if (pipe(s.notify) < 0 || weft_runtime_new(NULL, &rt) < 0)
		return 1;
	s.lfd = weft_tcp_listen("127.0.0.1", 0, 8);
	int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s.lfd < 0 || cfd < 0 ||
	    weft_addr_parse("127.0.0.1", (uint16_t)weft_tcp_local_port(s.lfd),
			    &ss, &len) < 0 ||
	    connect(cfd, (struct sockaddr *)&ss, len) < 0)
		return 1;
	if (weft_spawn(rt, &server_desc, &s, &join) < 0)
		return 1;
	/* Send only once the server has timed out once. */
	if (read(s.notify[0], &c, 1) == 1 && write(cfd, "hi", 2) == 2) {
		int64_t r[2];
		int status;
		/* The join handle as a future, awaited through block_on; the
		 * future owns the handle and drops it. */
		weft_join_future jf = { .join = join, .value = r };
		if (weft_block_on(rt, &weft_join_future_desc, &jf, &status) == 0 &&
		    status == 0) {
			printf("first recv: %s\n",
			       r[0] == -ETIMEDOUT ? "timed out" : "data?");
			printf("second recv: %lld bytes\n", (long long)r[1]);
			ok = r[0] == -ETIMEDOUT && r[1] == 2;
		}
	} else {
		weft_join_drop(join);
	}
	weft_runtime_free(rt);
	close(cfd);
	close(s.lfd);
	return ok ? 0 : 1;
}
