/* SPDX-License-Identifier: MIT */
/*
 * Socket options the library sets itself (net/sockopt.c).
 */
#ifndef WEFT_NET_SOCKOPT_H
#define WEFT_NET_SOCKOPT_H

/*
 * Turn Nagle off on a socket weft hands out (accepted or connected), the
 * default weft_tcp_set_nodelay() documents. Best effort: an accepted Unix
 * socket refuses the option, and that is no error, so nothing is
 * reported.
 */
void weft__tcp_nodelay_default(int fd);

#endif /* WEFT_NET_SOCKOPT_H */
