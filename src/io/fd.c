/* SPDX-License-Identifier: MIT */
/*
 * Op kinds for any fd: read and write at an offset (regular files, pipes,
 * eventfd, timerfd, sockets) and close.
 */
#include <errno.h>

#include <weft/io.h>

#include "io/op.h"

/* Arguments in weft_io._arg, after those of weft__io_prep_buf */
enum { ARG_OFF = WEFT__ARG_LEN + 1 };

static int read_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		     const weft_io *io)
{
	weft__op_take_buf(op, io);
	io_uring_prep_read(sqe, io->_fd, op->buf, (unsigned)op->len,
			   io->_arg[ARG_OFF]);
	return 0;
}

static int write_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		      const weft_io *io)
{
	weft__op_take_buf(op, io);
	io_uring_prep_write(sqe, io->_fd, op->buf, (unsigned)op->len,
			    io->_arg[ARG_OFF]);
	return 0;
}

static int close_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		      const weft_io *io)
{
	(void)op;
	io_uring_prep_close(sqe, io->_fd);
	return 0;
}

static const struct weft__op_kind read_kind = {
	.prep = read_prep,
};
static const struct weft__op_kind write_kind = {
	.prep = write_prep,
};
static const struct weft__op_kind close_kind = {
	.prep = close_prep,
};

static int prep_rw(weft_io *io, const struct weft__op_kind *kind, int fd,
		   const void *buf, size_t len, off_t offset)
{
	int err = weft__io_prep_buf(io, kind, fd, buf, len);

	if (err)
		return err;
	if (offset < -1)
		return weft__io_prep_fail(io, -EINVAL);
	/* -1 becomes (u64)-1: io_uring's "use the file position". */
	io->_arg[ARG_OFF] = (uint64_t)(int64_t)offset;
	return 0;
}

WEFT_API int weft_io_prep_read(weft_io *io, int fd, void *buf, size_t len,
			       off_t offset)
{
	return prep_rw(io, &read_kind, fd, buf, len, offset);
}

WEFT_API int weft_io_prep_write(weft_io *io, int fd, const void *buf,
				size_t len, off_t offset)
{
	return prep_rw(io, &write_kind, fd, buf, len, offset);
}

WEFT_API int weft_io_prep_close(weft_io *io, int fd)
{
	return weft__io_prep(io, &close_kind, fd);
}
