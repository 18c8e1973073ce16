/* SPDX-License-Identifier: MIT */
/*
 * Zero-copy send (IORING_OP_SEND_ZC, 6.0): the kernel sends from the
 * caller's pages instead of copying them, and says with a second CQE
 * (IORING_CQE_F_NOTIF) when it let go of them; the future completes then,
 * so the buffer is the caller's again at READY, as with a plain send.
 * Without the op (probe), or with WEFT_RT_NO_SEND_ZC, it is a plain send.
 */
#include <sys/socket.h>

#include <weft/net.h>

#include "io/op.h"

static int send_zc_prep(struct weft__op *op, struct io_uring_sqe *sqe,
			const weft_io *io)
{
	int flags = (int)io->_flags | MSG_NOSIGNAL;

	weft__op_take_buf(op, io);
	if (weft__ring_has(&op->owner->ring, WEFT__FEAT_SEND_ZC))
		io_uring_prep_send_zc(sqe, io->_fd, op->buf, op->len, flags, 0);
	else
		io_uring_prep_send(sqe, io->_fd, op->buf, op->len, flags);
	return 0;
}

static const struct weft__op_kind send_zc_kind = {
	.prep = send_zc_prep,
	.notif = true,
};

WEFT_API int weft_io_prep_send_zc(weft_io *io, int fd, const void *buf,
				  size_t len, int flags)
{
	int err = weft__io_prep_buf(io, &send_zc_kind, fd, buf, len);

	if (!err)
		io->_flags = (unsigned)flags;
	return err;
}
