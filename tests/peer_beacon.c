/* SPDX-License-Identifier: MIT */
/*
 * The peer network's discovery beacon (weft_peer_config.beacon): two nodes
 * announcing on one broadcast address or multicast group hear each other
 * and report DISCOVERED with the other's identity and listen port, once
 * each; a node never reports itself; a bad beacon URL is -EINVAL; and a
 * node with a beacon shuts down promptly.
 */
#include <stdio.h>
#include <string.h>

#include <weft/peer.h>

#include "helpers.h"

#define WT_MS 1000000ull

static WT_UNUSED const struct wt_cfg *unused_cfgs = wt_cfgs;

/* Take events of @n for up to @ms; count DISCOVERED ones (checking each
 * against @other) into *@found; self-reports into *@self. */
static void discover(weft_peer_node *n, weft_peer_node *other, unsigned ms,
		     int *found, int *self)
{
	weft_peer_event ev;
	char want[64];

	snprintf(want, sizeof(want), ":%u", weft_peer_port(other));
	for (unsigned i = 0; i < ms; i++) {
		while (weft_peer_try_event(n, &ev) == 0) {
			if (ev.kind == WEFT_PEER_DISCOVERED) {
				if (ev.node_id == weft_peer_node_id(n))
					(*self)++;
				else if (ev.node_id ==
						 weft_peer_node_id(other) &&
					 strstr(ev.url, want) &&
					 !strncmp(ev.url, "tcp://", 6) &&
					 ev.addrlen > 0)
					(*found)++;
			}
			weft_peer_event_clear(&ev);
		}
		wt_sleep_ms(1);
	}
}

static void two_nodes(const char *beacon, uint16_t *skip)
{
	weft_runtime *rt = wt_rt_new(&(struct wt_cfg){ 2, 0 });
	weft_peer_config c;
	weft_peer_node *a, *b;
	int found = 0, self = 0;

	weft_peer_config_init(&c);
	c.beacon = beacon;
	c.beacon_ns = 20 * WT_MS;
	int e = weft_peer_node_new(rt, &c, &a);
	if (e == -ENODEV || e == -EADDRNOTAVAIL || e == -ENETUNREACH) {
		*skip = 1; /* no multicast here */
		wt_rt_free(rt);
		return;
	}
	cr_assert_eq(e, 0, "%d", e);
	cr_assert_eq(weft_peer_node_new(rt, &c, &b), 0);
	/* 300 ms: 15 announcements of b; a reports b once. */
	discover(a, b, 300, &found, &self);
	cr_assert_eq(found, 1, "%s: found %d", beacon, found);
	cr_assert_eq(self, 0);
	uint64_t t0 = wt_mono_ns();
	cr_assert_eq(weft_peer_node_free(a), 0);
	cr_assert_eq(weft_peer_node_free(b), 0);
	cr_assert_lt(wt_mono_ns() - t0, 2000 * WT_MS, "shutdown took long");
	wt_rt_free(rt);
}

WT_TEST_T(peer_beacon, broadcast_on_loopback, 20)
{
	uint16_t skip = 0;

	two_nodes("udp://127.255.255.255:47711", &skip);
	cr_assert_eq(skip, 0);
}

WT_TEST_T(peer_beacon, multicast_group, 20)
{
	uint16_t skip = 0;

	two_nodes("udp://239.255.77.77:47712", &skip);
	if (skip)
		cr_skip_test("no multicast route on this machine");
}

WT_TEST(peer_beacon, bad_urls)
{
	weft_runtime *rt = wt_rt_new(&(struct wt_cfg){ 1, 0 });
	static const char *bad[] = {
		"tcp://239.255.77.77:47713", "udp://239.255.77.77",
		"udp://host.example:47713", "udp://239.255.77.77:0",
		"udp://[::1]:47713", "239.255.77.77:47713",
	};
	weft_peer_config c;
	weft_peer_node *n = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		weft_peer_config_init(&c);
		c.beacon = bad[i];
		cr_assert_eq(weft_peer_node_new(rt, &c, &n), -EINVAL, "%s",
			     bad[i]);
	}
	wt_rt_free(rt);
}
