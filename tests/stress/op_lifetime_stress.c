/* SPDX-License-Identifier: MIT */
/*
 * The op-record lifetime rule, at its sharpest: a task blocked in recv
 * (buffer inside the task's state) is aborted and its join handle dropped
 * at once, so the in-flight op holds the task's last reference, while the
 * peer writes data that races the cancel. If the op did not keep the task
 * alive, the kernel would write into freed memory. ASan cannot see kernel
 * writes, so under ASan every recv/send CQE checks its buffer is still live
 * (src/io/op.c); this program makes that check meet the race often.
 *
 * Also: rounds that end with runtime shutdown while tasks are blocked, both
 * ring modes, and every future dropped exactly once.
 *
 * Usage: op_lifetime_stress [seed]; WEFT_STRESS_SCALE / _SECONDS: stress.h.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <weft.h>

#include "stress.h"

#define PAIRS 32
#define BUF 4096

struct recv_task {
	int fd;
	int step;
	atomic_int *polled;
	atomic_int *drops;
	weft_io io;
	unsigned char buf[BUF];
};

static weft_poll recv_poll(void *self, weft_cx *cx, void *out)
{
	struct recv_task *t = self;
	int64_t r;

	for (;;) {
		if (t->step == 0) {
			weft_io_prep_recv(&t->io, t->fd, t->buf, sizeof(t->buf), 0);
			t->step = 1;
		}
		if (weft_io_poll(&t->io, cx, &r) == WEFT_PENDING) {
			atomic_store(t->polled, 1);
			return WEFT_PENDING;
		}
		if (r <= 0) {
			*(int64_t *)out = r;
			return WEFT_READY;
		}
		t->step = 0;
	}
}

static void recv_drop(void *self)
{
	struct recv_task *t = self;

	weft_io_drop(&t->io);
	atomic_fetch_add(t->drops, 1);
}

static const weft_future_desc recv_desc = {
	.poll = recv_poll,
	.drop = recv_drop,
	.size = sizeof(struct recv_task),
	.output_size = sizeof(int64_t),
};

static void burst(int fd)
{
	static unsigned char data[BUF];

	/* Non-blocking: a full socket buffer just ends the burst. */
	for (int i = 0; i < 4; i++)
		if (send(fd, data, sizeof(data), MSG_DONTWAIT) <= 0)
			break;
}

int main(int argc, char **argv)
{
	struct stress_rng rng;
	uint64_t rounds = 0, max_rounds;

	stress_init("op_lifetime_stress", argc, argv);
	stress_rng_init(&rng, stress_seed);
	max_rounds = stress_iters(400);

	while (rounds < max_rounds && stress_time_left()) {
		weft_runtime_config cfg;
		weft_runtime *rt;
		weft_join *join[PAIRS];
		atomic_int polled[PAIRS];
		atomic_int drops = 0;
		int sv[PAIRS][2];
		bool shutdown_round = stress_chance(&rng, 25);

		stress_set_phase("setup");
		weft_runtime_config_init(&cfg);
		cfg.workers = 1 + (unsigned)stress_below(&rng, 3);
		if (stress_chance(&rng, 30))
			cfg.flags |= WEFT_RT_NO_DEFER_TASKRUN;
		int err = weft_runtime_new(&cfg, &rt);
		if (err == -EPERM || err == -ENOSYS)
			stress_skip("io_uring unavailable: %s",
				    weft_strerror(err));
		STRESS_CHECK(err == 0, "weft_runtime_new: %s",
			     weft_strerror(err));

		for (int i = 0; i < PAIRS; i++) {
			STRESS_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
						0, sv[i]) == 0, "socketpair");
			struct recv_task init = { .fd = sv[i][0],
						  .polled = &polled[i],
						  .drops = &drops };
			atomic_init(&polled[i], 0);
			STRESS_CHECK(weft_spawn(rt, &recv_desc, &init,
						&join[i]) == 0, "spawn");
		}

		stress_set_phase("wait for recvs in flight");
		/* A task never polled hangs here; the watchdog reports it
		 * with this phase. */
		for (int i = 0; i < PAIRS; i++)
			while (!atomic_load(&polled[i]))
				sched_yield();

		stress_set_phase("abort, detach, write");
		for (int i = 0; i < PAIRS; i++) {
			if (shutdown_round) {
				/* Detach; shutdown cancels it below. */
				weft_join_drop(join[i]);
				burst(sv[i][1]);
				continue;
			}
			if (stress_chance(&rng, 50))
				burst(sv[i][1]);
			weft_task_abort(join[i]);
			weft_join_drop(join[i]);
			burst(sv[i][1]);
		}

		stress_set_phase("free");
		weft_runtime_free(rt);
		STRESS_CHECK(atomic_load(&drops) == PAIRS,
			     "%d futures dropped, want %d", atomic_load(&drops),
			     PAIRS);
		for (int i = 0; i < PAIRS; i++) {
			close(sv[i][0]);
			close(sv[i][1]);
		}
		rounds++;
		stress_progress();
	}
	return stress_finish("%" PRIu64 " rounds of %d aborted recvs", rounds,
			     PAIRS);
}
