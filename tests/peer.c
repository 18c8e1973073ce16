/* SPDX-License-Identifier: MIT */
/*
 * The peer network (weft/peer.h) on loopback: nodes of one process, each
 * with its own listening port, plus raw TCP clients that speak (or break)
 * the handshake byte by byte.
 *
 *  - urls and configurations: good ones accepted, every bad one -EINVAL
 *    (never a crash), duplicates -EEXIST with the id, a taken port
 *    -EADDRINUSE;
 *  - two nodes: connected on both sides (inbound flag, identities,
 *    addresses), messages both ways in order and intact (0 bytes, exactly
 *    max_message), max_message + 1 refused at the send, SENT events,
 *    counters;
 *  - refusals: a node not on the list (-EACCES, it keeps redialing),
 *    garbage, silence, a bad magic or length, another version, this
 *    node's own identity; the wire format checked against docs/peer.md;
 *  - reconnection after the remote restarts on the same port; simultaneous
 *    dials (50 rounds) ending in one connection each way with nothing
 *    lost;
 *  - the bounded send queue (-EAGAIN, a waiting send that times out, one
 *    woken by room), -ENOTCONN, -ENOENT, remove dropping what is queued;
 *  - shutdown: FLUSH delivers everything queued before the remote sees the
 *    disconnection, DROP returns at once and accounts for every message,
 *    a flush bounded by shutdown_ns, -ESHUTDOWN and -EPIPE after it, from
 *    a fiber, a plain thread, never a worker;
 *  - multicast and broadcast (errs, full queues, only connected ones);
 *    events_off; 1,000 leaves on one hub.
 *
 * Events are taken from the test thread through the weft_peer_next_event
 * future polled with a parker waker (so its wake path is tested too) and
 * kept in a per-node log that the checks search.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fiber_helpers.h"
#include "net_helpers.h"

#include <weft/peer.h>

/* The configurations of helpers.h are not used. */
static WT_UNUSED const struct wt_cfg *unused_cfgs = wt_cfgs;

#define MS 1000000ull

static weft_runtime *rt_new(unsigned workers)
{
	return wt_rt_new(&(struct wt_cfg){ workers, 0 });
}

/* A configuration for tests: quick redials. */
static weft_peer_config cfg_quick(void)
{
	weft_peer_config c;

	weft_peer_config_init(&c);
	c.reconnect_ns = 50 * MS;
	return c;
}

static weft_peer_node *node_new(weft_runtime *rt, const weft_peer_config *c)
{
	weft_peer_node *n = NULL;
	int err = weft_peer_node_new(rt, c, &n);

	cr_assert_eq(err, 0, "weft_peer_node_new: %s", weft_strerror(err));
	cr_assert_not_null(n);
	cr_assert_gt(weft_peer_port(n), 0);
	return n;
}

static void node_free(weft_peer_node *n)
{
	int err = weft_peer_node_free(n);

	cr_assert_eq(err, 0, "weft_peer_node_free: %s", weft_strerror(err));
}

static weft_peer_id add_port(weft_peer_node *n, uint16_t port)
{
	char url[64];
	weft_peer_id id = 0;

	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", port);
	int err = weft_peer_add(n, url, &id);
	cr_assert_eq(err, 0, "add %s: %s", url, weft_strerror(err));
	cr_assert_gt(id, 0);
	return id;
}

/* A loopback port nobody listens on (it was free a moment ago). */
static uint16_t free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static weft_peer_stats stats(const weft_peer_node *n)
{
	weft_peer_stats st = { .size = sizeof(st) };

	cr_assert_eq(weft_peer_stats_get(n, &st), 0);
	return st;
}

/* Sleep-poll until the field at @off of @n's stats reaches @v, @ms at
 * most. Returns the last value. */
#define STAT(field) offsetof(weft_peer_stats, field)
static uint64_t stat_wait(const weft_peer_node *n, size_t off, uint64_t v,
			  unsigned ms)
{
	uint64_t deadline = wt_mono_ns() + ms * MS, cur;

	for (;;) {
		weft_peer_stats st = stats(n);
		memcpy(&cur, (const char *)&st + off, sizeof(cur));
		if (cur >= v || wt_mono_ns() > deadline)
			return cur;
		wt_sleep_ms(2);
	}
}

/* ---- messages: message @i of a stream is msg_len(i) bytes from seed
 * @base + i ---- */

static size_t msg_len(int i)
{
	static const size_t sizes[] = { 0, 1, 2, 7, 100, 1000, 4096, 65535,
					65536 };
	return i < 9 ? sizes[i] : (size_t)(i * 7919) % 5000;
}

static unsigned char *msg_make(int i, uint32_t base, size_t *len)
{
	*len = msg_len(i);
	unsigned char *b = malloc(*len + 1);
	cr_assert_not_null(b);
	wt_fill(b, *len, base + (uint32_t)i);
	return b;
}

static bool msg_ok(const void *data, size_t len, int i, uint32_t base)
{
	size_t want;
	unsigned char *b = msg_make(i, base, &want);
	bool ok = len == want && (len == 0 || !memcmp(data, b, len));

	free(b);
	return ok;
}

static int send_msg(weft_peer_node *n, weft_peer_id id, int i, uint32_t base)
{
	size_t len;
	unsigned char *b = msg_make(i, base, &len);
	int r = weft_peer_try_send(n, id, b, len);

	memset(b, 0xee, len); /* copied at the send: must not show */
	free(b);
	return r;
}

/* ---- taking events from the test thread ---- */

/*
 * Take @n's next event into @ev, waiting @ms at most: the next_event future
 * polled with a parker waker. Returns 0, -EPIPE, or -ETIMEDOUT.
 */
static int ev_take(weft_peer_node *n, weft_peer_event *ev, unsigned ms)
{
	struct wt_parker *p = wt_parker_new();
	weft_waker w = wt_parker_waker(p);
	weft_peer_next_event f;
	uint64_t deadline = wt_mono_ns() + ms * MS;
	int res = 1;
	weft_cx cx;

	weft_cx_init(&cx, &w);
	cr_assert_eq(weft_peer_next_event_init(&f, n, ev), 0);
	for (;;) {
		if (weft_peer_next_event_desc.poll(&f, &cx, &res) ==
		    WEFT_READY)
			break;
		uint64_t now = wt_mono_ns();
		if (now >= deadline) {
			res = -ETIMEDOUT;
			break;
		}
		wt_parker_wait(p, (unsigned)((deadline - now) / MS) + 1);
	}
	if (weft_peer_next_event_desc.drop)
		weft_peer_next_event_desc.drop(&f);
	weft_waker_drop(&w);
	wt_parker_release(p);
	cr_assert(res == 0 || res == -EPIPE || res == -ETIMEDOUT,
		  "next event: %s", weft_strerror(res));
	return res;
}

/* Every event a node gave, in order; the checks mark those they used. */
struct logged {
	weft_peer_event ev;
	bool used;
};

struct evlog {
	weft_peer_node *n;
	struct logged **v;
	size_t len, cap;
	bool ended; /* -EPIPE seen */
};

static void log_init(struct evlog *l, weft_peer_node *n)
{
	memset(l, 0, sizeof(*l));
	l->n = n;
}

/* Take one more event into @l, @ms at most. */
static int log_pump(struct evlog *l, unsigned ms)
{
	struct logged *e;
	int r;

	if (l->ended)
		return -EPIPE;
	e = calloc(1, sizeof(*e));
	cr_assert_not_null(e);
	r = ev_take(l->n, &e->ev, ms);
	if (r) {
		free(e);
		l->ended = r == -EPIPE;
		return r;
	}
	cr_assert(e->ev.kind >= WEFT_PEER_ADDED &&
			  e->ev.kind <= WEFT_PEER_DISCOVERED,
		  "event kind %d", e->ev.kind);
	if (l->len == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		cr_assert_not_null(l->v);
	}
	l->v[l->len++] = e;
	return 0;
}

/* Take what is there now (and what comes within @ms of the last). */
static void log_drain(struct evlog *l, unsigned ms)
{
	while (log_pump(l, ms) == 0)
		;
}

/* The first unused event of @kind (0: any) for @peer (0: any), waiting
 * @ms at most for it; marked used. NULL on timeout. Stable pointer. */
static weft_peer_event *ev_find(struct evlog *l, int kind, weft_peer_id peer,
				unsigned ms)
{
	uint64_t deadline = wt_mono_ns() + ms * MS;
	size_t i = 0;

	for (;;) {
		for (; i < l->len; i++) {
			struct logged *e = l->v[i];
			if (e->used || (kind && e->ev.kind != kind) ||
			    (peer && e->ev.peer != peer))
				continue;
			e->used = true;
			return &e->ev;
		}
		uint64_t now = wt_mono_ns();
		if (now >= deadline)
			return NULL;
		if (log_pump(l, (unsigned)((deadline - now) / MS) + 1) ==
		    -EPIPE)
			return NULL;
	}
}

static const char *kind_name(int k)
{
	static const char *names[] = { "?", "ADDED", "REMOVED", "CONNECTED",
				       "DISCONNECTED", "MESSAGE", "SENT",
				       "SEND_FAILED", "REFUSED",
				       "DISCOVERED" };
	return k >= 0 && k <= WEFT_PEER_DISCOVERED ? names[k] : "?";
}

#define ev_expect(l, kind, peer, ms)                                       \
	({                                                                 \
		weft_peer_event *ev_ = ev_find((l), (kind), (peer), (ms)); \
		cr_assert_not_null(ev_, "no %s event (peer %llu) within "  \
					"%u ms",                           \
				   kind_name(kind),                        \
				   (unsigned long long)(peer), (ms));      \
		ev_;                                                       \
	})

/* Position of @ev in @l. */
static size_t ev_index(const struct evlog *l, const weft_peer_event *ev)
{
	for (size_t i = 0; i < l->len; i++)
		if (&l->v[i]->ev == ev)
			return i;
	cr_assert_fail("event not in the log");
	return 0;
}

/* How many events of @kind (0: any) for @peer (0: any) are logged. */
static size_t ev_count(const struct evlog *l, int kind, weft_peer_id peer)
{
	size_t c = 0;

	for (size_t i = 0; i < l->len; i++)
		c += (!kind || l->v[i]->ev.kind == kind) &&
		     (!peer || l->v[i]->ev.peer == peer);
	return c;
}

static void log_free(struct evlog *l)
{
	for (size_t i = 0; i < l->len; i++) {
		weft_peer_event_clear(&l->v[i]->ev);
		free(l->v[i]);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Expect @n MESSAGE events from @peer: messages 0..n-1 of stream @base,
 * in order, intact. */
static void expect_msgs(struct evlog *l, weft_peer_id peer, int first,
			int n, uint32_t base, unsigned ms)
{
	for (int i = first; i < first + n; i++) {
		weft_peer_event *ev = ev_find(l, WEFT_PEER_MESSAGE, 0, ms);
		cr_assert_not_null(ev, "message %d of %d not received", i,
				   first + n);
		cr_assert_eq(ev->peer, peer, "message %d from peer %llu", i,
			     (unsigned long long)ev->peer);
		cr_assert(msg_ok(ev->data, ev->len, i, base),
			  "message %d: %zu bytes, not the ones sent (want %zu)",
			  i, ev->len, msg_len(i));
	}
}

static bool is_loopback(const weft_peer_event *ev)
{
	const struct sockaddr_in *sin = (const void *)&ev->addr;

	return ev->addrlen >= sizeof(*sin) && sin->sin_family == AF_INET &&
	       sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

static uint16_t ev_port(const weft_peer_event *ev)
{
	return ntohs(((const struct sockaddr_in *)(const void *)&ev->addr)
			     ->sin_port);
}

/* ---- two connected nodes ---- */

struct pair {
	weft_peer_node *a, *b;
	struct evlog la, lb;
	weft_peer_id ab; /* B on A's list */
	weft_peer_id ba; /* A on B's list */
};

/* A and B list each other, A dials; both report CONNECTED. */
static void pair_up(struct pair *p, weft_runtime *rt,
		    const weft_peer_config *ca, const weft_peer_config *cb)
{
	weft_peer_config d = cfg_quick();

	p->a = node_new(rt, ca ? ca : &d);
	p->b = node_new(rt, cb ? cb : &d);
	log_init(&p->la, p->a);
	log_init(&p->lb, p->b);
	p->ab = add_port(p->a, weft_peer_port(p->b));
	p->ba = add_port(p->b, weft_peer_port(p->a));
	cr_assert_eq(weft_peer_connect(p->a, p->ab), 0);
	weft_peer_event *ca_ev =
		ev_expect(&p->la, WEFT_PEER_CONNECTED, p->ab, 5000);
	weft_peer_event *cb_ev =
		ev_expect(&p->lb, WEFT_PEER_CONNECTED, p->ba, 5000);
	cr_expect_not(ca_ev->inbound, "A dialed: not inbound");
	cr_expect(cb_ev->inbound, "B was dialed: inbound");
	cr_expect_eq(ca_ev->node_id, weft_peer_node_id(p->b));
	cr_expect_eq(cb_ev->node_id, weft_peer_node_id(p->a));
	cr_expect(is_loopback(ca_ev) && is_loopback(cb_ev));
	cr_expect_eq(ev_port(ca_ev), weft_peer_port(p->b),
		     "A's CONNECTED: port %u", ev_port(ca_ev));
}

static void pair_free(struct pair *p)
{
	node_free(p->a);
	node_free(p->b);
	log_free(&p->la);
	log_free(&p->lb);
}

/* ======================================================= urls, config */

WT_TEST(peer, url_good)
{
	weft_runtime *rt = rt_new(1);
	weft_peer_node *n = node_new(rt, NULL);
	static const char *urls[] = { "tcp://127.0.0.1:7000",
				      "tcp://[::1]:7000",
				      "tcp://localhost:7000",
				      "tcp://10.1.2.3:1",
				      "tcp://127.0.0.1:65535",
				      "tcp://[fe80::1]:80",
				      "tcp://example.invalid:9" };
	weft_peer_id id, last = 0;
	struct evlog l;

	log_init(&l, n);
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		id = 0;
		int err = weft_peer_add(n, urls[i], &id);
		cr_expect_eq(err, 0, "%s: %s", urls[i], weft_strerror(err));
		cr_expect_eq(id, last + 1, "%s: id %llu after %llu", urls[i],
			     (unsigned long long)id, (unsigned long long)last);
		last = id;
		weft_peer_event *ev = ev_expect(&l, WEFT_PEER_ADDED, 0, 2000);
		cr_expect_eq(ev->peer, id);
		cr_expect_str_eq(ev->url, urls[i]);
	}
	/* id may be NULL. */
	cr_expect_eq(weft_peer_add(n, "tcp://127.0.0.2:7000", NULL), 0);
	cr_expect_eq(stats(n).endpoints, 8);
	node_free(n);
	log_free(&l);
	wt_rt_free(rt);
}

WT_TEST(peer, url_bad)
{
	weft_runtime *rt = rt_new(1);
	weft_peer_node *n = node_new(rt, NULL);
	char longhost[600], longurl[700];
	static const char *bad[] = {
		"127.0.0.1:7000",          /* no scheme */
		"udp://127.0.0.1:7000",    /* another scheme */
		"tcp:/127.0.0.1:7000",     "tcp//127.0.0.1:7000",
		"TCP:127.0.0.1:7000",      "tcp://127.0.0.1", /* no port */
		"tcp://127.0.0.1:",        "tcp://127.0.0.1:0",
		"tcp://127.0.0.1:65536",   "tcp://127.0.0.1:99999999999999999999",
		"tcp://127.0.0.1:-1",      "tcp://127.0.0.1:7000x", /* junk */
		"tcp://127.0.0.1:7000/",   "tcp://127.0.0.1:7000 ",
		"tcp://127.0.0.1:7 000",   "tcp://:7000", /* empty host */
		"tcp://[]:7000",           "tcp://[::1:7000",
		"tcp://::1:7000",          "tcp://[::1]7000",
		"tcp://[::1]",             "tcp://",
		"",                        "tcp://127.0.0.1:0x10",
		"tcp://127.0.0.1:7000:8000",
	};
	weft_peer_id id;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		id = 12345;
		int err = weft_peer_add(n, bad[i], &id);
		cr_expect_eq(err, -EINVAL, "\"%s\": %d (%s)", bad[i], err,
			     weft_strerror(err));
	}
	memset(longhost, 'a', sizeof(longhost) - 1);
	longhost[sizeof(longhost) - 1] = 0;
	snprintf(longurl, sizeof(longurl), "tcp://%s:7000", longhost);
	cr_expect_eq(weft_peer_add(n, longurl, &id), -EINVAL, "over-long");
	cr_expect_eq(weft_peer_add(n, NULL, &id), -EINVAL);
	cr_expect_eq(weft_peer_add(NULL, "tcp://127.0.0.1:7000", &id),
		     -EINVAL);
	cr_expect_eq(stats(n).endpoints, 0, "a bad url was listed");
	/* Nothing half-added: the first good one still gets id 1. */
	cr_expect_eq(weft_peer_add(n, "tcp://127.0.0.1:7000", &id), 0);
	cr_expect_eq(id, 1);
	node_free(n);
	wt_rt_free(rt);
}

WT_TEST(peer, url_duplicate_remove_readd)
{
	weft_runtime *rt = rt_new(1);
	weft_peer_node *n = node_new(rt, NULL);
	weft_peer_id a = 0, b = 0, c = 0, dup = 0;
	struct evlog l;

	log_init(&l, n);
	cr_assert_eq(weft_peer_add(n, "tcp://127.0.0.1:7000", &a), 0);
	cr_assert_eq(weft_peer_add(n, "tcp://127.0.0.1:7001", &b), 0);
	cr_expect_eq(weft_peer_add(n, "tcp://127.0.0.1:7000", &dup), -EEXIST);
	cr_expect_eq(dup, a, "-EEXIST gives the listed id");
	dup = 0;
	cr_expect_eq(weft_peer_add(n, "tcp://127.0.0.1:7001", &dup), -EEXIST);
	cr_expect_eq(dup, b);
	cr_expect_eq(weft_peer_add(n, "tcp://127.0.0.1:7001", NULL), -EEXIST);
	cr_expect_eq(stats(n).endpoints, 2);
	ev_expect(&l, WEFT_PEER_ADDED, a, 2000);
	ev_expect(&l, WEFT_PEER_ADDED, b, 2000);
	log_drain(&l, 100);
	cr_expect_eq(ev_count(&l, WEFT_PEER_ADDED, 0), 2,
		     "a duplicate made an ADDED event");

	/* Removed: the id is not reused, the url may come back. */
	cr_expect_eq(weft_peer_remove(n, a), 0);
	weft_peer_event *r = ev_expect(&l, WEFT_PEER_REMOVED, a, 2000);
	cr_expect_eq(r->dropped, 0);
	cr_expect_eq(weft_peer_remove(n, a), -ENOENT);
	cr_expect_eq(weft_peer_add(n, "tcp://127.0.0.1:7000", &c), 0);
	cr_expect_eq(c, 3, "ids are never reused: got %llu",
		     (unsigned long long)c);
	cr_expect_eq(stats(n).endpoints, 2);
	cr_expect_eq(weft_peer_remove(n, 0), -ENOENT);
	cr_expect_eq(weft_peer_remove(n, 99), -ENOENT);
	cr_expect_eq(weft_peer_remove(NULL, b), -EINVAL);
	node_free(n);
	log_free(&l);
	wt_rt_free(rt);
}

/* Bad configuration @i into @c; its name, or NULL past the last. */
static const char *bad_cfg(int i, weft_peer_config *c)
{
	switch (i) {
	case 0: c->bind = "not an address"; return "bind garbage";
	case 1: c->bind = "localhost"; return "bind a name";
	case 2: c->bind = ""; return "bind empty";
	case 3: c->bind = "127.0.0.1:80"; return "bind with a port";
	case 4: c->bind = "256.0.0.1"; return "bind 256.0.0.1";
	case 5:
		c->max_message = WEFT_PEER_MAX_MESSAGE_LIMIT + 1;
		return "max_message over the limit";
	case 6: c->max_message = SIZE_MAX; return "max_message SIZE_MAX";
	case 7: c->shutdown_mode = 2; return "shutdown_mode 2";
	case 8: c->shutdown_mode = -1; return "shutdown_mode -1";
	case 9: c->size = 0; return "size 0";
	case 10: c->size = sizeof(size_t); return "size too small";
	case 11:
		c->beacon = "http://239.255.77.77:47777";
		return "beacon http";
	case 12: c->beacon = "udp://239.255.77.77"; return "beacon no port";
	case 13: c->beacon = "udp://239.255.77.77:0"; return "beacon port 0";
	case 14: c->beacon = "udp://nowhere:1"; return "beacon a name";
	default: return NULL;
	}
}

WT_TEST(peer, config_invalid)
{
	weft_runtime *rt = rt_new(1);
	weft_peer_node *n;
	weft_peer_config c;
	const char *what;

	for (int i = 0; weft_peer_config_init(&c), (what = bad_cfg(i, &c));
	     i++) {
		n = (weft_peer_node *)&n;
		int err = weft_peer_node_new(rt, &c, &n);
		cr_expect_eq(err, -EINVAL, "%s: %d (%s)", what, err,
			     weft_strerror(err));
		if (err == 0)
			node_free(n);
	}
	weft_peer_config_init(&c);
	cr_expect_eq(weft_peer_node_new(NULL, &c, &n), -EINVAL);
	cr_expect_eq(weft_peer_node_new(rt, &c, NULL), -EINVAL);
	weft_peer_config_init(NULL); /* accepted */
	cr_expect_eq(weft_peer_port(NULL), 0);
	cr_expect_eq(weft_peer_node_id(NULL), 0);
	cr_expect_eq(weft_peer_node_free(NULL), 0);

	/* The limit itself, an IPv6 bind and a given identity are fine. */
	weft_peer_config_init(&c);
	c.max_message = WEFT_PEER_MAX_MESSAGE_LIMIT;
	c.node_id = 0x0123456789abcdefull;
	n = node_new(rt, &c);
	cr_expect_eq(weft_peer_node_id(n), 0x0123456789abcdefull);
	node_free(n);
	weft_peer_config_init(&c);
	c.bind = "::1";
	n = NULL;
	int err = weft_peer_node_new(rt, &c, &n);
	cr_expect(err == 0 || err == -EADDRNOTAVAIL || err == -EAFNOSUPPORT,
		  "bind ::1: %s", weft_strerror(err));
	if (!err) {
		cr_expect_gt(weft_peer_port(n), 0);
		node_free(n);
	}
	/* Random identities differ. */
	weft_peer_node *x = node_new(rt, NULL), *y = node_new(rt, NULL);
	cr_expect_neq(weft_peer_node_id(x), 0);
	cr_expect_neq(weft_peer_node_id(x), weft_peer_node_id(y));
	node_free(x);
	node_free(y);
	wt_rt_free(rt);
}

WT_TEST(peer, port_in_use)
{
	weft_runtime *rt = rt_new(1);
	weft_peer_node *a = node_new(rt, NULL), *b = NULL;
	weft_peer_config c;

	weft_peer_config_init(&c);
	c.port = weft_peer_port(a);
	cr_expect_eq(weft_peer_node_new(rt, &c, &b), -EADDRINUSE);
	/* A plain listener holds a port too. */
	int lfd = weft_tcp_listen("127.0.0.1", 0, 4);
	cr_assert_geq(lfd, 0);
	c.port = (uint16_t)weft_tcp_local_port(lfd);
	cr_expect_eq(weft_peer_node_new(rt, &c, &b), -EADDRINUSE);
	close(lfd);
	/* Freed, the port is free again. */
	c.port = weft_peer_port(a);
	node_free(a);
	b = node_new(rt, &c);
	cr_expect_eq(weft_peer_port(b), c.port);
	node_free(b);
	wt_rt_free(rt);
}

/* ===================================================== two nodes */

WT_TEST_T(peer, two_nodes_messages, 60)
{
	weft_runtime *rt = rt_new(2);
	weft_peer_config c = cfg_quick();
	struct pair p;
	enum { N = 200 };
	uint64_t bytes = 0;

	c.max_message = 65536;
	pair_up(&p, rt, &c, &c);
	weft_peer_stats sa = stats(p.a), sb = stats(p.b);
	cr_expect_eq(sa.connected, 1);
	cr_expect_eq(sb.connected, 1);
	cr_expect_eq(sa.connects, 1);
	cr_expect_eq(sb.connects, 1);
	cr_expect_eq(sa.endpoints, 1);
	/* connect again: already connected, nothing happens */
	cr_expect_eq(weft_peer_connect(p.a, p.ab), 0);

	for (int i = 0; i < N; i++) {
		cr_assert_eq(send_msg(p.a, p.ab, i, 1000), 0, "A msg %d", i);
		cr_assert_eq(send_msg(p.b, p.ba, i, 5000), 0, "B msg %d", i);
		bytes += msg_len(i);
	}
	expect_msgs(&p.lb, p.ba, 0, N, 1000, 5000);
	expect_msgs(&p.la, p.ab, 0, N, 5000, 5000);
	/* SENT: one per message, in order, with its size. */
	for (int i = 0; i < N; i++) {
		weft_peer_event *ev =
			ev_expect(&p.la, WEFT_PEER_SENT, p.ab, 5000);
		cr_expect_eq(ev->len, msg_len(i), "SENT %d: %zu bytes", i,
			     ev->len);
	}
	sa = stats(p.a);
	sb = stats(p.b);
	cr_expect_eq(sa.sent, N);
	cr_expect_eq(sa.sent_bytes, bytes);
	cr_expect_eq(sa.received, N);
	cr_expect_eq(sa.received_bytes, bytes);
	cr_expect_eq(sb.received, N);
	cr_expect_eq(sb.received_bytes, bytes);
	cr_expect_eq(stat_wait(p.b, STAT(sent), N, 5000), N);
	cr_expect_eq(sa.send_failed + sa.dropped + sa.refused + sa.duplicates,
		     0);
	cr_expect_eq(ev_count(&p.la, WEFT_PEER_SEND_FAILED, 0), 0);
	cr_expect_eq(ev_count(&p.la, WEFT_PEER_DISCONNECTED, 0), 0);
	cr_expect_eq(ev_count(&p.lb, WEFT_PEER_DISCONNECTED, 0), 0);

	/* A disconnects: both see it, B's reason 0 (closed at a boundary),
	 * A's -ECANCELED; sends then fail -ENOTCONN. */
	cr_expect_eq(weft_peer_disconnect(p.a, p.ab), 0);
	weft_peer_event *d =
		ev_expect(&p.la, WEFT_PEER_DISCONNECTED, p.ab, 5000);
	cr_expect_eq(d->error, -ECANCELED, "A: %d", d->error);
	cr_expect_eq(d->node_id, weft_peer_node_id(p.b));
	d = ev_expect(&p.lb, WEFT_PEER_DISCONNECTED, p.ba, 5000);
	cr_expect(d->error == 0 || d->error == -ECONNRESET, "B: %d",
		  d->error);
	cr_expect_eq(weft_peer_try_send(p.a, p.ab, "x", 1), -ENOTCONN);
	cr_expect_eq(stat_wait(p.a, STAT(disconnects), 1, 2000), 1);
	cr_expect_eq(stats(p.a).connected, 0);
	/* Not wanted: no redial. */
	wt_sleep_ms(200);
	log_drain(&p.la, 0);
	cr_expect_eq(ev_count(&p.la, WEFT_PEER_CONNECTED, 0), 1,
		     "redialed after disconnect");
	/* B may still dial A. */
	cr_expect_eq(weft_peer_connect(p.b, p.ba), 0);
	weft_peer_event *ce = ev_expect(&p.la, WEFT_PEER_CONNECTED, p.ab, 5000);
	cr_expect(ce->inbound);
	ev_expect(&p.lb, WEFT_PEER_CONNECTED, p.ba, 5000);
	cr_expect_eq(send_msg(p.a, p.ab, 3, 77), 0);
	expect_msgs(&p.lb, p.ba, 3, 1, 77, 5000);
	pair_free(&p);
	wt_rt_free(rt);
}

static void *co_send_big(void *arg)
{
	weft_peer_node *n = ((void **)arg)[0];
	weft_peer_id id = *(weft_peer_id *)((void **)arg)[1];
	static char big[65537];

	FCHECK(weft_co_peer_send(n, id, big, sizeof(big), 0) == -EMSGSIZE);
	FCHECK(weft_co_peer_send(n, id, big, 100, 0) == 0);
	return NULL;
}

WT_TEST_T(peer, message_sizes, 60)
{
	weft_runtime *rt = rt_new(2);
	weft_peer_config c = cfg_quick(), cb = cfg_quick();
	struct pair p;
	enum { MAX = 65536 };
	unsigned char *big = malloc(2 * MAX);
	weft_peer_send s;

	cr_assert_not_null(big);
	wt_fill(big, 2 * MAX, 9);
	c.max_message = MAX;
	cb.max_message = MAX / 2;
	pair_up(&p, rt, &c, &cb);

	/* A's limit: exactly MAX goes, MAX + 1 is refused at every send. */
	cr_expect_eq(weft_peer_try_send(p.a, p.ab, big, MAX + 1), -EMSGSIZE);
	cr_expect_eq(weft_peer_send_init(&s, p.a, p.ab, big, MAX + 1),
		     -EMSGSIZE);
	cr_expect_eq(weft_peer_multicast(p.a, &p.ab, 1, big, MAX + 1, NULL),
		     -EMSGSIZE);
	cr_expect_eq(weft_peer_broadcast(p.a, big, MAX + 1, NULL), -EMSGSIZE);
	void *args[2] = { p.a, &p.ab };
	wt_fiber_run(rt, co_send_big, args);
	/* 0 bytes */
	cr_expect_eq(weft_peer_try_send(p.a, p.ab, NULL, 0), 0);
	cr_expect_eq(weft_peer_try_send(p.a, p.ab, NULL, 1), -EINVAL);
	/* B's own limit is MAX / 2: the first message fits. */
	cr_expect_eq(weft_peer_try_send(p.a, p.ab, big, MAX / 2), 0);
	weft_peer_event *ev = ev_expect(&p.lb, WEFT_PEER_MESSAGE, p.ba, 5000);
	cr_expect_eq(ev->len, 100, "the fiber's message: %zu", ev->len);
	ev = ev_expect(&p.lb, WEFT_PEER_MESSAGE, p.ba, 5000);
	cr_expect_eq(ev->len, 0);
	ev = ev_expect(&p.lb, WEFT_PEER_MESSAGE, p.ba, 5000);
	cr_expect_eq(ev->len, MAX / 2);
	cr_expect(ev->len == MAX / 2 && !memcmp(ev->data, big, MAX / 2));
	/* The application may take the data. */
	void *data = ev->data;
	ev->data = NULL;
	free(data);
	/* B -> A, exactly A's limit */
	cr_expect_eq(weft_peer_try_send(p.b, p.ba, big, MAX / 2 + 1),
		     -EMSGSIZE);
	/* A sends B more than B's limit: B drops the connection with
	 * -EMSGSIZE; A (wanting B) dials again. */
	cr_expect_eq(weft_peer_try_send(p.a, p.ab, big, MAX), 0);
	ev = ev_expect(&p.lb, WEFT_PEER_DISCONNECTED, p.ba, 5000);
	cr_expect_eq(ev->error, -EMSGSIZE, "B: %d", ev->error);
	cr_expect_eq(ev_count(&p.lb, WEFT_PEER_MESSAGE, 0), 3,
		     "the oversize message was delivered");
	ev_expect(&p.la, WEFT_PEER_DISCONNECTED, p.ab, 5000);
	ev_expect(&p.la, WEFT_PEER_CONNECTED, p.ab, 5000);
	ev_expect(&p.lb, WEFT_PEER_CONNECTED, p.ba, 5000);
	cr_expect_eq(weft_peer_try_send(p.b, p.ba, big, MAX / 2), 0);
	ev = ev_expect(&p.la, WEFT_PEER_MESSAGE, p.ab, 5000);
	cr_expect(ev->len == MAX / 2 && !memcmp(ev->data, big, MAX / 2));
	pair_free(&p);
	free(big);
	wt_rt_free(rt);
}

/* ====================================================== refusals */

WT_TEST_T(peer, refuses_unknown_node, 60)
{
	weft_runtime *rt = rt_new(2);
	struct pair p;
	weft_peer_config c = cfg_quick();

	pair_up(&p, rt, NULL, NULL);
	weft_peer_node *cn = node_new(rt, &c);
	struct evlog lc;
	log_init(&lc, cn);
	weft_peer_id cb = add_port(cn, weft_peer_port(p.b));
	cr_assert_eq(weft_peer_connect(cn, cb), 0);

	weft_peer_event *r = ev_expect(&p.lb, WEFT_PEER_REFUSED, 0, 5000);
	cr_expect_eq(r->error, -EACCES, "REFUSED: %d", r->error);
	cr_expect_eq(r->peer, 0);
	cr_expect(is_loopback(r), "REFUSED: not C's address");
	cr_expect_eq(r->node_id, weft_peer_node_id(cn));
	/* C redials every 50 ms: more refusals come. */
	cr_expect_geq(stat_wait(p.b, STAT(refused), 4, 5000), 4);
	weft_peer_stats sc = stats(cn);
	cr_expect_eq(sc.connected, 0);
	cr_expect_eq(sc.connects, 0);
	log_drain(&lc, 0);
	cr_expect_eq(ev_count(&lc, WEFT_PEER_CONNECTED, 0), 0);
	cr_expect_eq(ev_count(&p.lb, WEFT_PEER_CONNECTED, 0), 1,
		     "B connected C");
	/* B's connection to A is untouched. */
	cr_expect_eq(stats(p.b).connected, 1);
	cr_expect_eq(send_msg(p.a, p.ab, 5, 1), 0);
	cr_expect_eq(send_msg(p.b, p.ba, 6, 2), 0);
	expect_msgs(&p.lb, p.ba, 5, 1, 1, 5000);
	expect_msgs(&p.la, p.ab, 6, 1, 2, 5000);
	cr_expect_eq(ev_count(&p.lb, WEFT_PEER_DISCONNECTED, 0), 0);
	/* Once B lists C, C gets in. */
	add_port(p.b, weft_peer_port(cn));
	ev_expect(&lc, WEFT_PEER_CONNECTED, cb, 5000);
	cr_expect_eq(stat_wait(p.b, STAT(connected), 2, 5000), 2);
	node_free(cn);
	log_free(&lc);
	pair_free(&p);
	wt_rt_free(rt);
}

/* ---- raw clients ---- */

static int raw_connect(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void raw_write(int fd, const void *b, size_t n)
{
	cr_assert_eq(send(fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Read exactly @n bytes (5 s): returns n, or what came before EOF/error. */
static size_t raw_read(int fd, void *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(fd, (char *)b + got, n - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* Whether the remote closed @fd (EOF or reset) within 5 s. */
static bool raw_closed(int fd)
{
	char c[64];
	ssize_t r;

	while ((r = recv(fd, c, sizeof(c), 0)) > 0)
		;
	return r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

/* A handshake frame: length 16, then "WEFT", version, type, port, id. */
static void hs_put(unsigned char b[20], int version, int type, uint16_t port,
		   uint64_t id)
{
	b[0] = b[1] = b[2] = 0;
	b[3] = 16;
	memcpy(b + 4, "WEFT", 4);
	b[8] = (unsigned char)version;
	b[9] = (unsigned char)type;
	b[10] = (unsigned char)(port >> 8);
	b[11] = (unsigned char)port;
	for (int i = 0; i < 8; i++)
		b[12 + i] = (unsigned char)(id >> (56 - 8 * i));
}

static uint64_t hs_id(const unsigned char b[20])
{
	uint64_t id = 0;

	for (int i = 0; i < 8; i++)
		id = id << 8 | b[12 + i];
	return id;
}

/* Send @hello on a new raw connection to @port; expect a REFUSED event
 * with @err on @l, and (when @reason) a REFUSE frame with it. */
static void raw_refused(struct evlog *l, uint16_t port, const void *hello,
			size_t n, int err, int reason, uint64_t id)
{
	unsigned char b[20];
	int fd = raw_connect(port);

	if (n)
		raw_write(fd, hello, n);
	weft_peer_event *ev = ev_expect(l, WEFT_PEER_REFUSED, 0, 5000);
	cr_expect_eq(ev->error, err, "REFUSED %d, want %d", ev->error, err);
	cr_expect(is_loopback(ev));
	if (id)
		cr_expect_eq(ev->node_id, id);
	if (reason) {
		size_t got = raw_read(fd, b, 20);
		cr_expect_eq(got, 20, "no REFUSE frame (%zu bytes)", got);
		if (got == 20) {
			cr_expect(b[3] == 16 && !memcmp(b + 4, "WEFT", 4) &&
					  b[9] == 3,
				  "not a REFUSE: type %d", b[9]);
			cr_expect_eq(b[10] * 256 + b[11], reason,
				     "REFUSE reason %d, want %d",
				     b[10] * 256 + b[11], reason);
		}
	}
	cr_expect(raw_closed(fd), "the refused connection stays open");
	close(fd);
}

WT_TEST_T(peer, refuses_bad_handshakes, 60)
{
	weft_runtime *rt = rt_new(2);
	weft_peer_config c = cfg_quick();
	struct pair p;
	unsigned char h[40];
	uint16_t listed = free_port();

	c.handshake_ns = 300 * MS;
	pair_up(&p, rt, NULL, &c);
	uint16_t pb = weft_peer_port(p.b);
	uint64_t idb = weft_peer_node_id(p.b);
	add_port(p.b, listed);

	/* Silence: nothing within handshake_ns. */
	uint64_t t0 = wt_mono_ns();
	raw_refused(&p.lb, pb, NULL, 0, -EPROTO, 0, 0);
	cr_expect_geq(wt_mono_ns() - t0, 250 * MS, "refused before the "
						   "handshake time");
	/* Garbage (its "length" is over any limit). */
	raw_refused(&p.lb, pb, "GET / HTTP/1.0\r\n\r\n", 18, -EPROTO, 0, 0);
	/* A frame of the wrong length. */
	memset(h, 0, sizeof(h));
	h[3] = 8;
	memcpy(h + 4, "WEFT\1\1\0\1", 8);
	raw_refused(&p.lb, pb, h, 12, -EPROTO, 0, 0);
	/* Bad magic. */
	hs_put(h, 1, 1, listed, 77);
	h[7] = 'X';
	raw_refused(&p.lb, pb, h, 20, -EPROTO, 0, 0);
	/* A WELCOME from a dialer. */
	hs_put(h, 1, 2, listed, 77);
	raw_refused(&p.lb, pb, h, 20, -EPROTO, 0, 0);
	/* Half a handshake, then silence. */
	hs_put(h, 1, 1, listed, 77);
	raw_refused(&p.lb, pb, h, 10, -EPROTO, 0, 0);
	/* Another version: REFUSE reason 3. */
	hs_put(h, 2, 1, listed, 77);
	raw_refused(&p.lb, pb, h, 20, -EPROTONOSUPPORT, 3, 0);
	/* B's own identity: REFUSE reason 4. */
	hs_put(h, 1, 1, listed, idb);
	raw_refused(&p.lb, pb, h, 20, -EEXIST, 4, 0);
	/* A port B does not list: REFUSE reason 1. */
	hs_put(h, 1, 1, (uint16_t)(listed ^ 1), 78);
	raw_refused(&p.lb, pb, h, 20, -EACCES, 1, 78);

	weft_peer_stats sb = stats(p.b);
	cr_expect_eq(sb.refused, 9);
	cr_expect_eq(sb.connected, 1);
	cr_expect_eq(sb.connects, 1);
	cr_expect_eq(ev_count(&p.lb, WEFT_PEER_CONNECTED, 0), 1);
	/* A and B go on. */
	cr_expect_eq(send_msg(p.a, p.ab, 9, 3), 0);
	expect_msgs(&p.lb, p.ba, 9, 1, 3, 5000);
	cr_expect_eq(send_msg(p.b, p.ba, 9, 4), 0);
	expect_msgs(&p.la, p.ab, 9, 1, 4, 5000);
	pair_free(&p);
	wt_rt_free(rt);
}

/* A raw client that speaks the protocol (docs/peer.md) as a listed node. */
static int raw_node(struct evlog *l, uint16_t port, uint16_t announce,
		    uint64_t id, weft_peer_id listed)
{
	unsigned char h[20], w[20];
	int fd = raw_connect(port);

	hs_put(h, 1, 1, announce, id);
	raw_write(fd, h, 20);
	cr_assert_eq(raw_read(fd, w, 20), 20, "no WELCOME");
	cr_expect(w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == 16,
		  "WELCOME frame length");
	cr_expect(!memcmp(w + 4, "WEFT", 4) && w[8] == 1 && w[9] == 2,
		  "not a WELCOME: %02x %02x", w[8], w[9]);
	cr_expect_eq(w[10] * 256 + w[11], port, "WELCOME port");
	cr_expect_eq(hs_id(w), weft_peer_node_id(l->n), "WELCOME id");
	weft_peer_event *ev = ev_expect(l, WEFT_PEER_CONNECTED, listed, 5000);
	cr_expect(ev->inbound);
	cr_expect_eq(ev->node_id, id);
	cr_expect(is_loopback(ev));
	return fd;
}

WT_TEST_T(peer, wire_format, 60)
{
	weft_runtime *rt = rt_new(2);
	weft_peer_config c = cfg_quick();
	weft_peer_node *b;
	struct evlog l;
	unsigned char buf[64];
	uint16_t x = free_port();

	c.max_message = 1000;
	b = node_new(rt, &c);
	log_init(&l, b);
	uint16_t pb = weft_peer_port(b);
	weft_peer_id idx = add_port(b, x);

	/* A message each way. */
	int fd = raw_node(&l, pb, x, 0x1122334455667788ull, idx);
	raw_write(fd, "\0\0\0\5hello\0\0\0\0", 13);
	weft_peer_event *ev = ev_expect(&l, WEFT_PEER_MESSAGE, idx, 5000);
	cr_expect(ev->len == 5 && !memcmp(ev->data, "hello", 5));
	ev = ev_expect(&l, WEFT_PEER_MESSAGE, idx, 5000);
	cr_expect_eq(ev->len, 0);
	cr_expect_eq(weft_peer_try_send(b, idx, "world", 5), 0);
	cr_expect_eq(weft_peer_try_send(b, idx, NULL, 0), 0);
	cr_expect_eq(raw_read(fd, buf, 13), 13);
	cr_expect(!memcmp(buf, "\0\0\0\5world\0\0\0\0", 13),
		  "frames: %02x %02x %02x %02x", buf[0], buf[1], buf[2],
		  buf[3]);
	ev = ev_expect(&l, WEFT_PEER_SENT, idx, 5000);
	cr_expect_eq(ev->len, 5);
	/* Over max_message: -EMSGSIZE from the header alone. */
	raw_write(fd, "\0\0\3\xe9", 4);
	ev = ev_expect(&l, WEFT_PEER_DISCONNECTED, idx, 5000);
	cr_expect_eq(ev->error, -EMSGSIZE, "%d", ev->error);
	cr_expect_eq(ev->node_id, 0x1122334455667788ull);
	cr_expect(raw_closed(fd));
	close(fd);

	/* Exactly max_message is fine; the connection ends inside a frame:
	 * -EPROTO. */
	fd = raw_node(&l, pb, x, 0x1122334455667788ull, idx);
	unsigned char *m = calloc(1, 1004);
	m[2] = 0x03;
	m[3] = 0xe8;
	raw_write(fd, m, 1004);
	free(m);
	ev = ev_expect(&l, WEFT_PEER_MESSAGE, idx, 5000);
	cr_expect_eq(ev->len, 1000);
	raw_write(fd, "\0\0\0\12abc", 7);
	wt_sleep_ms(50);
	close(fd);
	ev = ev_expect(&l, WEFT_PEER_DISCONNECTED, idx, 5000);
	cr_expect_eq(ev->error, -EPROTO, "%d", ev->error);

	/* Closed at a boundary: 0. */
	fd = raw_node(&l, pb, x, 0x1122334455667788ull, idx);
	close(fd);
	ev = ev_expect(&l, WEFT_PEER_DISCONNECTED, idx, 5000);
	cr_expect_eq(ev->error, 0, "%d", ev->error);
	/* A reset: -ECONNRESET. */
	fd = raw_node(&l, pb, x, 0x1122334455667788ull, idx);
	wt_close_with_reset(fd);
	ev = ev_expect(&l, WEFT_PEER_DISCONNECTED, idx, 5000);
	cr_expect_eq(ev->error, -ECONNRESET, "%d", ev->error);

	/* B dials a raw listener: HELLO with B's port and id. */
	int lfd = weft_tcp_listen("127.0.0.1", 0, 4);
	cr_assert_geq(lfd, 0);
	weft_peer_id idl = add_port(b, (uint16_t)weft_tcp_local_port(lfd));
	cr_assert_eq(weft_peer_connect(b, idl), 0);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(fd, 0);
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(raw_read(fd, buf, 20), 20, "no HELLO");
	cr_expect(buf[3] == 16 && !memcmp(buf + 4, "WEFT", 4) &&
		  buf[8] == 1 && buf[9] == 1, "not a HELLO");
	cr_expect_eq(buf[10] * 256 + buf[11], pb, "HELLO port");
	cr_expect_eq(hs_id(buf), weft_peer_node_id(b), "HELLO id");
	cr_expect_eq(stats(b).connected, 0, "connected before the WELCOME");
	hs_put(buf, 1, 2, 9, 0x99);
	raw_write(fd, buf, 20);
	ev = ev_expect(&l, WEFT_PEER_CONNECTED, idl, 5000);
	cr_expect_not(ev->inbound);
	cr_expect_eq(ev->node_id, 0x99);
	close(fd);
	ev_expect(&l, WEFT_PEER_DISCONNECTED, idl, 5000);
	/* It redials; this time the listener refuses (reason 2): no
	 * CONNECTED, and it keeps dialing. */
	for (int round = 0; round < 2; round++) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		cr_assert_geq(fd, 0);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		cr_assert_eq(raw_read(fd, buf, 20), 20, "no HELLO");
		hs_put(buf, 1, 3, 2, 0x99);
		raw_write(fd, buf, 20);
		cr_expect(raw_closed(fd));
		close(fd);
	}
	log_drain(&l, 50);
	cr_expect_eq(ev_count(&l, WEFT_PEER_CONNECTED, idl), 1);
	cr_expect_eq(weft_peer_disconnect(b, idl), 0);
	close(lfd);
	node_free(b);
	log_free(&l);
	wt_rt_free(rt);
}

/* ================================================= reconnect, races */

WT_TEST_T(peer, reconnects_after_restart, 60)
{
	weft_runtime *rt = rt_new(2);
	struct pair p;
	weft_peer_config c = cfg_quick();

	pair_up(&p, rt, NULL, NULL);
	uint16_t pb = weft_peer_port(p.b);
	uint64_t old_id = weft_peer_node_id(p.b);
	cr_expect_eq(send_msg(p.a, p.ab, 1, 10), 0);
	expect_msgs(&p.lb, p.ba, 1, 1, 10, 5000);

	for (int round = 0; round < 3; round++) {
		node_free(p.b);
		log_free(&p.lb);
		weft_peer_event *d =
			ev_expect(&p.la, WEFT_PEER_DISCONNECTED, p.ab, 5000);
		cr_expect(d->error == 0 || d->error == -ECONNRESET,
			  "DISCONNECTED %d", d->error);
		cr_expect_eq(d->node_id, old_id);
		/* Queued while B is away: delivered after. */
		cr_expect_eq(send_msg(p.a, p.ab, 2, 20 + round), 0);
		wt_sleep_ms(120); /* a few failed dials */
		c.port = pb;
		p.b = node_new(rt, &c);
		log_init(&p.lb, p.b);
		cr_assert_neq(weft_peer_node_id(p.b), old_id);
		p.ba = add_port(p.b, weft_peer_port(p.a));
		uint64_t t0 = wt_mono_ns();
		weft_peer_event *ce =
			ev_expect(&p.la, WEFT_PEER_CONNECTED, p.ab, 5000);
		cr_expect_lt(wt_mono_ns() - t0, 2000 * MS,
			     "reconnect took %llu ms",
			     (unsigned long long)(wt_mono_ns() - t0) / MS);
		cr_expect_eq(ce->node_id, weft_peer_node_id(p.b));
		cr_expect_gt(ev_index(&p.la, ce), ev_index(&p.la, d));
		ev_expect(&p.lb, WEFT_PEER_CONNECTED, p.ba, 5000);
		expect_msgs(&p.lb, p.ba, 2, 1, 20 + round, 5000);
		cr_expect_eq(send_msg(p.b, p.ba, 3, 30 + round), 0);
		expect_msgs(&p.la, p.ab, 3, 1, 30 + round, 5000);
		old_id = weft_peer_node_id(p.b);
	}
	weft_peer_stats sa = stats(p.a);
	cr_expect_eq(sa.connects, 4);
	cr_expect_eq(sa.disconnects, 3);
	cr_expect_eq(sa.connected, 1);
	cr_expect_eq(sa.dropped + sa.send_failed, 0);
	pair_free(&p);
	wt_rt_free(rt);
}

struct dialer {
	weft_peer_node *n;
	weft_peer_id id;
	pthread_barrier_t *bar;
	unsigned delay_us;
	int rc;
};

static void *dial_thread(void *arg)
{
	struct dialer *d = arg;

	pthread_barrier_wait(d->bar);
	if (d->delay_us)
		usleep(d->delay_us);
	d->rc = weft_peer_connect(d->n, d->id);
	/* Sent before connected: queued, and none may be lost. */
	for (int i = 0; i < 5 && d->rc == 0; i++)
		d->rc = send_msg(d->n, d->id, i, 100);
	return NULL;
}

/*
 * @tx sent 5 early messages (stream 100, before connected) and 20 later
 * ones (stream @base, once settled) to @to. Wait until each is SENT or
 * SEND_FAILED at @tx, then until @rx has the SENT ones; check that the
 * early ones came at most once each, in order, and the later ones after
 * them, in order, all of them.
 */
static void check_stream(struct evlog *tx, weft_peer_id to, struct evlog *rx,
			 weft_peer_id from, uint32_t base, int round)
{
	uint64_t deadline = wt_mono_ns() + 5000 * MS;
	size_t sent, failed, nm;

	while ((sent = ev_count(tx, WEFT_PEER_SENT, to)) +
			       (failed = ev_count(tx, WEFT_PEER_SEND_FAILED,
						  to)) <
		       25 &&
	       wt_mono_ns() < deadline)
		log_pump(tx, 100);
	cr_assert_eq(sent + failed, 25, "round %d: %zu SENT + %zu failed",
		     round, sent, failed);
	cr_assert_leq(failed, 5, "round %d: a later message failed", round);
	while ((nm = ev_count(rx, WEFT_PEER_MESSAGE, 0)) < sent &&
	       wt_mono_ns() < deadline)
		log_pump(rx, 100);
	log_drain(rx, 50);
	nm = ev_count(rx, WEFT_PEER_MESSAGE, 0);
	cr_assert_eq(nm, sent, "round %d: %zu received of %zu SENT (%zu "
			       "failed)",
		     round, nm, sent, failed);
	int next = 0;
	size_t seen = 0;
	for (size_t i = 0; i < rx->len; i++) {
		weft_peer_event *e = &rx->v[i]->ev;
		if (e->kind != WEFT_PEER_MESSAGE)
			continue;
		cr_assert_eq(e->peer, from);
		rx->v[i]->used = true;
		if (seen++ < nm - 20) { /* early */
			while (next < 5 && !msg_ok(e->data, e->len, next, 100))
				next++;
			cr_assert_lt(next, 5, "round %d: early message %zu "
					      "repeated, out of order or "
					      "corrupt",
				     round, seen - 1);
			next++;
			continue;
		}
		cr_assert(msg_ok(e->data, e->len, (int)(seen - 1 - (nm - 20)),
				 base),
			  "round %d: later message %zu", round,
			  seen - 1 - (nm - 20));
	}
}

WT_TEST_T(peer, simultaneous_dial, 120)
{
	weft_runtime *rt = rt_new(2);
	unsigned seed = 12345;
	uint64_t dups = 0;
	pthread_barrier_t bar;

	pthread_barrier_init(&bar, NULL, 2);
	for (int round = 0; round < 50; round++) {
		weft_peer_config c = cfg_quick();
		struct pair p;

		p.a = node_new(rt, &c);
		p.b = node_new(rt, &c);
		log_init(&p.la, p.a);
		log_init(&p.lb, p.b);
		p.ab = add_port(p.a, weft_peer_port(p.b));
		p.ba = add_port(p.b, weft_peer_port(p.a));
		struct dialer da = { .n = p.a, .id = p.ab, .bar = &bar },
			      db = { .n = p.b, .id = p.ba, .bar = &bar };
		da.delay_us = (unsigned)(rand_r(&seed) % 3) * 300;
		db.delay_us = (unsigned)(rand_r(&seed) % 3) * 300;
		pthread_t ta, tb;
		pthread_create(&ta, NULL, dial_thread, &da);
		pthread_create(&tb, NULL, dial_thread, &db);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		cr_assert_eq(da.rc, 0);
		cr_assert_eq(db.rc, 0);

		/* Settled: one connection each way, identities right. */
		cr_assert_eq(stat_wait(p.a, STAT(connected), 1, 5000), 1);
		cr_assert_eq(stat_wait(p.b, STAT(connected), 1, 5000), 1);
		wt_sleep_ms(30 + (unsigned)(rand_r(&seed) % 50));
		/* Later messages: every one, in order. */
		for (int i = 0; i < 20; i++) {
			cr_assert_eq(send_msg(p.a, p.ab, i, 300), 0);
			cr_assert_eq(send_msg(p.b, p.ba, i, 400), 0);
		}
		check_stream(&p.la, p.ab, &p.lb, p.ba, 300, round);
		check_stream(&p.lb, p.ba, &p.la, p.ab, 400, round);
		weft_peer_stats sa = stats(p.a), sb = stats(p.b);
		cr_assert_eq(sa.connected, 1, "round %d: A has %llu", round,
			     (unsigned long long)sa.connected);
		cr_assert_eq(sb.connected, 1, "round %d: B has %llu", round,
			     (unsigned long long)sb.connected);
		cr_assert_eq(sa.connects - sa.disconnects, 1);
		cr_assert_eq(sb.connects - sb.disconnects, 1);
		cr_assert_eq(ev_count(&p.la, WEFT_PEER_CONNECTED, 0) -
				     ev_count(&p.la, WEFT_PEER_DISCONNECTED, 0),
			     1, "round %d: A's events", round);
		cr_assert_eq(ev_count(&p.lb, WEFT_PEER_CONNECTED, 0) -
				     ev_count(&p.lb, WEFT_PEER_DISCONNECTED, 0),
			     1, "round %d: B's events", round);
		for (size_t i = 0; i < p.la.len; i++) {
			weft_peer_event *e = &p.la.v[i]->ev;
			if (e->kind == WEFT_PEER_CONNECTED)
				cr_assert_eq(e->node_id,
					     weft_peer_node_id(p.b));
			if (e->kind == WEFT_PEER_DISCONNECTED)
				cr_assert_eq(e->error, -ECANCELED,
					     "lost the tie-break: %d",
					     e->error);
		}
		dups += sa.duplicates + sb.duplicates;
		pair_free(&p);
	}
	cr_log_info("simultaneous dial: %llu duplicates in 50 rounds",
		    (unsigned long long)dups);
	fprintf(stderr, "simultaneous dial: %llu duplicates in 50 rounds\n",
		(unsigned long long)dups);
	pthread_barrier_destroy(&bar);
	wt_rt_free(rt);
}

/* ================================================ the send queue */

struct co_send {
	weft_peer_node *n;
	weft_peer_id id;
	int i;
	uint32_t base;
	uint64_t timeout_ns; /* 0: none */
	int rc;
};

static void *co_send_fn(void *arg)
{
	struct co_send *s = arg;
	size_t len;
	unsigned char *b = msg_make(s->i, s->base, &len);

	s->rc = weft_co_peer_send(s->n, s->id, b, len,
				  s->timeout_ns ? weft_now_ns() + s->timeout_ns
						: 0);
	free(b);
	return NULL;
}

WT_TEST_T(peer, full_send_queue, 60)
{
	weft_runtime *rt = rt_new(2);
	weft_peer_config c = cfg_quick();
	uint16_t pb = free_port();
	weft_peer_node *a;
	struct evlog la;
	struct wt_probe pr;
	weft_peer_send s;
	int res = 99;

	c.send_queue = 4;
	a = node_new(rt, &c);
	log_init(&la, a);
	weft_peer_id ab = add_port(a, pb);
	cr_assert_eq(weft_peer_connect(a, ab), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(send_msg(a, ab, i, 50), 0, "queued %d", i);
	cr_expect_eq(send_msg(a, ab, 90, 50), -EAGAIN);
	cr_expect_eq(send_msg(a, ab, 91, 50), -EAGAIN);
	/* A waiting send past its deadline. */
	struct co_send t = { .n = a, .id = ab, .i = 92, .base = 50,
			     .timeout_ns = 100 * MS, .rc = 99 };
	uint64_t t0 = wt_mono_ns();
	wt_fiber_run(rt, co_send_fn, &t);
	cr_expect_eq(t.rc, -ETIMEDOUT, "%d", t.rc);
	cr_expect_geq(wt_mono_ns() - t0, 90 * MS);
	/* A send future polled by hand, and a fiber: both wait for room. */
	size_t len;
	unsigned char *m4 = msg_make(4, 50, &len);
	cr_assert_eq(weft_peer_send_init(&s, a, ab, m4, len), 0);
	memset(m4, 0, len);
	free(m4);
	wt_probe_init(&pr);
	cr_expect_eq(weft_peer_send_poll(&s, &pr.cx, &res), WEFT_PENDING);
	struct co_send f = { .n = a, .id = ab, .i = 5, .base = 50, .rc = 99 };
	weft_join *jf = wt_go(rt, co_send_fn, &f, "waiting send");
	wt_sleep_ms(100);
	cr_expect_not(weft_join_is_finished(jf), "the fiber did not wait");
	cr_expect_eq(wt_probe_wakes(&pr), 0);

	/* B comes up: A's redial connects, the queue drains, both go. */
	c.port = pb;
	c.send_queue = 0;
	weft_peer_node *b = node_new(rt, &c);
	struct evlog lb;
	log_init(&lb, b);
	weft_peer_id ba = add_port(b, weft_peer_port(a));
	ev_expect(&la, WEFT_PEER_CONNECTED, ab, 5000);
	cr_assert(wt_parker_wait(pr.p, 5000), "the send future not woken");
	cr_expect_geq(wt_probe_wakes(&pr), 1);
	uint64_t deadline = wt_mono_ns() + 5000 * MS;
	while (weft_peer_send_poll(&s, &pr.cx, &res) == WEFT_PENDING &&
	       wt_mono_ns() < deadline)
		wt_parker_wait(pr.p, 1000);
	cr_expect_eq(res, 0, "send future: %d", res);
	weft_peer_send_drop(&s);
	wt_probe_fini(&pr);
	cr_assert_eq(wt_fiber_join(jf, NULL), 0);
	cr_expect_eq(f.rc, 0, "waiting fiber: %d", f.rc);
	/* 0..3 in order, then 4 and 5 in either order; never 90..92. */
	expect_msgs(&lb, ba, 0, 4, 50, 5000);
	weft_peer_event *e1 = ev_expect(&lb, WEFT_PEER_MESSAGE, ba, 5000);
	weft_peer_event *e2 = ev_expect(&lb, WEFT_PEER_MESSAGE, ba, 5000);
	cr_expect((msg_ok(e1->data, e1->len, 4, 50) &&
		   msg_ok(e2->data, e2->len, 5, 50)) ||
			  (msg_ok(e1->data, e1->len, 5, 50) &&
			   msg_ok(e2->data, e2->len, 4, 50)),
		  "the waiting sends' messages");
	node_free(a);
	ev_expect(&lb, WEFT_PEER_DISCONNECTED, ba, 5000);
	cr_expect_eq(stats(b).received, 6);
	cr_expect_eq(ev_count(&lb, WEFT_PEER_MESSAGE, 0), 6);
	node_free(b);
	log_free(&la);
	log_free(&lb);
	wt_rt_free(rt);
}

static void *co_errors(void *arg)
{
	weft_peer_node *n = arg;

	FCHECK(weft_co_peer_send(n, 1, "x", 1, 0) == -ENOTCONN);
	FCHECK(weft_co_peer_send(n, 99, "x", 1, 0) == -ENOENT);
	FCHECK(weft_co_peer_send(n, 1, NULL, 1, 0) == -EINVAL);
	return NULL;
}

WT_TEST_T(peer, send_errors, 30)
{
	weft_runtime *rt = rt_new(2);
	weft_peer_node *n = node_new(rt, NULL);
	weft_peer_id id = add_port(n, free_port()), ids[1] = { id };
	int errs[1] = { 1 };
	weft_peer_send s;
	struct wt_probe pr;
	int res = 1;

	cr_assert_eq(id, 1);
	/* Listed, neither connected nor wanted. */
	cr_expect_eq(weft_peer_try_send(n, id, "x", 1), -ENOTCONN);
	cr_expect_eq(weft_peer_multicast(n, ids, 1, "x", 1, errs), 0);
	cr_expect_eq(errs[0], -ENOTCONN);
	cr_expect_eq(weft_peer_broadcast(n, "x", 1, NULL), 0);
	wt_fiber_run(rt, co_errors, n);
	cr_assert_eq(weft_peer_send_init(&s, n, id, "x", 1), 0);
	wt_probe_init(&pr);
	cr_expect_eq(weft_peer_send_poll(&s, &pr.cx, &res), WEFT_READY);
	cr_expect_eq(res, -ENOTCONN);
	weft_peer_send_drop(&s);
	/* Dropped before its first poll: nothing queued, nothing leaks. */
	cr_assert_eq(weft_peer_send_init(&s, n, id, "y", 1), 0);
	weft_peer_send_drop(&s);
	/* Wanted, then not. */
	cr_expect_eq(weft_peer_connect(n, id), 0);
	cr_expect_eq(weft_peer_try_send(n, id, "x", 1), 0);
	cr_expect_eq(weft_peer_disconnect(n, id), 0);
	cr_expect_eq(weft_peer_try_send(n, id, "x", 1), -ENOTCONN);
	/* Unknown ids. */
	cr_expect_eq(weft_peer_try_send(n, 0, "x", 1), -ENOENT);
	cr_expect_eq(weft_peer_try_send(n, 2, "x", 1), -ENOENT);
	cr_expect_eq(weft_peer_connect(n, 2), -ENOENT);
	cr_expect_eq(weft_peer_disconnect(n, 2), -ENOENT);
	cr_assert_eq(weft_peer_send_init(&s, n, 7, "x", 1), 0);
	cr_expect_eq(weft_peer_send_poll(&s, &pr.cx, &res), WEFT_READY);
	cr_expect_eq(res, -ENOENT);
	weft_peer_send_drop(&s);
	/* NULLs */
	cr_expect_eq(weft_peer_try_send(NULL, id, "x", 1), -EINVAL);
	cr_expect_eq(weft_peer_try_send(n, id, NULL, 1), -EINVAL);
	cr_expect_eq(weft_peer_send_init(NULL, n, id, "x", 1), -EINVAL);
	cr_expect_eq(weft_peer_send_init(&s, NULL, id, "x", 1), -EINVAL);
	cr_expect_eq(weft_peer_send_init(&s, n, id, NULL, 1), -EINVAL);
	cr_expect_eq(weft_peer_connect(NULL, id), -EINVAL);
	cr_expect_eq(weft_peer_disconnect(NULL, id), -EINVAL);
	cr_expect_eq(weft_peer_multicast(NULL, ids, 1, "x", 1, NULL), -EINVAL);
	cr_expect_eq(weft_peer_multicast(n, NULL, 1, "x", 1, NULL), -EINVAL);
	cr_expect_eq(weft_peer_multicast(n, ids, 1, NULL, 1, NULL), -EINVAL);
	cr_expect_eq(weft_peer_multicast(n, NULL, 0, "x", 1, NULL), 0);
	cr_expect_eq(weft_peer_broadcast(NULL, "x", 1, NULL), -EINVAL);
	cr_expect_eq(weft_peer_broadcast(n, NULL, 1, NULL), -EINVAL);
	cr_expect_eq(weft_peer_try_event(NULL, NULL), -EINVAL);
	weft_peer_event ev;
	cr_expect_eq(weft_peer_try_event(n, NULL), -EINVAL);
	cr_expect_eq(weft_peer_try_event(NULL, &ev), -EINVAL);
	weft_peer_next_event ne;
	cr_expect_eq(weft_peer_next_event_init(NULL, n, &ev), -EINVAL);
	cr_expect_eq(weft_peer_next_event_init(&ne, NULL, &ev), -EINVAL);
	cr_expect_eq(weft_peer_next_event_init(&ne, n, NULL), -EINVAL);
	weft_peer_stats st = { .size = sizeof(st) };
	cr_expect_eq(weft_peer_stats_get(NULL, &st), -EINVAL);
	cr_expect_eq(weft_peer_stats_get(n, NULL), -EINVAL);
	cr_expect_eq(weft_peer_shutdown(NULL), -EINVAL);
	cr_expect_eq(weft_peer_event_blocking(NULL, &ev), -EINVAL);
	weft_peer_event_clear(NULL);
	/* Off a fiber. */
	cr_expect_eq(weft_co_peer_send(n, id, "x", 1, 0), -EPERM);
	cr_expect_eq(weft_co_peer_event(n, &ev, 0), -EPERM);
	/* A short stats struct: fields past size untouched. */
	struct {
		weft_peer_stats st;
	} small;
	memset(&small, 0xab, sizeof(small));
	small.st.size = offsetof(weft_peer_stats, connected);
	cr_expect_eq(weft_peer_stats_get(n, &small.st), 0);
	cr_expect_eq(small.st.endpoints, 1);
	cr_expect_eq(small.st.connected, 0xababababababababull,
		     "wrote past size");
	wt_probe_fini(&pr);
	node_free(n);
	wt_rt_free(rt);
}

WT_TEST_T(peer, remove_drops_queued, 30)
{
	weft_runtime *rt = rt_new(2);
	weft_peer_config c = cfg_quick();
	weft_peer_node *n;
	struct evlog l;

	c.send_queue = 3;
	n = node_new(rt, &c);
	log_init(&l, n);
	weft_peer_id id = add_port(n, free_port());
	weft_peer_id other = add_port(n, free_port());
	cr_assert_eq(weft_peer_connect(n, id), 0);
	cr_assert_eq(weft_peer_connect(n, other), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(send_msg(n, id, i, 1), 0);
	cr_assert_eq(send_msg(n, other, 0, 1), 0);
	/* A send waiting for room when its endpoint goes: -ENOENT. */
	struct co_send w = { .n = n, .id = id, .i = 4, .base = 1, .rc = 99 };
	weft_join *j = wt_go(rt, co_send_fn, &w, "waiter");
	wt_sleep_ms(100);
	cr_expect_eq(weft_peer_remove(n, id), 0);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	cr_expect_eq(w.rc, -ENOENT, "waiting send: %d", w.rc);
	weft_peer_event *ev = ev_expect(&l, WEFT_PEER_REMOVED, id, 5000);
	cr_expect_eq(ev->dropped, 3);
	weft_peer_stats st = stats(n);
	cr_expect_eq(st.dropped, 3);
	cr_expect_eq(st.endpoints, 1);
	cr_expect_eq(weft_peer_try_send(n, id, "x", 1), -ENOENT);
	cr_expect_eq(weft_peer_connect(n, id), -ENOENT);
	cr_expect_eq(weft_peer_disconnect(n, id), -ENOENT);
	cr_expect_eq(weft_peer_remove(n, id), -ENOENT);
	log_drain(&l, 50);
	cr_expect_eq(ev_count(&l, WEFT_PEER_DISCONNECTED, id), 0,
		     "never connected, yet DISCONNECTED");
	/* The other endpoint keeps its message (DROP mode would count it). */
	cr_expect_eq(weft_peer_try_send(n, other, "y", 1), 0);
	node_free(n);
	log_free(&l);
	wt_rt_free(rt);
}

WT_TEST_T(peer, remove_connected, 30)
{
	weft_runtime *rt = rt_new(2);
	struct pair p;

	pair_up(&p, rt, NULL, NULL);
	cr_expect_eq(weft_peer_remove(p.a, p.ab), 0);
	weft_peer_event *d =
		ev_expect(&p.la, WEFT_PEER_DISCONNECTED, p.ab, 5000);
	weft_peer_event *r = ev_expect(&p.la, WEFT_PEER_REMOVED, p.ab, 5000);
	cr_expect_eq(d->error, -ECANCELED);
	cr_expect_lt(ev_index(&p.la, d), ev_index(&p.la, r),
		     "REMOVED before DISCONNECTED");
	ev_expect(&p.lb, WEFT_PEER_DISCONNECTED, p.ba, 5000);
	/* B, still listing A, dials: A refuses it now. */
	cr_expect_eq(weft_peer_connect(p.b, p.ba), 0);
	weft_peer_event *ref = ev_expect(&p.la, WEFT_PEER_REFUSED, 0, 5000);
	cr_expect_eq(ref->error, -EACCES);
	cr_expect_eq(stats(p.a).connected, 0);
	pair_free(&p);
	wt_rt_free(rt);
}

/* ====================================================== shutdown */

WT_TEST_T(peer, shutdown_flush, 60)
{
	weft_runtime *rt = rt_new(2);
	struct pair p;
	enum { N = 500 };
	unsigned char kb[1024];

	pair_up(&p, rt, NULL, NULL);
	for (int i = 0; i < N; i++) {
		memset(kb, i & 0xff, sizeof(kb));
		kb[0] = (unsigned char)(i >> 8);
		cr_assert_eq(weft_peer_try_send(p.a, p.ab, kb, sizeof(kb)), 0,
			     "queue %d", i);
	}
	cr_assert_eq(weft_peer_shutdown(p.a), 0);
	weft_peer_stats sa = stats(p.a);
	cr_expect_eq(sa.sent, N);
	cr_expect_eq(sa.dropped + sa.send_failed, 0);
	cr_expect_eq(sa.connected, 0);
	/* B: all of them, in order, then the disconnection. */
	size_t last = 0;
	for (int i = 0; i < N; i++) {
		weft_peer_event *ev =
			ev_find(&p.lb, WEFT_PEER_MESSAGE, p.ba, 5000);
		cr_assert_not_null(ev, "message %d missing", i);
		last = ev_index(&p.lb, ev);
		cr_assert(ev->len == sizeof(kb) &&
				  ((unsigned char *)ev->data)[0] == (i >> 8) &&
				  ((unsigned char *)ev->data)[1023] ==
					  (i & 0xff),
			  "message %d", i);
	}
	weft_peer_event *d =
		ev_expect(&p.lb, WEFT_PEER_DISCONNECTED, p.ba, 5000);
	cr_expect_eq(d->error, 0, "B saw %d", d->error);
	cr_expect_gt(ev_index(&p.lb, d), last,
		     "B saw the disconnection before the last message");
	/* A's events: CONNECTED, N SENT, DISCONNECTED -ECANCELED, then
	 * the end. */
	log_drain(&p.la, 1000);
	cr_expect(p.la.ended, "no -EPIPE after the events");
	cr_expect_eq(ev_count(&p.la, WEFT_PEER_SENT, p.ab), N);
	d = ev_expect(&p.la, WEFT_PEER_DISCONNECTED, p.ab, 0);
	cr_expect_eq(d->error, -ECANCELED);
	cr_expect_eq(ev_index(&p.la, d), p.la.len - 1);
	pair_free(&p);
	wt_rt_free(rt);
}

struct timed_shutdown {
	weft_peer_node *n;
	int rc;
	_Atomic bool done;
};

static void *timed_shutdown_fn(void *arg)
{
	struct timed_shutdown *t = arg;

	t->rc = weft_peer_shutdown(t->n);
	atomic_store(&t->done, true);
	return NULL;
}

/* weft_peer_shutdown(@n) from a plain thread, failing the test (rather
 * than hanging it) if it has not returned within @ms. Returns how long it
 * took, ns. */
static uint64_t shutdown_within(weft_peer_node *n, unsigned ms)
{
	struct timed_shutdown t = { .n = n, .rc = 1 };
	uint64_t t0 = wt_mono_ns();
	pthread_t th;

	cr_assert_eq(pthread_create(&th, NULL, timed_shutdown_fn, &t), 0);
	while (!atomic_load(&t.done) && wt_mono_ns() - t0 < ms * MS)
		wt_sleep_ms(5);
	cr_assert(atomic_load(&t.done),
		  "weft_peer_shutdown still running after %u ms", ms);
	uint64_t took = wt_mono_ns() - t0;
	pthread_join(th, NULL);
	cr_assert_eq(t.rc, 0, "shutdown: %d", t.rc);
	return took;
}

/* A receiver that stops reading: event_queue 1, events not taken. */
static void blocked_pair(struct pair *p, weft_runtime *rt, int mode,
			 uint64_t shutdown_ns)
{
	weft_peer_config ca = cfg_quick(), cb = cfg_quick();

	ca.shutdown_mode = mode;
	ca.shutdown_ns = shutdown_ns;
	ca.max_message = 1 << 20;
	cb.max_message = 1 << 20;
	cb.event_queue = 1;
	pair_up(p, rt, &ca, &cb);
}

/* Queue @n 64 KiB messages A -> B; B does not read. */
static void fill_blocked(struct pair *p, int n)
{
	unsigned char *m = calloc(1, 65536);

	cr_assert_not_null(m);
	for (int i = 0; i < n; i++) {
		m[0] = (unsigned char)(i >> 8);
		m[1] = (unsigned char)i;
		cr_assert_eq(weft_peer_try_send(p->a, p->ab, m, 65536), 0,
			     "queue %d", i);
	}
	free(m);
	wt_sleep_ms(200); /* the socket buffers fill */
}

/* After A's shutdown: B takes what came; every message is accounted. */
static size_t drain_blocked(struct pair *p, int n)
{
	size_t got = 0;

	for (;;) {
		weft_peer_event *ev = ev_find(&p->lb, 0, 0, 5000);
		cr_assert_not_null(ev, "B: no DISCONNECTED");
		if (ev->kind == WEFT_PEER_DISCONNECTED)
			break;
		if (ev->kind != WEFT_PEER_MESSAGE)
			continue;
		cr_assert(ev->len == 65536 &&
				  ((unsigned char *)ev->data)[0] ==
					  (unsigned char)(got >> 8) &&
				  ((unsigned char *)ev->data)[1] ==
					  (unsigned char)got,
			  "message %zu out of order", got);
		got++;
	}
	weft_peer_stats sa = stats(p->a);
	cr_expect_eq(got + sa.dropped + sa.send_failed, (size_t)n,
		     "%zu received + %llu dropped + %llu failed != %d "
		     "(stats.sent %llu)",
		     got, (unsigned long long)sa.dropped,
		     (unsigned long long)sa.send_failed, n,
		     (unsigned long long)sa.sent);
	cr_expect_eq(got, sa.sent, "%zu received, stats.sent %llu", got,
		     (unsigned long long)sa.sent);
	cr_expect_eq(sa.send_failed, ev_count(&p->la, WEFT_PEER_SEND_FAILED,
					      0));
	return got;
}

WT_TEST_T(peer, shutdown_drop, 60)
{
	weft_runtime *rt = rt_new(2);
	struct pair p;
	enum { N = 500 };

	blocked_pair(&p, rt, WEFT_PEER_DROP, 30000 * MS);
	fill_blocked(&p, N);
	uint64_t took = shutdown_within(p.a, 10000);
	cr_expect_lt(took, 3000 * MS, "DROP shutdown took %llu ms",
		     (unsigned long long)took / MS);
	log_drain(&p.la, 100);
	cr_expect(p.la.ended);
	size_t got = drain_blocked(&p, N);
	cr_expect_gt(stats(p.a).dropped, 0, "nothing dropped (%zu got)", got);
	pair_free(&p);
	wt_rt_free(rt);
}

WT_TEST_T(peer, shutdown_flush_bounded, 60)
{
	weft_runtime *rt = rt_new(2);
	struct pair p;
	enum { N = 500 };

	blocked_pair(&p, rt, WEFT_PEER_FLUSH, 300 * MS);
	fill_blocked(&p, N);
	uint64_t took = shutdown_within(p.a, 10000);
	cr_expect_geq(took, 250 * MS, "the flush gave up after %llu ms",
		      (unsigned long long)took / MS);
	cr_expect_lt(took, 5000 * MS, "the flush took %llu ms",
		     (unsigned long long)took / MS);
	log_drain(&p.la, 100);
	drain_blocked(&p, N);
	cr_expect_gt(stats(p.a).dropped, 0);
	pair_free(&p);
	wt_rt_free(rt);
}

static void *co_after_shutdown(void *arg)
{
	weft_peer_node *n = arg;
	weft_peer_event ev;

	FCHECK(weft_co_peer_send(n, 1, "x", 1, 0) == -ESHUTDOWN);
	FCHECK(weft_co_peer_event(n, &ev, weft_now_ns() + 2000 * MS) ==
	       -EPIPE);
	FCHECK(weft_peer_shutdown(n) == 0);
	return NULL;
}

WT_TEST_T(peer, after_shutdown, 30)
{
	weft_runtime *rt = rt_new(2);
	struct pair p;
	weft_peer_event ev;
	weft_peer_id ids[1];

	pair_up(&p, rt, NULL, NULL);
	ids[0] = p.ab;
	cr_assert_eq(send_msg(p.a, p.ab, 1, 1), 0);
	cr_assert_eq(weft_peer_shutdown(p.a), 0);
	cr_expect_eq(weft_peer_shutdown(p.a), 0, "twice");
	cr_expect_eq(weft_peer_try_send(p.a, p.ab, "x", 1), -ESHUTDOWN);
	cr_expect_eq(weft_peer_multicast(p.a, ids, 1, "x", 1, NULL),
		     -ESHUTDOWN);
	cr_expect_eq(weft_peer_broadcast(p.a, "x", 1, NULL), -ESHUTDOWN);
	cr_expect_eq(weft_peer_add(p.a, "tcp://127.0.0.1:9", NULL),
		     -ESHUTDOWN);
	cr_expect_eq(weft_peer_connect(p.a, p.ab), -ESHUTDOWN);
	weft_peer_send s;
	int res = 1;
	struct wt_probe pr;
	wt_probe_init(&pr);
	cr_assert_eq(weft_peer_send_init(&s, p.a, p.ab, "x", 1), 0);
	cr_expect_eq(weft_peer_send_poll(&s, &pr.cx, &res), WEFT_READY);
	cr_expect_eq(res, -ESHUTDOWN);
	weft_peer_send_drop(&s);
	wt_probe_fini(&pr);
	/* The events queued before stay; then -EPIPE, every way. */
	int r, k = 0;
	while ((r = weft_peer_try_event(p.a, &ev)) == 0) {
		k++;
		weft_peer_event_clear(&ev);
	}
	/* (pair_up took ADDED and CONNECTED) */
	cr_expect_eq(k, 2, "SENT, DISCONNECTED: %d events", k);
	cr_assert_eq(r, -EPIPE, "try_event after the last event: %d", r);
	cr_assert_eq(ev_take(p.a, &ev, 1000), -EPIPE);
	cr_expect_eq(weft_peer_event_blocking(p.a, &ev), -EPIPE);
	wt_fiber_run(rt, co_after_shutdown, p.a);
	expect_msgs(&p.lb, p.ba, 1, 1, 1, 5000);
	ev_expect(&p.lb, WEFT_PEER_DISCONNECTED, p.ba, 5000);
	p.la.ended = true;
	pair_free(&p);
	wt_rt_free(rt);
}

static void *co_shutdown(void *arg)
{
	FCHECK(weft_peer_shutdown(arg) == 0);
	return NULL;
}

static void *thread_shutdown(void *arg)
{
	return (void *)(intptr_t)weft_peer_shutdown(arg);
}

static int64_t worker_shutdown(void *arg)
{
	return weft_peer_shutdown(arg);
}

static int64_t worker_free(void *arg)
{
	return weft_peer_node_free(arg);
}

static int64_t worker_blocking(void *arg)
{
	weft_peer_event ev;

	return weft_peer_event_blocking(arg, &ev);
}

WT_TEST_T(peer, shutdown_threads, 60)
{
	weft_runtime *rt = rt_new(2);
	struct pair p;

	/* Not on a worker outside a fiber. */
	pair_up(&p, rt, NULL, NULL);
	cr_expect_eq(wt_run_on_worker(rt, worker_shutdown, p.a), -EPERM);
	cr_expect_eq(wt_run_on_worker(rt, worker_free, p.a), -EPERM);
	cr_expect_eq(wt_run_on_worker(rt, worker_blocking, p.a), -EDEADLK);
	cr_expect_eq(stats(p.a).connected, 1, "-EPERM, yet shut down");
	/* From a fiber. */
	wt_fiber_run(rt, co_shutdown, p.a);
	ev_expect(&p.lb, WEFT_PEER_DISCONNECTED, p.ba, 5000);
	/* From a plain thread, two at once. */
	pthread_t t1, t2;
	void *r1, *r2;
	pthread_create(&t1, NULL, thread_shutdown, p.b);
	pthread_create(&t2, NULL, thread_shutdown, p.b);
	pthread_join(t1, &r1);
	pthread_join(t2, &r2);
	cr_expect_eq((intptr_t)r1, 0);
	cr_expect_eq((intptr_t)r2, 0);
	cr_expect_eq(weft_peer_try_send(p.b, p.ba, "x", 1), -ESHUTDOWN);
	pair_free(&p);

	/* Freed without a shutdown, with traffic and a connection. */
	pair_up(&p, rt, NULL, NULL);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(send_msg(p.a, p.ab, i, 1), 0);
	pair_free(&p);
	wt_rt_free(rt);
}

/* ==================================================== many peers */

WT_TEST_T(peer, multicast_broadcast, 60)
{
	weft_runtime *rt = rt_new(2);
	weft_peer_config c = cfg_quick();
	weft_peer_node *h, *leaf[3];
	struct evlog lh, ll[3];
	weft_peer_id id[3], idle, away;
	int errs[6];

	c.send_queue = 4;
	h = node_new(rt, &c);
	log_init(&lh, h);
	for (int i = 0; i < 3; i++) {
		leaf[i] = node_new(rt, NULL);
		log_init(&ll[i], leaf[i]);
		id[i] = add_port(h, weft_peer_port(leaf[i]));
		add_port(leaf[i], weft_peer_port(h));
		cr_assert_eq(weft_peer_connect(h, id[i]), 0);
	}
	idle = add_port(h, free_port());
	away = add_port(h, free_port());
	cr_assert_eq(weft_peer_connect(h, away), 0);
	cr_assert_eq(stat_wait(h, STAT(connected), 3, 5000), 3);

	weft_peer_id ids[6] = { id[0], id[1], id[2], 999, idle, away };
	memset(errs, 0x55, sizeof(errs));
	int r = weft_peer_multicast(h, ids, 6, "multi", 5, errs);
	cr_expect_eq(r, 4, "multicast: %d", r);
	cr_expect(errs[0] == 0 && errs[1] == 0 && errs[2] == 0);
	cr_expect_eq(errs[3], -ENOENT);
	cr_expect_eq(errs[4], -ENOTCONN);
	cr_expect_eq(errs[5], 0, "wanted: queued");
	/* away's queue (4) fills: then -EAGAIN there only. */
	for (int i = 0; i < 3; i++)
		cr_expect_eq(weft_peer_try_send(h, away, "q", 1), 0);
	r = weft_peer_multicast(h, ids, 6, "again", 5, errs);
	cr_expect_eq(r, 3);
	cr_expect_eq(errs[5], -EAGAIN);
	cr_expect_eq(weft_peer_multicast(h, ids, 6, "nul", 3, NULL), 3);
	for (int i = 0; i < 3; i++) {
		static const char *want[] = { "multi", "again", "nul" };
		for (int k = 0; k < 3; k++) {
			weft_peer_event *ev =
				ev_expect(&ll[i], WEFT_PEER_MESSAGE, 0, 5000);
			cr_expect(ev->len == strlen(want[k]) &&
					  !memcmp(ev->data, want[k], ev->len),
				  "leaf %d message %d", i, k);
		}
	}
	/* Broadcast: only the 3 connected ones. */
	size_t full = 99;
	r = weft_peer_broadcast(h, "all", 3, &full);
	cr_expect_eq(r, 3, "broadcast: %d", r);
	cr_expect_eq(full, 0);
	for (int i = 0; i < 3; i++) {
		weft_peer_event *ev =
			ev_expect(&ll[i], WEFT_PEER_MESSAGE, 0, 5000);
		cr_expect(ev->len == 3 && !memcmp(ev->data, "all", 3));
	}
	cr_expect_eq(weft_peer_remove(h, away), 0);
	weft_peer_event *rm = ev_expect(&lh, WEFT_PEER_REMOVED, away, 5000);
	cr_expect_eq(rm->dropped, 4, "away had 4 queued, not more");
	/* idle, now wanted: broadcast still skips it (not connected). */
	cr_expect_eq(weft_peer_connect(h, idle), 0);
	cr_expect_eq(weft_peer_broadcast(h, "b2", 2, NULL), 3);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(weft_peer_try_send(h, idle, "i", 1), 0);
	cr_expect_eq(weft_peer_try_send(h, idle, "i", 1), -EAGAIN,
		     "a broadcast was queued for a wanted, unconnected one");
	for (int i = 0; i < 3; i++) {
		weft_peer_event *ev =
			ev_expect(&ll[i], WEFT_PEER_MESSAGE, 0, 5000);
		cr_expect(ev->len == 2 && !memcmp(ev->data, "b2", 2));
	}
	/* 3 multicasts and 2 broadcasts to each leaf */
	cr_expect_eq(stat_wait(h, STAT(sent), 15, 5000), 15);
	for (int i = 0; i < 3; i++) {
		log_drain(&ll[i], 50);
		cr_expect_eq(ev_count(&ll[i], WEFT_PEER_MESSAGE, 0), 5);
		node_free(leaf[i]);
		log_free(&ll[i]);
	}
	node_free(h);
	log_free(&lh);
	wt_rt_free(rt);
}

WT_TEST_T(peer, broadcast_reports_full, 60)
{
	weft_runtime *rt = rt_new(2);
	weft_peer_config ch = cfg_quick(), cs = cfg_quick();
	weft_peer_node *h, *slow, *fast;
	weft_peer_id is, ifa;
	unsigned char *m = calloc(1, 256 * 1024);

	cr_assert_not_null(m);
	ch.send_queue = 2;
	ch.max_message = 1 << 20;
	ch.shutdown_mode = WEFT_PEER_DROP;
	cs.max_message = 1 << 20;
	cs.event_queue = 1;
	h = node_new(rt, &ch);
	slow = node_new(rt, &cs);
	fast = node_new(rt, &cs);
	is = add_port(h, weft_peer_port(slow));
	ifa = add_port(h, weft_peer_port(fast));
	add_port(slow, weft_peer_port(h));
	add_port(fast, weft_peer_port(h));
	cr_assert_eq(weft_peer_connect(h, is), 0);
	cr_assert_eq(weft_peer_connect(h, ifa), 0);
	cr_assert_eq(stat_wait(h, STAT(connected), 2, 5000), 2);
	/* Fill slow's path until its queue stays full. */
	uint64_t deadline = wt_mono_ns() + 20000 * MS;
	int stuck = 0, sent = 0;
	while (stuck < 3 && wt_mono_ns() < deadline) {
		int r = weft_peer_try_send(h, is, m, 256 * 1024);
		if (r == 0) {
			sent++;
			stuck = 0;
			continue;
		}
		cr_assert_eq(r, -EAGAIN);
		stuck++;
		wt_sleep_ms(100);
	}
	cr_assert_eq(stuck, 3, "slow's queue never stayed full (%d sent)",
		     sent);
	size_t full = 0;
	int r = weft_peer_broadcast(h, "b", 1, &full);
	cr_expect_eq(r, 1, "broadcast: %d", r);
	cr_expect_eq(full, 1);
	int errs[2];
	weft_peer_id both[2] = { is, ifa };
	cr_expect_eq(weft_peer_multicast(h, both, 2, "m", 1, errs), 1);
	cr_expect_eq(errs[0], -EAGAIN);
	cr_expect_eq(errs[1], 0);
	free(m);
	shutdown_within(h, 10000); /* DROP: prompt, though slow is stuck */
	node_free(h);
	node_free(slow);
	node_free(fast);
	wt_rt_free(rt);
}

WT_TEST_T(peer, events_off, 30)
{
	weft_runtime *rt = rt_new(2);
	weft_peer_config c = cfg_quick();
	struct pair p;

	c.events_off = WEFT_PEER_EV(WEFT_PEER_SENT) |
		       WEFT_PEER_EV(WEFT_PEER_ADDED);
	pair_up(&p, rt, &c, NULL);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(send_msg(p.a, p.ab, i, 1), 0);
	expect_msgs(&p.lb, p.ba, 0, 10, 1, 5000);
	cr_expect_eq(stat_wait(p.a, STAT(sent), 10, 5000), 10);
	cr_expect_eq(send_msg(p.b, p.ba, 0, 2), 0);
	expect_msgs(&p.la, p.ab, 0, 1, 2, 5000);
	log_drain(&p.la, 100);
	cr_expect_eq(ev_count(&p.la, WEFT_PEER_SENT, 0), 0, "SENT delivered");
	cr_expect_eq(ev_count(&p.la, WEFT_PEER_ADDED, 0), 0,
		     "ADDED delivered");
	cr_expect_eq(ev_count(&p.la, WEFT_PEER_CONNECTED, 0), 1);
	log_drain(&p.lb, 100);
	cr_expect_eq(ev_count(&p.lb, WEFT_PEER_SENT, 0), 1, "B's are on");
	cr_expect_eq(ev_count(&p.lb, WEFT_PEER_ADDED, 0), 1);
	pair_free(&p);
	wt_rt_free(rt);
}

/* 1,000 leaves on one hub, one process: ~3,000 descriptors. */
WT_TEST_T(peer, thousand_peers, 300)
{
	enum { LEAVES = 1000 };
	struct rlimit rl;
	weft_runtime *rt = rt_new(2);
	weft_peer_config c = cfg_quick();
	weft_peer_node *hub, **leaf = calloc(LEAVES, sizeof(*leaf));
	weft_peer_event ev;
	uint64_t t0 = wt_mono_ns();

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 4 * LEAVES)
		cr_skip_test("only %llu descriptors",
			     (unsigned long long)rl.rlim_cur);
	cr_assert_not_null(leaf);
	c.stack_size = 32 * 1024;
	c.reconnect_ns = 200 * MS;
	hub = node_new(rt, &c);
	uint16_t ph = weft_peer_port(hub);
	for (int i = 0; i < LEAVES; i++) {
		leaf[i] = node_new(rt, &c);
		add_port(hub, weft_peer_port(leaf[i]));
	}
	for (int i = 0; i < LEAVES; i++)
		cr_assert_eq(weft_peer_connect(leaf[i],
					       add_port(leaf[i], ph)),
			     0);
	uint64_t got = stat_wait(hub, STAT(connected), LEAVES, 120000);
	cr_assert_eq(got, LEAVES, "the hub has %llu of %d",
		     (unsigned long long)got, LEAVES);
	uint64_t t1 = wt_mono_ns();
	size_t full = 9;
	cr_expect_eq(weft_peer_broadcast(hub, "to all", 6, &full), LEAVES);
	cr_expect_eq(full, 0);
	for (int i = 0; i < LEAVES; i++) {
		uint64_t deadline = wt_mono_ns() + 30000 * MS;
		bool found = false;
		while (!found) {
			int r = weft_peer_try_event(leaf[i], &ev);
			if (r == -EAGAIN) {
				cr_assert_lt(wt_mono_ns(), deadline,
					     "leaf %d: no message", i);
				wt_sleep_ms(1);
				continue;
			}
			cr_assert_eq(r, 0);
			if (ev.kind == WEFT_PEER_MESSAGE) {
				cr_assert(ev.len == 6 &&
					  !memcmp(ev.data, "to all", 6));
				found = true;
			}
			weft_peer_event_clear(&ev);
		}
	}
	uint64_t t2 = wt_mono_ns();
	cr_expect_eq(stats(hub).sent, LEAVES);
	for (int i = 0; i < LEAVES; i++)
		node_free(leaf[i]);
	node_free(hub);
	free(leaf);
	wt_rt_free(rt);
	fprintf(stderr, "thousand_peers: connected in %.1f s, broadcast "
			"received in %.1f s, freed in %.1f s\n",
		(double)(t1 - t0) / 1e9, (double)(t2 - t1) / 1e9,
		(double)(wt_mono_ns() - t2) / 1e9);
}
