#include "scaler.h"

#include "encode.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* A buffer the scaler reuses, grown as needed. */
struct scratch {
	unsigned char *bytes;
	size_t size;
};

struct scaler {
	tjhandle tj;            /* decompressor; NULL after a failure: a new one next call */
	tjhandle tjc;           /* compressor, for RGB to YCbCr; made on first use */
	struct scratch decoded; /* a scaled decode to RGB */
	struct scratch resized; /* it, resized to the rectangle */
	struct scratch tile;    /* a rectangle's planes, when not written in place */
	struct scratch spans;   /* resize's axis_spans, int32_t: per output column and
				 * row, first input and count */
};

/* The three planes of a PIXEL_I420 picture, or of a rectangle inside one:
 * where each starts and its bytes a row. */
struct planes {
	unsigned char *plane[3];
	int stride[3];
};

struct scaler *scaler_open(void)
{
	struct scaler *s = calloc(1, sizeof(*s));

	if (!s) {
		log_error("scaler: calloc failed");
		return NULL;
	}
	s->tj = tjInitDecompress();
	if (!s->tj) {
		log_error("scaler: tjInitDecompress: %s", tjGetErrorStr2(NULL));
		free(s);
		return NULL;
	}
	return s;
}

void scaler_close(struct scaler *s)
{
	if (!s)
		return;
	if (s->tj)
		tjDestroy(s->tj);
	if (s->tjc)
		tjDestroy(s->tjc);
	free(s->decoded.bytes);
	free(s->resized.bytes);
	free(s->tile.bytes);
	free(s->spans.bytes);
	free(s);
}

void scaler_pick(uint32_t width, uint32_t height, uint32_t w, uint32_t h, int *num, int *denom)
{
	int count = 0, i;
	const tjscalingfactor *f = tjGetScalingFactors(&count);
	uint64_t best_area = UINT64_MAX;

	*num = 1;
	*denom = 1;
	for (i = 0; f && i < count; i++) {
		uint64_t sw, sh;

		if (f[i].num > f[i].denom)
			continue; /* an upscaling IDCT costs more than a linear blend */
		sw = (uint64_t)TJSCALED((int)width, f[i]);
		sh = (uint64_t)TJSCALED((int)height, f[i]);
		if (sw >= w && sh >= h && sw * sh < best_area) {
			best_area = sw * sh;
			*num = f[i].num;
			*denom = f[i].denom;
		}
	}
}

/* Along one axis: for output i of n_out, the input positions it reads.
 * Shrinking: the inputs [first, first + count) it covers (area average).
 * Growing: first and first + 1, count is the weight of the second in
 * 1/256ths (linear blend). */
static void axis_spans(uint32_t n_in, uint32_t n_out, int32_t *first, int32_t *count)
{
	uint32_t i;

	for (i = 0; i < n_out; i++) {
		if (n_in >= n_out) {
			uint32_t a = (uint32_t)((uint64_t)i * n_in / n_out);
			uint32_t b = (uint32_t)((uint64_t)(i + 1) * n_in / n_out);

			first[i] = (int32_t)a;
			count[i] = (int32_t)(b > a ? b - a : 1);
		} else {
			/* centre of output pixel i, in input pixels, times 256 */
			int64_t c = ((2 * (int64_t)i + 1) * n_in * 256) / (2 * (int64_t)n_out) - 128;

			if (c < 0)
				c = 0;
			first[i] = (int32_t)(c >> 8);
			count[i] = (int32_t)(c & 255);
			if ((uint32_t)first[i] >= n_in - 1) {
				first[i] = (int32_t)(n_in - 1);
				count[i] = 0;
			}
		}
	}
}

/* Why a resampler of our own: TurboJPEG decodes at eighths of the size but
 * has no resize, and linking an image library (libswscale, pixman) for one
 * box filter and one linear blend would cost more than these lines.  The
 * DCT scaling has already done the bulk of any reduction, so what is left
 * here is a factor below 2 on each axis. */
static void resize(const unsigned char *src, uint32_t sw, uint32_t sh, unsigned char *dst,
		   size_t dst_stride, uint32_t dw, uint32_t dh, int32_t *spans)
{
	int32_t *x_first = spans, *x_count = spans + dw;
	int32_t *y_first = spans + 2 * (size_t)dw, *y_count = y_first + dh;
	int x_grow = sw < dw, y_grow = sh < dh;
	uint32_t x, y;
	int c;

	axis_spans(sw, dw, x_first, x_count);
	axis_spans(sh, dh, y_first, y_count);
	for (y = 0; y < dh; y++) {
		unsigned char *out = dst + (size_t)y * dst_stride;
		int32_t y0 = y_first[y], yn = y_grow ? 2 : y_count[y];

		for (x = 0; x < dw; x++) {
			int32_t x0 = x_first[x], xn = x_grow ? 2 : x_count[x];

			for (c = 0; c < 3; c++) {
				int64_t sum = 0, weight = 0;
				int32_t i, j;

				for (j = 0; j < yn; j++) {
					int32_t yy = y0 + j, wy = 256;

					if (y_grow) {
						wy = j ? y_count[y] : 256 - y_count[y];
						if (yy >= (int32_t)sh)
							yy = (int32_t)sh - 1;
					}
					for (i = 0; i < xn; i++) {
						int32_t xx = x0 + i, wx = 256;

						if (x_grow) {
							wx = i ? x_count[x] : 256 - x_count[x];
							if (xx >= (int32_t)sw)
								xx = (int32_t)sw - 1;
						}
						sum += (int64_t)wx * wy *
						       src[((size_t)yy * sw + (size_t)xx) * 3 + c];
						weight += (int64_t)wx * wy;
					}
				}
				/* weight > 0: at least one input, a weight of 256 at least */
				out[3 * x + c] = (unsigned char)(weight ? (sum + weight / 2) / weight : 0);
			}
		}
	}
}

void scaler_resize(const unsigned char *src, uint32_t sw, uint32_t sh, unsigned char *dst,
		   size_t dst_stride, uint32_t dw, uint32_t dh)
{
	int32_t *spans = malloc(2 * ((size_t)dw + dh) * sizeof(*spans));

	if (!spans)
		FATAL("scaler: malloc of %u+%u spans failed", dw, dh);
	else
		resize(src, sw, sh, dst, dst_stride, dw, dh, spans);
	free(spans);
}

/* Room for size bytes in a scratch buffer: its bytes, or NULL (logged). */
static unsigned char *scratch_reserve(struct scratch *b, size_t size, const char *what)
{
	unsigned char *grown;

	if (size <= b->size)
		return b->bytes;
	grown = realloc(b->bytes, size);
	if (!grown) {
		log_error("scaler: realloc of %zu bytes for %s failed", size, what);
		return NULL;
	}
	b->bytes = grown;
	b->size = size;
	return grown;
}

/* The planes of a PIXEL_I420 buffer of width x height (encode.h). */
static void planes_of(unsigned char *yuv, uint32_t width, uint32_t height, struct planes *out)
{
	int c;

	for (c = 0; c < 3; c++) {
		out->plane[c] = yuv;
		out->stride[c] = tjPlaneWidth(c, (int)width, TJSAMP_420);
		yuv += (size_t)out->stride[c] * (size_t)tjPlaneHeight(c, (int)height, TJSAMP_420);
	}
}

/* The planes of the rectangle at (x, y) of a picture's: chroma at (x / 2,
 * y / 2), one sample per 2x2 pixels. */
static void planes_at(const struct planes *pic, uint32_t x, uint32_t y, struct planes *out)
{
	int c;

	for (c = 0; c < 3; c++) {
		uint32_t shift = c ? 1 : 0;

		out->plane[c] = pic->plane[c] + (size_t)(y >> shift) * (size_t)pic->stride[c] +
				(x >> shift);
		out->stride[c] = pic->stride[c];
	}
}

/* Whether the w x h rectangle at (x, y) can take planes of its own size
 * written in place: TurboJPEG writes planes of even width and height (the
 * picture's last column and row have that room), and the rectangle's
 * chroma samples are the picture's own only from an even x and y. */
static int fits_in_place(const struct scaler_picture *pic, uint32_t x, uint32_t y, uint32_t w,
			 uint32_t h)
{
	return x % 2 == 0 && y % 2 == 0 && (w % 2 == 0 || x + w == pic->width) &&
	       (h % 2 == 0 || y + h == pic->height);
}

/* Copies the planes of a w x h picture into the rectangle at (x, y) of
 * pic; chroma goes to (x / 2, y / 2), clipped to the picture's. */
static void copy_planes(const struct planes *from, uint32_t w, uint32_t h,
			const struct scaler_picture *pic, const struct planes *to, uint32_t x,
			uint32_t y)
{
	int c;

	for (c = 0; c < 3; c++) {
		uint32_t shift = c ? 1 : 0, row;
		uint32_t px = x >> shift, py = y >> shift;
		uint32_t cw = (w + shift) >> shift, ch = (h + shift) >> shift;
		uint32_t pw = (pic->width + shift) >> shift, ph = (pic->height + shift) >> shift;

		if (cw > pw - px)
			cw = pw - px;
		if (ch > ph - py)
			ch = ph - py;
		for (row = 0; row < ch; row++)
			memcpy(to->plane[c] + (size_t)(py + row) * (size_t)to->stride[c] + px,
			       from->plane[c] + (size_t)row * (size_t)from->stride[c], cw);
	}
}

/* Where a w x h rectangle at (x, y) of pic is written: in place, or in the
 * scratch tile (then copied by finish_rect).  0, or -1 (logged). */
static int begin_rect(struct scaler *s, const struct scaler_picture *pic,
		      const struct planes *all, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
		      struct planes *out)
{
	unsigned char *tile;

	if (fits_in_place(pic, x, y, w, h)) {
		planes_at(all, x, y, out);
		return 0;
	}
	tile = scratch_reserve(&s->tile, encode_i420_bytes(w, h), "a tile's planes");
	if (!tile)
		return -1;
	planes_of(tile, w, h, out);
	return 0;
}

static void finish_rect(const struct scaler_picture *pic, const struct planes *all,
			const struct planes *rect, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	if (!fits_in_place(pic, x, y, w, h))
		copy_planes(rect, w, h, pic, all, x, y);
}

void scaler_clear(const struct scaler_picture *pic)
{
	struct planes p;
	int c;

	planes_of(pic->yuv, pic->width, pic->height, &p);
	for (c = 0; c < 3; c++)
		memset(p.plane[c], c ? 128 : 0,
		       (size_t)p.stride[c] * (size_t)tjPlaneHeight(c, (int)pic->height, TJSAMP_420));
}

int scaler_put_rgb(struct scaler *s, const unsigned char *rgb, const struct scaler_picture *pic,
		   uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	struct planes all, rect;

	if (!s->tjc && !(s->tjc = tjInitCompress())) {
		log_error("scaler: tjInitCompress: %s", tjGetErrorStr2(NULL));
		return -1;
	}
	planes_of(pic->yuv, pic->width, pic->height, &all);
	if (begin_rect(s, pic, &all, x, y, w, h, &rect) < 0)
		return -1;
	if (tjEncodeYUVPlanes(s->tjc, rgb, (int)w, 0, (int)h, TJPF_RGB, rect.plane, rect.stride,
			      TJSAMP_420, 0) != 0) {
		log_error("scaler: tjEncodeYUVPlanes(%ux%u): %s", w, h, tjGetErrorStr2(s->tjc));
		return -1;
	}
	finish_rect(pic, &all, &rect, x, y, w, h);
	return 0;
}

/* Logs a TurboJPEG failure and starts the next call with a new handle:
 * TurboJPEG 2.1 leaves a decompressor that failed mid-read unusable. */
static int decode_failed(struct scaler *s, const char *call, const char *what)
{
	log_error("scaler: %s(%s): %s", call, what, tjGetErrorStr2(s->tj));
	tjDestroy(s->tj);
	s->tj = NULL;
	return -1;
}

/* A decode call's result: a warning (data a decoder could recover from) is
 * not a failure here; bus frames were validated. */
static int decoded_ok(struct scaler *s, int rc)
{
	return rc == 0 || tjGetErrorCode(s->tj) == TJERR_WARNING;
}

int scaler_draw(struct scaler *s, const unsigned char *jpeg, size_t bytes,
		const struct scaler_picture *pic, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
		const char *what)
{
	int width, height, subsamp, colorspace, num, denom;
	tjscalingfactor f;
	uint32_t sw, sh;
	unsigned char *rgb;

	if (!s->tj && !(s->tj = tjInitDecompress())) {
		log_error("scaler: tjInitDecompress: %s", tjGetErrorStr2(NULL));
		return -1;
	}
	if (tjDecompressHeader3(s->tj, jpeg, (unsigned long)bytes, &width, &height, &subsamp,
				&colorspace) != 0)
		return decode_failed(s, "tjDecompressHeader3", what);
	scaler_pick((uint32_t)width, (uint32_t)height, w, h, &num, &denom);
	f.num = num;
	f.denom = denom;
	sw = (uint32_t)TJSCALED(width, f);
	sh = (uint32_t)TJSCALED(height, f);
	if (sw == w && sh == h && subsamp == TJSAMP_420 && colorspace == TJCS_YCbCr) {
		/* the common case: the decoder's own planes are the picture's */
		struct planes all, rect;

		planes_of(pic->yuv, pic->width, pic->height, &all);
		if (begin_rect(s, pic, &all, x, y, w, h, &rect) < 0)
			return -1;
		/* TJFLAG_FASTDCT at 1/1 only: TurboJPEG 2.1.5, scaling into
		 * planes with it, gives chroma four times too far from grey
		 * (red comes out 254,29,0); its scaled IDCTs are not the fast
		 * one anyway. */
		if (!decoded_ok(s, tjDecompressToYUVPlanes(s->tj, jpeg, (unsigned long)bytes,
							   rect.plane, (int)w, rect.stride, (int)h,
							   num == denom ? TJFLAG_FASTDCT : 0)))
			return decode_failed(s, "tjDecompressToYUVPlanes", what);
		finish_rect(pic, &all, &rect, x, y, w, h);
		return 0;
	}
	rgb = scratch_reserve(&s->decoded, (size_t)sw * sh * 3, what);
	if (!rgb)
		return -1;
	if (!decoded_ok(s, tjDecompress2(s->tj, jpeg, (unsigned long)bytes, rgb, (int)sw, 0,
					 (int)sh, TJPF_RGB, TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE)))
		return decode_failed(s, "tjDecompress2", what);
	if (sw != w || sh != h) {
		unsigned char *resized = scratch_reserve(&s->resized, (size_t)w * h * 3, what);
		unsigned char *spans =
			scratch_reserve(&s->spans, 2 * ((size_t)w + h) * sizeof(int32_t), what);

		if (!resized || !spans)
			return -1;
		resize(rgb, sw, sh, resized, (size_t)w * 3, w, h, (int32_t *)(void *)spans);
		rgb = resized;
	}
	return scaler_put_rgb(s, rgb, pic, x, y, w, h);
}
