#include "encode.h"

#include "log.h"

#include <pthread.h>
#include <stdio.h>
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
	{ NULL, PIXEL_I420, 0, -1 }, /* not named: see encode.h */
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

size_t encode_i420_bytes(uint32_t width, uint32_t height)
{
	return tjBufSizeYUV2((int)width, 1, (int)height, TJSAMP_420);
}

int encode_parse_format(const char *name, enum pixel_format *format)
{
	size_t i;

	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		if (formats[i].name && strcmp(name, formats[i].name) == 0) {
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
	if ((format == PIXEL_I420
		     ? tjCompressFromYUV(enc->tj, pixels, (int)width, 1, (int)height, TJSAMP_420,
					 &enc->jpeg, &jpeg_bytes, quality, TJFLAG_FASTDCT)
		     : tjCompress2(enc->tj, pixels, (int)width, 0, (int)height, tj_format,
				   &enc->jpeg, &jpeg_bytes, subsamp, quality, TJFLAG_FASTDCT)) < 0) {
		log_error("encode: %s(%ux%u): %s",
			  format == PIXEL_I420 ? "tjCompressFromYUV" : "tjCompress2", width,
			  height, tjGetErrorStr2(enc->tj));
		return -1;
	}
	if (jpeg_bytes > enc->jpeg_capacity)
		enc->jpeg_capacity = jpeg_bytes;
	*jpeg = enc->jpeg;
	*bytes = jpeg_bytes;
	return 0;
}

/* ---- validation ---------------------------------------------------------
 *
 * A JPEG not encoded here (ingest, dir:, mjpeg:) reaches viewers only when
 * it decodes without error or warning and is within FRAME_SIDE_MAX: one
 * undecodable part ends the whole stream in Chromium, and a header that
 * declares 65500x65500 makes every browser try to allocate gigabytes.
 *
 * The decode is scaled by 1/8 into grayscale.  libjpeg still reads every
 * entropy-coded segment of every component (the Huffman codes must be
 * walked to find where the next block starts), so corrupt, missing or
 * garbage scan data fails exactly as in a full decode; what is skipped is
 * the inverse DCT of all but the DC coefficient, the chroma components'
 * IDCT, upsampling and colour conversion, which cannot fail.  On a 640x480
 * bars frame this costs under a third of a full RGB decode and about a
 * fifth of an encode (README, Performance), and the output is at most
 * 1024x1024 bytes per thread. */

/* Scaled output: 1/8 of each side, rounded up (TJSCALED). */
#define VALIDATE_SCALE_DENOM 8
/* Room for a reason with the decoder's own message in it. */
#define VALIDATE_WHY_BYTES 160

/* One per thread that validates (viewer, ingest and producer threads run
 * concurrently; TurboJPEG handles are not shared), made on its first call
 * and freed when the thread ends. */
struct validator {
	tjhandle tj;             /* NULL after a failure: a new one next call */
	unsigned char *scaled;   /* the scaled decode, grown as needed */
	size_t scaled_bytes;
	char why[VALIDATE_WHY_BYTES]; /* a reason with details, for *why */
};

static pthread_key_t validate_key;
static pthread_once_t validate_once = PTHREAD_ONCE_INIT;

static void validator_destroy(void *arg)
{
	struct validator *v = arg;

	if (v->tj)
		tjDestroy(v->tj);
	free(v->scaled);
	free(v);
}

static void validate_key_create(void)
{
	CHECK_ZERO(pthread_key_create(&validate_key, validator_destroy));
}

/* The calling thread's validator with a decompressor, or NULL. */
static struct validator *validator_get(void)
{
	struct validator *v;

	CHECK_ZERO(pthread_once(&validate_once, validate_key_create));
	v = pthread_getspecific(validate_key);
	if (!v) {
		v = calloc(1, sizeof(*v));
		if (!v)
			return NULL;
		CHECK_ZERO(pthread_setspecific(validate_key, v));
	}
	if (!v->tj)
		v->tj = tjInitDecompress();
	return v->tj ? v : NULL;
}

/* TurboJPEG 2.1 leaves a decompressor that failed mid-header unable to
 * read the next JPEG (the failed read is not aborted): after any failure
 * the next call starts with a new one. */
static void validator_reset(struct validator *v)
{
	tjDestroy(v->tj);
	v->tj = NULL;
}

/* JPEG_SOF markers: SOF0-SOF15 are C0-CF but for DHT (C4), JPG (C8) and
 * DAC (CC). */
static int is_sof_marker(unsigned char code)
{
	return code >= 0xC0 && code <= 0xCF && code != 0xC4 && code != 0xC8 && code != 0xCC;
}

/* The SOFn code of the frame header, found by walking the marker segments
 * from SOI up to the first SOS; 0 when the walk finds none (the decoder
 * then says what is wrong). */
static unsigned char frame_marker(const unsigned char *jpeg, size_t bytes)
{
	size_t at = 2;

	while (at + 4 <= bytes) {
		unsigned char code;

		if (jpeg[at] != 0xFF)
			return 0;
		code = jpeg[at + 1];
		if (code == 0xFF) { /* fill byte before a marker */
			at++;
			continue;
		}
		if (is_sof_marker(code))
			return code;
		if (code == 0xDA || code == 0xD9) /* SOS, EOI: no frame header before */
			return 0;
		if (code == 0x01 || (code >= 0xD0 && code <= 0xD7)) { /* no length */
			at += 2;
			continue;
		}
		at += 2 + (((size_t)jpeg[at + 2] << 8) | jpeg[at + 3]);
	}
	return 0;
}

/* Arithmetic coding (SOF9-SOF11, SOF13-SOF15): libjpeg-turbo decodes it,
 * Chromium and Firefox do not. */
static int is_arithmetic(unsigned char sof)
{
	return sof >= 0xC9 && sof != 0xCC;
}

/* "what: the decoder's message" into v->why. */
static const char *decoder_why(struct validator *v, const char *what)
{
	static const char corrupt_prefix[] = "Corrupt JPEG data: ";
	const char *msg = tjGetErrorStr2(v->tj);

	/* libjpeg's warnings all start with the prefix: said once is enough */
	if (strncmp(msg, corrupt_prefix, sizeof(corrupt_prefix) - 1) == 0)
		msg += sizeof(corrupt_prefix) - 1;
	if (snprintf(v->why, sizeof(v->why), "%s: %s", what, msg) < 0)
		return what;
	return v->why; /* cut short when long: still one line */
}

int encode_validate(const unsigned char *jpeg, size_t bytes, uint32_t *width,
		    uint32_t *height, const char **why)
{
	/* A tables-only stream (no frame header) succeeds without setting
	 * the size: zero means "no picture". */
	int w = 0, h = 0, subsamp, colorspace, scaled_w, scaled_h;
	const tjscalingfactor scale = { 1, VALIDATE_SCALE_DENOM };
	struct validator *v;
	size_t need;

	if (bytes < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) {
		*why = "not a JPEG (no FFD8 start marker)";
		return -1;
	}
	if (jpeg[bytes - 2] != 0xFF || jpeg[bytes - 1] != 0xD9) {
		*why = "truncated JPEG (no FFD9 end marker)";
		return -1;
	}
	if (is_arithmetic(frame_marker(jpeg, bytes))) {
		*why = "arithmetic-coded JPEG (browsers do not decode it)";
		return -1;
	}
	v = validator_get();
	if (!v) {
		*why = "JPEG decoder unavailable";
		return -1;
	}
	if (tjDecompressHeader3(v->tj, jpeg, (unsigned long)bytes, &w, &h, &subsamp,
				&colorspace) < 0) {
		*why = decoder_why(v, "undecodable JPEG header");
		validator_reset(v);
		return -1;
	}
	if (w <= 0 || h <= 0) {
		*why = "JPEG with no picture size";
		return -1;
	}
	/* Before any decoding: the size alone decides what a browser
	 * would allocate. */
	if (w > FRAME_SIDE_MAX || h > FRAME_SIDE_MAX) {
		if (snprintf(v->why, sizeof(v->why),
			     "JPEG of %dx%d pixels, over the %dx%d limit", w, h, FRAME_SIDE_MAX,
			     FRAME_SIDE_MAX) < 0)
			*why = "JPEG over the picture size limit";
		else
			*why = v->why;
		return -1;
	}
	if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
		*why = "CMYK JPEG (print colours: convert it to RGB/YCbCr for screens)";
		return -1;
	}
	scaled_w = TJSCALED(w, scale);
	scaled_h = TJSCALED(h, scale);
	need = (size_t)scaled_w * (size_t)scaled_h; /* grayscale: a byte a pixel */
	if (need > v->scaled_bytes) {
		unsigned char *grown = realloc(v->scaled, need);

		if (!grown) {
			*why = "out of memory to decode the JPEG";
			return -1;
		}
		v->scaled = grown;
		v->scaled_bytes = need;
	}
	/* STOPONWARNING: corrupt data is a warning in libjpeg, which would
	 * otherwise fill in grey and go on; LIMITSCANS: a progressive JPEG
	 * of thousands of tiny scans is refused rather than decoded for
	 * seconds. */
	if (tjDecompress2(v->tj, jpeg, (unsigned long)bytes, v->scaled, scaled_w, 0, scaled_h,
			  TJPF_GRAY, TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) < 0) {
		*why = decoder_why(v, tjGetErrorCode(v->tj) == TJERR_WARNING ? "corrupt JPEG data"
									     : "undecodable JPEG");
		validator_reset(v);
		return -1;
	}
	if (width)
		*width = (uint32_t)w;
	if (height)
		*height = (uint32_t)h;
	return 0;
}
