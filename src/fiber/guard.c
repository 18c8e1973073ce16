/* SPDX-License-Identifier: MIT */
/*
 * Stack overflow reports. A fiber that runs off the bottom of its stack
 * touches the PROT_NONE guard page below it; the kernel raises SIGSEGV on
 * that thread. The handler runs on an alternate signal stack (the fiber's
 * own is exhausted), writes one line naming the fiber to stderr with
 * write(2) (async-signal-safe, no stdio), and passes the signal on: to the
 * handler that was installed before weft's (ASan's, a crash reporter's),
 * or to the default action, which kills the process with SIGSEGV. A
 * SIGSEGV anywhere else is passed on untouched.
 *
 * The one place the library writes to stderr: the process is dying, and
 * an overflow reported as a bare SIGSEGV in unrelated code is what this
 * exists to prevent.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <weft/task.h>

#include "fiber/fiber.h"
#include "fiber/stack.h"
#include "internal.h"

#define ALT_STACK (64 * 1024)

static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static WEFT__TLS bool thread_ready;
static pthread_key_t alt_key;

/* Thread exit: take the alternate stack down and unmap it. */
static void alt_free(void *sp)
{
	stack_t ss = { .ss_flags = SS_DISABLE };

	(void)sigaltstack(&ss, NULL);
	munmap(sp, ALT_STACK);
}

static void put(const char *s)
{
	ssize_t r = write(STDERR_FILENO, s, strlen(s));

	(void)r;
}

static void put_num(size_t v)
{
	char buf[24];
	int i = (int)sizeof(buf) - 1;

	buf[i] = '\0';
	do
		buf[--i] = (char)('0' + v % 10);
	while ((v /= 10) && i > 0);
	put(buf + i);
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	const struct weft__stack *s = weft__fiber_stack();
	char *addr = si->si_addr;

	if (s && addr >= s->map - 16 * (long)s->guard &&
	    addr < weft__stack_lo(s)) {
		const char *name = weft_task_name();

		put("weft: fiber '");
		put(name ? name : "fiber");
		put("' overflowed its stack of ");
		put_num((size_t)(weft__stack_hi(s) - weft__stack_lo(s)));
		put(" bytes (raise weft_fiber_opts.stack_size)\n");
	}
	/* Pass it on. */
	if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
		previous.sa_sigaction(sig, si, uc);
		return;
	}
	if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
		previous.sa_handler(sig);
		return;
	}
	/* Default action: returning re-executes the fault, which now kills
	 * the process with SIGSEGV (a core dump where enabled). */
	signal(SIGSEGV, SIG_DFL);
}

static void install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGSEGV, &sa, &previous);
	(void)pthread_key_create(&alt_key, alt_free);
}

void weft__fiber_guard_install(void)
{
	(void)pthread_once(&install_once, install);
}

void weft__fiber_guard_thread(void)
{
	stack_t ss, old;

	if (thread_ready)
		return;
	thread_ready = true;
	/* A thread that already has one (ASan gives each thread its own)
	 * keeps it. Ours goes when the thread exits (alt_free). */
	if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
		return;
	ss.ss_sp = mmap(NULL, ALT_STACK, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ss.ss_sp == MAP_FAILED)
		return;
	ss.ss_size = ALT_STACK;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) != 0)
		munmap(ss.ss_sp, ALT_STACK);
	else if (pthread_setspecific(alt_key, ss.ss_sp) != 0)
		alt_free(ss.ss_sp);
}
