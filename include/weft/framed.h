/* SPDX-License-Identifier: MIT */
/**
 * @file weft/framed.h
 * Length-delimited frames over a stream socket (weft/codec.h for the
 * format): a buffered reader that yields whole frames, and a writer that
 * batches frames into few sends and waits (backpressure) while the socket
 * is slow. As tokio-util's FramedRead/FramedWrite with
 * LengthDelimitedCodec.
 *
 * Memory: the reader receives through a recv stream (weft/multishot.h),
 * so the kernel writes only into the runtime's provided buffers, never
 * into the reader's; bytes are copied into the reader's own buffer, which
 * holds at most one frame plus what arrived behind it. The writer's
 * buffer is read by the kernel while a send is in flight: freeing the
 * writer waits for that send to end.
 *
 * Threads: a reader or writer is used by one task at a time (it may move
 * between workers with its task); distinct ones are independent.
 */
#ifndef WEFT_FRAMED_H
#define WEFT_FRAMED_H

#include <stddef.h>
#include <stdint.h>

#include <weft/codec.h>
#include <weft/multishot.h>
#include <weft/net.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A frame handed out by the reader: valid until the reader's next read
 * or its free. */
typedef struct weft_frame_view {
	const void *data; /**< the frame's bytes, after stripping */
	size_t len;       /**< how many */
} weft_frame_view;

/** The reader. Caller-owned memory; fields are private. */
typedef struct weft_framed_reader {
	weft_codec _codec;
	int _fd;
	int _err;               /* sticky: returned by every later read */
	bool _eof;
	unsigned char *_buf;    /* [_start, _end) holds received bytes */
	size_t _cap, _start, _end;
	size_t _last;           /* bytes of the frame handed out last */
	weft_recv_stream _rs;
	weft_buf _lent;         /* a received buffer not copied in yet */
	size_t _lent_off;
} weft_framed_reader;

/**
 * Prepare @r to read frames in @codec's format (copied; see
 * weft_codec_check) from the connected stream socket @fd, which stays the
 * caller's and must stay open until weft_framed_reader_free.
 * Returns 0, -EINVAL (NULL, a bad fd or codec), -ENOMEM.
 */
WEFT_API int weft_framed_reader_init(weft_framed_reader *r, int fd,
				     const weft_codec *codec);

/**
 * Poll for the next frame. READY with *@res == 1: *@frame holds it (valid
 * until the next read or the free). READY with 0: the peer closed the
 * connection at a frame boundary. READY with a negative errno, from then
 * on for every read: -EMSGSIZE (a header announced a frame over
 * max_frame: nothing of it was buffered), -EPROTO (a malformed header, or
 * the connection ended inside a frame), or the recv's error
 * (-ECONNRESET, -ECANCELED at shutdown, ...). PENDING: the task is woken
 * when more bytes come. Call from a task.
 * NULL: see core.h.
 */
WEFT_API weft_poll weft_framed_read_poll(weft_framed_reader *r, weft_cx *cx,
					 weft_frame_view *frame, int *res);

/**
 * Take the next frame only if the bytes the reader already holds contain
 * a whole one, without polling the socket (so from any code, no task
 * needed): for a loop that drains a burst of small frames and waits (with
 * the poll, the future or weft_co_frame_read) only when this says
 * -EAGAIN. Returns 1 (*@frame as for weft_framed_read_poll), -EAGAIN (no
 * whole frame at hand), 0 or the sticky errors of weft_framed_read_poll
 * once the stream has ended, -EINVAL (NULL argument).
 */
WEFT_API int weft_framed_try_read(weft_framed_reader *r,
				  weft_frame_view *frame);

/** Release @r's buffers and stream (not the fd). Any thread, once no
 * read is being polled. NULL: see core.h. */
WEFT_API void weft_framed_reader_free(weft_framed_reader *r);

/** The next frame as a future, for select, timeout and weft_await:
 * output int (weft_framed_read_poll's *res); the frame in *frame. */
typedef struct weft_framed_next {
	weft_framed_reader *reader; /**< borrowed */
	weft_frame_view *frame;     /**< where the frame goes */
} weft_framed_next;
WEFT_API extern const weft_future_desc weft_framed_next_desc;

/** Bytes a writer buffers before a send waits for the socket, default. */
#define WEFT_FRAMED_HIGH_WATER ((size_t)64 * 1024)

/** The writer. Caller-owned memory; fields are private. */
typedef struct weft_framed_writer {
	weft_codec _codec;
	int _fd;
	int _err;
	size_t _high;
	unsigned char *_buf;    /* frames not sent yet */
	size_t _cap, _len;
	unsigned char *_out;    /* the bytes the send in flight reads */
	size_t _out_cap, _out_len;
	bool _sending;
	weft_send_all _send;
	uint64_t _written;      /* bytes the socket took */
} weft_framed_writer;

/**
 * Prepare @w to write frames in @codec's format to @fd (stays the
 * caller's). @high_water: bytes buffered before a send waits for the
 * socket (0: WEFT_FRAMED_HIGH_WATER).
 * Returns 0, -EINVAL, -ENOMEM.
 */
WEFT_API int weft_framed_writer_init(weft_framed_writer *w, int fd,
				     const weft_codec *codec,
				     size_t high_water);

/**
 * A send of one frame: the future. Prepare with weft_framed_send_init,
 * poll until READY, then drop it (weft_framed_send_desc). The frame's
 * bytes are copied into the writer when first polled, so @payload is the
 * caller's again after the first poll returns.
 */
typedef struct weft_framed_send {
	weft_framed_writer *writer; /**< borrowed */
	const void *payload;        /**< the frame's bytes */
	size_t len;                 /**< how many */
	bool flush;                 /**< READY only once all is sent */
	bool _queued;
} weft_framed_send;

/**
 * Prepare @s: one frame of @len bytes at @payload for @w. With @flush
 * false the frame may stay buffered, to go out with later frames in one
 * send (many small frames per syscall), unless the buffer is over the
 * high-water mark, when the poll first waits for the socket to take the
 * frames before it (backpressure: nothing grows without bound); with
 * @flush true READY means every queued frame was handed to the socket.
 * Returns 0 or -EINVAL (NULL @s or @w, NULL @payload with @len > 0).
 */
WEFT_API int weft_framed_send_init(weft_framed_send *s, weft_framed_writer *w,
				   const void *payload, size_t len,
				   bool flush);

/**
 * Poll @s. READY with *@res: 0; -EMSGSIZE (the frame is over max_frame:
 * nothing was queued, the writer goes on); or the writer's sticky error
 * (the send's: -EPIPE, -ECONNRESET, -ECANCELED at shutdown; -ENOMEM),
 * which every later send returns too. Call from a task.
 * NULL: see core.h.
 */
WEFT_API weft_poll weft_framed_send_poll(weft_framed_send *s, weft_cx *cx,
					 int *res);

/** weft_framed_send as a future: output int (*res). Dropping it before
 * READY leaves a frame it queued in the writer (it goes out with the
 * next send or flush). */
WEFT_API extern const weft_future_desc weft_framed_send_desc;

/**
 * Queue one frame in the writer's buffer without waiting and without
 * starting a send (no task needed): it leaves with the next send or flush
 * poll. Returns 0 (the payload was copied), -EAGAIN (the buffer is at its
 * high-water mark: send with the future, which waits for the socket),
 * -EMSGSIZE (over max_frame, nothing queued), the writer's sticky error,
 * -ENOMEM, -EINVAL.
 */
WEFT_API int weft_framed_try_send(weft_framed_writer *w, const void *payload,
				  size_t len);

/** Send everything queued: READY with *@res 0 or the sticky error.
 * NULL: see core.h. */
WEFT_API weft_poll weft_framed_flush_poll(weft_framed_writer *w, weft_cx *cx,
					  int *res);

/** A flush as a future (weft_framed_flush_desc, output int: *@res of
 * weft_framed_flush_poll). Dropping it before READY leaves the frames
 * queued; a send in flight goes on. */
typedef struct weft_framed_flush {
	weft_framed_writer *writer; /**< borrowed */
} weft_framed_flush;
WEFT_API extern const weft_future_desc weft_framed_flush_desc;

/**
 * Bytes (headers included) of @w's frames that the socket has taken so
 * far, as of the writer's last poll (a send that completed since is
 * counted at the next send or flush poll); a failed send counts what it
 * wrote before it failed. Frames are written in order, so every frame
 * whose last byte is within this count has reached the socket. 0 for
 * NULL. Not concurrently with a poll of @w.
 */
WEFT_API uint64_t weft_framed_writer_written(const weft_framed_writer *w);

/**
 * Release @w's buffers (not the fd; queued, unsent frames are dropped).
 * If a send is in flight it is cancelled, and this returns once the
 * kernel no longer reads the buffer (on a worker it turns the worker's
 * ring meanwhile). Any thread. NULL: see core.h.
 */
WEFT_API void weft_framed_writer_free(weft_framed_writer *w);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_FRAMED_H */
