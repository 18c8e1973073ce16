/* SPDX-License-Identifier: MIT */
/*
 * The weft_co_* calls (weft/fiber.h): each prepares the future of the same
 * operation on the fiber's stack and awaits it. Ring ops carry their
 * deadline as a linked timeout (weft_io_set_deadline); the multi-op
 * futures (send_all, recv_exact, tcp_connect) go through weft_await_until.
 */
#include <errno.h>
#include <unistd.h>

#include <weft/fiber.h>
#include <weft/file.h>
#include <weft/framed.h>
#include <weft/io.h>
#include <weft/multishot.h>
#include <weft/net.h>
#include <weft/time.h>
#include <weft/udp.h>

#include "fiber/fiber.h"

/* Await a prepared op (a prep error is kept in @io and comes back from
 * the poll). */
static int64_t await_io(weft_io *io, uint64_t deadline_ns)
{
	int64_t res = 0;
	int err;

	if (deadline_ns)
		(void)weft_io_set_deadline(io, deadline_ns);
	if ((err = weft_await(&weft_io_desc, io, &res)))
		return err;
	return res;
}

/* Refuse before preparing anything off a fiber. */
#define ON_FIBER()                         \
	do {                               \
		if (!weft__fiber_on())     \
			return -EPERM;     \
	} while (0)

WEFT_API int weft_co_yield(void)
{
	weft_yield y = WEFT_YIELD_INIT;

	return weft_await(&weft_yield_desc, &y, NULL);
}

WEFT_API int weft_co_sleep(uint64_t ns)
{
	weft_io io = WEFT_IO_INIT;
	int64_t r;

	ON_FIBER();
	weft_io_prep_sleep(&io, ns);
	r = await_io(&io, 0);
	return r < 0 ? (int)r : 0;
}

WEFT_API int weft_co_sleep_until(uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;
	int64_t r;

	ON_FIBER();
	weft_io_prep_sleep_until(&io, deadline_ns);
	r = await_io(&io, 0);
	return r < 0 ? (int)r : 0;
}

WEFT_API int64_t weft_co_recv(int fd, void *buf, size_t len, int flags,
			      uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_recv(&io, fd, buf, len, flags);
	return await_io(&io, deadline_ns);
}

WEFT_API int64_t weft_co_send_zc(int fd, const void *buf, size_t len,
				 int flags, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_send_zc(&io, fd, buf, len, flags);
	return await_io(&io, deadline_ns);
}

WEFT_API int64_t weft_co_send(int fd, const void *buf, size_t len,
			      int flags, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_send(&io, fd, buf, len, flags);
	return await_io(&io, deadline_ns);
}

WEFT_API int64_t weft_co_send_all(int fd, const void *buf, size_t len,
				  int flags, uint64_t deadline_ns)
{
	weft_send_all s = { 0 };
	int64_t res = 0;
	int err;

	ON_FIBER();
	if ((err = weft_send_all_init(&s, fd, buf, len, flags)))
		return err;
	if ((err = weft_await_until(&weft_send_all_desc, &s, &res,
				    deadline_ns)))
		return err;
	return res;
}

WEFT_API int64_t weft_co_recv_exact(int fd, void *buf, size_t len,
				    uint64_t deadline_ns)
{
	weft_recv_exact r = { 0 };
	int64_t res = 0;
	int err;

	ON_FIBER();
	if ((err = weft_recv_exact_init(&r, fd, buf, len, 0)))
		return err;
	if ((err = weft_await_until(&weft_recv_exact_desc, &r, &res,
				    deadline_ns)))
		return err;
	return res;
}

WEFT_API int64_t weft_co_read(int fd, void *buf, size_t len,
			      uint64_t offset, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_read(&io, fd, buf, len, (off_t)offset);
	return await_io(&io, deadline_ns);
}

WEFT_API int64_t weft_co_write(int fd, const void *buf, size_t len,
			       uint64_t offset, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_write(&io, fd, buf, len, (off_t)offset);
	return await_io(&io, deadline_ns);
}

WEFT_API int weft_co_accept(int listen_fd, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_accept(&io, listen_fd);
	return (int)await_io(&io, deadline_ns);
}

WEFT_API int weft_co_connect(const struct sockaddr *addr, socklen_t addrlen,
			     uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_connect(&io, addr, addrlen);
	return (int)await_io(&io, deadline_ns);
}

WEFT_API int weft_co_tcp_connect(const char *host, uint16_t port,
				 uint64_t deadline_ns)
{
	weft_tcp_connect c = { 0 };
	int64_t res = 0;
	int err;

	ON_FIBER();
	if ((err = weft_tcp_connect_init(&c, host, port)))
		return err;
	if ((err = weft_await_until(&weft_tcp_connect_desc, &c, &res,
				    deadline_ns)))
		return err;
	return (int)res;
}

WEFT_API int weft_co_shutdown(int fd, int how, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_shutdown(&io, fd, how);
	return (int)await_io(&io, deadline_ns);
}

WEFT_API int weft_co_close(int fd)
{
	weft_io io = WEFT_IO_INIT;

	/* A fiber being cancelled still releases its fds: its cleanup code
	 * runs after every other call failed, so close synchronously. */
	if (weft__fiber_cancelled())
		return close(fd) == 0 ? 0 : -errno;
	ON_FIBER();
	weft_io_prep_close(&io, fd);
	return (int)await_io(&io, 0);
}

WEFT_API int weft_co_openat(int dirfd, const char *path, int flags,
			    mode_t mode, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_openat(&io, dirfd, path, flags, mode);
	return (int)await_io(&io, deadline_ns);
}

WEFT_API int64_t weft_co_readv(int fd, const struct iovec *iov, int iovcnt,
			       int64_t offset, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_readv(&io, fd, iov, iovcnt, (off_t)offset);
	return await_io(&io, deadline_ns);
}

WEFT_API int64_t weft_co_writev(int fd, const struct iovec *iov, int iovcnt,
				int64_t offset, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_writev(&io, fd, iov, iovcnt, (off_t)offset);
	return await_io(&io, deadline_ns);
}

WEFT_API int weft_co_fsync(int fd, bool datasync, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_fsync(&io, fd, datasync);
	return (int)await_io(&io, deadline_ns);
}

WEFT_API int weft_co_statx(int dirfd, const char *path, int flags,
			   unsigned mask, struct statx *out,
			   uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_statx(&io, dirfd, path, flags, mask, out);
	return (int)await_io(&io, deadline_ns);
}

WEFT_API int weft_co_raw(int (*fill)(struct io_uring_sqe *sqe, void *arg),
			 void *arg, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_raw(&io, fill, arg);
	return (int)await_io(&io, deadline_ns);
}

WEFT_API int weft_co_join(weft_join *join, void *out)
{
	weft_join_future jf = { .join = join, .value = out };
	int st = 0, err;

	if (!join)
		return -EINVAL;
	ON_FIBER();
	if ((err = weft_await(&weft_join_future_desc, &jf, &st)))
		return err; /* cancelled: the future's drop detached @join */
	return st;
}

WEFT_API int64_t weft_co_send_to(int fd, const void *buf, size_t len,
				 const struct sockaddr *addr,
				 socklen_t addrlen, int flags,
				 uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_send_to(&io, fd, buf, len, addr, addrlen, flags);
	return await_io(&io, deadline_ns);
}

WEFT_API int64_t weft_co_recv_from(int fd, void *buf, size_t len, int flags,
				   struct sockaddr_storage *from,
				   socklen_t *fromlen, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_recv_from(&io, fd, buf, len, flags, from, fromlen);
	return await_io(&io, deadline_ns);
}

WEFT_API int weft_co_unix_connect(const char *path, uint64_t deadline_ns)
{
	weft_io io = WEFT_IO_INIT;

	ON_FIBER();
	weft_io_prep_unix_connect(&io, path);
	return (int)await_io(&io, deadline_ns);
}

WEFT_API int weft_co_accept_next(weft_accept_stream *s, uint64_t deadline_ns)
{
	weft_accept_next n = { .stream = s };
	int fd = -EINVAL, err;

	if (!s)
		return -EINVAL;
	ON_FIBER();
	if ((err = weft_await_until(&weft_accept_next_desc, &n, &fd,
				    deadline_ns)))
		return err;
	return fd;
}

WEFT_API int64_t weft_co_recv_next(weft_recv_stream *s, weft_buf *buf,
				   uint64_t deadline_ns)
{
	weft_recv_next n = { .stream = s };
	weft_recv_item it = { .res = -EINVAL };
	int err;

	if (!s || !buf)
		return -EINVAL;
	ON_FIBER();
	if ((err = weft_await_until(&weft_recv_next_desc, &n, &it,
				    deadline_ns)))
		return err;
	*buf = it.buf;
	return it.res;
}

WEFT_API int64_t weft_co_udp_next(weft_udp_stream *s, weft_buf *buf,
				  struct sockaddr_storage *from,
				  socklen_t *fromlen, uint64_t deadline_ns)
{
	weft_udp_next n = { .stream = s, .from = from, .fromlen = fromlen };
	weft_recv_item it = { .res = -EINVAL };
	int err;

	if (!s || !buf)
		return -EINVAL;
	ON_FIBER();
	if ((err = weft_await_until(&weft_udp_next_desc, &n, &it,
				    deadline_ns)))
		return err;
	*buf = it.buf;
	return it.res;
}

WEFT_API int weft_co_frame_read(weft_framed_reader *r, weft_frame_view *frame,
				uint64_t deadline_ns)
{
	weft_framed_next n = { .reader = r, .frame = frame };
	int res = -EINVAL, err;

	if (!r || !frame)
		return -EINVAL;
	ON_FIBER();
	if ((err = weft_await_until(&weft_framed_next_desc, &n, &res,
				    deadline_ns)))
		return err;
	return res;
}

WEFT_API int weft_co_frame_send(weft_framed_writer *w, const void *payload,
				size_t len, bool flush, uint64_t deadline_ns)
{
	weft_framed_send s;
	int res = -EINVAL, err;

	ON_FIBER();
	if ((err = weft_framed_send_init(&s, w, payload, len, flush)))
		return err;
	if ((err = weft_await_until(&weft_framed_send_desc, &s, &res,
				    deadline_ns)))
		return err;
	return res;
}

WEFT_API int weft_co_frame_flush(weft_framed_writer *w, uint64_t deadline_ns)
{
	weft_framed_flush f = { .writer = w };
	int res = -EINVAL, err;

	ON_FIBER();
	if (!w)
		return -EINVAL;
	if ((err = weft_await_until(&weft_framed_flush_desc, &f, &res,
				    deadline_ns)))
		return err;
	return res;
}
