/* scaler: a JPEG drawn at another size into a rectangle of a picture, for
 * the derived streams (scale:, mosaic:).
 *
 * The picture is PIXEL_I420 (encode.h): planar YCbCr 4:2:0 as JPEG codes
 * colour, so that the usual input, a 4:2:0 JPEG, is decoded into it
 * without colour conversion or upsampling, and the picture is encoded
 * without colour conversion or downsampling.
 *
 * The JPEG is decoded with TurboJPEG's DCT scaling: the largest reduction
 * (1/2, 1/4, 1/8 and the eighths between) whose picture is still at least
 * the rectangle's size, which skips most of a full decode's work.  A 4:2:0
 * JPEG whose scaled picture is the rectangle's size exactly is decoded
 * straight into the picture's planes.  Any other (another subsampling, or
 * a size the DCT scaling does not reach) is decoded to RGB, resized the
 * rest of the way (scaler_resize) and converted.  The aspect ratio is not
 * kept: the picture fills the rectangle.
 *
 * Chroma is one sample per 2x2 pixels: a rectangle at an odd x or y shares
 * a chroma column or row with its neighbour, and the one drawn last sets it.
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

/* A PIXEL_I420 picture: its planes lie in one buffer of
 * encode_i420_bytes(width, height) bytes. */
struct scaler_picture {
	unsigned char *yuv;
	uint32_t width, height;
};

/* Paints the whole picture black. */
void scaler_clear(const struct scaler_picture *pic);

/* Decodes jpeg and draws it into the w x h rectangle at (x, y) of pic; the
 * rectangle must lie inside it.  0, or -1 when the JPEG does not decode
 * (logged, naming what; the rectangle may then hold part of the picture). */
int scaler_draw(struct scaler *scaler, const unsigned char *jpeg, size_t bytes,
		const struct scaler_picture *pic, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
		const char *what) __attribute__((warn_unused_result));

/* Draws rgb, an RGB24 picture of w x h (rows packed), into the w x h
 * rectangle at (x, y) of pic, which must lie inside it.  0, or -1 on a
 * failure (logged). */
int scaler_put_rgb(struct scaler *scaler, const unsigned char *rgb,
		   const struct scaler_picture *pic, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
	__attribute__((warn_unused_result));

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
