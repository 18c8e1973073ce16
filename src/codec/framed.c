/* SPDX-License-Identifier: MIT */
/*
 * Framed reader and writer (weft/framed.h) over weft_codec. The reader
 * copies from a recv stream's lent buffers into its own, decodes with the
 * stateless weft_codec_decode, and hands out views into its buffer. The
 * writer double-buffers: frames are appended to one buffer while a
 * weft_send_all sends the other, swapped when that send ends.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <weft/framed.h>

#include "io/op.h" /* weft__io_sync_drops */

#define READ_INITIAL ((size_t)16 * 1024)
#define WRITE_INITIAL ((size_t)16 * 1024)

static weft_poll ready(int *res, int v)
{
	if (res)
		*res = v;
	return WEFT_READY;
}

/* ---------------------------------------------------------- reader */

WEFT_API int weft_framed_reader_init(weft_framed_reader *r, int fd,
				     const weft_codec *codec)
{
	if (!r || fd < 0 || !codec || weft_codec_check(codec))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->_codec = *codec;
	r->_fd = fd;
	r->_lent = (weft_buf)WEFT_BUF_INIT;
	r->_buf = malloc(READ_INITIAL);
	if (!r->_buf)
		return -ENOMEM;
	r->_cap = READ_INITIAL;
	return weft_recv_stream_init(&r->_rs, fd);
}

/* Room for @want bytes from _start on: move the data to the front, grow.
 * False: out of memory. */
static bool reader_room(weft_framed_reader *r, size_t want)
{
	if (r->_start) {
		memmove(r->_buf, r->_buf + r->_start, r->_end - r->_start);
		r->_end -= r->_start;
		r->_start = 0;
	}
	if (want <= r->_cap)
		return true;
	size_t cap = r->_cap * 2 > want ? r->_cap * 2 : want;
	unsigned char *b = realloc(r->_buf, cap);

	if (!b)
		return false;
	r->_buf = b;
	r->_cap = cap;
	return true;
}

/* Copy what the lent buffer holds into ours, as much as fits in @want
 * bytes of room (at least one byte more than we have). */
static int reader_take(weft_framed_reader *r, size_t want)
{
	size_t have = r->_end - r->_start;

	if (want <= have)
		want = have + 1;
	if (r->_end == r->_cap || r->_start || want > r->_cap)
		if (!reader_room(r, want > r->_cap ? want : r->_cap))
			return -ENOMEM;
	size_t n = r->_lent.len - r->_lent_off, room = r->_cap - r->_end;

	if (n > room)
		n = room;
	memcpy(r->_buf + r->_end, (unsigned char *)r->_lent.data + r->_lent_off,
	       n);
	r->_end += n;
	r->_lent_off += n;
	if (r->_lent_off == r->_lent.len)
		weft_buf_release(&r->_lent);
	return 0;
}

/* The next frame; with @cx NULL the stream is not polled: READY with
 * -EAGAIN when the bytes at hand hold no whole frame. */
static weft_poll reader_next(weft_framed_reader *r, weft_cx *cx,
			     weft_frame_view *frame, int *res)
{
	r->_start += r->_last; /* the frame handed out last is done */
	r->_last = 0;
	for (;;) {
		size_t have = r->_end - r->_start, need = 0;
		weft_frame f;

		if (r->_err)
			return ready(res, r->_err);
		if (have) {
			int rc = weft_codec_decode(&r->_codec,
						   r->_buf + r->_start, have,
						   &f);
			if (rc == 1) {
				frame->data = r->_buf + r->_start + f.off;
				frame->len = f.len;
				r->_last = f.consumed;
				return ready(res, 1);
			}
			if (rc < 0) {
				r->_err = rc;
				continue;
			}
			need = f.need;
		}
		if (!r->_lent.data) {
			int64_t n;

			if (r->_eof)
				return ready(res, have ? -EPROTO : 0);
			if (!cx)
				return ready(res, -EAGAIN);
			if (weft_recv_stream_next(&r->_rs, cx, &r->_lent, &n) ==
			    WEFT_PENDING)
				return WEFT_PENDING;
			r->_lent_off = 0;
			if (n == 0)
				r->_eof = true;
			else if (n < 0)
				r->_err = (int)n;
			continue;
		}
		int err = reader_take(r, need);
		if (err)
			r->_err = err;
	}
}

WEFT_API weft_poll weft_framed_read_poll(weft_framed_reader *r, weft_cx *cx,
					 weft_frame_view *frame, int *res)
{
	if (!r || !cx || !frame)
		return ready(res, -EINVAL);
	return reader_next(r, cx, frame, res);
}

WEFT_API int weft_framed_try_read(weft_framed_reader *r,
				  weft_frame_view *frame)
{
	int res = -EINVAL;

	if (r && frame)
		reader_next(r, NULL, frame, &res);
	return res;
}

WEFT_API void weft_framed_reader_free(weft_framed_reader *r)
{
	if (!r)
		return;
	weft_recv_stream_drop(&r->_rs);
	weft_buf_release(&r->_lent);
	free(r->_buf);
	r->_buf = NULL;
	r->_cap = r->_start = r->_end = r->_last = 0;
}

static weft_poll next_poll(void *self, weft_cx *cx, void *out)
{
	weft_framed_next *n = self;

	return weft_framed_read_poll(n->reader, cx, n->frame, out);
}

WEFT_API const weft_future_desc weft_framed_next_desc = {
	.poll = next_poll,
	.size = sizeof(weft_framed_next),
	.output_size = sizeof(int),
};

/* ---------------------------------------------------------- writer */

WEFT_API int weft_framed_writer_init(weft_framed_writer *w, int fd,
				     const weft_codec *codec,
				     size_t high_water)
{
	if (!w || fd < 0 || !codec || weft_codec_check(codec))
		return -EINVAL;
	memset(w, 0, sizeof(*w));
	w->_codec = *codec;
	w->_fd = fd;
	w->_high = high_water ? high_water : WEFT_FRAMED_HIGH_WATER;
	w->_buf = malloc(WRITE_INITIAL);
	w->_out = malloc(WRITE_INITIAL);
	if (!w->_buf || !w->_out) {
		free(w->_buf);
		free(w->_out);
		return -ENOMEM;
	}
	w->_cap = w->_out_cap = WRITE_INITIAL;
	return 0;
}

/* Append the header and payload of one frame. 0, -EMSGSIZE, -ENOMEM. */
static int writer_queue(weft_framed_writer *w, const void *payload,
			size_t len)
{
	for (;;) {
		int h = weft_codec_header(&w->_codec, len, w->_buf + w->_len,
					  w->_cap - w->_len);

		if (h == -ENOBUFS || (h >= 0 && len > w->_cap - w->_len -
							       (size_t)h)) {
			size_t want = w->_len + len + 64, cap = w->_cap * 2;
			unsigned char *b;

			if (cap < want)
				cap = want;
			if (!(b = realloc(w->_buf, cap)))
				return -ENOMEM;
			w->_buf = b;
			w->_cap = cap;
			continue;
		}
		if (h < 0)
			return h;
		if (len)
			memcpy(w->_buf + w->_len + (size_t)h, payload, len);
		w->_len += (size_t)h + len;
		return 0;
	}
}

/*
 * Make progress on sending: finish the send in flight, then start one
 * with what was queued meanwhile. READY once nothing is in flight and
 * nothing is queued (or on an error, sticky); PENDING while the socket
 * is busy.
 */
static weft_poll writer_drive(weft_framed_writer *w, weft_cx *cx)
{
	for (;;) {
		if (w->_err)
			return WEFT_READY;
		if (w->_sending) {
			int64_t r;

			if (weft_send_all_poll(&w->_send, cx, &r) ==
			    WEFT_PENDING)
				return WEFT_PENDING;
			w->_written += r >= 0 ? (uint64_t)r
					      : weft_send_all_done(&w->_send);
			weft_send_all_drop(&w->_send);
			w->_sending = false;
			w->_out_len = 0;
			if (r < 0) {
				w->_err = (int)r;
				return WEFT_READY;
			}
		}
		if (!w->_len)
			return WEFT_READY;
		/* Swap: the queued bytes go out, the other buffer queues. */
		unsigned char *b = w->_out;
		size_t cap = w->_out_cap;

		w->_out = w->_buf;
		w->_out_cap = w->_cap;
		w->_out_len = w->_len;
		w->_buf = b;
		w->_cap = cap;
		w->_len = 0;
		memset(&w->_send, 0, sizeof(w->_send));
		weft_send_all_init(&w->_send, w->_fd, w->_out, w->_out_len, 0);
		w->_sending = true;
	}
}

WEFT_API int weft_framed_send_init(weft_framed_send *s, weft_framed_writer *w,
				   const void *payload, size_t len, bool flush)
{
	if (!s || !w || (!payload && len))
		return -EINVAL;
	*s = (weft_framed_send){ .writer = w, .payload = payload, .len = len,
				 .flush = flush };
	return 0;
}

WEFT_API weft_poll weft_framed_send_poll(weft_framed_send *s, weft_cx *cx,
					 int *res)
{
	if (!s || !cx || !s->writer)
		return ready(res, -EINVAL);
	weft_framed_writer *w = s->writer;

	if (w->_err)
		return ready(res, w->_err);
	if (!s->_queued) {
		if (s->len > w->_codec.max_frame)
			return ready(res, -EMSGSIZE);
		/* Backpressure: over the mark, the socket takes some first. */
		while (w->_len >= w->_high) {
			if (writer_drive(w, cx) == WEFT_PENDING &&
			    w->_len >= w->_high)
				return WEFT_PENDING;
			if (w->_err)
				return ready(res, w->_err);
		}
		int err = writer_queue(w, s->payload, s->len);
		if (err)
			return ready(res, err);
		s->_queued = true;
	}
	/* Start sending now either way (a send in flight just continues):
	 * unflushed frames still leave as soon as the socket is free. */
	if (writer_drive(w, cx) == WEFT_PENDING && s->flush)
		return WEFT_PENDING;
	return ready(res, w->_err);
}

WEFT_API int weft_framed_try_send(weft_framed_writer *w, const void *payload,
				  size_t len)
{
	if (!w || (!payload && len))
		return -EINVAL;
	if (w->_err)
		return w->_err;
	if (len > w->_codec.max_frame)
		return -EMSGSIZE;
	if (w->_len >= w->_high)
		return -EAGAIN;
	return writer_queue(w, payload, len);
}

WEFT_API weft_poll weft_framed_flush_poll(weft_framed_writer *w, weft_cx *cx,
					  int *res)
{
	if (!w || !cx)
		return ready(res, -EINVAL);
	if (writer_drive(w, cx) == WEFT_PENDING)
		return WEFT_PENDING;
	return ready(res, w->_err);
}

static weft_poll flush_desc_poll(void *self, weft_cx *cx, void *out)
{
	weft_framed_flush *f = self;

	return weft_framed_flush_poll(f->writer, cx, out);
}

WEFT_API const weft_future_desc weft_framed_flush_desc = {
	.poll = flush_desc_poll,
	.size = sizeof(weft_framed_flush),
	.output_size = sizeof(int),
};

WEFT_API uint64_t weft_framed_writer_written(const weft_framed_writer *w)
{
	return w ? w->_written : 0;
}

WEFT_API void weft_framed_writer_free(weft_framed_writer *w)
{
	if (!w)
		return;
	/* The send in flight reads _out: cancel it and wait for the kernel
	 * to let go before the buffer is freed (io/op.h). */
	weft__io_sync_drops(true);
	weft_send_all_drop(&w->_send);
	weft__io_sync_drops(false);
	free(w->_buf);
	free(w->_out);
	w->_buf = w->_out = NULL;
	w->_cap = w->_out_cap = w->_len = w->_out_len = 0;
	w->_sending = false;
}

static weft_poll send_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_framed_send_poll(self, cx, out);
}

WEFT_API const weft_future_desc weft_framed_send_desc = {
	.poll = send_desc_poll,
	.size = sizeof(weft_framed_send),
	.output_size = sizeof(int),
};
