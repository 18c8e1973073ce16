/* SPDX-License-Identifier: MIT */
/*
 * File op kinds: open, vectored read and write, fsync and statx through
 * the ring. Each prepares a weft_io (weft/io.h: Preparing, the lifetime
 * and Address rules, weft_io_set_deadline) polled and dropped like any
 * other op. Plain reads, writes and closes are in weft/io.h.
 *
 * Copies: what a call names only to describe the op (a path, an iovec
 * array) is read by the first weft_io_poll(), which copies it into the op
 * record; the kernel reads that copy, which lives until the op's CQE. So
 * the caller's string or array must stay valid from the prep through the
 * first poll, and may go as soon as that poll returns (the worker submits
 * the SQE only after the task's poll returns, so a path in the poll's
 * stack frame is fine, and a weft_co_* call's arguments need to live only
 * for the call). The weft_io itself owns nothing: like any weft_io it may
 * be copied or forgotten before its first poll. The data buffers an iovec
 * points to are not copied: they must stay valid while the op may be in
 * flight (weft/io.h, lifetime rule). Copies are malloc'd: the first poll
 * returns READY with -ENOMEM when that fails.
 *
 * NULL: see weft/core.h. weft_io_prep_* with a NULL @io return -EINVAL.
 */
#ifndef WEFT_FILE_H
#define WEFT_FILE_H

#include <sys/types.h>
#include <sys/uio.h>
#include <weft/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/* struct statx: <sys/stat.h> with _GNU_SOURCE (glibc 2.28 or later), or
 * <linux/stat.h>. */
struct statx;

/**
 * Open @path relative to the directory @dirfd (AT_FDCWD: the current
 * directory; ignored for an absolute @path), as openat(2) with @flags
 * (O_RDONLY, O_CREAT, ...; add O_CLOEXEC unless the fd is meant for a
 * child) and @mode (the permissions of a file O_CREAT makes).
 * @path is copied at the first poll (see Copies above).
 *
 * Result: the new fd, owned by the caller (close it with
 * weft_io_prep_close() or close(2)); or a negative errno from openat(2)
 * (-ENOENT, -EEXIST, -EACCES, -EBADF for a bad @dirfd, ...). If the
 * future is dropped while the op is in flight and the file is opened
 * anyway, the fd is closed: a dropped open never leaks an fd.
 *
 * Returns 0, -EINVAL (NULL @io or @path), -ENAMETOOLONG (@path of
 * PATH_MAX bytes or more; the first poll checks again), or -EBUSY (an op
 * of @io is in flight; see weft/io.h, Preparing).
 */
WEFT_API int weft_io_prep_openat(weft_io *io, int dirfd, const char *path,
				 int flags, mode_t mode);

/**
 * Read from @fd at file offset @offset (-1: the current position) into the
 * @iovcnt buffers of @iov, in order (preadv(2)). The iovec array is
 * copied at the first poll (see Copies above); the buffers it points to
 * must stay valid while the op may be in flight.
 *
 * Result: bytes read (fewer than the buffers hold near end of file, 0 at
 * it) or a negative errno (-EBADF, -EINVAL, -EISDIR, ...).
 *
 * Returns 0, -EINVAL (NULL @io, NULL @iov with a non-zero @iovcnt,
 * @iovcnt below 0 or above IOV_MAX, @offset below -1), or -EBUSY (see
 * weft/io.h, Preparing).
 */
WEFT_API int weft_io_prep_readv(weft_io *io, int fd, const struct iovec *iov,
				int iovcnt, off_t offset);

/**
 * Write the @iovcnt buffers of @iov, in order, to @fd at @offset (-1: the
 * current position, or the end for O_APPEND) (pwritev(2)). Result: bytes
 * written (possibly fewer) or a negative errno (-EBADF, -ENOSPC, -EPIPE).
 * Same copies, arguments and returns as weft_io_prep_readv().
 */
WEFT_API int weft_io_prep_writev(weft_io *io, int fd,
				 const struct iovec *iov, int iovcnt,
				 off_t offset);

/**
 * Flush @fd's data to its device, as fsync(2); with @datasync true, as
 * fdatasync(2) (metadata only where needed to read the data back).
 * Result: 0 or a negative errno (-EBADF, -EIO, -EINVAL for an fd that
 * cannot be synced). Returns 0, -EINVAL (NULL @io) or -EBUSY.
 */
WEFT_API int weft_io_prep_fsync(weft_io *io, int fd, bool datasync);

/**
 * The status of @path relative to @dirfd, as statx(2) with @flags
 * (AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH with "" to stat @dirfd itself, ...)
 * and @mask (STATX_BASIC_STATS, ...). @path is copied at the first poll.
 *
 * The kernel writes into a buffer in the op record; the poll that returns
 * READY with result 0 copies it to *@out. So @out need be valid only at
 * that poll, not while the op is in flight (a task may keep it outside
 * its state), a dropped future never writes to it, and a failed one
 * leaves it untouched.
 *
 * Result: 0 (*@out filled) or a negative errno (-ENOENT, -ENOTDIR,
 * -EBADF, -EACCES, ...). Returns 0, -EINVAL (NULL @io, @path or @out),
 * -ENAMETOOLONG or -EBUSY, as weft_io_prep_openat().
 */
WEFT_API int weft_io_prep_statx(weft_io *io, int dirfd, const char *path,
				int flags, unsigned mask, struct statx *out);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_FILE_H */
