/* SPDX-License-Identifier: MIT */
/*
 * weft length-delimited frame codec: a length prefix before each message,
 * wire-compatible with tokio-util's LengthDelimitedCodec (docs/codec.md).
 *
 * The codec is pure: no sockets, no allocation, no state between calls. A
 * reader accumulates bytes and calls weft_codec_decode() on what it holds;
 * the answer depends only on those bytes, never on how they arrived, so
 * any split of a stream into reads yields the same frames.
 *
 * A frame on the wire, as the decoder sees it:
 *
 *   |<- length_offset ->|<- length_bytes ->|                          |
 *   +-------------------+------------------+--------------------------+
 *   |  (other header)   |   length field   |  rest of the frame       |
 *   +-------------------+------------------+--------------------------+
 *   |<------------ strip ------------>|<-- field + length_adjust -->|
 *                                     |<------ returned frame ----->|
 *
 * The first `strip` bytes are dropped (by default the offset and the field:
 * the returned frame is the payload), and field + length_adjust is the
 * number of bytes that follow them, exactly as tokio-util counts it (its
 * num_skip and length_adjustment).
 */
#ifndef WEFT_CODEC_H
#define WEFT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The largest header (max(length_offset + length_bytes, strip)) a codec
 * may have, so that weft_codec_header() can return its length as an int. */
#define WEFT_CODEC_HEADER_MAX 65536

/** weft_codec.strip's default: strip length_offset + length_bytes. */
#define WEFT_CODEC_STRIP_HEADER SIZE_MAX

/**
 * A length-delimited framing. Initialise with weft_codec_init() (tokio-util's
 * defaults: a 4-byte big-endian length of the payload, 8 MiB at most), then
 * change fields; the size field lets later versions grow the struct. The
 * codec is only read by the calls below: one value may be shared by any
 * number of threads as long as nobody changes it meanwhile.
 */
typedef struct weft_codec {
	size_t size;          /**< sizeof(weft_codec); set by init */
	/** Width of the length field in bytes, 1 to 8 (tokio-util:
	 * length_field_length); default 4. */
	unsigned length_bytes;
	/** Byte order of the length field; default false: big-endian,
	 * network order (tokio-util: little_endian / big_endian). */
	bool little_endian;
	/** Header bytes before the length field; default 0 (tokio-util:
	 * length_field_offset). */
	size_t length_offset;
	/** Added to the field's value to give the number of frame bytes after
	 * the first @strip bytes (with the default strip: after the length
	 * field); e.g. -length_bytes when the field counts itself. Default 0
	 * (tokio-util: length_adjustment). */
	int64_t length_adjust;
	/** Bytes removed from the front of each decoded frame (tokio-util:
	 * num_skip); default WEFT_CODEC_STRIP_HEADER: length_offset +
	 * length_bytes, so the frame is the payload alone. 0 keeps the whole
	 * header. */
	size_t strip;
	/** The largest length-field value accepted, compared with the raw
	 * field before length_adjust (tokio-util: max_frame_length); default
	 * 8 MiB. */
	size_t max_frame;
} weft_codec;

/** Where a decoded frame lies in the decoded bytes. */
typedef struct weft_frame {
	size_t consumed; /**< bytes of the whole frame, header included */
	size_t off;      /**< start of the frame after stripping */
	size_t len;      /**< its length */
	size_t need;     /**< bytes the whole frame needs; 0: header incomplete */
} weft_frame;

/**
 * Fill @c with the defaults, tokio-util's LengthDelimitedCodec::new(): a
 * 4-byte big-endian length field at offset 0 counting the payload that
 * follows it, the header stripped, 8 MiB (8,388,608 bytes) at most.
 * Thread-safe: touches only @c.
 * NULL: see core.h.
 */
WEFT_API void weft_codec_init(weft_codec *c);

/**
 * Validate @c. Returns 0, or -EINVAL when @c is NULL, c->size is below
 * sizeof(weft_codec) of the first release, length_bytes is not 1 to 8, or
 * the header, max(length_offset + length_bytes, strip) with the default
 * strip resolved, is over WEFT_CODEC_HEADER_MAX bytes. Every other call
 * below fails with -EINVAL for such a codec. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API WEFT_MUST_USE int weft_codec_check(const weft_codec *c);

/**
 * Find the first frame in @buf[0, @len). Stateless: the caller keeps the
 * bytes that arrived, calls this on them, and on 1 drops out->consumed
 * bytes and calls again; any split of the stream gives the same frames.
 * Reads nothing outside @buf[0, @len); keeps no pointer to it.
 *
 * Returns:
 *   1  a whole frame: out->consumed is its size on the wire, and its bytes
 *      after stripping are @buf[out->off, out->off + out->len), i.e. off =
 *      strip and len = field + length_adjust; out->need = consumed.
 *   0  more input is needed: out->need is the size of the whole frame once
 *      the header (max(length_offset + length_bytes, strip) bytes) is in
 *      @buf, else 0. A reader can refuse or size its buffer from need
 *      before the payload arrives.
 *  -EMSGSIZE  the length field is over max_frame (known from the header
 *      alone, before the payload arrives).
 *  -EPROTO  the field plus length_adjust is negative or overflows size_t,
 *      strip plus that overflows size_t, or the frame would end inside its
 *      own length field (strip + field + length_adjust < length_offset +
 *      length_bytes; tokio-util would return such a frame and then read the
 *      rest of the header as the next one).
 *  -EINVAL  @c or @out is NULL, @buf is NULL with @len > 0, or @c fails
 *      weft_codec_check().
 * A negative return means the stream cannot be framed any further: close
 * that connection. *@out is zeroed first (unless a pointer argument is
 * NULL), then filled as said above.
 * Thread-safe (reads @c and @buf, writes @out).
 * NULL: see core.h; @buf may be NULL when @len is 0.
 */
WEFT_API WEFT_MUST_USE int weft_codec_decode(const weft_codec *c,
					     const void *buf, size_t len,
					     weft_frame *out);

/**
 * Write into @hdr the header that goes before a payload of @payload_len
 * bytes: max(length_offset + length_bytes, strip) bytes, all zero but the
 * length field; the caller may fill the other header bytes (a version byte
 * at offset 0, say) before sending. The field is written so that
 * weft_codec_decode() of header + payload returns the payload, preceded by
 * the header bytes at and after strip when strip keeps part of the header:
 * field = (header bytes after strip) + payload_len - length_adjust.
 *
 * With length_offset 0 and the default strip this is tokio-util's encoder
 * byte for byte (field = payload_len - length_adjustment). tokio-util's
 * encoder ignores length_field_offset and num_skip (so its frames do not
 * decode with its own decoder for such configs); weft writes the full
 * header instead. Unlike tokio-util, weft refuses a length that does not
 * fit the field (tokio-util keeps its low bytes) or that its decoder
 * would refuse (field over max_frame).
 *
 * Returns the header length (> 0), or:
 *  -EMSGSIZE  @payload_len is over max_frame, or the field value is over
 *             max_frame or does not fit in length_bytes;
 *  -EINVAL    @c or @hdr is NULL, @c fails weft_codec_check(), or the
 *             field value would be negative (payload shorter than a
 *             positive length_adjust requires);
 *  -ENOBUFS   @hdr_cap is below the header length (nothing is written).
 * Thread-safe (reads @c, writes @hdr).
 * NULL: see core.h.
 */
WEFT_API WEFT_MUST_USE int weft_codec_header(const weft_codec *c,
					     size_t payload_len, void *hdr,
					     size_t hdr_cap);

/**
 * Write a whole frame, weft_codec_header() then the @len bytes of
 * @payload, into @out (@cap bytes). @payload and @out must not overlap;
 * both are used during the call only.
 *
 * Returns the bytes written (header length + @len), or the errors of
 * weft_codec_header() (-ENOBUFS when @cap is below header length + @len;
 * nothing is written on an error).
 * Thread-safe (reads @c and @payload, writes @out).
 * NULL: see core.h; @payload may be NULL when @len is 0.
 */
WEFT_API WEFT_MUST_USE ssize_t weft_codec_encode(const weft_codec *c,
						 const void *payload,
						 size_t len, void *out,
						 size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_CODEC_H */
