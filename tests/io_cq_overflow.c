/* SPDX-License-Identifier: MIT */
/*
 * CQ overflow loses no completion: a runtime whose rings have 8 SQ and 8
 * CQ entries runs 10,000 reads at once, and every one completes exactly
 * once with its own data, in every ring mode (DEFER_TASKRUN, COOP_TASKRUN,
 * plain) on 1 and 2 workers.
 *
 *  - pipes: 10,000 reads wait on 100 pipes (100 each) until every one is
 *    submitted, then the test writes 100 records into each pipe: 10,000
 *    completions arrive together into 8 CQ slots. Each record is read by
 *    exactly one read.
 *  - file: 10,000 reads of a regular file complete as they are submitted
 *    (the page cache), 8 SQEs per submit, into the same 8 slots.
 *
 * The kernel keeps what does not fit in its overflow list; weft must
 * flush it back (docs/io.md, CQ size and overflow) or the reads hang.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "io_helpers.h"

#define MS WT_MS
#define NOPS 10000u
#define NPIPES 100u
#define PER_PIPE (NOPS / NPIPES)

struct ovf_cfg {
	unsigned workers;
	unsigned flags;
};

static struct ovf_cfg ovf_cfgs[] = {
	{ 1, 0 },
	{ 2, 0 },
	{ 1, WEFT_RT_NO_DEFER_TASKRUN },
	{ 2, WEFT_RT_NO_DEFER_TASKRUN },
	{ 1, WEFT_RT_NO_COOP_TASKRUN },
	{ 2, WEFT_RT_NO_COOP_TASKRUN },
};

#define OVF_TEST(name)                                                     \
	ParameterizedTestParameters(io_cq_overflow, name)                  \
	{                                                                  \
		return cr_make_param_array(struct ovf_cfg, ovf_cfgs,       \
					   sizeof(ovf_cfgs) /              \
						   sizeof(ovf_cfgs[0]));   \
	}                                                                  \
	ParameterizedTest(const struct ovf_cfg *cfg, io_cq_overflow, name, \
			  .timeout = 60, .fini = wt_fini)

/* The read targets: in the test process, alive until every op is done. */
static uint64_t vals[NOPS];
static weft_join *joins[NOPS];

/*
 * The CQ really has 8 entries: the kernel's view of each io_uring fd of
 * this process (/proc/self/fdinfo: CqMask). Returns how many rings it saw.
 */
static unsigned check_cq_masks(unsigned want_mask)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned rings = 0;
	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		char path[300], target[64], line[128];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (!strstr(target, "io_uring"))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			unsigned mask;
			if (sscanf(line, "CqMask: %x", &mask) == 1) {
				cr_expect_eq(mask, want_mask,
					     "ring fd %s: CqMask %u",
					     e->d_name, mask);
				rings++;
			}
		}
		fclose(f);
	}
	closedir(d);
	return rings;
}

static weft_runtime *tiny_rt(const struct ovf_cfg *c)
{
	weft_runtime_config rc;
	weft_runtime *rt = NULL;
	(void)wt_cfgs; /* helpers.h's set; this test runs the ring modes */
	weft_runtime_config_init(&rc);
	rc.workers = c->workers;
	rc.flags = c->flags;
	rc.ring_entries = 8;
	rc.cq_entries = 8;
	rc.log = wt_log_sink;
	int err = weft_runtime_new(&rc, &rt);
	cr_assert_eq(err, 0, "weft_runtime_new: %s", weft_strerror(err));
	cr_log_info("workers %u, flags %#x, ring mode %u", c->workers,
		    c->flags, wt_metrics(rt).ring_mode);
	unsigned rings = check_cq_masks(7);
	if (rings) /* fdinfo without CqMask: an old kernel, no check */
		cr_expect_eq(rings, c->workers, "io_uring fds: %u", rings);
	return rt;
}

static void spawn_read(weft_runtime *rt, unsigned i, int fd, off_t off)
{
	weft_io io = WEFT_IO_INIT;
	vals[i] = UINT64_MAX;
	cr_assert_eq(weft_io_prep_read(&io, fd, &vals[i], sizeof(vals[i]),
				       off), 0);
	joins[i] = wt_op_spawn(rt, &io, NULL);
}

/* Wait (10 s at most) until @n more ops than @base were submitted. */
static void wait_submitted(weft_runtime *rt, uint64_t base, unsigned n)
{
	uint64_t deadline = wt_mono_ns() + 10000 * MS;
	uint64_t got;
	while ((got = wt_metrics(rt).ops_submitted - base) < n) {
		cr_assert_lt(wt_mono_ns(), deadline,
			     "only %llu of %u reads submitted",
			     (unsigned long long)got, n);
		wt_sleep_ms(2);
	}
}

/* Join every read (20 s at most each: a lost CQE hangs one), check that
 * each got 8 bytes, and that the op counters balance. */
static void join_all(weft_runtime *rt)
{
	for (unsigned i = 0; i < NOPS; i++) {
		int st = 1;
		int64_t res = INT64_MIN;
		cr_assert(wt_join_wait_ms(joins[i], &st, &res, 20000),
			  "read %u never completed (a lost CQE)", i);
		cr_assert_eq(st, 0);
		cr_assert_eq(res, 8, "read %u: %lld", i, (long long)res);
		weft_join_drop(joins[i]);
	}
	weft_runtime_metrics m = wt_metrics(rt);
	cr_expect_eq(m.ops_completed, m.ops_submitted,
		     "%llu submitted, %llu completed: an op completed twice "
		     "or not at all",
		     (unsigned long long)m.ops_submitted,
		     (unsigned long long)m.ops_completed);
}

OVF_TEST(pipes_all_at_once)
{
	weft_runtime *rt = tiny_rt(cfg);
	int p[NPIPES][2];
	static unsigned seen[NOPS];
	uint64_t base = wt_metrics(rt).ops_submitted;

	for (unsigned k = 0; k < NPIPES; k++)
		wt_pipe(p[k]);
	for (unsigned i = 0; i < NOPS; i++)
		spawn_read(rt, i, p[i % NPIPES][0], -1);
	/* All 10,000 in flight before any can complete. */
	wait_submitted(rt, base, NOPS);
	for (unsigned k = 0; k < NPIPES; k++) {
		uint64_t rec[PER_PIPE];
		for (unsigned j = 0; j < PER_PIPE; j++)
			rec[j] = (uint64_t)k * PER_PIPE + j;
		/* One write, below PIPE_BUF: atomic, and a read of 8 bytes
		 * takes exactly one record. */
		cr_assert_eq(write(p[k][1], rec, sizeof(rec)),
			     (ssize_t)sizeof(rec));
	}
	join_all(rt);
	memset(seen, 0, sizeof(seen));
	for (unsigned i = 0; i < NOPS; i++) {
		uint64_t v = vals[i];
		cr_assert_lt(v, NOPS, "read %u got %#llx", i,
			     (unsigned long long)v);
		/* Read from its own pipe. */
		cr_assert_eq(v / PER_PIPE, i % NPIPES, "read %u got %llu", i,
			     (unsigned long long)v);
		seen[v]++;
	}
	for (unsigned v = 0; v < NOPS; v++)
		cr_assert_eq(seen[v], 1, "record %u read %u times", v, seen[v]);
	wt_rt_free(rt);
	for (unsigned k = 0; k < NPIPES; k++) {
		close(p[k][0]);
		close(p[k][1]);
	}
}

OVF_TEST(file_reads_complete_at_submit)
{
	weft_runtime *rt = tiny_rt(cfg);
	char path[] = "/tmp/weft-cq-ovf-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	cr_assert_geq(fd, 0, "mkostemp: %s", strerror(errno));
	unlink(path);
	static uint64_t rec[NOPS];
	for (unsigned i = 0; i < NOPS; i++)
		rec[i] = 0x5eed000000000000ull | i;
	cr_assert_eq(pwrite(fd, rec, sizeof(rec), 0), (ssize_t)sizeof(rec));

	for (unsigned i = 0; i < NOPS; i++)
		spawn_read(rt, i, fd, (off_t)i * 8);
	join_all(rt);
	for (unsigned i = 0; i < NOPS; i++)
		cr_assert_eq(vals[i], rec[i], "read %u got %#llx", i,
			     (unsigned long long)vals[i]);
	wt_rt_free(rt);
	close(fd);
}
