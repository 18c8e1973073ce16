/* SPDX-License-Identifier: MIT */
/*
 * The file ops of weft/file.h on a temporary directory: openat (create,
 * O_EXCL, absolute paths), readv and writev at offsets, fsync, statx (the
 * result copied out at READY only, never on failure); their errors; the
 * path and iovec array copied at the first poll (clobbered before the
 * SQE is submitted); a dropped openat that never leaks its fd (counted in
 * /proc/self/fd); polls off a worker; the weft_co_* calls from a fiber.
 */
#include <dirent.h>
#include <limits.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <weft/file.h>

#include "fiber_helpers.h"

#define MS WT_MS

/* A temporary directory: its path in @path (>= 32 bytes), an O_PATH-less
 * directory fd returned. */
static int tmp_dir(char *path)
{
	strcpy(path, "/tmp/weft-io-file-XXXXXX");
	cr_assert_not_null(mkdtemp(path), "mkdtemp: %s", strerror(errno));
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open dir: %s", strerror(errno));
	return fd;
}

/* Remove the directory of tmp_dir and the plain files in it. */
static void tmp_dir_rm(int dfd, const char *path)
{
	DIR *d = fdopendir(dup(dfd));
	struct dirent *e;
	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dfd, e->d_name, 0);
	closedir(d);
	close(dfd);
	rmdir(path);
}

/* Open fds of this process. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	cr_assert_not_null(d, "/proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static int64_t run_openat(weft_runtime *rt, int dfd, const char *path,
			  int flags, mode_t mode)
{
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_openat(&io, dfd, path, flags, mode), 0);
	return wt_op_run(rt, &io);
}

/* --- the ops ------------------------------------------------------------ */

WT_RT_TEST(io_file, open_create_writev_readv_fsync_statx)
{
	weft_runtime *rt = wt_rt_new(cfg);
	char dir[32];
	int dfd = tmp_dir(dir);

	char name[16] = "data";
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_openat(&io, dfd, name,
					 O_CREAT | O_RDWR | O_CLOEXEC, 0640),
		     0);
	int64_t fd = wt_op_run(rt, &io);
	cr_assert_geq(fd, 0, "openat: %s", strerror((int)-fd));
	cr_expect_eq(faccessat(dfd, "data", F_OK, 0), 0, "not created");

	/* writev at offset 100. */
	char a[] = "hello, ", b[] = "vectored ", c[] = "world";
	struct iovec wv[3] = {
		{ a, strlen(a) }, { b, strlen(b) }, { c, strlen(c) },
	};
	size_t total = strlen(a) + strlen(b) + strlen(c);
	cr_assert_eq(weft_io_prep_writev(&io, (int)fd, wv, 3, 100), 0);
	cr_expect_eq(wt_op_run(rt, &io), (int64_t)total);
	cr_expect_eq(lseek((int)fd, 0, SEEK_CUR), 0, "pwritev moved it");
	char back[64] = { 0 };
	cr_expect_eq(pread((int)fd, back, total, 100), (ssize_t)total);
	cr_expect_str_eq(back, "hello, vectored world");

	/* readv at offset 107 into two buffers, the second filled short. */
	char r1[4] = { 0 }, r2[32] = { 0 };
	struct iovec rv[2] = { { r1, 3 }, { r2, sizeof(r2) - 1 } };
	cr_assert_eq(weft_io_prep_readv(&io, (int)fd, rv, 2, 107), 0);
	cr_expect_eq(wt_op_run(rt, &io), (int64_t)(total - 7));
	cr_expect_str_eq(r1, "vec");
	cr_expect_str_eq(r2, "tored world");
	/* At -1: the file position, which it advances. */
	cr_assert_eq(lseek((int)fd, 100, SEEK_SET), 100);
	struct iovec one = { r1, 3 };
	cr_assert_eq(weft_io_prep_readv(&io, (int)fd, &one, 1, -1), 0);
	cr_expect_eq(wt_op_run(rt, &io), 3);
	cr_expect_eq(memcmp(r1, "hel", 3), 0);
	cr_expect_eq(lseek((int)fd, 0, SEEK_CUR), 103);
	/* No buffers: nothing to do. */
	cr_assert_eq(weft_io_prep_readv(&io, (int)fd, NULL, 0, 0), 0);
	cr_expect_eq(wt_op_run(rt, &io), 0);

	cr_assert_eq(weft_io_prep_fsync(&io, (int)fd, false), 0);
	cr_expect_eq(wt_op_run(rt, &io), 0, "fsync");
	cr_assert_eq(weft_io_prep_fsync(&io, (int)fd, true), 0);
	cr_expect_eq(wt_op_run(rt, &io), 0, "fdatasync");

	struct statx st;
	memset(&st, 0, sizeof(st));
	strcpy(name, "data");
	cr_assert_eq(weft_io_prep_statx(&io, dfd, name, 0, STATX_BASIC_STATS,
					&st),
		     0);
	cr_expect_eq(wt_op_run(rt, &io), 0);
	cr_expect_eq(st.stx_size, 100 + total);
	cr_expect(S_ISREG(st.stx_mode));
	cr_expect_eq(st.stx_mode & 0777, 0640 & ~0022 & 0777,
		     "mode %o", st.stx_mode & 0777);
	cr_expect(st.stx_mask & STATX_SIZE);
	/* AT_EMPTY_PATH: the fd itself. */
	memset(&st, 0, sizeof(st));
	cr_assert_eq(weft_io_prep_statx(&io, (int)fd, "", AT_EMPTY_PATH,
					STATX_SIZE, &st),
		     0);
	cr_expect_eq(wt_op_run(rt, &io), 0);
	cr_expect_eq(st.stx_size, 100 + total);

	close((int)fd);
	/* O_EXCL on the existing file. */
	cr_expect_eq(run_openat(rt, dfd, "data",
				O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600),
		     -EEXIST);
	/* An absolute path ignores the dirfd. */
	char abs[64];
	snprintf(abs, sizeof(abs), "%s/data", dir);
	fd = run_openat(rt, -1, abs, O_RDONLY | O_CLOEXEC, 0);
	cr_expect_geq(fd, 0, "absolute: %s", strerror((int)-fd));
	if (fd >= 0)
		close((int)fd);
	wt_rt_free(rt);
	tmp_dir_rm(dfd, dir);
}

/* --- errors ------------------------------------------------------------- */

WT_RT_TEST(io_file, errors)
{
	weft_runtime *rt = wt_rt_new(cfg);
	char dir[32];
	int dfd = tmp_dir(dir);
	weft_io io = WEFT_IO_INIT;
	char buf[8];
	struct iovec iov = { buf, sizeof(buf) };

	cr_expect_eq(run_openat(rt, dfd, "missing", O_RDONLY | O_CLOEXEC, 0),
		     -ENOENT);
	cr_expect_eq(run_openat(rt, -1, "rel", O_RDONLY | O_CLOEXEC, 0),
		     -EBADF, "relative path, bad dirfd");
	cr_assert_eq(weft_io_prep_readv(&io, -1, &iov, 1, 0), 0);
	cr_expect_eq(wt_op_run(rt, &io), -EBADF);
	cr_assert_eq(weft_io_prep_writev(&io, -1, &iov, 1, 0), 0);
	cr_expect_eq(wt_op_run(rt, &io), -EBADF);
	cr_assert_eq(weft_io_prep_fsync(&io, -1, false), 0);
	cr_expect_eq(wt_op_run(rt, &io), -EBADF);

	/* A failed statx leaves *out alone. */
	struct statx st;
	memset(&st, 0xa5, sizeof(st));
	cr_assert_eq(weft_io_prep_statx(&io, dfd, "missing", 0,
					STATX_BASIC_STATS, &st),
		     0);
	cr_expect_eq(wt_op_run(rt, &io), -ENOENT);
	cr_expect_eq(st.stx_size, 0xa5a5a5a5a5a5a5a5ull, "*out written");

	/* Argument errors: returned by the prep and kept for the poll. */
	cr_expect_eq(weft_io_prep_openat(&io, dfd, NULL, O_RDONLY, 0),
		     -EINVAL);
	cr_expect_eq(wt_op_run(rt, &io), -EINVAL);
	cr_expect_eq(weft_io_prep_statx(&io, dfd, NULL, 0, 0, &st), -EINVAL);
	cr_expect_eq(wt_op_run(rt, &io), -EINVAL);
	cr_expect_eq(weft_io_prep_statx(&io, dfd, "x", 0, 0, NULL), -EINVAL);
	cr_expect_eq(wt_op_run(rt, &io), -EINVAL);
	cr_expect_eq(weft_io_prep_readv(&io, 0, NULL, 1, 0), -EINVAL);
	cr_expect_eq(wt_op_run(rt, &io), -EINVAL);
	cr_expect_eq(weft_io_prep_readv(&io, 0, &iov, -1, 0), -EINVAL);
	cr_expect_eq(weft_io_prep_writev(&io, 0, &iov, IOV_MAX + 1, 0),
		     -EINVAL);
	cr_expect_eq(weft_io_prep_writev(&io, 0, &iov, 1, -2), -EINVAL);
	cr_expect_eq(wt_op_run(rt, &io), -EINVAL);
	char *longp = malloc(PATH_MAX + 1);
	cr_assert_not_null(longp);
	memset(longp, 'a', PATH_MAX);
	longp[PATH_MAX] = '\0';
	cr_expect_eq(weft_io_prep_openat(&io, dfd, longp, O_RDONLY, 0),
		     -ENAMETOOLONG);
	free(longp);
	cr_expect_eq(wt_op_run(rt, &io), -ENAMETOOLONG);
	cr_expect_eq(weft_io_prep_openat(NULL, dfd, "x", O_RDONLY, 0),
		     -EINVAL);
	cr_expect_eq(weft_io_prep_readv(NULL, 0, &iov, 1, 0), -EINVAL);
	cr_expect_eq(weft_io_prep_writev(NULL, 0, &iov, 1, 0), -EINVAL);
	cr_expect_eq(weft_io_prep_fsync(NULL, 0, false), -EINVAL);
	cr_expect_eq(weft_io_prep_statx(NULL, dfd, "x", 0, 0, &st), -EINVAL);
	wt_rt_free(rt);
	tmp_dir_rm(dfd, dir);
}

/* Polled off a worker: -EPERM for each kind, nothing submitted. */
WT_RT_TEST(io_file, poll_off_worker_is_eperm)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_io io = WEFT_IO_INIT;
	struct statx st;
	char buf[4];
	struct iovec iov[2] = { { buf, 2 }, { buf + 2, 2 } };
	weft_cx cx;
	weft_waker w;
	int64_t res = 0;

	for (int k = 0; k < 5; k++) {
		if (k == 0)
			weft_io_prep_openat(&io, AT_FDCWD, "/", O_RDONLY, 0);
		else if (k == 1)
			weft_io_prep_statx(&io, AT_FDCWD, "/", 0, 0, &st);
		else if (k == 2)
			weft_io_prep_readv(&io, 0, iov, 2, 0);
		else if (k == 3)
			weft_io_prep_writev(&io, 1, iov, 2, 0);
		else
			weft_io_prep_fsync(&io, 1, false);
		cr_expect_eq(weft_io_poll(&io, wt_noop_cx(&cx, &w), &res),
			     WEFT_READY);
		cr_expect_eq(res, -EPERM, "kind %d", k);
		weft_io_drop(&io);
	}
	cr_expect_eq(wt_metrics(rt).ops_submitted, 0);
	wt_rt_free(rt);
}

/*
 * The path and the iovec array need to live only through the first poll:
 * the worker submits the SQE after the task's poll returns, so the op
 * reads its own copies. Here they live in the poll's stack frame and are
 * clobbered before it returns.
 */
struct stack_args {
	weft_io io;
	int dfd, fd, step;
	char data[8];
	struct statx st;
};

static weft_poll stack_args_poll(void *self, weft_cx *cx, void *out)
{
	struct stack_args *s = self;
	int64_t r = 0;
	for (;;) {
		if (!weft_io_is_done(&s->io) && s->step > 0) {
			if (weft_io_poll(&s->io, cx, &r) == WEFT_PENDING)
				return WEFT_PENDING;
			WT_CHECK(r >= 0, "step %d: %lld", s->step,
				 (long long)r);
			if (s->step == 1)
				s->fd = (int)r;
			if (s->step == 2)
				WT_CHECK(r == 6 && !memcmp(s->data, "abcdef",
							   6),
					 "readv read %lld", (long long)r);
			if (s->step == 3) {
				WT_CHECK(s->st.stx_size == 6, "size");
				*(int64_t *)out = s->fd;
				return WEFT_READY;
			}
		}
		char name[16] = "data";
		struct iovec iov[2] = { { s->data, 2 }, { s->data + 2, 4 } };
		if (s->step == 0)
			weft_io_prep_openat(&s->io, s->dfd, name,
					    O_RDONLY | O_CLOEXEC, 0);
		else if (s->step == 1)
			weft_io_prep_readv(&s->io, s->fd, iov, 2, 0);
		else
			weft_io_prep_statx(&s->io, s->dfd, name, 0,
					   STATX_SIZE, &s->st);
		s->step++;
		weft_poll p = weft_io_poll(&s->io, cx, &r);
		memset(name, 'x', sizeof(name) - 1);
		memset(iov, 0, sizeof(iov));
		if (p == WEFT_PENDING)
			return WEFT_PENDING;
		/* Done at once: go round with the result. */
		WT_CHECK(0, "op finished at its first poll: %lld",
			 (long long)r);
	}
}

static void stack_args_drop(void *self)
{
	weft_io_drop(&((struct stack_args *)self)->io);
}

static const weft_future_desc stack_args_desc = {
	.poll = stack_args_poll,
	.drop = stack_args_drop,
	.size = sizeof(struct stack_args),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(io_file, path_and_iovecs_copied_at_first_poll)
{
	weft_runtime *rt = wt_rt_new(cfg);
	char dir[32];
	int dfd = tmp_dir(dir);
	int fd = openat(dfd, "data", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "abcdef", 6), 6);
	close(fd);
	struct stack_args *s = calloc(1, sizeof(*s));
	cr_assert_not_null(s);
	s->dfd = dfd;
	int64_t out = -1;
	wt_block_on(rt, &stack_args_desc, s, &out);
	cr_assert_geq(out, 0);
	close((int)out);
	free(s);
	wt_rt_free(rt);
	tmp_dir_rm(dfd, dir);
}

/* --- a dropped openat ---------------------------------------------------- */

/*
 * Polls its openat once, then stays PENDING without taking the result:
 * the op completes with an fd nobody reads, and the task's drop (an abort)
 * drops the op after its CQE.
 */
struct hold {
	weft_io io;
	atomic_int polled;
};

static weft_poll hold_poll(void *self, weft_cx *cx, void *out)
{
	struct hold *h = self;
	(void)out;
	if (atomic_load(&h->polled) == 0) {
		int64_t r = 0;
		WT_CHECK(weft_io_poll(&h->io, cx, &r) == WEFT_PENDING,
			 "openat of a FIFO finished: %lld", (long long)r);
		atomic_store(&h->polled, 1);
	}
	return WEFT_PENDING;
}

static void hold_drop(void *self)
{
	weft_io_drop(&((struct hold *)self)->io);
}

static const weft_future_desc hold_desc = {
	.poll = hold_poll,
	.drop = hold_drop,
	.size = sizeof(struct hold),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(io_file, dropped_openat_closes_its_fd)
{
	weft_runtime *rt = wt_rt_new(cfg);
	char dir[32], fifo[48];
	int dfd = tmp_dir(dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	int base = count_fds();

	/* The FIFO's read end: io_uring's first, non-blocking try opens it
	 * at once, or an io worker waits for a writer; either way its fd
	 * is there before the drop. */
	struct hold *h = calloc(1, sizeof(*h));
	cr_assert_not_null(h);
	cr_assert_eq(weft_io_prep_openat(&h->io, dfd, "fifo",
					 O_RDONLY | O_CLOEXEC, 0),
		     0);
	weft_join *j = NULL;
	wt_spawn(rt, &hold_desc, h, &j);
	free(h); /* the task has its copy */
	/* A blocking open of the write end meets the ring's open. */
	int wfd = open(fifo, O_WRONLY | O_CLOEXEC);
	cr_assert_geq(wfd, 0, "open writer: %s", strerror(errno));
	cr_assert(wt_ops_quiesce(rt, 5000), "the openat did not complete");
	cr_expect_eq(count_fds(), base + 2, "writer and the ring's reader");
	weft_task_abort(j);
	int st = 0;
	wt_join_wait(j, &st, NULL);
	cr_expect_eq(st, -ECANCELED);
	weft_join_drop(j);
	cr_expect_eq(count_fds(), base + 1, "the dropped openat's fd leaked");
	close(wfd);

	/* Dropped while in flight, or just done: cancelled, or opened and
	 * closed by the discard, or taken by the task; no fd is left. */
	struct wt_counters c = { 0 };
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_openat(&io, dfd, "fifo",
					 O_RDONLY | O_CLOEXEC, 0),
		     0);
	j = wt_op_spawn(rt, &io, &c);
	cr_assert_geq(wt_wait_atomic_ge(&c.polls, 1, 5000), 1, "not polled");
	weft_task_abort(j);
	wfd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC); /* may fail */
	int64_t res = -1;
	wt_join_wait(j, &st, &res);
	weft_join_drop(j);
	/* Done before the abort came: then the fd is the task's output. */
	if (st == 0 && res >= 0)
		close((int)res);
	cr_assert(wt_ops_quiesce(rt, 5000), "the cancel did not land");
	if (wfd >= 0)
		close(wfd);
	cr_expect_eq(count_fds(), base, "fds leaked");
	wt_rt_free_prompt(rt);
	tmp_dir_rm(dfd, dir);
}

/* --- fibers ------------------------------------------------------------- */

static void *file_fiber(void *arg)
{
	int dfd = *(int *)arg;
	char name[8] = "f";
	int fd = weft_co_openat(dfd, name, O_CREAT | O_RDWR | O_CLOEXEC,
				0600, 0);
	FCHECK(fd >= 0, "openat: %d", fd);
	char a[] = "fiber ", b[] = "file";
	struct iovec wv[2] = { { a, 6 }, { b, 4 } };
	FCHECK(weft_co_writev(fd, wv, 2, 8, 0) == 10);
	FCHECK(weft_co_fsync(fd, true, 0) == 0);
	char r[16] = { 0 };
	struct iovec rv[2] = { { r, 5 }, { r + 5, 10 } };
	FCHECK(weft_co_readv(fd, rv, 2, 8, 0) == 10);
	FCHECK(strcmp(r, "fiber file") == 0, "read back '%s'", r);
	struct statx st;
	FCHECK(weft_co_statx(dfd, name, 0, STATX_SIZE, &st, 0) == 0);
	FCHECK(st.stx_size == 18, "size %llu", (unsigned long long)st.stx_size);
	FCHECK(weft_co_statx(dfd, "nope", 0, STATX_SIZE, &st, 0) == -ENOENT);
	FCHECK(weft_co_openat(dfd, NULL, O_RDONLY, 0, 0) == -EINVAL);
	FCHECK(weft_co_close(fd) == 0);
	FCHECK(weft_co_fsync(fd, false, 0) == -EBADF);
	return (void *)1;
}

WT_RT_TEST(io_file, fiber_calls)
{
	weft_runtime *rt = wt_rt_new(cfg);
	char dir[32];
	int dfd = tmp_dir(dir);
	cr_expect_eq(wt_fiber_run(rt, file_fiber, &dfd), (void *)1);
	/* Off a fiber: -EPERM. */
	struct statx st;
	cr_expect_eq(weft_co_openat(dfd, "f", O_RDONLY, 0, 0), -EPERM);
	cr_expect_eq(weft_co_statx(dfd, "f", 0, 0, &st, 0), -EPERM);
	cr_expect_eq(weft_co_fsync(0, false, 0), -EPERM);
	cr_expect_eq(weft_co_readv(0, NULL, 0, 0, 0), -EPERM);
	cr_expect_eq(weft_co_writev(0, NULL, 0, 0, 0), -EPERM);
	wt_rt_free(rt);
	tmp_dir_rm(dfd, dir);
}
