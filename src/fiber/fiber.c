/* SPDX-License-Identifier: MIT */
/*
 * Fibers (weft/fiber.h): a task whose future state is a struct fiber and
 * whose poll switches to the fiber's stack.
 *
 *   poll (worker stack)              fiber (its own stack)
 *   resume(): jump ------------->    runs fn ... weft_await(fut):
 *                                      fut.poll(cx) == PENDING
 *   <-------------- jump            suspend()
 *   return PENDING
 *   ... the waker fires; any worker polls the task again ...
 *   resume(): jump ------------->    (returns from suspend)
 *                                      fut.poll(cx) == READY, go on
 *   <-------------- jump            fn returned: done
 *   return READY
 *
 * The worker side never migrates (resume returns on the thread that
 * called it); the fiber side may, between a suspend and the next resume.
 * So fiber-side code reads no thread-local across a suspend: the fiber is
 * reached through the local `f`, which lives on the fiber's stack, and
 * `current` is only read by weft_await's entry, through a noinline getter.
 *
 * The stack is taken when the fiber first runs, not in weft_go(): a fiber
 * that starts N others and joins them would otherwise hold N stacks at
 * once, more than the per-thread pool keeps, and pay an mmap, an
 * mprotect, a page fault and a munmap for each (measured in
 * docs/fibers.md: 20 us a spawn, 93% of it in the kernel). Taken at
 * the first run, the children run one after another on the same pooled
 * stack. When none can be mapped (ENOMEM, or vm.max_map_count), the first
 * poll yields and tries again at its next turn: the fiber still runs
 * once a stack is freed, as the abort contract below needs.
 *
 * Cancellation: the task's drop (abort, shutdown) sets `cancelled` and
 * resumes the fiber once more; the pending weft_await drops its future
 * and returns -ECANCELED, later ones return it at once, and the fiber
 * runs to its end on that one resume.
 *
 * Sanitizers: ASan is told of each switch (__sanitizer_start_switch_fiber
 * and finish), TSan of each fiber (__tsan_create_fiber and
 * __tsan_switch_to_fiber), so both keep working on fiber stacks.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <weft/fiber.h>
#include <weft/future.h>
#include <weft/time.h>

#include "fiber/fiber.h"
#include "fiber/stack.h"
#include "internal.h"
#include "io/op.h"
#include "task/hooks.h"

#if defined(__SANITIZE_ADDRESS__) || defined(WEFT_SANITIZE_ADDRESS)
#define FIBER_ASAN 1
#include <sanitizer/common_interface_defs.h>
#else
#define FIBER_ASAN 0
#endif
#if WEFT__TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* switch_*.S */
void *weft__fiber_jump(void **save_sp, void *load_sp, void *arg);
void weft__fiber_trampoline(void);
void weft__fiber_main(void *arg) __attribute__((noreturn));

struct fiber {
	weft_fiber_fn fn;
	void *arg;
	void *result;
	struct weft__stack *stack; /* NULL until the first run */
	size_t stack_size;
	void *sp;        /* the fiber's saved stack pointer */
	void *worker_sp; /* the poll's, while the fiber runs */
	weft_cx *cx;     /* the poll's context, while the fiber runs */
	bool done, cancelled;
#if FIBER_ASAN
	void *asan_fake;         /* the fiber's fake stack, switched out */
	const void *worker_lo;   /* the worker stack, for the way back */
	size_t worker_size;
#endif
#if WEFT__TSAN
	void *tsan_fiber, *tsan_worker;
#endif
};

static WEFT__TLS struct fiber *current;

/*
 * The fiber running on this thread. noinline: a fiber that migrated must
 * not see a thread-local address computed on its old thread.
 */
static __attribute__((noinline)) struct fiber *fiber_current(void)
{
	struct fiber *f = current;

	__asm__ volatile("" ::: "memory");
	return f;
}

bool weft__fiber_on(void)
{
	return fiber_current() != NULL;
}

const struct weft__stack *weft__fiber_stack(void)
{
	struct fiber *f = current; /* signal handler: same thread */

	return f ? f->stack : NULL;
}

WEFT_API bool weft_in_fiber(void)
{
	return weft__fiber_on();
}

/* Lay out a new stack so that the first jump "returns" into the
 * trampoline with its @arg. */
static void *prepare(struct weft__stack *s)
{
	uintptr_t top = (uintptr_t)weft__stack_hi(s);
#if defined(__x86_64__)
	/* [0] MXCSR | x87 CW, [1..6] r15 r14 r13 r12 rbx rbp, [7] return
	 * address, [8..9] zero: after the ret rsp is 16-aligned, as the
	 * trampoline's call needs. */
	uint64_t *sp = (uint64_t *)(top - 80);

	memset(sp, 0, 80);
	sp[0] = 0x1F80u | ((uint64_t)0x037F << 32);
	sp[7] = (uint64_t)(uintptr_t)weft__fiber_trampoline;
	return sp;
#elif defined(__aarch64__)
	/* x19-x28, x29 = 0, x30 = trampoline, d8-d15, FPCR = 0. */
	uint64_t *sp = (uint64_t *)(top - 176);

	memset(sp, 0, 176);
	sp[11] = (uint64_t)(uintptr_t)weft__fiber_trampoline;
	return sp;
#else
#error "weft fibers: no context switch for this architecture"
#endif
}

/* Worker side: run @f until it suspends or finishes. */
static void resume(struct fiber *f, weft_cx *cx)
{
	struct fiber *outer = current;

	f->cx = cx;
	current = f;
#if FIBER_ASAN
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, weft__stack_lo(f->stack),
				       (size_t)(weft__stack_hi(f->stack) -
						weft__stack_lo(f->stack)));
#endif
#if WEFT__TSAN
	f->tsan_worker = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(f->tsan_fiber, 0);
#endif
	weft__fiber_jump(&f->worker_sp, f->sp, f);
#if FIBER_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
	current = outer;
	f->cx = NULL;
}

/* Fiber side: back to the poll; returns when resumed (maybe on another
 * thread). @exiting: for good (the stack is about to be released). */
static void suspend(struct fiber *f, bool exiting)
{
#if FIBER_ASAN
	__sanitizer_start_switch_fiber(exiting ? NULL : &f->asan_fake,
				       f->worker_lo, f->worker_size);
#endif
#if WEFT__TSAN
	__tsan_switch_to_fiber(f->tsan_worker, 0);
#endif
	(void)exiting;
	weft__fiber_jump(&f->sp, f->worker_sp, NULL);
#if FIBER_ASAN
	__sanitizer_finish_switch_fiber(f->asan_fake, &f->worker_lo,
					&f->worker_size);
#endif
}

void weft__fiber_main(void *arg)
{
	struct fiber *f = arg;

#if FIBER_ASAN
	__sanitizer_finish_switch_fiber(NULL, &f->worker_lo, &f->worker_size);
#endif
	f->result = f->fn(f->arg);
	f->done = true;
	suspend(f, true);
	__builtin_unreachable();
}

/* Map @f's stack at its first run (the pool, usually); false on ENOMEM. */
static bool fiber_start(struct fiber *f)
{
	if (f->stack)
		return true;
	if (!(f->stack = weft__stack_get(f->stack_size)))
		return false;
	f->sp = prepare(f->stack);
	return true;
}

/* --------------------------------------------------------- the task */

static weft_poll fiber_poll(void *self, weft_cx *cx, void *out)
{
	struct fiber *f = self;

	if (!fiber_start(f)) {
		/* No stack now: try again at the next turn, after others
		 * ran (and maybe freed theirs). */
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	weft__fiber_guard_thread();
	resume(f, cx);
	if (!f->done)
		return WEFT_PENDING;
	memcpy(out, &f->result, sizeof(f->result));
	return WEFT_READY;
}

static void fiber_drop(void *self)
{
	struct fiber *f = self;

	/* Aborted: let it unwind through its own code (a fiber that never
	 * ran, too, to release its argument; only when not even a stack can
	 * be had now does @fn not run at all). */
	if (!f->done && fiber_start(f)) {
		f->cancelled = true;
		weft__fiber_guard_thread();
		resume(f, NULL);
		weft__assert(f->done); /* every call fails at once now */
	}
#if WEFT__TSAN
	__tsan_destroy_fiber(f->tsan_fiber);
#endif
	/* The stack outlives the drop: see fiber_dealloc. */
}

/*
 * The task's memory is about to be freed (task/hooks.h): every op that
 * could still use a buffer on the fiber's stack has completed, so the
 * stack can go back to the pool. Freeing it at the drop let a cancelled
 * send read, or a recv write, another fiber's stack
 * (tests/stress/io_abort_stress.c, WEFT_STRESS_FIBER_STACK=1).
 */
static const weft_future_desc fiber_desc;

static void fiber_dealloc(const weft_future_desc *desc, void *future)
{
	struct fiber *f = future;

	if (desc == &fiber_desc && f->stack)
		weft__stack_put(f->stack);
}

static const weft_future_desc fiber_desc = {
	.poll = fiber_poll,
	.drop = fiber_drop,
	.size = sizeof(struct fiber),
	.output_size = sizeof(void *),
};

WEFT_API void weft_fiber_opts_init(weft_fiber_opts *opts)
{
	if (!opts)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
}

WEFT_API int weft_go(weft_runtime *rt, weft_fiber_fn fn, void *arg,
		     const weft_fiber_opts *opts, weft_join **join)
{
	size_t stack = WEFT_FIBER_STACK;
	weft_spawn_opts so;
	struct fiber f;
	int err;

	if (!fn || (opts && opts->size < sizeof(*opts)))
		return -EINVAL;
	if (opts && opts->stack_size) {
		if (opts->stack_size < WEFT_FIBER_STACK_MIN ||
		    opts->stack_size > WEFT_FIBER_STACK_MAX)
			return -EINVAL;
		stack = opts->stack_size;
	}
	weft_spawn_opts_init(&so);
	so.name = opts ? opts->name : NULL;
	memset(&f, 0, sizeof(f));
	f.fn = fn;
	f.arg = arg;
	f.stack_size = stack;
	weft__fiber_guard_install();
	if (!atomic_load_explicit(&weft__task_dealloc_hook,
				  memory_order_relaxed))
		atomic_store_explicit(&weft__task_dealloc_hook, fiber_dealloc,
				      memory_order_release);
#if WEFT__TSAN
	f.tsan_fiber = __tsan_create_fiber(0);
#endif
	err = weft_spawn_with(rt, &so, &fiber_desc, &f, join);
	if (err) {
#if WEFT__TSAN
		__tsan_destroy_fiber(f.tsan_fiber);
#endif
	}
	return err;
}

/* -------------------------------------------------------- awaiting */

WEFT_API int weft_await(const weft_future_desc *desc, void *state,
			void *out)
{
	struct fiber *f = fiber_current();

	if (!desc || !desc->poll || (!state && desc->size) ||
	    (!out && desc->output_size))
		return -EINVAL;
	if (!f)
		return -EPERM;
	/*
	 * An op the future drops (a select's losing arm, a timeout's inner
	 * future, the whole future when cancelled) may use a buffer on this
	 * stack, which is reused the moment this returns: such drops wait
	 * for the kernel to let go (io/op.h). Not across the suspend: other
	 * tasks run on this thread then.
	 */
	int ret = -ECANCELED;

	while (!f->cancelled) {
		weft__io_sync_drops(true);
		weft_poll p = desc->poll(state, f->cx, out);
		weft__io_sync_drops(false);
		if (p == WEFT_READY) {
			ret = 0;
			break;
		}
		suspend(f, false);
	}
	if (desc->drop) { /* cancels an op in flight */
		weft__io_sync_drops(true);
		desc->drop(state);
		weft__io_sync_drops(false);
	}
	return ret;
}

WEFT_API int weft_await_until(const weft_future_desc *desc, void *state,
			      void *out, uint64_t deadline_ns)
{
	weft_future inner;
	weft_timeout t;
	int err, res;

	if (!deadline_ns)
		return weft_await(desc, state, out);
	if ((err = weft_future_init(&inner, desc, state, out)))
		return err;
	if (!weft__fiber_on())
		return -EPERM;
	if ((err = weft_timeout_init_until(&t, &inner, deadline_ns)))
		return err;
	if ((err = weft_await(&weft_timeout_desc, &t, &res)))
		return err;
	return res;
}

bool weft__fiber_cancelled(void)
{
	struct fiber *f = fiber_current();

	return f && f->cancelled;
}
