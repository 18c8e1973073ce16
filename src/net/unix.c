/* SPDX-License-Identifier: MIT */
/*
 * Unix domain sockets: listening and datagram sockets by plain syscalls,
 * and the op kind unix_connect (its socket made at the first poll, as TCP
 * connect does; the address is copied into the op record there).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <weft/udp.h>

#include "io/op.h"

/* @path as an address; 0, -EINVAL or -ENAMETOOLONG. */
static int unix_addr(const char *path, struct sockaddr_un *sun,
		     socklen_t *len)
{
	size_t n;

	if (!path || !path[0])
		return -EINVAL;
	n = strlen(path);
	if (n >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

/* A socket of @type bound to @path (NULL: unbound); listening if
 * @backlog is not 0. */
static int unix_socket(const char *path, int type, int backlog)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd, err = 0;

	if (path && (err = unix_addr(path, &sun, &len)))
		return err;
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if ((path && bind(fd, (struct sockaddr *)&sun, len) < 0) ||
	    (backlog && listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

WEFT_API int weft_unix_listen(const char *path, int backlog)
{
	if (!path)
		return -EINVAL;
	return unix_socket(path, SOCK_STREAM, backlog ? backlog : -1);
}

WEFT_API int weft_unix_dgram_bind(const char *path)
{
	return unix_socket(path, SOCK_DGRAM, 0);
}

/* The path pointer in weft_io._arg (read at the first poll). */
enum { ARG_PATH };

static int unix_connect_prep(struct weft__op *op, struct io_uring_sqe *sqe,
			     const weft_io *io)
{
	socklen_t len;
	int err = unix_addr((const char *)(uintptr_t)io->_arg[ARG_PATH],
			    &op->big[0].un, &len);

	if (err) /* checked at prep; changed since */
		return err;
	op->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (op->fd < 0)
		return -errno;
	io_uring_prep_connect(sqe, op->fd, (const struct sockaddr *)&op->big[0].un,
			      len);
	return 0;
}

static const struct weft__op_kind unix_connect_kind = {
	.prep = unix_connect_prep,
	.complete = weft__connect_complete, .discard = weft__connect_discard,
	.extra = sizeof(union weft__op_big),
};

WEFT_API int weft_io_prep_unix_connect(weft_io *io, const char *path)
{
	struct sockaddr_un sun;
	socklen_t len;
	int err = weft__io_prep(io, &unix_connect_kind, -1);

	if (err)
		return err;
	if ((err = unix_addr(path, &sun, &len)))
		return weft__io_prep_fail(io, err);
	io->_arg[ARG_PATH] = (uint64_t)(uintptr_t)path;
	return 0;
}
