#include "encode.h"

#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

struct encoder {
	tjhandle tj;
	unsigned char *yuyv_rgb; /* YUYV is converted to RGB here first */
	size_t yuyv_rgb_bytes;
	unsigned char *jpeg;     /* output, grown by TurboJPEG as needed */
	unsigned long jpeg_capacity;
};

static const struct {
	const char *name;
	enum pixel_format format;
	size_t bytes;
	int tj_format;
} formats[] = {
	{ "rgb24", PIXEL_RGB24, 3, TJPF_RGB },
	{ "bgr24", PIXEL_BGR24, 3, TJPF_BGR },
	{ "rgba", PIXEL_RGBA, 4, TJPF_RGBA },
	{ "gray", PIXEL_GRAY, 1, TJPF_GRAY },
	{ "yuyv", PIXEL_YUYV, 2, TJPF_RGB },
};

struct encoder *encode_open(void)
{
	struct encoder *enc = calloc(1, sizeof(*enc));

	if (!enc) {
		log_error("encode: calloc failed");
		return NULL;
	}
	enc->tj = tjInitCompress();
	if (!enc->tj) {
		log_error("encode: tjInitCompress: %s", tjGetErrorStr2(NULL));
		free(enc);
		return NULL;
	}
	return enc;
}

void encode_close(struct encoder *enc)
{
	if (!enc)
		return;
	tjDestroy(enc->tj);
	tjFree(enc->jpeg);
	free(enc->yuyv_rgb);
	free(enc);
}

size_t encode_pixel_bytes(enum pixel_format format)
{
	return formats[format].bytes;
}

int encode_parse_format(const char *name, enum pixel_format *format)
{
	size_t i;

	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		if (strcmp(name, formats[i].name) == 0) {
			*format = formats[i].format;
			return 0;
		}
	}
	return -1;
}

static unsigned char clamp255(int v)
{
	return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* YUYV (YUY2, as V4L2 cameras give it) to RGB, BT.601 limited range in
 * integer arithmetic.  TurboJPEG 2.1 takes planar YUV only, so packed
 * 4:2:2 is converted here. */
static void yuyv_to_rgb(const unsigned char *in, unsigned char *out, size_t pixels)
{
	size_t i;

	for (i = 0; i < pixels; i += 2) {
		int y0 = in[0] - 16, u = in[1] - 128, y1 = in[2] - 16, v = in[3] - 128;
		int k;

		for (k = 0; k < 2 && i + (size_t)k < pixels; k++) {
			int c = 298 * (k ? y1 : y0);

			out[0] = clamp255((c + 409 * v + 128) >> 8);
			out[1] = clamp255((c - 100 * u - 208 * v + 128) >> 8);
			out[2] = clamp255((c + 516 * u + 128) >> 8);
			out += 3;
		}
		in += 4;
	}
}

int encode_frame(struct encoder *enc, const unsigned char *pixels, enum pixel_format format,
		 uint32_t width, uint32_t height, int quality, const unsigned char **jpeg,
		 size_t *bytes)
{
	unsigned long jpeg_bytes = enc->jpeg_capacity;
	int tj_format = formats[format].tj_format;
	int subsamp = format == PIXEL_GRAY ? TJSAMP_GRAY : TJSAMP_420;

	if (format == PIXEL_YUYV) {
		size_t need = (size_t)width * height * 3;

		if (need > enc->yuyv_rgb_bytes) {
			unsigned char *grown = realloc(enc->yuyv_rgb, need);

			if (!grown) {
				log_error("encode: realloc(%zu) failed", need);
				return -1;
			}
			enc->yuyv_rgb = grown;
			enc->yuyv_rgb_bytes = need;
		}
		yuyv_to_rgb(pixels, enc->yuyv_rgb, (size_t)width * height);
		pixels = enc->yuyv_rgb;
	}
	/* The output buffer is reused across frames; TurboJPEG grows it when
	 * a frame needs more, so after the first frames no allocation is
	 * made. */
	if (tjCompress2(enc->tj, pixels, (int)width, 0, (int)height, tj_format, &enc->jpeg,
			&jpeg_bytes, subsamp, quality, TJFLAG_FASTDCT) < 0) {
		log_error("encode: tjCompress2(%ux%u): %s", width, height,
			  tjGetErrorStr2(enc->tj));
		return -1;
	}
	if (jpeg_bytes > enc->jpeg_capacity)
		enc->jpeg_capacity = jpeg_bytes;
	*jpeg = enc->jpeg;
	*bytes = jpeg_bytes;
	return 0;
}

/* The decompressor is per thread (validation runs in viewer and ingest
 * threads concurrently), freed when its thread ends. */
static pthread_key_t validate_key;
static pthread_once_t validate_once = PTHREAD_ONCE_INIT;

static void validate_destroy(void *tj)
{
	tjDestroy(tj);
}

static void validate_key_create(void)
{
	CHECK_ZERO(pthread_key_create(&validate_key, validate_destroy));
}

static tjhandle validate_handle(void)
{
	tjhandle tj;

	CHECK_ZERO(pthread_once(&validate_once, validate_key_create));
	tj = pthread_getspecific(validate_key);
	if (!tj) {
		tj = tjInitDecompress();
		if (tj)
			CHECK_ZERO(pthread_setspecific(validate_key, tj));
	}
	return tj;
}

int encode_validate(const unsigned char *jpeg, size_t bytes, uint32_t *width,
		    uint32_t *height, const char **why)
{
	/* A tables-only stream (no frame header) succeeds without setting
	 * the size: zero means "no picture". */
	int w = 0, h = 0, subsamp, colorspace;
	tjhandle tj;

	if (bytes < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) {
		*why = "not a JPEG (no FFD8 start marker)";
		return -1;
	}
	if (jpeg[bytes - 2] != 0xFF || jpeg[bytes - 1] != 0xD9) {
		*why = "truncated JPEG (no FFD9 end marker)";
		return -1;
	}
	tj = validate_handle();
	if (!tj) {
		*why = "JPEG decoder unavailable";
		return -1;
	}
	if (tjDecompressHeader3(tj, jpeg, bytes, &w, &h, &subsamp, &colorspace) < 0) {
		/* TurboJPEG 2.1 leaves a decompressor that failed mid-header
		 * unable to read the next JPEG: start afresh next time. */
		tjDestroy(tj);
		CHECK_ZERO(pthread_setspecific(validate_key, NULL));
		*why = "undecodable JPEG header";
		return -1;
	}
	if (w <= 0 || h <= 0) {
		*why = "JPEG with no picture size";
		return -1;
	}
	if (width)
		*width = (uint32_t)w;
	if (height)
		*height = (uint32_t)h;
	return 0;
}
