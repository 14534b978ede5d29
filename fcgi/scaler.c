#include "scaler.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

struct scaler {
	tjhandle tj;            /* NULL after a failure: a new one next call */
	unsigned char *decoded; /* the scaled decode when it needs resizing */
	size_t decoded_bytes;
	int32_t *spans;         /* resize_axis: per output column, first input and count */
	size_t spans_count;
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
	free(s->decoded);
	free(s->spans);
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

/* Room for the spans of a dw x dh resize; 0 or -1 (out of memory). */
static int spans_reserve(struct scaler *s, uint32_t dw, uint32_t dh)
{
	size_t need = 2 * ((size_t)dw + dh);
	int32_t *grown;

	if (need <= s->spans_count)
		return 0;
	grown = realloc(s->spans, need * sizeof(*grown));
	if (!grown)
		return -1;
	s->spans = grown;
	s->spans_count = need;
	return 0;
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

/* Logs a TurboJPEG failure and starts the next call with a new handle:
 * TurboJPEG 2.1 leaves a decompressor that failed mid-read unusable. */
static int decode_failed(struct scaler *s, const char *call, const char *what)
{
	log_error("scaler: %s(%s): %s", call, what, tjGetErrorStr2(s->tj));
	tjDestroy(s->tj);
	s->tj = NULL;
	return -1;
}

int scaler_draw(struct scaler *s, const unsigned char *jpeg, size_t bytes, unsigned char *dst,
		uint32_t dst_width, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
		const char *what)
{
	int width, height, subsamp, colorspace, num, denom;
	tjscalingfactor f;
	uint32_t sw, sh;
	size_t need, stride = (size_t)dst_width * 3;
	unsigned char *out = dst + (size_t)y * stride + (size_t)x * 3;

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
	if (sw == w && sh == h) {
		/* the DCT scaling alone fits: decode straight into the picture */
		if (tjDecompress2(s->tj, jpeg, (unsigned long)bytes, out, (int)w, (int)stride,
				  (int)h, TJPF_RGB, TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE) != 0 &&
		    tjGetErrorCode(s->tj) != TJERR_WARNING)
			return decode_failed(s, "tjDecompress2", what);
		return 0;
	}
	need = (size_t)sw * sh * 3;
	if (need > s->decoded_bytes) {
		unsigned char *grown = realloc(s->decoded, need);

		if (!grown) {
			log_error("scaler: realloc of %zu bytes for %s failed", need, what);
			return -1;
		}
		s->decoded = grown;
		s->decoded_bytes = need;
	}
	if (spans_reserve(s, w, h) < 0) {
		log_error("scaler: realloc of spans for %s failed", what);
		return -1;
	}
	if (tjDecompress2(s->tj, jpeg, (unsigned long)bytes, s->decoded, (int)sw, 0, (int)sh,
			  TJPF_RGB, TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE) != 0 &&
	    tjGetErrorCode(s->tj) != TJERR_WARNING)
		return decode_failed(s, "tjDecompress2", what);
	resize(s->decoded, sw, sh, out, stride, w, h, s->spans);
	return 0;
}
