/* encode: JPEG encoding and validation with TurboJPEG.
 *
 * An encoder is owned by one thread (TurboJPEG handles are not shared).
 * TurboJPEG reports errors by return value, so no libjpeg longjmp is
 * involved anywhere. */
#ifndef MJPEG_ENCODE_H
#define MJPEG_ENCODE_H

#include <stddef.h>
#include <stdint.h>

enum pixel_format { PIXEL_RGB24, PIXEL_BGR24, PIXEL_RGBA, PIXEL_GRAY, PIXEL_YUYV };

#define ENCODE_QUALITY_DEFAULT 80

struct encoder;

struct encoder *encode_open(void) __attribute__((warn_unused_result));
void encode_close(struct encoder *enc);

/* Bytes per pixel of a format (YUYV: 2, as 4 bytes per 2 pixels). */
size_t encode_pixel_bytes(enum pixel_format format);
/* Parses "rgb24", "bgr24", "rgba", "gray", "yuyv"; -1 if unknown. */
int encode_parse_format(const char *name, enum pixel_format *format)
	__attribute__((warn_unused_result));

/* Encodes width x height pixels (rows packed, no padding) at quality 1-100.
 * On success returns 0 and points *jpeg at the encoder's own buffer (valid
 * until the next call) holding *bytes bytes.  -1 on failure, logged. */
int encode_frame(struct encoder *enc, const unsigned char *pixels, enum pixel_format format,
		 uint32_t width, uint32_t height, int quality, const unsigned char **jpeg,
		 size_t *bytes) __attribute__((warn_unused_result));

/* A complete baseline or progressive JPEG that decodes: SOI first, EOI last,
 * a header TurboJPEG accepts.  Fills width/height when not NULL.  Returns 0
 * or -1 with a reason in why (for the client, not logged). */
int encode_validate(const unsigned char *jpeg, size_t bytes, uint32_t *width,
		    uint32_t *height, const char **why) __attribute__((warn_unused_result));

#endif
