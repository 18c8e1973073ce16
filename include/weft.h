/* SPDX-License-Identifier: MIT */
/* weft: a multi-threaded work-stealing async runtime with an io_uring driver. */
#ifndef WEFT_H
#define WEFT_H

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

#include <weft/blocking.h>
#include <weft/broadcast.h>
#include <weft/codec.h>
#include <weft/core.h>
#include <weft/error.h>
#include <weft/fiber.h>
#include <weft/file.h>
#include <weft/framed.h>
#include <weft/future.h>
#include <weft/io.h>
#include <weft/joinset.h>
#include <weft/mpsc.h>
#include <weft/multishot.h>
#include <weft/net.h>
#include <weft/peer.h>
#include <weft/runtime.h>
#include <weft/sync.h>
#include <weft/task.h>
#include <weft/time.h>
#include <weft/udp.h>
#include <weft/watch.h>

#endif /* WEFT_H */
