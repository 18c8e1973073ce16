/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the TCP tests (net_errors, net_faults), on top of
 * helpers.h:
 *
 *  - wt_tcp_pair: a connected 127.0.0.1 TCP pair made with plain
 *    syscalls (so the tests of ops do not depend on the ops under test);
 *  - wt_close_with_reset: close an fd so that its peer gets a RST
 *    (SO_LINGER {1, 0}) instead of a FIN;
 *  - wt_recv_op, wt_send_op: one recv or send op run on a runtime, its
 *    result.
 *
 * Header-only: each test program is one translation unit.
 */
#ifndef WEFT_TESTS_NET_HELPERS_H
#define WEFT_TESTS_NET_HELPERS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "helpers.h"

/* *@a connects, *@b is its accepted peer. */
static WT_UNUSED void wt_tcp_pair(int *a, int *b)
{
	int lfd = weft_tcp_listen("127.0.0.1", 0, 4);
	cr_assert_geq(lfd, 0);
	int port = weft_tcp_local_port(lfd);
	cr_assert_gt(port, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(*a, 0);
	cr_assert_eq(connect(*a, (struct sockaddr *)&sin, sizeof(sin)), 0);
	*b = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(*b, 0);
	close(lfd);
}

/* Make the peer's close send a RST instead of a FIN. */
static WT_UNUSED void wt_close_with_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)),
		     0);
	close(fd);
}

static WT_UNUSED int64_t wt_recv_op(weft_runtime *rt, int fd, void *buf,
				    size_t len)
{
	weft_io io = WEFT_IO_INIT;
	weft_io_prep_recv(&io, fd, buf, len, 0);
	return wt_op_run(rt, &io);
}

static WT_UNUSED int64_t wt_send_op(weft_runtime *rt, int fd,
				    const void *buf, size_t len)
{
	weft_io io = WEFT_IO_INIT;
	weft_io_prep_send(&io, fd, buf, len, 0);
	return wt_op_run(rt, &io);
}

#endif /* WEFT_TESTS_NET_HELPERS_H */
