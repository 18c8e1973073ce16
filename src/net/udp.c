/* SPDX-License-Identifier: MIT */
/*
 * Datagram ops: UDP sockets by plain syscalls, and the op kinds send_to
 * and recv_from (IORING_OP_SENDMSG / RECVMSG) for any datagram socket.
 * The msghdr, its iovec and the addresses live in the op record
 * (op->big[0].msg), so they stay valid while the kernel may read or write them.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/net.h>
#include <weft/udp.h>

#include "io/op.h"

WEFT_API int weft_udp_bind(const char *host, uint16_t port, int flags)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, err;

	if (flags & ~(WEFT_UDP_REUSEADDR | WEFT_UDP_REUSEPORT))
		return -EINVAL;
	err = weft_addr_parse(host, port, &ss, &len);
	if (err)
		return err;
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (((flags & WEFT_UDP_REUSEADDR) &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) ||
	    ((flags & WEFT_UDP_REUSEPORT) &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Arguments in weft_io._arg, after those of weft__io_prep_buf; _flags
 * holds the MSG_* flags. */
enum { ARG_ADDR = WEFT__ARG_LEN + 1, ARG_ADDRLEN };

/* The msghdr for one buffer, in the record (which comes unzeroed past
 * link_ts: no name, no control data unless set here). */
static void msg_init(struct weft__op *op, const weft_io *io)
{
	weft__op_take_buf(op, io);
	memset(&op->big[0].msg, 0, offsetof(struct weft__op_msg, addr));
	op->big[0].msg.iov.iov_base = op->buf;
	op->big[0].msg.iov.iov_len = op->len;
	op->big[0].msg.hdr.msg_iov = &op->big[0].msg.iov;
	op->big[0].msg.hdr.msg_iovlen = 1;
}

static int send_to_prep(struct weft__op *op, struct io_uring_sqe *sqe,
			const weft_io *io)
{
	const void *addr = (const void *)(uintptr_t)io->_arg[ARG_ADDR];
	socklen_t len = (socklen_t)io->_arg[ARG_ADDRLEN];

	msg_init(op, io);
	if (addr) {
		memcpy(&op->big[0].msg.addr, addr, len);
		op->big[0].msg.hdr.msg_name = &op->big[0].msg.addr;
		op->big[0].msg.hdr.msg_namelen = len;
	}
	io_uring_prep_sendmsg(sqe, io->_fd, &op->big[0].msg.hdr,
			      (unsigned)io->_flags | MSG_NOSIGNAL);
	return 0;
}

static int recv_from_prep(struct weft__op *op, struct io_uring_sqe *sqe,
			  const weft_io *io)
{
	msg_init(op, io);
	op->big[0].msg.from = (void *)(uintptr_t)io->_arg[ARG_ADDR];
	op->big[0].msg.fromlen = (void *)(uintptr_t)io->_arg[ARG_ADDRLEN];
	op->big[0].msg.hdr.msg_name = &op->big[0].msg.addr;
	op->big[0].msg.hdr.msg_namelen = sizeof(op->big[0].msg.addr);
	io_uring_prep_recvmsg(sqe, io->_fd, &op->big[0].msg.hdr,
			      (unsigned)io->_flags);
	return 0;
}

/* In the future's poll, so the caller's @from is valid: a dropped or
 * timed-out recv never gets here and writes nothing. */
static int64_t recv_from_complete(struct weft__op *op, int32_t res)
{
	if (res >= 0 && op->big[0].msg.from) {
		socklen_t n = op->big[0].msg.hdr.msg_namelen;

		if (n > sizeof(*op->big[0].msg.from))
			n = sizeof(*op->big[0].msg.from);
		memcpy(op->big[0].msg.from, &op->big[0].msg.addr, n);
		*op->big[0].msg.fromlen = n;
	}
	return res;
}

static const struct weft__op_kind send_to_kind = {
	.prep = send_to_prep,
	.extra = sizeof(union weft__op_big),
};
static const struct weft__op_kind recv_from_kind = {
	.prep = recv_from_prep, .complete = recv_from_complete,
	.extra = sizeof(union weft__op_big),
};

WEFT_API int weft_io_prep_send_to(weft_io *io, int fd, const void *buf,
				  size_t len, const struct sockaddr *addr,
				  socklen_t addrlen, int flags)
{
	int err = weft__io_prep_buf(io, &send_to_kind, fd, buf, len);

	if (err)
		return err;
	if (!addr != !addrlen || addrlen > sizeof(struct sockaddr_storage))
		return weft__io_prep_fail(io, -EINVAL);
	io->_arg[ARG_ADDR] = (uint64_t)(uintptr_t)addr;
	io->_arg[ARG_ADDRLEN] = addrlen;
	io->_flags = (uint32_t)flags;
	return 0;
}

WEFT_API int weft_io_prep_recv_from(weft_io *io, int fd, void *buf,
				    size_t len, int flags,
				    struct sockaddr_storage *from,
				    socklen_t *fromlen)
{
	int err = weft__io_prep_buf(io, &recv_from_kind, fd, buf, len);

	if (err)
		return err;
	if (!from != !fromlen)
		return weft__io_prep_fail(io, -EINVAL);
	io->_arg[ARG_ADDR] = (uint64_t)(uintptr_t)from;
	io->_arg[ARG_ADDRLEN] = (uint64_t)(uintptr_t)fromlen;
	io->_flags = (uint32_t)flags;
	return 0;
}
