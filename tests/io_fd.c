/* SPDX-License-Identifier: MIT */
/*
 * The generic fd ops of weft/io.h: read and write at an offset on a
 * regular file, a blocking pipe and an eventfd; close through the ring;
 * argument errors kept for the poll; re-preparing a weft_io whose op is in
 * flight; polling an unprepared weft_io; polling any op off a worker.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "io_helpers.h"

#define MS WT_MS

/* A temporary regular file, already unlinked. */
static int tmp_file(void)
{
	char path[] = "/tmp/weft-io-fd-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	cr_assert_geq(fd, 0, "mkostemp: %s", strerror(errno));
	unlink(path);
	return fd;
}

static int64_t run_read(weft_runtime *rt, int fd, void *buf, size_t len,
			off_t off)
{
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_read(&io, fd, buf, len, off), 0);
	return wt_op_run(rt, &io);
}

static int64_t run_write(weft_runtime *rt, int fd, const void *buf,
			 size_t len, off_t off)
{
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_write(&io, fd, buf, len, off), 0);
	return wt_op_run(rt, &io);
}

/* --- regular files ----------------------------------------------------- */

WT_RT_TEST(io_fd, file_write_and_read_at_offset)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int fd = tmp_file();
	static const char msg[] = "at offset 4096";
	cr_expect_eq(run_write(rt, fd, msg, sizeof(msg), 4096),
		     (int64_t)sizeof(msg));
	/* Written where asked, and the file position did not move. */
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq(st.st_size, 4096 + (off_t)sizeof(msg));
	cr_expect_eq(lseek(fd, 0, SEEK_CUR), 0, "pwrite moved the position");
	char back[sizeof(msg)] = { 0 };
	cr_expect_eq(pread(fd, back, sizeof(back), 4096), (ssize_t)sizeof(msg));
	cr_expect_str_eq(back, msg);

	char got[64] = { 0 };
	cr_expect_eq(run_read(rt, fd, got, sizeof(got), 4096),
		     (int64_t)sizeof(msg), "read at 4096: short or long");
	cr_expect_str_eq(got, msg);
	/* The hole before it reads as zeroes. */
	memset(got, 'x', sizeof(got));
	cr_expect_eq(run_read(rt, fd, got, 16, 100), 16);
	for (int i = 0; i < 16; i++)
		cr_expect_eq(got[i], 0, "hole byte %d", i);
	wt_rt_free(rt);
	close(fd);
}

WT_RT_TEST(io_fd, file_read_at_minus_one_uses_position)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int fd = tmp_file();
	cr_assert_eq(pwrite(fd, "0123456789", 10, 0), 10);
	cr_assert_eq(lseek(fd, 4, SEEK_SET), 4);
	char got[4] = { 0 };
	cr_expect_eq(run_read(rt, fd, got, 3, -1), 3);
	cr_expect_eq(memcmp(got, "456", 3), 0, "read at -1 got %.3s", got);
	/* ... and advanced it, as read(2) does. */
	cr_expect_eq(lseek(fd, 0, SEEK_CUR), 7);
	cr_expect_eq(run_read(rt, fd, got, 3, -1), 3);
	cr_expect_eq(memcmp(got, "789", 3), 0, "second read got %.3s", got);
	/* A write at -1 goes to the position too. */
	cr_expect_eq(run_write(rt, fd, "AB", 2, -1), 2);
	char all[13] = { 0 };
	cr_expect_eq(pread(fd, all, 12, 0), 12);
	cr_expect_str_eq(all, "0123456789AB");
	wt_rt_free(rt);
	close(fd);
}

WT_RT_TEST(io_fd, file_read_past_eof_is_zero)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int fd = tmp_file();
	cr_assert_eq(pwrite(fd, "abc", 3, 0), 3);
	char got[8];
	cr_expect_eq(run_read(rt, fd, got, sizeof(got), 3), 0, "at EOF");
	cr_expect_eq(run_read(rt, fd, got, sizeof(got), 1 << 20), 0,
		     "past EOF");
	/* Straddling EOF: a short read. */
	cr_expect_eq(run_read(rt, fd, got, sizeof(got), 1), 2);
	wt_rt_free(rt);
	close(fd);
}

/* --- pipes and eventfd ------------------------------------------------- */

WT_RT_TEST(io_fd, pipe_read_pending_until_another_task_writes)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	int p[2];
	wt_pipe(p); /* blocking: the kernel waits for data */
	char rbuf[16] = { 0 };
	weft_io rd = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_read(&rd, p[0], rbuf, sizeof(rbuf), -1), 0);
	weft_join *jr = wt_op_spawn(rt, &rd, &c);
	cr_assert_geq(wt_wait_atomic_ge(&c.polls, 1, 5000), 1, "not polled");
	wt_sleep_ms(20);
	cr_expect(!weft_join_is_finished(jr), "read of an empty pipe finished");

	weft_io wr = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_write(&wr, p[1], "ping", 4, -1), 0);
	weft_join *jw = wt_op_spawn(rt, &wr, NULL);
	cr_expect_eq(wt_op_join(jw), 4);
	cr_expect_eq(wt_op_join(jr), 4);
	cr_expect_eq(memcmp(rbuf, "ping", 4), 0);
	wt_rt_free(rt);
	close(p[0]);
	close(p[1]);
}

/*
 * Default SIGPIPE disposition on purpose (set here, whatever the runner
 * chose): weft/io.h says io_uring does not raise SIGPIPE for write, so the
 * op must give -EPIPE and the process must survive.
 */
WT_RT_TEST(io_fd, pipe_write_without_reader_is_epipe)
{
	signal(SIGPIPE, SIG_DFL);
	weft_runtime *rt = wt_rt_new(cfg);
	int p[2];
	wt_pipe(p);
	close(p[0]);
	cr_expect_eq(run_write(rt, p[1], "x", 1, -1), -EPIPE);
	wt_rt_free(rt);
	close(p[1]);
}

WT_RT_TEST(io_fd, eventfd_read_after_write)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int efd = eventfd(0, EFD_CLOEXEC);
	cr_assert_geq(efd, 0, "eventfd: %s", strerror(errno));
	uint64_t v = 5;
	cr_expect_eq(run_write(rt, efd, &v, sizeof(v), -1), 8);
	v = 2;
	cr_expect_eq(run_write(rt, efd, &v, sizeof(v), -1), 8);
	uint64_t got = 0;
	cr_expect_eq(run_read(rt, efd, &got, sizeof(got), -1), 8);
	cr_expect_eq(got, 7, "eventfd counter %llu", (unsigned long long)got);
	/* A short buffer is refused by eventfd itself. */
	uint32_t small;
	cr_expect_eq(run_read(rt, efd, &small, sizeof(small), -1), -EINVAL);
	wt_rt_free(rt);
	close(efd);
}

/* --- close ------------------------------------------------------------- */

WT_RT_TEST(io_fd, close_result)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int fd = tmp_file();
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_close(&io, fd), 0);
	cr_expect_eq(wt_op_run(rt, &io), 0);
	cr_expect_eq(fcntl(fd, F_GETFD), -1, "fd still open");
	cr_expect_eq(errno, EBADF);
	/* Again: gone. (No other thread of this test opens fds.) */
	cr_assert_eq(weft_io_prep_close(&io, fd), 0);
	cr_expect_eq(wt_op_run(rt, &io), -EBADF);
	cr_assert_eq(weft_io_prep_close(&io, -1), 0);
	cr_expect_eq(wt_op_run(rt, &io), -EBADF);
	cr_expect_eq(weft_io_prep_close(NULL, 0), -EINVAL);
	wt_rt_free(rt);
}

/* --- argument errors --------------------------------------------------- */

/* Poll @io once from this (non-worker) thread; returns the result. */
static int64_t poll_here(weft_io *io)
{
	weft_waker w;
	weft_cx cx;
	int64_t r = INT64_MIN;
	cr_expect_eq(weft_io_poll(io, wt_noop_cx(&cx, &w), &r), WEFT_READY);
	return r;
}

WT_RT_TEST(io_fd, null_buf_with_len_is_einval_at_prep_and_poll)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_io io = WEFT_IO_INIT;
	cr_expect_eq(weft_io_prep_read(&io, 0, NULL, 8, -1), -EINVAL);
	cr_expect_eq(poll_here(&io), -EINVAL);
	cr_expect_eq(weft_io_prep_read(&io, 0, NULL, 8, -1), -EINVAL);
	cr_expect_eq(wt_op_run(rt, &io), -EINVAL, "poll in a task");
	cr_expect_eq(weft_io_prep_write(&io, 1, NULL, 1, 0), -EINVAL);
	cr_expect_eq(wt_op_run(rt, &io), -EINVAL);
	/* A NULL buffer of length 0 is a valid zero-length read. */
	int fd = tmp_file();
	cr_expect_eq(weft_io_prep_read(&io, fd, NULL, 0, 0), 0);
	cr_expect_eq(wt_op_run(rt, &io), 0);
	cr_expect_eq(weft_io_prep_read(NULL, fd, &io, 1, 0), -EINVAL);
	cr_expect_eq(weft_io_prep_write(NULL, fd, &io, 1, 0), -EINVAL);
	wt_rt_free(rt);
	close(fd);
}

WT_RT_TEST(io_fd, offset_below_minus_one_is_einval)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int fd = tmp_file();
	char b[4];
	weft_io io = WEFT_IO_INIT;
	cr_expect_eq(weft_io_prep_read(&io, fd, b, sizeof(b), -2), -EINVAL);
	cr_expect_eq(wt_op_run(rt, &io), -EINVAL);
	cr_expect_eq(weft_io_prep_write(&io, fd, b, sizeof(b), INT64_MIN),
		     -EINVAL);
	cr_expect_eq(poll_here(&io), -EINVAL);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq(st.st_size, 0, "the refused write reached the file");
	wt_rt_free(rt);
	close(fd);
}

/* --- re-preparing an op in flight -------------------------------------- */

/*
 * First poll: a read of an empty pipe (stays in flight). Preparing the same
 * weft_io again is refused with -EBUSY and leaves the read alone (no leaked
 * record, nothing cancelled behind the caller's back); after an explicit
 * drop (which cancels the read) it can be prepared as a 1 ms sleep.
 */
struct reprep {
	int rfd;
	/* private */
	int step;
	weft_io io;
	unsigned char buf[8];
};

static weft_poll reprep_poll(void *self, weft_cx *cx, void *out)
{
	struct reprep *s = self;
	int64_t r;
	if (s->step == 0) {
		weft_io_prep_read(&s->io, s->rfd, s->buf, sizeof(s->buf), -1);
		WT_CHECK(weft_io_poll(&s->io, cx, &r) == WEFT_PENDING,
			 "read of an empty pipe: %lld", (long long)r);
		WT_CHECK(weft_io_prep_sleep(&s->io, 1 * MS) == -EBUSY,
			 "prep over an op in flight");
		WT_CHECK(weft_io_poll(&s->io, cx, &r) == WEFT_PENDING,
			 "the read goes on after -EBUSY: %lld", (long long)r);
		weft_io_drop(&s->io);
		WT_CHECK(weft_io_prep_sleep(&s->io, 1 * MS) == 0, "reprep");
		s->step = 1;
	}
	if (weft_io_poll(&s->io, cx, &r) == WEFT_PENDING)
		return WEFT_PENDING;
	*(int64_t *)out = r;
	return WEFT_READY;
}

static void reprep_drop(void *self)
{
	weft_io_drop(&((struct reprep *)self)->io);
}

static const weft_future_desc reprep_desc = {
	.poll = reprep_poll,
	.drop = reprep_drop,
	.size = sizeof(struct reprep),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(io_fd, reprepare_in_flight_is_ebusy)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int p[2];
	wt_pipe(p);
	struct reprep s = { .rfd = p[0] };
	int64_t r = INT64_MIN;
	wt_block_on(rt, &reprep_desc, &s, &r);
	cr_expect_eq(r, 0, "the sleep: %lld", (long long)r);
	/* Both ops retire: the read by its cancel. */
	cr_expect(wt_ops_quiesce(rt, 3000), "the replaced read still runs");
	weft_runtime_metrics m = wt_metrics(rt);
	/* The read; the sleep is a timer on the wheel, not a ring op. */
	cr_expect_eq(m.ops_submitted, 1, "%llu ops",
		     (unsigned long long)m.ops_submitted);
	/* The cancelled read does not take what is written now. */
	cr_assert_eq(write(p[1], "q", 1), 1);
	cr_assert_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	char q = 0;
	cr_expect_eq(read(p[0], &q, 1), 1, "a cancelled read took the byte");
	cr_expect_eq(q, 'q');
	wt_rt_free(rt); /* LSan: no op record leaked */
	close(p[0]);
	close(p[1]);
}

/* --- unprepared and off-worker polls ----------------------------------- */

WT_RT_TEST(io_fd, poll_unprepared_is_einval)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_io io;
	memset(&io, 0, sizeof(io));
	cr_expect_eq(poll_here(&io), -EINVAL);
	cr_expect(weft_io_is_done(&io));
	memset(&io, 0, sizeof(io));
	cr_expect_eq(wt_op_run(rt, &io), -EINVAL, "in a task");
	cr_expect_eq(poll_here(NULL), -EINVAL);
	cr_expect(!weft_io_is_done(NULL));
	weft_io_drop(&io);
	weft_io_drop(NULL);
	wt_rt_free(rt);
}

WT_RT_TEST(io_fd, poll_off_worker_is_eperm)
{
	/* A runtime exists, but the test thread is none of its workers. */
	weft_runtime *rt = wt_rt_new(cfg);
	int p[2];
	wt_pipe(p);
	char b[4];
	weft_io s1 = WEFT_IO_INIT, s2 = WEFT_IO_INIT, rd = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_sleep(&s1, 1000), 0);       /* 1 us */
	cr_assert_eq(weft_io_prep_sleep(&s2, 1000 * MS), 0);  /* 1 s */
	cr_assert_eq(weft_io_prep_read(&rd, p[0], b, sizeof(b), -1), 0);
	uint64_t t0 = wt_mono_ns();
	cr_expect_eq(poll_here(&s1), -EPERM, "1 us sleep");
	cr_expect_eq(poll_here(&s2), -EPERM, "1 s sleep");
	cr_expect_eq(poll_here(&rd), -EPERM, "read");
	cr_expect_lt(wt_mono_ns() - t0, 500 * MS, "an off-worker poll waited");
	/* READY means done: a further poll is -EINVAL. */
	cr_expect_eq(poll_here(&s2), -EINVAL);
	weft_io_drop(&s1);
	weft_io_drop(&s2);
	weft_io_drop(&rd);
	cr_expect_eq(wt_metrics(rt).ops_submitted, 0);
	wt_rt_free(rt);
	close(p[0]);
	close(p[1]);
}
