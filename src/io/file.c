/* SPDX-License-Identifier: MIT */
/*
 * File op kinds: openat, readv, writev, fsync, statx. The first poll
 * copies a path or an iovec array into a block the op record owns
 * (op->owned), so the kernel never reads the caller's copy: io_uring may
 * read them after the submit, when the op goes to an io worker. The copy
 * is made at the first poll, not at the prep, so that a weft_io stays a
 * plain value that may be copied before it is polled (it owns nothing).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weft/file.h>

#include "io/op.h"

/* Arguments in weft_io._arg */
enum { ARG_PATH, ARG_FLAGS, ARG_MODE, ARG_MASK = ARG_MODE, ARG_OUT };
enum { ARG_IOV, ARG_CNT, ARG_OFF };

/* The block of a statx op: the kernel's result, then the path. */
struct statx_block {
	struct statx stx;
	char path[];
};

/* Copy the path of @io after @head bytes into a block @op owns. */
static int own_path(struct weft__op *op, const weft_io *io, size_t head)
{
	const char *path = (const char *)(uintptr_t)io->_arg[ARG_PATH];
	size_t len = strnlen(path, PATH_MAX);

	if (len >= PATH_MAX)
		return -ENAMETOOLONG;
	op->owned = malloc(head + len + 1);
	if (!op->owned)
		return -ENOMEM;
	memcpy((char *)op->owned + head, path, len + 1);
	return 0;
}

/* Copy the iovec array of @io into a block @op owns. */
static int own_iov(struct weft__op *op, const weft_io *io)
{
	size_t n = (size_t)io->_arg[ARG_CNT] * sizeof(struct iovec);

	if (!n)
		return 0;
	op->owned = malloc(n);
	if (!op->owned)
		return -ENOMEM;
	memcpy(op->owned, (const void *)(uintptr_t)io->_arg[ARG_IOV], n);
	return 0;
}

static int openat_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		       const weft_io *io)
{
	int err = own_path(op, io, 0);

	if (err)
		return err;
	io_uring_prep_openat(sqe, io->_fd, op->owned, (int)io->_arg[ARG_FLAGS],
			     (mode_t)io->_arg[ARG_MODE]);
	return 0;
}

/* An fd opened for a future that was dropped. */
static void openat_discard(struct weft__op *op, int32_t res)
{
	(void)op;
	if (res >= 0)
		close(res);
}

static int vec_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		    const weft_io *io, bool write)
{
	int err = own_iov(op, io);
	unsigned n = (unsigned)io->_arg[ARG_CNT];

	if (err)
		return err;
	if (write)
		io_uring_prep_writev(sqe, io->_fd, op->owned, n,
				     io->_arg[ARG_OFF]);
	else
		io_uring_prep_readv(sqe, io->_fd, op->owned, n,
				    io->_arg[ARG_OFF]);
	return 0;
}

static int readv_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		      const weft_io *io)
{
	return vec_prep(op, sqe, io, false);
}

static int writev_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		       const weft_io *io)
{
	return vec_prep(op, sqe, io, true);
}

static int fsync_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		      const weft_io *io)
{
	(void)op;
	io_uring_prep_fsync(sqe, io->_fd, io->_flags);
	return 0;
}

static int statx_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		      const weft_io *io)
{
	int err = own_path(op, io, offsetof(struct statx_block, path));
	struct statx_block *b = op->owned;

	if (err)
		return err;
	op->u.u64[0] = io->_arg[ARG_OUT];
	io_uring_prep_statx(sqe, io->_fd, b->path, (int)io->_arg[ARG_FLAGS],
			    (unsigned)io->_arg[ARG_MASK], &b->stx);
	return 0;
}

/* In the future's poll: the kernel is done with the block, @out is the
 * caller's to fill. */
static int64_t statx_complete(struct weft__op *op, int32_t res)
{
	const struct statx_block *b = op->owned;

	if (res == 0)
		memcpy((void *)(uintptr_t)op->u.u64[0], &b->stx,
		       sizeof(b->stx));
	return res;
}

static const struct weft__op_kind openat_kind = {
	.prep = openat_prep, .discard = openat_discard,
};
static const struct weft__op_kind readv_kind = {
	.prep = readv_prep,
};
static const struct weft__op_kind writev_kind = {
	.prep = writev_prep,
};
static const struct weft__op_kind fsync_kind = {
	.prep = fsync_prep,
};
static const struct weft__op_kind statx_kind = {
	.prep = statx_prep, .complete = statx_complete,
};

WEFT_API int weft_io_prep_openat(weft_io *io, int dirfd, const char *path,
				 int flags, mode_t mode)
{
	int err = weft__io_prep(io, &openat_kind, dirfd);

	if (err)
		return err;
	if (!path)
		return weft__io_prep_fail(io, -EINVAL);
	if (strnlen(path, PATH_MAX) >= PATH_MAX)
		return weft__io_prep_fail(io, -ENAMETOOLONG);
	io->_arg[ARG_PATH] = (uint64_t)(uintptr_t)path;
	io->_arg[ARG_FLAGS] = (uint32_t)flags;
	io->_arg[ARG_MODE] = mode;
	return 0;
}

static int prep_vec(weft_io *io, const struct weft__op_kind *kind, int fd,
		    const struct iovec *iov, int iovcnt, off_t offset)
{
	int err = weft__io_prep(io, kind, fd);

	if (err)
		return err;
	if (iovcnt < 0 || iovcnt > IOV_MAX || (!iov && iovcnt) || offset < -1)
		return weft__io_prep_fail(io, -EINVAL);
	io->_arg[ARG_IOV] = (uint64_t)(uintptr_t)iov;
	io->_arg[ARG_CNT] = (uint64_t)iovcnt;
	/* -1 becomes (u64)-1: io_uring's "use the file position". */
	io->_arg[ARG_OFF] = (uint64_t)(int64_t)offset;
	return 0;
}

WEFT_API int weft_io_prep_readv(weft_io *io, int fd, const struct iovec *iov,
				int iovcnt, off_t offset)
{
	return prep_vec(io, &readv_kind, fd, iov, iovcnt, offset);
}

WEFT_API int weft_io_prep_writev(weft_io *io, int fd,
				 const struct iovec *iov, int iovcnt,
				 off_t offset)
{
	return prep_vec(io, &writev_kind, fd, iov, iovcnt, offset);
}

WEFT_API int weft_io_prep_fsync(weft_io *io, int fd, bool datasync)
{
	int err = weft__io_prep(io, &fsync_kind, fd);

	if (!err)
		io->_flags = datasync ? IORING_FSYNC_DATASYNC : 0;
	return err;
}

WEFT_API int weft_io_prep_statx(weft_io *io, int dirfd, const char *path,
				int flags, unsigned mask, struct statx *out)
{
	int err = weft__io_prep(io, &statx_kind, dirfd);

	if (err)
		return err;
	if (!path || !out)
		return weft__io_prep_fail(io, -EINVAL);
	io->_arg[ARG_FLAGS] = (uint32_t)flags;
	io->_arg[ARG_MASK] = mask;
	if (strnlen(path, PATH_MAX) >= PATH_MAX)
		return weft__io_prep_fail(io, -ENAMETOOLONG);
	io->_arg[ARG_PATH] = (uint64_t)(uintptr_t)path;
	io->_arg[ARG_OUT] = (uint64_t)(uintptr_t)out;
	return 0;
}
