/* SPDX-License-Identifier: MIT */
/*
 * TCP socket options: synchronous setsockopt(2) wrappers (they complete at
 * once; no op is needed), with their errors as negative errno values.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <weft/net.h>

#include "net/sockopt.h"

/* The kernel's limits (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL,
 * MAX_TCP_KEEPCNT in include/net/tcp.h), checked before any setsockopt so
 * that a bad argument changes nothing. */
#define KEEPIDLE_MAX 32767u
#define KEEPINTVL_MAX 32767u
#define KEEPCNT_MAX 127u

/* setsockopt of an int; 0 or a negative errno. A socket of another
 * protocol gives EOPNOTSUPP (AF_UNIX) or ENOPROTOOPT (UDP): one error for
 * both, since no TCP option of a TCP socket gives ENOPROTOOPT. */
static int set_int(int fd, int level, int name, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)) == 0)
		return 0;
	return errno == ENOPROTOOPT ? -EOPNOTSUPP : -errno;
}

WEFT_API int weft_tcp_set_nodelay(int fd, bool on)
{
	return set_int(fd, IPPROTO_TCP, TCP_NODELAY, on);
}

void weft__tcp_nodelay_default(int fd)
{
	(void)set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
}

WEFT_API int weft_tcp_set_keepalive(int fd, unsigned idle_s,
				    unsigned interval_s, unsigned count)
{
	int err;

	if (!idle_s && !interval_s && !count)
		return set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 0);
	if (!idle_s || idle_s > KEEPIDLE_MAX || !interval_s ||
	    interval_s > KEEPINTVL_MAX || !count || count > KEEPCNT_MAX)
		return -EINVAL;
	/* The timings first: keepalive is on only once all three hold. */
	if ((err = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)idle_s)) ||
	    (err = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, (int)interval_s)) ||
	    (err = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, (int)count)))
		return err;
	return set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
}
