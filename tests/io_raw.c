/* SPDX-License-Identifier: MIT */
/*
 * Raw SQEs (weft_io_prep_raw, weft_co_raw): ops weft has no wrapper for
 * (nop, splice, tee, fallocate, timeout) give their CQE's res; a fill
 * error or a refused SQE submits nothing; user_data is weft's whatever
 * fill wrote; a long raw op dropped is cancelled promptly.
 */
#include <fcntl.h>
#include <linux/time_types.h>
#include <liburing.h>
#include <poll.h>
#include <sys/stat.h>

#include "fiber_helpers.h"

#define MS WT_MS

static int nop_fill(struct io_uring_sqe *sqe, void *arg)
{
	(void)arg;
	io_uring_prep_nop(sqe);
	return 0;
}

static int64_t run_raw(weft_runtime *rt, weft_io_raw_fill fill, void *arg)
{
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_raw(&io, fill, arg), 0);
	return wt_op_run(rt, &io);
}

WT_RT_TEST(io_raw, nop_gives_zero)
{
	weft_runtime *rt = wt_rt_new(cfg);
	uint64_t before = wt_metrics(rt).ops_submitted;
	cr_expect_eq(run_raw(rt, nop_fill, NULL), 0);
	cr_expect_eq(wt_metrics(rt).ops_submitted, before + 1);
	wt_rt_free(rt);
}

/* fill writes its own user_data: weft must replace it (the driver takes
 * user_data for a record's address: a stray value would crash the reap). */
static int nop_own_user_data(struct io_uring_sqe *sqe, void *arg)
{
	(void)arg;
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, 0xdead0000beef0008ull);
	return 0;
}

WT_RT_TEST(io_raw, user_data_is_weft_s)
{
	weft_runtime *rt = wt_rt_new(cfg);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(run_raw(rt, nop_own_user_data, NULL), 0);
	wt_rt_free(rt);
}

struct splice_args {
	int in, out;
	unsigned len;
	bool tee;
};

static int splice_fill(struct io_uring_sqe *sqe, void *arg)
{
	struct splice_args *a = arg;
	if (a->tee)
		io_uring_prep_tee(sqe, a->in, a->out, a->len, 0);
	else
		io_uring_prep_splice(sqe, a->in, -1, a->out, -1, a->len, 0);
	return 0;
}

WT_RT_TEST(io_raw, splice_and_tee_between_pipes)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int a[2], b[2], c[2];
	char got[16] = { 0 };
	wt_pipe(a);
	wt_pipe(b);
	wt_pipe(c);
	cr_assert_eq(write(a[1], "weft-raw", 8), 8);

	/* tee copies a's data into c and leaves it in a ... */
	struct splice_args t = { .in = a[0], .out = c[1], .len = 8, .tee = 1 };
	cr_expect_eq(run_raw(rt, splice_fill, &t), 8);
	/* ... so that splice can then move it on to b. */
	struct splice_args s = { .in = a[0], .out = b[1], .len = 8 };
	cr_expect_eq(run_raw(rt, splice_fill, &s), 8);

	cr_expect_eq(read(b[0], got, sizeof(got)), 8);
	cr_expect_str_eq(got, "weft-raw");
	memset(got, 0, sizeof(got));
	cr_expect_eq(read(c[0], got, sizeof(got)), 8);
	cr_expect_str_eq(got, "weft-raw");
	for (int i = 0; i < 2; i++) {
		close(a[i]);
		close(b[i]);
		close(c[i]);
	}
	wt_rt_free(rt);
}

struct falloc_args {
	int fd;
	uint64_t len;
};

static int falloc_fill(struct io_uring_sqe *sqe, void *arg)
{
	struct falloc_args *a = arg;
	io_uring_prep_fallocate(sqe, a->fd, 0, 0, (off_t)a->len);
	return 0;
}

WT_RT_TEST(io_raw, fallocate_a_temp_file)
{
	weft_runtime *rt = wt_rt_new(cfg);
	char path[] = "/tmp/weft-io-raw-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	cr_assert_geq(fd, 0, "mkostemp: %s", strerror(errno));
	unlink(path);

	struct falloc_args a = { .fd = fd, .len = 1 << 20 };
	int64_t r = run_raw(rt, falloc_fill, &a);
	if (r == -EOPNOTSUPP) { /* a filesystem without fallocate */
		close(fd);
		wt_rt_free(rt);
		cr_skip_test("fallocate: not supported on /tmp");
	}
	cr_expect_eq(r, 0, "fallocate: %s", strerror((int)-r));
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq(st.st_size, 1 << 20);
	/* A bad fd is the CQE's error, as the op documents. */
	struct falloc_args bad = { .fd = -1, .len = 4096 };
	cr_expect_eq(run_raw(rt, falloc_fill, &bad), -EBADF);
	close(fd);
	wt_rt_free(rt);
}

/* --- errors before submission ------------------------------------------ */

static int fill_eio(struct io_uring_sqe *sqe, void *arg)
{
	(*(int *)arg)++;
	io_uring_prep_nop(sqe);
	return -EIO;
}

static int fill_positive(struct io_uring_sqe *sqe, void *arg)
{
	(void)arg;
	io_uring_prep_nop(sqe);
	return 7;
}

WT_RT_TEST(io_raw, fill_error_fails_the_op_unsubmitted)
{
	weft_runtime *rt = wt_rt_new(cfg);
	uint64_t before = wt_metrics(rt).ops_submitted;
	int calls = 0;
	cr_expect_eq(run_raw(rt, fill_eio, &calls), -EIO);
	cr_expect_eq(calls, 1, "fill runs once");
	cr_expect_eq(run_raw(rt, fill_positive, NULL), -EINVAL);
	cr_expect_eq(wt_metrics(rt).ops_submitted, before,
		     "a failed fill submitted something");
	/* The ring is still fine. */
	cr_expect_eq(run_raw(rt, nop_fill, NULL), 0);
	wt_rt_free(rt);
}

WT_TEST(io_raw, prep_argument_errors)
{
	weft_io io = WEFT_IO_INIT;
	cr_expect_eq(weft_io_prep_raw(NULL, nop_fill, NULL), -EINVAL);
	cr_expect_eq(weft_io_prep_raw(&io, NULL, NULL), -EINVAL);
	/* The error is kept for the poll. */
	weft_cx cx;
	weft_waker w;
	int64_t res = 0;
	cr_expect_eq(weft_io_poll(&io, wt_noop_cx(&cx, &w), &res), WEFT_READY);
	cr_expect_eq(res, -EINVAL);
	weft_io_drop(&io);
}

/* One refused SQE per case: an SQE flag weft owns, or an op that would
 * post more than one CQE. */
static int refused_fill(struct io_uring_sqe *sqe, void *arg)
{
	int which = *(int *)arg;
	int p[2] = { 0, 1 };

	io_uring_prep_nop(sqe);
	switch (which) {
	case 0: sqe->flags |= IOSQE_IO_LINK; break;
	case 1: sqe->flags |= IOSQE_IO_HARDLINK; break;
	case 2: sqe->flags |= IOSQE_CQE_SKIP_SUCCESS; break;
	case 3: sqe->flags |= IOSQE_BUFFER_SELECT; break;
	case 4: sqe->flags |= IOSQE_FIXED_FILE; break;
	case 5: io_uring_prep_multishot_accept(sqe, p[0], NULL, NULL, 0); break;
	case 6:
		io_uring_prep_recv(sqe, p[0], NULL, 0, 0);
		sqe->ioprio |= IORING_RECV_MULTISHOT;
		break;
	case 7: io_uring_prep_poll_multishot(sqe, p[0], POLLIN); break;
	case 8: io_uring_prep_send_zc(sqe, p[1], "x", 1, 0, 0); break;
	case 9: sqe->flags |= 1u << 7; break; /* a flag from the future */
	case 10: sqe->flags |= IOSQE_IO_DRAIN; break;
	case 11: sqe->opcode = 49; break; /* IORING_OP_READ_MULTISHOT */
	case 12: sqe->opcode = 58; break; /* IORING_OP_RECV_ZC */
	}
	return 0;
}

WT_RT_TEST(io_raw, refused_sqes_submit_nothing)
{
	weft_runtime *rt = wt_rt_new(cfg);
	uint64_t before = wt_metrics(rt).ops_submitted;
	for (int i = 0; i < 13; i++)
		cr_expect_eq(run_raw(rt, refused_fill, &i), -EINVAL,
			     "case %d was not refused", i);
	cr_expect_eq(wt_metrics(rt).ops_submitted, before,
		     "a refused SQE was submitted");
	/* The ring is still fine. */
	cr_expect_eq(run_raw(rt, nop_fill, NULL), 0);
	wt_rt_free(rt);
}

static int async_nop(struct io_uring_sqe *sqe, void *arg)
{
	(void)arg;
	io_uring_prep_nop(sqe);
	sqe->flags |= IOSQE_ASYNC;
	return 0;
}

WT_RT_TEST(io_raw, async_flag_allowed)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int64_t r = run_raw(rt, async_nop, NULL);
	cr_expect_eq(r, 0, "async nop: %lld", (long long)r);
	wt_rt_free(rt);
}

/* --- a long raw op dropped --------------------------------------------- */

static int timeout_fill(struct io_uring_sqe *sqe, void *arg)
{
	/* @arg lives in the task's state: valid until the kernel is done. */
	io_uring_prep_timeout(sqe, arg, 0, 0);
	return 0;
}

/* Polls a raw 10 s timeout and a 10 ms sleep; at the sleep's end drops
 * the timeout and finishes with the time it took. */
struct drop_raw {
	weft_io raw;
	weft_io nap;
	struct __kernel_timespec ts;
	uint64_t t0;
	bool started;
};

static weft_poll drop_raw_poll(void *self, weft_cx *cx, void *out)
{
	struct drop_raw *s = self;
	int64_t r;

	if (!s->started) {
		s->started = true;
		s->t0 = wt_mono_ns();
		s->ts.tv_sec = 10;
		WT_CHECK(weft_io_prep_raw(&s->raw, timeout_fill, &s->ts) == 0,
			 "prep_raw");
		WT_CHECK(weft_io_prep_sleep(&s->nap, 10 * MS) == 0, "sleep");
	}
	if (weft_io_poll(&s->raw, cx, &r) == WEFT_READY) {
		*(int64_t *)out = INT64_MIN + r; /* too early: a failure */
		return WEFT_READY;
	}
	if (weft_io_poll(&s->nap, cx, &r) == WEFT_PENDING)
		return WEFT_PENDING;
	weft_io_drop(&s->raw);
	*(int64_t *)out = (int64_t)(wt_mono_ns() - s->t0);
	return WEFT_READY;
}

static void drop_raw_drop(void *self)
{
	struct drop_raw *s = self;
	weft_io_drop(&s->raw);
	weft_io_drop(&s->nap);
}

static const weft_future_desc drop_raw_desc = {
	.poll = drop_raw_poll,
	.drop = drop_raw_drop,
	.size = sizeof(struct drop_raw),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(io_raw, long_timeout_dropped_is_cancelled)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int64_t took = 0;
	wt_block_on(rt, &drop_raw_desc, NULL, &took);
	cr_expect_geq(took, 0, "the 10 s timeout completed early: %lld",
		      (long long)(took - INT64_MIN));
	cr_expect_lt(took, (int64_t)(5000 * MS), "took %lld ms",
		     (long long)(took / (int64_t)MS));
	/* The cancel landed: the timeout's CQE came long before 10 s. */
	cr_expect(wt_ops_quiesce(rt, 3000), "the raw timeout still runs");
	wt_rt_free_prompt(rt);
}

WT_RT_TEST(io_raw, deadline_on_a_raw_op)
{
	weft_runtime *rt = wt_rt_new(cfg);
	static struct __kernel_timespec ts = { .tv_sec = 10 };
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_raw(&io, timeout_fill, &ts), 0);
	cr_assert_eq(weft_io_set_timeout(&io, 20 * MS), 0);
	uint64_t t0 = wt_mono_ns();
	cr_expect_eq(wt_op_run(rt, &io), -ETIMEDOUT);
	cr_expect_lt(wt_mono_ns() - t0, 5000 * MS);
	wt_rt_free_prompt(rt);
}

/* --- from a fiber ------------------------------------------------------ */

static void *raw_fiber(void *arg)
{
	int *fds = arg;
	struct splice_args s = { .in = fds[0], .out = fds[3], .len = 5 };
	struct __kernel_timespec ts = { .tv_sec = 10 }; /* on the fiber stack */

	FCHECK(weft_co_raw(nop_fill, NULL, 0) == 0);
	FCHECK(weft_co_raw(splice_fill, &s, 0) == 5);
	FCHECK(weft_co_raw(fill_positive, NULL, 0) == -EINVAL);
	FCHECK(weft_co_raw(timeout_fill, &ts,
			   weft_now_ns() + 20 * MS) == -ETIMEDOUT);
	return (void *)1;
}

WT_RT_TEST(io_raw, from_a_fiber)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int fds[4];
	wt_pipe(fds);
	wt_pipe(fds + 2);
	cr_assert_eq(write(fds[1], "fiber", 5), 5);
	cr_expect_eq(wt_fiber_run(rt, raw_fiber, fds), (void *)1);
	char got[8] = { 0 };
	cr_expect_eq(read(fds[2], got, sizeof(got)), 5);
	cr_expect_str_eq(got, "fiber");
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	wt_rt_free(rt);
}

WT_TEST(io_raw, co_raw_off_a_fiber)
{
	cr_expect_eq(weft_co_raw(nop_fill, NULL, 0), -EPERM);
}
