/* scaler: a JPEG drawn at another size into a rectangle of an RGB24
 * picture, for the derived streams (scale:, mosaic:).
 *
 * The JPEG is decoded with TurboJPEG's DCT scaling: the largest reduction
 * (1/2, 1/4, 1/8 and the eighths between) whose picture is still at least
 * the rectangle's size, which skips most of a full decode's work.  When
 * that picture is not the rectangle's size exactly, it is resized the rest
 * of the way (scaler_resize).  The aspect ratio is not kept: the picture
 * fills the rectangle.
 *
 * A scaler is owned by one thread (TurboJPEG handles are not shared). */
#ifndef MJPEG_SCALER_H
#define MJPEG_SCALER_H

#include <stddef.h>
#include <stdint.h>

struct scaler;

/* NULL on failure, logged. */
struct scaler *scaler_open(void) __attribute__((warn_unused_result));
void scaler_close(struct scaler *scaler);

/* Decodes jpeg and draws it into the w x h rectangle at (x, y) of dst, an
 * RGB24 picture dst_width pixels wide (rows packed); the rectangle must lie
 * inside dst.  0, or -1 when the JPEG does not decode (logged, naming
 * what). */
int scaler_draw(struct scaler *scaler, const unsigned char *jpeg, size_t bytes,
		unsigned char *dst, uint32_t dst_width, uint32_t x, uint32_t y, uint32_t w,
		uint32_t h, const char *what) __attribute__((warn_unused_result));

/* The DCT scaling TurboJPEG would use to decode a width x height JPEG
 * for a w x h rectangle: num/denom, at most 1, the smallest whose
 * picture still covers w x h (1/1 when none does). */
void scaler_pick(uint32_t width, uint32_t height, uint32_t w, uint32_t h, int *num, int *denom);

/* Resizes the RGB24 picture src (sw x sh, rows packed) into dst (dw x dh,
 * dst_stride bytes a row): each output pixel is the mean of the input
 * pixels it covers (area averaging) along an axis that shrinks, and a
 * linear blend of the two nearest along an axis that grows. */
void scaler_resize(const unsigned char *src, uint32_t sw, uint32_t sh, unsigned char *dst,
		   size_t dst_stride, uint32_t dw, uint32_t dh);

#endif
