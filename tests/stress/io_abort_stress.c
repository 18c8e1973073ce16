/* SPDX-License-Identifier: MIT */
/*
 * Aborting tasks with io_uring ops in flight, of every kind (issue 9).
 *
 * Each round, from its own seed: a runtime of 2 or 4 workers (LIFO slot
 * on or off, DEFER_TASKRUN or not) runs a few dozen tasks, each blocked in
 * one op (a kind: recv, accept, connect, send, file read, UDP recv_from,
 * sleep, a fiber's recv or send). Buffers live in the task's state (or
 * the fiber's stack), so a buffer freed while the kernel still writes into
 * it is caught under ASan (src/io/op.c checks each buffer at its CQE).
 * Tasks are spawned from the main thread (injector) and from a task on a
 * worker (LIFO slot, stolen by the others), some yield first, and they are
 * aborted:
 *   - at once by their spawner, mostly before their first poll;
 *   - by the main thread at a random moment;
 *   - by a controller thread, often right after it made the op complete
 *     (wrote data, connected, sent a datagram, drained a blocked send), so
 *     the abort races the completion;
 *   - by aborter tasks on the workers (another worker than the op's ring
 *     when the task was stolen: a remote cancel);
 *   - at the end of the round, which also aborts tasks that had already
 *     finished (no effect: they must report their real result);
 *   - by the controller, which then drops the join handle at once and
 *     makes the op complete: the op in flight holds the task's last
 *     reference while the kernel writes into its buffer (detached: not
 *     joined, but its drop is counted).
 * Some rounds end instead with a runtime shutdown while ops are in flight.
 *
 * Checks: every join yields the op's real, verified result (bytes and
 * their contents, a connected or accepted fd, a datagram and its sender)
 * or -ECANCELED, and -ECANCELED only for an aborted task (or after the
 * shutdown); every future is dropped exactly once; after each round the
 * number of open fds is back where it started, so an fd that a cancelled
 * accept or connect produced was closed by the library (its discard hook);
 * across the run weft_runtime_metrics reports remote cancels. LSan (ASan
 * builds) finds any leaked op record or task.
 *
 * A kind is one entry of the kinds[] table: start (make the slot's fds,
 * spawn its task), poke (optional: make its op complete, from the
 * controller thread) and check (judge the join's result).
 *
 * Usage: io_abort_stress [seed [tasks]]. With @tasks the run goes on until
 * that many tasks were aborted with an op in flight (and the time budget
 * does not apply unless WEFT_STRESS_SECONDS is set); without, it is
 * bounded by the time budget of stress.h. WEFT_STRESS_SCALE scales the
 * default task cap.
 */
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <weft.h>
#include <weft/fiber.h>
#include <weft/udp.h>

#include "stress.h"

#define MAX_SLOTS 96
#define RECV_BUF 4096
#define SEND_LEN (48 * 1024)     /* a send task's buffer: blocks at once */
#define SEND_SNDBUF 4096         /* the sender's SO_SNDBUF (kernel doubles) */
#define FIBER_SEND_LEN (24 * 1024)
#define FILE_SIZE (64 * 1024)
#define FILE_READ_MAX 8192
#define DGRAM_MAX 1400
#define ABORTERS 2

/* --- data patterns ------------------------------------------------------ */

static inline unsigned char pattern(unsigned salt, uint64_t k)
{
	return (unsigned char)(k * 131 + salt * 17 + 7);
}

static inline unsigned char file_pattern(uint64_t k)
{
	return (unsigned char)((k ^ (k >> 8)) * 13 + 1);
}

/* Index of the first byte of @buf that breaks @salt's pattern from @off,
 * or -1. */
static int64_t pattern_mismatch(const unsigned char *buf, int64_t n,
				unsigned salt, uint64_t off)
{
	for (int64_t k = 0; k < n; k++)
		if (buf[k] != pattern(salt, off + (uint64_t)k))
			return k;
	return -1;
}

/* --- slots -------------------------------------------------------------- */

/* Who aborts the slot's task (beyond the abort-all at the end). */
enum abort_mode {
	AB_NOW,    /* its spawner, right after spawning it */
	AB_MAIN,   /* the main thread, at a random moment */
	AB_THREAD, /* the controller thread, often right after a poke */
	AB_TASK,   /* an aborter task on a worker */
	AB_END,    /* nobody until the end of the round */
	AB_DETACH, /* the controller: abort, drop the join handle, poke */
	AB_MODES
};

struct kind;

struct slot {
	unsigned idx;
	const struct kind *kind;
	enum abort_mode mode;
	bool from_task;   /* spawned by the spawner task, on a worker */
	bool yield_first; /* the task yields (may be stolen) before its op */
	unsigned sub;     /* kind-specific choice */
	_Atomic(weft_join *) join;
	int fd[2];        /* the test's own fds for this slot, -1: none */
	int task_fd;      /* the fd the task's op uses (not closed by it) */
	unsigned char *heap; /* a fiber's buffer, freed after the runtime */
	struct stress_rng rng; /* for start (main or the spawner task) */
	uint16_t port;
	size_t len;       /* kind-specific length */
	/* Controller thread only (read by main after it is joined). */
	uint64_t written; /* bytes written to the peer / datagrams sent */
	uint64_t drained; /* bytes drained from a blocked send */
	int poked;
	bool detached;    /* its join handle was dropped (AB_DETACH) */
	/* Set before the task is aborted: -ECANCELED is allowed. */
	atomic_bool aborted;
	bool finished_before_abort;
	atomic_int drops;
	atomic_int polls;
	atomic_int bad; /* data that did not match */
};

/* The output of every poll-based task. */
struct out {
	int64_t res;
	int64_t aux; /* kind-specific (UDP: the sender's port) */
};

struct kind {
	const char *name;
	/* Make the slot's fds and spawn its task on R.rt (from main or a
	 * worker): sets s->join. */
	void (*start)(struct slot *s);
	/* Optional, controller thread: make the op complete (or able to). */
	void (*poke)(struct slot *s, struct stress_rng *rng);
	/* Judge a join status 0 with output @o (a struct out, or a fiber's
	 * void *): fail the run on a wrong result. */
	void (*check)(struct slot *s, const void *o);
};

enum end_mode { END_ABORT_ALL, END_SHUTDOWN };

struct round {
	weft_runtime *rt;
	unsigned nslots;
	struct slot slots[MAX_SLOTS];
	enum end_mode end;
	atomic_bool stop;
	atomic_int spawned;
	unsigned round_no;
	/* Shared per round: a listener that completes connects, and one
	 * whose accept queue is full (backlog 0 plus one connection), where
	 * a connect blocks until it is cancelled. */
	int l_open, l_full, l_full_client;
	struct sockaddr_in open_addr, full_addr;
	int udp_tx;
	uint16_t udp_tx_port;
};

static struct round R;
static int file_fd = -1; /* FILE_SIZE bytes of file_pattern, whole run */

/* Run-wide counts, per kind. */
#define NKINDS 8
struct tally {
	uint64_t completed, cancelled, unpolled, late_abort, detached;
};
static struct tally tallies[NKINDS];
static unsigned kind_mask = (1u << NKINDS) - 1; /* WEFT_STRESS_KINDS */
static uint64_t remote_cancels_total;
static uint64_t cancelled_total;

static const char *const mode_names[AB_MODES] = {
	"by its spawner at once", "by main", "by the controller",
	"by an aborter task", "at the end", "detached by the controller",
};

static void slot_fail(const struct slot *s, const char *what, int64_t v)
{
	stress_fail("round %u slot %u (%s %u, aborted %s%s%s): %s (%" PRId64
		    ")",
		    R.round_no, s->idx, s->kind->name, s->sub,
		    mode_names[s->mode],
		    s->from_task ? ", spawned on a worker" : "",
		    s->yield_first ? ", yields first" : "", what, v);
}

static void publish_join(struct slot *s, weft_join *j)
{
	atomic_store(&s->join, j);
	atomic_fetch_add(&R.spawned, 1);
	stress_progress();
}

static void abort_slot(struct slot *s)
{
	weft_join *j = atomic_load(&s->join);

	if (!j)
		return;
	atomic_store(&s->aborted, true);
	weft_task_abort(j);
}

/* --- the generic op task -------------------------------------------------
 *
 * One future type for every poll-based kind: an optional yield, then the
 * kind's op (prepared by op_prep from the slot), then the kind's result
 * check on the buffer (op_done), both switched on the kind's index.
 */

enum kind_id {
	K_RECV,
	K_ACCEPT,
	K_CONNECT,
	K_SEND,
	K_FILE,
	K_UDP,
	K_SLEEP,
	K_FIBER
};

struct op_task {
	struct slot *slot;
	enum kind_id id;
	int step; /* 0: yield, 1: prepare, 2: op in flight */
	weft_yield y;
	weft_io io;
	weft_send_all sa;
	struct sockaddr_storage from;
	socklen_t fromlen;
	unsigned char buf[]; /* desc.size - sizeof(struct op_task) bytes */
};

static int op_prep(struct op_task *t)
{
	struct slot *s = t->slot;

	switch (t->id) {
	case K_RECV:
		return weft_io_prep_recv(&t->io, s->task_fd, t->buf, RECV_BUF,
					 0);
	case K_ACCEPT:
		return weft_io_prep_accept(&t->io, s->task_fd);
	case K_CONNECT:
		return weft_io_prep_connect(
			&t->io,
			(const struct sockaddr *)(s->sub ? &R.full_addr
							 : &R.open_addr),
			sizeof(struct sockaddr_in));
	case K_SEND:
		for (size_t k = 0; k < SEND_LEN; k++)
			t->buf[k] = pattern(s->idx, k);
		return weft_send_all_init(&t->sa, s->task_fd, t->buf, SEND_LEN,
					  0);
	case K_FILE:
		return weft_io_prep_read(&t->io, file_fd, t->buf, s->len,
					 (off_t)s->sub);
	case K_UDP:
		t->fromlen = sizeof(t->from);
		return weft_io_prep_recv_from(&t->io, s->task_fd, t->buf,
					      DGRAM_MAX, 0, &t->from,
					      &t->fromlen);
	case K_SLEEP:
		return weft_io_prep_sleep(&t->io, s->len * 1000);
	default:
		return -EINVAL;
	}
}

/* The op finished with @res: verify what it delivered; fill @o. */
static void op_done(struct op_task *t, int64_t res, struct out *o)
{
	struct slot *s = t->slot;

	o->res = res;
	o->aux = 0;
	switch (t->id) {
	case K_RECV:
		if (res > 0 && pattern_mismatch(t->buf, res, s->idx, 0) >= 0)
			atomic_fetch_add(&s->bad, 1);
		break;
	case K_ACCEPT:
	case K_CONNECT:
		if (res >= 0)
			close((int)res); /* ours now */
		break;
	case K_FILE:
		for (int64_t k = 0; k < res; k++)
			if (t->buf[k] != file_pattern(s->sub + (uint64_t)k)) {
				atomic_fetch_add(&s->bad, 1);
				break;
			}
		break;
	case K_UDP:
		if (res > 0 && pattern_mismatch(t->buf, res, s->idx, 0) >= 0)
			atomic_fetch_add(&s->bad, 1);
		if (res >= 0 && t->from.ss_family == AF_INET)
			o->aux = ntohs(((struct sockaddr_in *)&t->from)->sin_port);
		break;
	default:
		break;
	}
}

static weft_poll op_task_poll(void *self, weft_cx *cx, void *out)
{
	struct op_task *t = self;
	int64_t res;

	atomic_fetch_add(&t->slot->polls, 1);
	if (t->step == 0) {
		if (t->slot->yield_first &&
		    weft_yield_poll(&t->y, cx) == WEFT_PENDING)
			return WEFT_PENDING;
		t->step = 1;
	}
	if (t->step == 1) {
		int err = op_prep(t);

		STRESS_CHECK(err == 0, "prep %s: %s", t->slot->kind->name,
			     weft_strerror(err));
		t->step = 2;
	}
	if (t->id == K_SEND) {
		if (weft_send_all_poll(&t->sa, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
	} else if (weft_io_poll(&t->io, cx, &res) == WEFT_PENDING) {
		return WEFT_PENDING;
	}
	op_done(t, res, out);
	return WEFT_READY;
}

static void op_task_drop(void *self)
{
	struct op_task *t = self;

	weft_io_drop(&t->io);
	weft_send_all_drop(&t->sa);
	atomic_fetch_add(&t->slot->drops, 1);
}

#define OP_DESC(bufsize)                                             \
	{                                                            \
		.poll = op_task_poll, .drop = op_task_drop,          \
		.size = sizeof(struct op_task) + (bufsize),          \
		.output_size = sizeof(struct out),                   \
	}

static const weft_future_desc desc_small = OP_DESC(0);
static const weft_future_desc desc_recv = OP_DESC(RECV_BUF);
static const weft_future_desc desc_send = OP_DESC(SEND_LEN);
static const weft_future_desc desc_file = OP_DESC(FILE_READ_MAX);
static const weft_future_desc desc_udp = OP_DESC(DGRAM_MAX);

/* Spawn the op task of kind @id for @s on the current runtime or R.rt. */
static void spawn_op(struct slot *s, enum kind_id id,
		     const weft_future_desc *desc)
{
	struct op_task *init = calloc(1, desc->size);
	weft_join *j;

	STRESS_CHECK(init, "out of memory");
	init->slot = s;
	init->id = id;
	init->y = (weft_yield)WEFT_YIELD_INIT;
	int err = weft_spawn(R.rt, desc, init, &j);
	STRESS_CHECK(err == 0, "spawn %s: %s", s->kind->name,
		     weft_strerror(err));
	free(init);
	publish_join(s, j);
}

/* --- kinds ---------------------------------------------------------------- */

static void stream_pair(struct slot *s)
{
	int sv[2];

	STRESS_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ==
			     0,
		     "socketpair: %s", strerror(errno));
	s->task_fd = s->fd[0] = sv[0];
	s->fd[1] = sv[1];
}

/* recv on a socket the controller writes to at random moments. */
static void recv_start(struct slot *s)
{
	stream_pair(s);
	spawn_op(s, K_RECV, &desc_recv);
}

static void recv_poke(struct slot *s, struct stress_rng *rng)
{
	unsigned char buf[3000];
	size_t n = 1 + (size_t)stress_below(rng, sizeof(buf));

	for (size_t k = 0; k < n; k++)
		buf[k] = pattern(s->idx, s->written + k);
	ssize_t w = send(s->fd[1], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w > 0)
		s->written += (uint64_t)w;
	s->poked++;
}

static void recv_check(struct slot *s, const void *o)
{
	const struct out *r = o;

	if (r->res <= 0 || (uint64_t)r->res > s->written)
		slot_fail(s, "recv result beyond what was written", r->res);
}

/* The slot's own bound socket @fd (or a negative errno): its task's. */
static void own_socket(struct slot *s, int fd)
{
	STRESS_CHECK(fd >= 0, "listen/bind: %s", weft_strerror(fd));
	s->task_fd = s->fd[0] = fd;
	s->port = (uint16_t)weft_tcp_local_port(fd);
}

/* accept on the slot's own listener; the controller connects to it. */
static void accept_start(struct slot *s)
{
	own_socket(s, weft_tcp_listen("127.0.0.1", 0, 8));
	spawn_op(s, K_ACCEPT, &desc_small);
}

static void accept_poke(struct slot *s, struct stress_rng *rng)
{
	(void)rng;
	if (s->fd[1] >= 0)
		return;
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(s->port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	STRESS_CHECK(fd >= 0, "socket: %s", strerror(errno));
	STRESS_CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
		     "connect: %s", strerror(errno));
	s->fd[1] = fd;
	s->poked++;
}

static void accept_check(struct slot *s, const void *o)
{
	const struct out *r = o;

	if (r->res < 0 || !s->poked)
		slot_fail(s, "accept without a connection", r->res);
}

/* connect to the open listener (completes) or the full one (blocks). */
static void connect_start(struct slot *s)
{
	spawn_op(s, K_CONNECT, &desc_small);
}

static void connect_check(struct slot *s, const void *o)
{
	const struct out *r = o;

	if (r->res < 0 || s->sub)
		slot_fail(s, s->sub ? "connect to a full listener completed"
				    : "connect failed",
			  r->res);
}

/* send_all of SEND_LEN bytes to a peer that reads only when poked. */
static void send_start(struct slot *s)
{
	int sz = SEND_SNDBUF;

	stream_pair(s);
	STRESS_CHECK(setsockopt(s->fd[0], SOL_SOCKET, SO_SNDBUF, &sz,
				sizeof(sz)) == 0,
		     "SO_SNDBUF: %s", strerror(errno));
	spawn_op(s, K_SEND, &desc_send);
}

/* Drain up to 48 KiB of what the sender sent, checking it. */
static void send_poke(struct slot *s, struct stress_rng *rng)
{
	unsigned char buf[16384];
	unsigned rounds = 1 + (unsigned)stress_below(rng, 3);

	for (unsigned r = 0; r < rounds; r++) {
		ssize_t n = recv(s->fd[1], buf, sizeof(buf), MSG_DONTWAIT);

		if (n <= 0)
			break;
		if (pattern_mismatch(buf, n, s->idx, s->drained) >= 0)
			atomic_fetch_add(&s->bad, 1);
		s->drained += (uint64_t)n;
	}
	s->poked++;
}

static void send_check(struct slot *s, const void *o)
{
	const struct out *r = o;

	if (r->res != (int64_t)s->len)
		slot_fail(s, "send_all result", r->res);
}

/* read at a random offset of a regular file: completes at once. */
static void file_start(struct slot *s)
{
	spawn_op(s, K_FILE, &desc_file);
}

static void file_check(struct slot *s, const void *o)
{
	const struct out *r = o;
	uint64_t want = s->len;

	if (want > FILE_SIZE - s->sub)
		want = FILE_SIZE - s->sub;
	if (r->res != (int64_t)want)
		slot_fail(s, "file read result", r->res);
}

/* recv_from on the slot's own UDP socket; the controller sends to it. */
static void udp_start(struct slot *s)
{
	own_socket(s, weft_udp_bind("127.0.0.1", 0, 0));
	spawn_op(s, K_UDP, &desc_udp);
}

static void udp_poke(struct slot *s, struct stress_rng *rng)
{
	unsigned char buf[DGRAM_MAX];
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(s->port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	(void)rng;
	for (size_t k = 0; k < s->len; k++)
		buf[k] = pattern(s->idx, k);
	if (sendto(R.udp_tx, buf, s->len, MSG_DONTWAIT,
		   (struct sockaddr *)&sin, sizeof(sin)) == (ssize_t)s->len)
		s->written++;
	s->poked++;
}

static void udp_check(struct slot *s, const void *o)
{
	const struct out *r = o;

	if (r->res != (int64_t)s->len || !s->written)
		slot_fail(s, "recv_from result", r->res);
	if (r->aux != R.udp_tx_port)
		slot_fail(s, "recv_from: the sender's port", r->aux);
}

/* a sleep of 0-3 ms (a timer, not a ring op). */
static void sleep_start(struct slot *s)
{
	spawn_op(s, K_SLEEP, &desc_small);
}

static void sleep_check(struct slot *s, const void *o)
{
	const struct out *r = o;

	if (r->res != 0)
		slot_fail(s, "sleep result", r->res);
}

/*
 * A fiber: weft_co_recv (sub 0) or weft_co_send_all (sub 1) on a
 * socketpair. Returns the call's result; INT64_MIN for a received byte
 * that does not match.
 *
 * The buffer is on the fiber's stack, as weft/fiber.h allows, unless
 * WEFT_STRESS_FIBER_STACK=0 puts it on the heap (the slot's, freed after
 * the runtime). This caught the fiber layer releasing the stack when the
 * fiber returned, not when the task was freed, and unwinding a cancelled
 * fiber while its dropped op still used a buffer in a popped frame: the
 * peer of a cancelled send received other bytes ("corrupted data").
 */
static bool fiber_stack_bufs;

static int64_t fiber_io(struct slot *s, unsigned char *buf)
{
	int64_t res;

	if (s->sub == 0) {
		res = weft_co_recv(s->task_fd, buf, RECV_BUF, 0, 0);
		if (res > 0 && pattern_mismatch(buf, res, s->idx, 0) >= 0)
			res = INT64_MIN;
		return res;
	}
	for (size_t k = 0; k < FIBER_SEND_LEN; k++)
		buf[k] = pattern(s->idx, k);
	return weft_co_send_all(s->task_fd, buf, FIBER_SEND_LEN, 0, 0);
}

static void *fiber_fn(void *arg)
{
	struct slot *s = arg;
	int64_t res;

	atomic_fetch_add(&s->polls, 1);
	if (s->yield_first && weft_co_yield() != 0) {
		res = -ECANCELED;
	} else if (fiber_stack_bufs) {
		unsigned char buf[FIBER_SEND_LEN];

		res = fiber_io(s, buf);
	} else {
		res = fiber_io(s, s->heap);
	}
	atomic_fetch_add(&s->drops, 1); /* the fiber's cleanup ran */
	return (void *)(intptr_t)res;
}

static void fiber_start(struct slot *s)
{
	weft_fiber_opts opts;
	weft_join *j;

	if (s->sub == 0) {
		stream_pair(s);
	} else {
		int sz = SEND_SNDBUF;

		stream_pair(s);
		STRESS_CHECK(setsockopt(s->fd[0], SOL_SOCKET, SO_SNDBUF, &sz,
					sizeof(sz)) == 0,
			     "SO_SNDBUF: %s", strerror(errno));
	}
	if (!fiber_stack_bufs) {
		s->heap = malloc(FIBER_SEND_LEN);
		STRESS_CHECK(s->heap, "out of memory");
	}
	weft_fiber_opts_init(&opts);
	/* Default-size stacks are pooled per worker (reused at once),
	 * others unmapped when released. */
	if (stress_chance(&s->rng, 50))
		opts.stack_size = 128 * 1024;
	int err = weft_go(R.rt, fiber_fn, s, &opts, &j);
	STRESS_CHECK(err == 0, "weft_go: %s", weft_strerror(err));
	publish_join(s, j);
}

static void fiber_poke(struct slot *s, struct stress_rng *rng)
{
	if (s->sub == 0)
		recv_poke(s, rng);
	else
		send_poke(s, rng);
}

static void fiber_check(struct slot *s, const void *o)
{
	int64_t res = (int64_t)(intptr_t) * (void *const *)o;

	if (res == INT64_MIN)
		atomic_fetch_add(&s->bad, 1);
	else if (s->sub == 0 && (res <= 0 || (uint64_t)res > s->written))
		slot_fail(s, "fiber recv result", res);
	else if (s->sub == 1 && res != FIBER_SEND_LEN)
		slot_fail(s, "fiber send_all result", res);
}

static const struct kind kinds[NKINDS] = {
	[K_RECV] = { "recv", recv_start, recv_poke, recv_check },
	[K_ACCEPT] = { "accept", accept_start, accept_poke, accept_check },
	[K_CONNECT] = { "connect", connect_start, NULL, connect_check },
	[K_SEND] = { "send", send_start, send_poke, send_check },
	[K_FILE] = { "file", file_start, NULL, file_check },
	[K_UDP] = { "udp", udp_start, udp_poke, udp_check },
	[K_SLEEP] = { "sleep", sleep_start, NULL, sleep_check },
	[K_FIBER] = { "fiber", fiber_start, fiber_poke, fiber_check },
};

/* Start slot @s (its kind's start) and abort it at once if its mode says
 * so. From the main thread or the spawner task. */
static void start_slot(struct slot *s)
{
	s->kind->start(s);
	if (s->mode == AB_NOW)
		abort_slot(s);
}

/* --- the spawner and aborter tasks -------------------------------------- */

/* Spawns the slots marked from_task, from a worker: into its LIFO slot
 * and deque, where the other workers steal them. Yields between spawns. */
struct spawner {
	unsigned next;
	weft_yield y;
};

static weft_poll spawner_poll(void *self, weft_cx *cx, void *out)
{
	struct spawner *sp = self;

	(void)out;
	while (sp->next < R.nslots) {
		struct slot *s = &R.slots[sp->next];

		if (!s->from_task) {
			sp->next++;
			continue;
		}
		if (weft_yield_poll(&sp->y, cx) == WEFT_PENDING)
			return WEFT_PENDING;
		sp->y = (weft_yield)WEFT_YIELD_INIT;
		start_slot(s);
		sp->next++;
	}
	return WEFT_READY;
}

static const weft_future_desc spawner_desc = {
	.poll = spawner_poll,
	.size = sizeof(struct spawner),
};

/* Sleeps 0-1 ms, aborts a random AB_TASK slot, until R.stop. */
struct aborter {
	struct stress_rng rng;
	int armed;
	weft_io io;
};

static weft_poll aborter_poll(void *self, weft_cx *cx, void *out)
{
	struct aborter *a = self;

	(void)out;
	while (!atomic_load(&R.stop)) {
		if (!a->armed) {
			STRESS_CHECK(weft_io_prep_sleep(
					     &a->io,
					     stress_below(&a->rng, 1000) * 1000) == 0,
				     "prep sleep");
			a->armed = 1;
		}
		if (weft_io_poll(&a->io, cx, NULL) == WEFT_PENDING)
			return WEFT_PENDING;
		a->armed = 0;
		struct slot *s = &R.slots[stress_below(&a->rng, R.nslots)];
		if (s->mode == AB_TASK)
			abort_slot(s);
	}
	return WEFT_READY;
}

static void aborter_drop(void *self)
{
	weft_io_drop(&((struct aborter *)self)->io);
}

static const weft_future_desc aborter_desc = {
	.poll = aborter_poll,
	.drop = aborter_drop,
	.size = sizeof(struct aborter),
};

/* --- the controller thread -------------------------------------------- */

/*
 * Abort @s and drop its join handle at once, then make its op complete:
 * the op in flight now holds the task's last reference (weft/io.h,
 * lifetime rule), and the kernel writes into the task's buffer while the
 * cancel is on its way. Nobody joins it; its drop is counted at the end.
 */
static void detach(struct slot *s, struct stress_rng *rng)
{
	if (s->detached)
		return;
	if (s->kind->poke && stress_chance(rng, 30))
		s->kind->poke(s, rng);
	abort_slot(s);
	weft_join_drop(atomic_load(&s->join));
	s->detached = true;
	if (s->kind->poke)
		s->kind->poke(s, rng);
}

static void *controller_main(void *arg)
{
	struct stress_rng rng;

	(void)arg;
	stress_rng_init(&rng, 7000 + R.round_no);
	while (!atomic_load(&R.stop)) {
		struct slot *s = &R.slots[stress_below(&rng, R.nslots)];
		unsigned dice = (unsigned)stress_below(&rng, 100);

		if (!atomic_load(&s->join)) {
			sched_yield();
			continue;
		}
		if (s->mode == AB_DETACH) {
			detach(s, &rng);
		} else if (dice < 50) {
			if (s->kind->poke && stress_chance(&rng, 70))
				s->kind->poke(s, &rng);
			/* Right after the poke: the abort races the CQE. */
			if (s->mode == AB_THREAD)
				abort_slot(s);
		} else if (dice < 70) {
			if (s->kind->poke)
				s->kind->poke(s, &rng);
		} else if (dice < 80) {
			if (s->mode == AB_THREAD)
				abort_slot(s);
		} else {
			stress_sleep_us((unsigned)stress_below(&rng, 300));
		}
	}
	return NULL;
}

/* --- fds ------------------------------------------------------------------ */

static int count_fds(bool print)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	STRESS_CHECK(d, "opendir /proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		n++;
		if (print) {
			char path[300], target[256];
			ssize_t len;

			snprintf(path, sizeof(path), "/proc/self/fd/%s",
				 e->d_name);
			len = readlink(path, target, sizeof(target) - 1);
			target[len > 0 ? len : 0] = '\0';
			fprintf(stderr, "  fd %s -> %s\n", e->d_name, target);
		}
	}
	closedir(d);
	return n;
}

static void make_file(void)
{
	char path[] = "/tmp/weft-io-abort-XXXXXX";
	unsigned char *buf = malloc(FILE_SIZE);

	STRESS_CHECK(buf, "out of memory");
	file_fd = mkstemp(path);
	STRESS_CHECK(file_fd >= 0, "mkstemp: %s", strerror(errno));
	unlink(path);
	for (uint64_t k = 0; k < FILE_SIZE; k++)
		buf[k] = file_pattern(k);
	STRESS_CHECK(write(file_fd, buf, FILE_SIZE) == FILE_SIZE, "write");
	free(buf);
}

/* --- one round ------------------------------------------------------------ */

static void setup_shared(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	R.l_open = weft_tcp_listen("127.0.0.1", 0, 1024);
	STRESS_CHECK(R.l_open >= 0, "listen: %s", weft_strerror(R.l_open));
	R.open_addr = sin;
	R.open_addr.sin_port = htons((uint16_t)weft_tcp_local_port(R.l_open));
	/* Backlog 0 (not weft_tcp_listen's, where 0 means SOMAXCONN)
	 * holds one connection; then SYNs are dropped and a connect waits
	 * (retransmitting) until it is cancelled. */
	R.l_full = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	STRESS_CHECK(R.l_full >= 0, "socket: %s", strerror(errno));
	STRESS_CHECK(bind(R.l_full, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
			     listen(R.l_full, 0) == 0,
		     "bind/listen: %s", strerror(errno));
	R.full_addr = sin;
	R.full_addr.sin_port = htons((uint16_t)weft_tcp_local_port(R.l_full));
	R.l_full_client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	STRESS_CHECK(R.l_full_client >= 0, "socket");
	STRESS_CHECK(connect(R.l_full_client, (struct sockaddr *)&R.full_addr,
			     sizeof(R.full_addr)) == 0,
		     "connect: %s", strerror(errno));
	R.udp_tx = weft_udp_bind("127.0.0.1", 0, 0);
	STRESS_CHECK(R.udp_tx >= 0, "udp bind: %s", weft_strerror(R.udp_tx));
	R.udp_tx_port = (uint16_t)weft_tcp_local_port(R.udp_tx);
}

static void close_shared(void)
{
	close(R.l_open);
	close(R.l_full);
	close(R.l_full_client);
	close(R.udp_tx);
}

static void plan_slot(struct slot *s, unsigned i, struct stress_rng *rng)
{
	memset(s, 0, sizeof(*s));
	s->idx = i;
	s->fd[0] = s->fd[1] = s->task_fd = -1;
	stress_rng_init(&s->rng, stress_rand(rng));
	do
		s->kind = &kinds[stress_below(rng, NKINDS)];
	while (!(kind_mask & (1u << (s->kind - kinds))));
	s->mode = (enum abort_mode)stress_below(rng, AB_MODES);
	s->from_task = stress_chance(rng, 50);
	s->yield_first = stress_chance(rng, 30);
	switch (s->kind - kinds) {
	case K_CONNECT:
		s->sub = stress_chance(rng, 50); /* 1: the full listener */
		break;
	case K_SEND:
		s->len = SEND_LEN;
		break;
	case K_FILE:
		s->sub = (unsigned)stress_below(rng, FILE_SIZE);
		s->len = 1 + (size_t)stress_below(rng, FILE_READ_MAX);
		break;
	case K_UDP:
		s->len = 1 + (size_t)stress_below(rng, DGRAM_MAX);
		break;
	case K_SLEEP:
		s->len = (size_t)stress_below(rng, 3000); /* us */
		break;
	case K_FIBER:
		s->sub = stress_chance(rng, 50); /* 1: send_all */
		break;
	default:
		break;
	}
}

/* Join slot @s and judge its result; count it in its kind's tally. */
static void join_slot(struct slot *s)
{
	weft_join *j = atomic_load(&s->join);
	union {
		struct out o;
		void *p;
	} out;
	int st;
	struct tally *t = &tallies[s->kind - kinds];

	if (s->detached) {
		t->detached++;
		return;
	}
	memset(&out, 0, sizeof(out));
	st = stress_join_wait(j, &out);
	if (st == -ECANCELED) {
		if (!atomic_load(&s->aborted) && R.end != END_SHUTDOWN)
			slot_fail(s, "cancelled without an abort", st);
		if (s->finished_before_abort)
			slot_fail(s, "finished, then cancelled by a later abort",
				  st);
		t->cancelled++;
		if (atomic_load(&s->polls) == 0)
			t->unpolled++;
		else
			cancelled_total++;
	} else {
		if (st != 0)
			slot_fail(s, "join status", st);
		s->kind->check(s, &out);
		t->completed++;
		if (atomic_load(&s->aborted))
			t->late_abort++; /* aborted after it finished */
	}
	weft_join_drop(j);
}

/*
 * Every task was aborted or finished, and joined (or detached): each op
 * must complete (its cancel reached the ring that owns it) with the
 * runtime still running. Bounded wait: a cancel sent to the wrong ring
 * leaves a recv in flight for good.
 */
static void wait_ops_drained(void)
{
	weft_runtime_metrics m;
	uint64_t t0 = stress_now_ns();

	for (;;) {
		m.size = sizeof(m);
		STRESS_CHECK(weft_runtime_metrics_get(R.rt, &m) == 0,
			     "metrics");
		if (m.ops_completed == m.ops_submitted)
			return;
		if (stress_now_ns() - t0 > 10000000000ull)
			stress_fail("round %u: %" PRIu64 " of %" PRIu64
				    " ops still in flight 10 s after every task "
				    "was aborted: a cancel missed its op",
				    R.round_no,
				    m.ops_submitted - m.ops_completed,
				    m.ops_submitted);
		stress_sleep_us(1000);
	}
}

static void run_round(struct stress_rng *rng)
{
	weft_runtime_config cfg;
	weft_join *spawner = NULL, *aborters[ABORTERS];
	weft_runtime_metrics m;
	unsigned workers = stress_chance(rng, 50) ? 2 : 4;
	pthread_t ctl;
	int fds_before = count_fds(false);

	weft_runtime_config_init(&cfg);
	cfg.workers = workers;
	if (stress_chance(rng, 50))
		cfg.flags |= WEFT_RT_NO_LIFO_SLOT;
	if (stress_chance(rng, 40))
		cfg.flags |= WEFT_RT_NO_DEFER_TASKRUN;
	int err = weft_runtime_new(&cfg, &R.rt);
	if (err == -EPERM || err == -ENOSYS)
		stress_skip("io_uring unavailable: %s", weft_strerror(err));
	STRESS_CHECK(err == 0, "weft_runtime_new: %s", weft_strerror(err));

	R.nslots = 16 + (unsigned)stress_below(rng, MAX_SLOTS - 15);
	R.end = stress_chance(rng, 10) ? END_SHUTDOWN : END_ABORT_ALL;
	atomic_store(&R.stop, false);
	atomic_store(&R.spawned, 0);
	setup_shared();
	for (unsigned i = 0; i < R.nslots; i++)
		plan_slot(&R.slots[i], i, rng);

	stress_set_phase("spawn");
	STRESS_CHECK(pthread_create(&ctl, NULL, controller_main, NULL) == 0,
		     "pthread_create");
	for (unsigned i = 0; i < ABORTERS; i++) {
		struct aborter a = { .armed = 0 };

		stress_rng_init(&a.rng, 100000 + R.round_no * 8 + i);
		STRESS_CHECK(weft_spawn(R.rt, &aborter_desc, &a,
					&aborters[i]) == 0,
			     "spawn aborter");
	}
	STRESS_CHECK(weft_spawn(R.rt, &spawner_desc, NULL, &spawner) == 0,
		     "spawn spawner");
	for (unsigned i = 0; i < R.nslots; i++)
		if (!R.slots[i].from_task)
			start_slot(&R.slots[i]);

	stress_set_phase("chaos");
	/* The main thread's own aborts, at random moments. */
	unsigned steps = 4 + (unsigned)stress_below(rng, 12);
	for (unsigned k = 0; k < steps; k++) {
		stress_sleep_us((unsigned)stress_below(rng, 2500));
		for (unsigned n = 0; n < 4; n++) {
			struct slot *s = &R.slots[stress_below(rng, R.nslots)];

			if (s->mode == AB_MAIN)
				abort_slot(s);
		}
	}
	STRESS_CHECK(stress_join_wait(spawner, NULL) == 0, "spawner join");
	weft_join_drop(spawner);
	STRESS_CHECK(atomic_load(&R.spawned) == (int)R.nslots,
		     "%d of %u spawned", atomic_load(&R.spawned), R.nslots);
	stress_sleep_us((unsigned)stress_below(rng, 3000));
	atomic_store(&R.stop, true);
	pthread_join(ctl, NULL);
	for (unsigned i = 0; i < ABORTERS; i++) {
		STRESS_CHECK(stress_join_wait(aborters[i], NULL) == 0,
			     "aborter join");
		weft_join_drop(aborters[i]);
	}
	stress_progress();

	stress_set_phase("end");
	if (R.end == END_SHUTDOWN) {
		/* With ops of every kind in flight. */
		STRESS_CHECK(weft_runtime_shutdown(R.rt) == 0, "shutdown");
	} else {
		for (unsigned i = 0; i < R.nslots; i++) {
			struct slot *s = &R.slots[i];
			weft_join *j = atomic_load(&s->join);

			if (s->detached)
				continue;
			/* Finished ones are aborted too: no effect. */
			s->finished_before_abort = weft_join_is_finished(j) &&
						   !atomic_load(&s->aborted);
			abort_slot(s);
		}
	}

	stress_set_phase("join");
	for (unsigned i = 0; i < R.nslots; i++)
		join_slot(&R.slots[i]);

	stress_set_phase("ops drain");
	if (R.end == END_ABORT_ALL)
		wait_ops_drained();
	stress_set_phase("free");
	m.size = sizeof(m);
	STRESS_CHECK(weft_runtime_metrics_get(R.rt, &m) == 0, "metrics");
	remote_cancels_total += m.remote_cancels;
	STRESS_CHECK(weft_runtime_shutdown(R.rt) == 0, "shutdown");
	weft_runtime_free(R.rt);
	R.rt = NULL;
	for (unsigned i = 0; i < R.nslots; i++) {
		struct slot *s = &R.slots[i];

		if (atomic_load(&s->drops) != 1)
			slot_fail(s, "future dropped this many times",
				  atomic_load(&s->drops));
		if (atomic_load(&s->bad))
			slot_fail(s, "corrupted data", atomic_load(&s->bad));
		for (int k = 0; k < 2; k++)
			if (s->fd[k] >= 0)
				close(s->fd[k]);
		free(s->heap);
	}
	close_shared();
	int fds_after = count_fds(false);
	if (fds_after != fds_before) {
		fprintf(stderr, "fds open now:\n");
		count_fds(true);
		stress_fail("round %u: %d fds open before, %d after: an fd a "
			    "cancelled op produced was not closed",
			    R.round_no, fds_before, fds_after);
	}
	if (stress_verbose)
		printf("round %u: %u workers, flags %#x, %u tasks, end %d, "
		       "%" PRIu64 " remote cancels\n",
		       R.round_no, workers, cfg.flags, R.nslots, (int)R.end,
		       m.remote_cancels);
}

/* WEFT_STRESS_KINDS=recv,fiber,...: only those kinds (names of kinds[]);
 * WEFT_STRESS_FIBER_STACK=0: fiber buffers on the heap, not the stack. */
static void parse_env(void)
{
	const char *e = getenv("WEFT_STRESS_KINDS");

	if (e && *e) {
		kind_mask = 0;
		for (int k = 0; k < NKINDS; k++) {
			size_t n = strlen(kinds[k].name);
			const char *p = e;

			while ((p = strstr(p, kinds[k].name))) {
				if ((p == e || p[-1] == ',') &&
				    (p[n] == ',' || p[n] == '\0'))
					kind_mask |= 1u << k;
				p += n;
			}
		}
		STRESS_CHECK(kind_mask, "WEFT_STRESS_KINDS=%s: no such kind", e);
	}
	e = getenv("WEFT_STRESS_FIBER_STACK");
	fiber_stack_bufs = !e || !*e || *e != '0';
}

int main(int argc, char **argv)
{
	struct stress_rng rng;
	uint64_t target = 0, tasks = 0;
	unsigned round;

	stress_init("io_abort_stress", argc, argv);
	if (argc > 2) {
		target = strtoull(argv[2], NULL, 0);
		if (!getenv("WEFT_STRESS_SECONDS"))
			stress_seconds = 1e9;
		printf("io_abort_stress: until %" PRIu64 " tasks are cancelled "
		       "after their first poll%s\n",
		       target, stress_seconds < 1e9 ? ", or the budget ends" : "");
	}
	parse_env();
	make_file();
	stress_rng_init(&rng, 0);
	uint64_t max_tasks = target ? UINT64_MAX : stress_iters(100000);
	for (round = 0; stress_time_left() && tasks < max_tasks &&
			(!target || cancelled_total < target);
	     round++) {
		R.round_no = round;
		run_round(&rng);
		tasks += R.nslots;
		stress_progress();
	}
	close(file_fd);

	uint64_t cancelled = 0, unpolled = 0, completed = 0;
	for (int k = 0; k < NKINDS; k++) {
		printf("  %-8s %7" PRIu64 " completed (%" PRIu64
		       " aborted later), %7" PRIu64 " cancelled (%" PRIu64
		       " before their first poll), %6" PRIu64 " detached\n",
		       kinds[k].name, tallies[k].completed,
		       tallies[k].late_abort, tallies[k].cancelled,
		       tallies[k].unpolled, tallies[k].detached);
		cancelled += tallies[k].cancelled;
		unpolled += tallies[k].unpolled;
		completed += tallies[k].completed;
	}
	if (cancelled_total >= 200)
		STRESS_CHECK(remote_cancels_total > 0,
			     "no remote cancel in %" PRIu64 " cancels",
			     cancelled_total);
	return stress_finish("%u rounds, %" PRIu64 " tasks: %" PRIu64
			     " completed, %" PRIu64 " cancelled (%" PRIu64
			     " in flight, %" PRIu64 " unpolled), %" PRIu64
			     " remote cancels",
			     round, tasks, completed, cancelled,
			     cancelled_total, unpolled, remote_cancels_total);
}
