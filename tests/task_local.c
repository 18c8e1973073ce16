/* SPDX-License-Identifier: MIT */
/*
 * Task names (weft_spawn_with, weft_task_name) and task-local values
 * (weft_task_local_set/get): names are copied and seen only by their own
 * task; values are per task across yields and steals, isolated between
 * tasks, destroyed exactly once (on completion, on abort, on replacement),
 * visible to the future's drop, and unreachable off a task.
 */
#include "helpers.h"

/* --- destructor bookkeeping ------------------------------------------- */

static atomic_int destroyed;     /* destructor calls */
static atomic_int destroy_sum;   /* sum of the values destroyed */
static atomic_int bad_in_dtor;   /* get/set misbehaving inside a destructor */
/* Destructors are expected at the end of tasks (no current task), not
 * from a replacing set inside one. */
static atomic_bool end_of_task;

static const weft_task_local_key key_a;
static const weft_task_local_key key_b;

static void int_destroy(void *v)
{
	atomic_fetch_add(&destroyed, 1);
	atomic_fetch_add(&destroy_sum, *(int *)v);
	/* The value being destroyed is never visible any more. */
	if (weft_task_local_get(&key_a) == v || weft_task_local_get(&key_b) == v)
		atomic_fetch_add(&bad_in_dtor, 1);
	/* At the end of a task there is no current task. */
	if (atomic_load(&end_of_task) &&
	    (weft_task_local_get(&key_a) || weft_task_local_get(&key_b) ||
	     weft_task_local_set(&key_a, NULL) != -EPERM))
		atomic_fetch_add(&bad_in_dtor, 1);
	free(v);
}

static const weft_task_local_key key_a = WEFT_TASK_LOCAL_KEY_INIT(int_destroy);
static const weft_task_local_key key_b = WEFT_TASK_LOCAL_KEY_INIT(int_destroy);
static const weft_task_local_key key_plain = WEFT_TASK_LOCAL_KEY_INIT(NULL);

static int *boxed(int v)
{
	int *p = malloc(sizeof(*p));

	WT_CHECK(p, "malloc");
	*p = v;
	return p;
}

static void reset_counts(bool at_end)
{
	atomic_store(&end_of_task, at_end);
	atomic_store(&destroyed, 0);
	atomic_store(&destroy_sum, 0);
	atomic_store(&bad_in_dtor, 0);
}

/* --- a task that keeps values across yields ---------------------------- */

/*
 * Sets key_a to a box of @id and key_b to a box of -@id, then yields
 * @yields times, checking both at every poll (and which worker it is on);
 * output (int64_t): 1 if every check held, 0 if not. With @forever it
 * stays PENDING after the yields (abort it).
 */
struct keeper {
	int id;
	unsigned yields;
	bool forever;
	atomic_int *moved;      /* tasks seen on more than one worker */
	atomic_int *drop_saw;   /* drops that still saw their own value */
	/* private */
	unsigned done;
	bool ok, set, has_moved;
	int first_worker;
	weft_yield y;
};

static weft_poll keeper_poll(void *self, weft_cx *cx, void *out)
{
	struct keeper *k = self;

	if (!k->set) {
		k->ok = weft_task_local_get(&key_a) == NULL &&
			weft_task_local_set(&key_a, boxed(k->id)) == 0 &&
			weft_task_local_set(&key_b, boxed(-k->id)) == 0;
		k->set = true;
		k->first_worker = weft_worker_index();
	}
	int *a = weft_task_local_get(&key_a), *b = weft_task_local_get(&key_b);
	if (!a || !b || *a != k->id || *b != -k->id)
		k->ok = false;
	if (weft_worker_index() != k->first_worker && !k->has_moved) {
		k->has_moved = true;
		if (k->moved)
			atomic_fetch_add(k->moved, 1);
	}
	while (k->done < k->yields) {
		if (weft_yield_poll(&k->y, cx) == WEFT_PENDING)
			return WEFT_PENDING;
		k->done++;
		k->y = (weft_yield)WEFT_YIELD_INIT;
	}
	if (k->forever)
		return WEFT_PENDING;
	*(int64_t *)out = k->ok;
	return WEFT_READY;
}

static void keeper_drop(void *self)
{
	struct keeper *k = self;
	int *a = weft_task_local_get(&key_a);

	if (k->drop_saw && a && *a == k->id)
		atomic_fetch_add(k->drop_saw, 1);
}

static const weft_future_desc keeper_desc = {
	.poll = keeper_poll,
	.drop = keeper_drop,
	.size = sizeof(struct keeper),
	.output_size = sizeof(int64_t),
};

/* --- locals ------------------------------------------------------------ */

/*
 * Many tasks on two workers, each with its own values, yielding (and so
 * stolen now and then): every task sees only its own values at every
 * poll; each value is destroyed exactly once, when its task completes,
 * and the future's drop still sees them.
 */
WT_TEST_T(task_local, isolated_per_task_across_steals, 30)
{
	struct wt_cfg c = { 2, 0 };
	weft_runtime *rt = wt_rt_new(&c);
	enum { N = 400 };
	weft_join *j[N];
	atomic_int moved = 0, drop_saw = 0;
	int sum = 0;

	reset_counts(true);
	for (int i = 0; i < N; i++) {
		struct keeper k = { .id = i + 1, .yields = 1 + (unsigned)i % 9,
				    .moved = &moved, .drop_saw = &drop_saw,
				    .y = WEFT_YIELD_INIT };
		wt_spawn(rt, &keeper_desc, &k, &j[i]);
		sum += i + 1;
	}
	for (int i = 0; i < N; i++) {
		int st = 1;
		int64_t ok = -1;
		wt_join_wait(j[i], &st, &ok);
		cr_expect_eq(st, 0);
		cr_expect_eq(ok, 1, "task %d saw wrong values", i + 1);
		weft_join_drop(j[i]);
	}
	wt_rt_free(rt);
	/* Two values per task; the -id ones cancel the +id ones. */
	cr_expect_eq(atomic_load(&destroyed), 2 * N);
	cr_expect_eq(atomic_load(&destroy_sum), 0);
	cr_expect_eq(atomic_load(&drop_saw), N);
	cr_expect_eq(atomic_load(&bad_in_dtor), 0);
	cr_log_info("%d of %d tasks ran on two workers", atomic_load(&moved),
		    N);
	(void)sum;
}

/* Aborted tasks (and tasks cancelled by shutdown) destroy their values
 * exactly once too. */
WT_RT_TEST(task_local, destroyed_once_on_abort)
{
	weft_runtime *rt = wt_rt_new(cfg);
	enum { N = 50 };
	weft_join *j[N];
	atomic_int drop_saw = 0;

	reset_counts(true);
	for (int i = 0; i < N; i++) {
		struct keeper k = { .id = i + 1, .yields = 2, .forever = true,
				    .drop_saw = &drop_saw,
				    .y = WEFT_YIELD_INIT };
		wt_spawn(rt, &keeper_desc, &k, &j[i]);
	}
	/* Let them set their values and park. */
	uint64_t t0 = wt_mono_ns();
	weft_runtime_metrics m = { .size = sizeof(m) };
	do {
		wt_sleep_ms(1);
		cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	} while (m.polls < 3 * N && wt_mono_ns() - t0 < 5000000000u);
	for (int i = 0; i < N / 2; i++)
		weft_task_abort(j[i]);
	for (int i = 0; i < N / 2; i++) {
		int st = 1;
		int64_t out;
		wt_join_wait(j[i], &st, &out);
		cr_expect_eq(st, -ECANCELED);
	}
	cr_expect_eq(atomic_load(&destroyed), 2 * (N / 2));
	/* The rest: cancelled by shutdown. */
	cr_expect_eq(weft_runtime_shutdown(rt), 0);
	for (int i = 0; i < N; i++)
		weft_join_drop(j[i]);
	weft_runtime_free(rt);
	wt_leak_check();
	cr_expect_eq(atomic_load(&destroyed), 2 * N);
	cr_expect_eq(atomic_load(&destroy_sum), 0);
	cr_expect_eq(atomic_load(&drop_saw), N);
	cr_expect_eq(atomic_load(&bad_in_dtor), 0);
}

/* Replacing, re-setting the same pointer, and removing. Output: a bit per
 * failed check (0: all held). */
static int64_t replace_fn(void *arg)
{
	int64_t bad = 0;
	int *v1 = boxed(10), *v2 = boxed(20);
	static int plain;

	(void)arg;
	bad |= (weft_task_local_set(&key_a, v1) != 0) << 0;
	bad |= (weft_task_local_set(&key_a, v2) != 0) << 1;
	bad |= (atomic_load(&destroyed) != 1 ||
		atomic_load(&destroy_sum) != 10) << 2;
	bad |= (weft_task_local_get(&key_a) != v2) << 3;
	bad |= (weft_task_local_set(&key_a, v2) != 0) << 4; /* same: kept */
	bad |= (atomic_load(&destroyed) != 1) << 5;
	bad |= (weft_task_local_set(&key_a, NULL) != 0) << 6;
	bad |= (atomic_load(&destroyed) != 2 ||
		atomic_load(&destroy_sum) != 30) << 7;
	bad |= (weft_task_local_get(&key_a) != NULL) << 8;
	/* No destructor: the value is the caller's to manage. */
	bad |= (weft_task_local_set(&key_plain, &plain) != 0) << 9;
	bad |= (weft_task_local_get(&key_plain) != &plain) << 10;
	bad |= (weft_task_local_get(&key_b) != NULL) << 11;
	bad |= (weft_task_local_set(NULL, v1) != -EINVAL) << 12;
	bad |= (weft_task_local_get(NULL) != NULL) << 13;
	/* Many keys: the table grows. */
	static weft_task_local_key many[40];
	for (int i = 0; i < 40; i++)
		bad |= (int64_t)(weft_task_local_set(&many[i], &many[i]) != 0)
		       << 14;
	for (int i = 0; i < 40; i++)
		bad |= (int64_t)(weft_task_local_get(&many[i]) != &many[i])
		       << 15;
	return bad;
}

WT_TEST(task_local, replace_and_remove)
{
	struct wt_cfg c = { 1, 0 };
	weft_runtime *rt = wt_rt_new(&c);

	reset_counts(false);
	cr_expect_eq(wt_run_on_worker(rt, replace_fn, NULL), 0);
	wt_rt_free(rt);
	cr_expect_eq(atomic_load(&destroyed), 2);
	cr_expect_eq(atomic_load(&bad_in_dtor), 0);
}

WT_TEST(task_local, off_a_task)
{
	int v = 1;

	cr_expect_eq(weft_task_local_set(&key_plain, &v), -EPERM);
	cr_expect_null(weft_task_local_get(&key_plain));
	cr_expect_eq(weft_task_local_set(NULL, &v), -EINVAL);
	cr_expect_null(weft_task_local_get(NULL));
	cr_expect_null(weft_task_name());
}

/* --- names ------------------------------------------------------------- */

/* READY with weft_task_name() copied to the output (empty: NULL). */
static weft_poll namer_poll(void *self, weft_cx *cx, void *out)
{
	const char *n = weft_task_name();

	(void)self;
	(void)cx;
	memset(out, 0, WEFT_TASK_NAME_MAX + 1);
	if (n)
		snprintf(out, WEFT_TASK_NAME_MAX + 1, "%s", n);
	return WEFT_READY;
}

static const weft_future_desc namer_desc = {
	.poll = namer_poll,
	.size = 0,
	.output_size = WEFT_TASK_NAME_MAX + 1,
};

static void expect_name(weft_join *j, const char *want)
{
	char got[WEFT_TASK_NAME_MAX + 1];
	int st = 1;

	wt_join_wait(j, &st, got);
	cr_expect_eq(st, 0);
	cr_expect_str_eq(got, want);
	weft_join_drop(j);
}

WT_RT_TEST(task_name, copied_and_seen_by_its_task)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_spawn_opts o;
	weft_join *j;

	weft_spawn_opts_init(&o);
	cr_expect_eq(o.size, sizeof(o));
	cr_expect_null(o.name);

	/* Copied: the caller's buffer is freed at once (ASan would see a
	 * use after free). */
	char *buf = strdup("conn-42");
	o.name = buf;
	cr_assert_eq(weft_spawn_with(rt, &o, &namer_desc, NULL, &j), 0);
	free(buf);
	expect_name(j, "conn-42");

	/* Unnamed, three ways. */
	cr_assert_eq(weft_spawn(rt, &namer_desc, NULL, &j), 0);
	expect_name(j, "");
	o.name = NULL;
	cr_assert_eq(weft_spawn_with(rt, &o, &namer_desc, NULL, &j), 0);
	expect_name(j, "");
	cr_assert_eq(weft_spawn_with(rt, NULL, &namer_desc, NULL, &j), 0);
	expect_name(j, "");

	/* The longest name; one byte more is refused. */
	char longest[WEFT_TASK_NAME_MAX + 1];
	memset(longest, 'n', sizeof(longest));
	longest[WEFT_TASK_NAME_MAX - 1] = '\0';
	o.name = longest;
	cr_assert_eq(weft_spawn_with(rt, &o, &namer_desc, NULL, &j), 0);
	expect_name(j, longest);
	longest[WEFT_TASK_NAME_MAX - 1] = 'n';
	longest[WEFT_TASK_NAME_MAX] = '\0';
	cr_expect_eq(weft_spawn_with(rt, &o, &namer_desc, NULL, &j),
		     -ENAMETOOLONG);

	/* An older, smaller options struct is refused, not misread. */
	o.name = "x";
	o.size = sizeof(size_t);
	cr_expect_eq(weft_spawn_with(rt, &o, &namer_desc, NULL, &j), -EINVAL);
	/* weft_spawn's own errors. */
	weft_spawn_opts_init(&o);
	o.name = "x";
	cr_expect_eq(weft_spawn_with(rt, &o, NULL, NULL, &j), -EINVAL);
	cr_expect_eq(weft_spawn_with(NULL, &o, &namer_desc, NULL, &j), -EINVAL);
	wt_rt_free(rt);
	cr_expect_null(weft_task_name());
}

/* Spawned from a task with rt NULL; and refused once shut down. */
static int64_t spawn_named_fn(void *arg)
{
	weft_spawn_opts o;
	weft_join **j = arg;

	weft_spawn_opts_init(&o);
	o.name = "child";
	return weft_spawn_with(NULL, &o, &namer_desc, NULL, j);
}

WT_RT_TEST(task_name, from_a_task_and_after_shutdown)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_spawn_opts o;
	weft_join *j = NULL;

	cr_expect_eq(wt_run_on_worker(rt, spawn_named_fn, &j), 0);
	expect_name(j, "child");
	cr_expect_eq(weft_runtime_shutdown(rt), 0);
	weft_spawn_opts_init(&o);
	o.name = "late";
	cr_expect_eq(weft_spawn_with(rt, &o, &namer_desc, NULL, &j),
		     -ESHUTDOWN);
	weft_runtime_free(rt);
	wt_leak_check();
}

/* The runtime's log names the task: a join handle dropped twice. */
static char logged[512];
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void log_capture(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level != WEFT_LOG_ERROR)
		return;
	pthread_mutex_lock(&log_mu);
	snprintf(logged, sizeof(logged), "%s", msg);
	pthread_mutex_unlock(&log_mu);
}

WT_TEST(task_name, in_log_messages)
{
	weft_runtime_config rc;
	weft_runtime *rt;
	weft_spawn_opts o;
	weft_join *j;
	struct wt_counters c = { 0 };
	struct wt_forever f = { &c };

	weft_runtime_config_init(&rc);
	rc.workers = 1;
	rc.log = log_capture;
	cr_assert_eq(weft_runtime_new(&rc, &rt), 0);
	weft_spawn_opts_init(&o);
	o.name = "stuck";
	cr_assert_eq(weft_spawn_with(rt, &o, &wt_forever_desc, &f, &j), 0);
	weft_join_drop(j);
	weft_join_drop(j); /* misuse: alive (never finishes), so logged */
	pthread_mutex_lock(&log_mu);
	cr_expect(strstr(logged, "(task \"stuck\")") != NULL, "log: %s",
		  logged);
	pthread_mutex_unlock(&log_mu);
	cr_expect_eq(weft_runtime_shutdown(rt), 0);
	weft_runtime_free(rt);
	cr_expect_eq(atomic_load(&c.drops), 1);
}
