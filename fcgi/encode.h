/* encode: JPEG encoding and validation with TurboJPEG.
 *
 * An encoder is owned by one thread (TurboJPEG handles are not shared).
 * TurboJPEG reports errors by return value, so no libjpeg longjmp is
 * involved anywhere. */
#ifndef MJPEG_ENCODE_H
#define MJPEG_ENCODE_H

#include <stddef.h>
#include <stdint.h>

/* PIXEL_I420 is planar YCbCr 4:2:0 as JPEG codes colour (full range,
 * BT.601) in TurboJPEG's layout without row padding: the luma plane, its
 * width and height rounded up to even, then Cb and Cr, each half as wide
 * and high (encode_i420_bytes).  It is not a raw format: encode_parse_format
 * does not name it, as cameras' raw YUV is limited range.  The derived
 * streams draw in it, so that neither their decodes nor their encode
 * convert colours. */
enum pixel_format { PIXEL_RGB24, PIXEL_BGR24, PIXEL_RGBA, PIXEL_GRAY, PIXEL_YUYV, PIXEL_I420 };

#define ENCODE_QUALITY_DEFAULT 80
/* The largest side of a picture, in pixels, that is encoded, configured or
 * passed on; JPEG itself allows 65535. */
#define FRAME_SIDE_MAX 8192

struct encoder;

struct encoder *encode_open(void) __attribute__((warn_unused_result));
void encode_close(struct encoder *enc);

/* Bytes per pixel of a format (YUYV: 2, as 4 bytes per 2 pixels; I420,
 * whose planes are not a whole number of bytes a pixel: 0). */
size_t encode_pixel_bytes(enum pixel_format format);
/* The bytes of a width x height PIXEL_I420 picture. */
size_t encode_i420_bytes(uint32_t width, uint32_t height);
/* Parses "rgb24", "bgr24", "rgba", "gray", "yuyv"; -1 if unknown. */
int encode_parse_format(const char *name, enum pixel_format *format)
	__attribute__((warn_unused_result));

/* Encodes width x height pixels (rows packed, no padding; I420 as above)
 * at quality 1-100.
 * On success returns 0 and points *jpeg at the encoder's own buffer (valid
 * until the next call) holding *bytes bytes.  -1 on failure, logged. */
int encode_frame(struct encoder *enc, const unsigned char *pixels, enum pixel_format format,
		 uint32_t width, uint32_t height, int quality, const unsigned char **jpeg,
		 size_t *bytes) __attribute__((warn_unused_result));

/* A JPEG fit to send to viewers: SOI first, EOI last, at most
 * FRAME_SIDE_MAX pixels a side (checked from the header, before any
 * decoding), Huffman-coded (browsers do not decode arithmetic coding),
 * grey, YCbCr or RGB (not CMYK), and every scan decodes without an error
 * or a warning (corrupt data).  Baseline and progressive both pass.
 * Fills width/height when not NULL.  Returns 0, or -1 with a one-line
 * reason in why (for the client or a log line; not logged here), valid
 * until the calling thread's next call or its end.  Costs a decode at 1/8 scale:
 * about a fifth of an encode of the same frame (README, Performance).
 * Thread-safe: each thread has its own decompressor and buffer (at most
 * 1 MiB), freed when the thread ends. */
int encode_validate(const unsigned char *jpeg, size_t bytes, uint32_t *width,
		    uint32_t *height, const char **why) __attribute__((warn_unused_result));

#endif
