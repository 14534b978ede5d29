/* Unit tests for fcgi/encode.c: JPEG encoding of every pixel format and
 * validation of what clients upload.  Decoding back uses TurboJPEG
 * directly, as an independent check of the colours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "encode.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#define SIDE 256u
/* JPEG is lossy: how far a decoded solid colour may be off */
#define COLOUR_SLACK 8

/* Frames one test may make. */
#define FRAMES_MAX 2

/* The encoder under test and the frames a test made: teardown frees them
 * even when a failed assertion ended the test early. */
struct fixture {
	struct encoder *enc;
	unsigned char *frames[FRAMES_MAX];
	size_t frame_count;
};

static int setup_encoder(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->enc = encode_open();
	if (!f->enc) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown_encoder(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < f->frame_count; i++)
		free(f->frames[i]);
	encode_close(f->enc);
	free(f);
	return 0;
}

/* A frame of values x height copies of one value (value_bytes each; for
 * yuyv a value is two pixels), freed by teardown. */
static unsigned char *solid_frame(struct fixture *f, uint32_t values, uint32_t height,
				  const unsigned char *value, size_t value_bytes)
{
	size_t i, n = (size_t)values * height;
	unsigned char *buf;

	assert_true(f->frame_count < FRAMES_MAX);
	buf = malloc(n * value_bytes);
	assert_non_null(buf);
	f->frames[f->frame_count++] = buf;
	for (i = 0; i < n; i++)
		memcpy(buf + i * value_bytes, value, value_bytes);
	return buf;
}

static void assert_near(int got, int expected)
{
	if (got < expected - COLOUR_SLACK || got > expected + COLOUR_SLACK)
		fail_msg("decoded %d, expected %d +- %d", got, expected, COLOUR_SLACK);
}

/* Decodes jpeg and checks its size and the colour of its centre pixel. */
static void assert_decodes_to(const unsigned char *jpeg, size_t bytes, uint32_t width,
			      uint32_t height, int r, int g, int b)
{
	tjhandle tj = tjInitDecompress();
	unsigned char *rgb = malloc((size_t)width * height * 3), centre[3] = { 0 };
	int w = 0, h = 0, subsamp, colorspace, rc = -1;

	/* Decoded and freed first: the assertions leave nothing behind. */
	if (tj && rgb &&
	    tjDecompressHeader3(tj, jpeg, (unsigned long)bytes, &w, &h, &subsamp, &colorspace) ==
		    0 &&
	    (uint32_t)w == width && (uint32_t)h == height) {
		rc = tjDecompress2(tj, jpeg, (unsigned long)bytes, rgb, w, 0, h, TJPF_RGB, 0);
		memcpy(centre, rgb + 3 * ((size_t)(height / 2) * width + width / 2), 3);
	}
	free(rgb);
	if (tj)
		tjDestroy(tj);
	assert_int_equal(w, width);
	assert_int_equal(h, height);
	assert_int_equal(rc, 0);
	assert_near(centre[0], r);
	assert_near(centre[1], g);
	assert_near(centre[2], b);
}

/* Encodes and checks the result is a complete JPEG that validates. */
static void encode_checked(struct encoder *enc, const unsigned char *pixels,
			   enum pixel_format format, uint32_t width, uint32_t height,
			   const unsigned char **jpeg, size_t *bytes)
{
	uint32_t vw = 0, vh = 0;
	const char *why = NULL;

	*jpeg = NULL;
	*bytes = 0;
	assert_int_equal(encode_frame(enc, pixels, format, width, height,
				      ENCODE_QUALITY_DEFAULT, jpeg, bytes),
			 0);
	assert_non_null(*jpeg);
	assert_true(*bytes > 100);
	assert_int_equal((*jpeg)[0], 0xFF);
	assert_int_equal((*jpeg)[1], 0xD8);
	assert_int_equal((*jpeg)[*bytes - 2], 0xFF);
	assert_int_equal((*jpeg)[*bytes - 1], 0xD9);
	if (encode_validate(*jpeg, *bytes, &vw, &vh, &why) != 0)
		fail_msg("encode_validate refused our own JPEG: %s", why);
	assert_int_equal(vw, width);
	assert_int_equal(vh, height);
}

/* A SIDE x SIDE frame of one value in format encodes to a JPEG that
 * decodes to r, g, b.  value: value_bytes of the format's bytes, one pixel
 * (two for yuyv). */
static void assert_solid_encodes(struct fixture *f, enum pixel_format format,
				 const unsigned char *value, size_t value_bytes, int r, int g, int b)
{
	uint32_t values = (uint32_t)(SIDE * encode_pixel_bytes(format) / value_bytes);
	unsigned char *frame = solid_frame(f, values, SIDE, value, value_bytes);
	const unsigned char *jpeg;
	size_t bytes;

	encode_checked(f->enc, frame, format, SIDE, SIDE, &jpeg, &bytes);
	assert_decodes_to(jpeg, bytes, SIDE, SIDE, r, g, b);
}

static void test_encode_red_rgb(void **state)
{
	static const unsigned char red[3] = { 255, 0, 0 };

	assert_solid_encodes(*state, PIXEL_RGB24, red, 3, 255, 0, 0);
}

static void test_encode_bgr24(void **state)
{
	static const unsigned char red_bgr[3] = { 0, 0, 255 };

	assert_solid_encodes(*state, PIXEL_BGR24, red_bgr, 3, 255, 0, 0);
}

static void test_encode_rgba(void **state)
{
	static const unsigned char blue_rgba[4] = { 0, 0, 255, 255 };

	assert_solid_encodes(*state, PIXEL_RGBA, blue_rgba, 4, 0, 0, 255);
}

static void test_encode_gray(void **state)
{
	static const unsigned char grey[1] = { 128 };

	assert_solid_encodes(*state, PIXEL_GRAY, grey, 1, 128, 128, 128);
}

static void test_encode_yuyv(void **state)
{
	/* BT.601 limited range red: Y 81, U 90, V 240, for both pixels */
	static const unsigned char red_yuyv[4] = { 81, 90, 81, 240 };

	assert_solid_encodes(*state, PIXEL_YUYV, red_yuyv, 4, 255, 0, 0);
}

/* PIXEL_I420, the derived streams' pictures: JPEG's own full-range YCbCr
 * planes (red: Y 76, Cb 85, Cr 255), of an even size and of an odd one,
 * whose luma plane has a padding column and row. */
static void test_encode_i420(void **state)
{
	static const uint32_t sizes[][2] = { { SIDE, SIDE }, { 33, 17 } };
	struct fixture *f = *state;
	size_t i;

	assert_int_equal(encode_i420_bytes(33, 17), 34 * 18 + 2 * 17 * 9);
	assert_int_equal(encode_pixel_bytes(PIXEL_I420), 0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t w = sizes[i][0], h = sizes[i][1];
		size_t luma = (size_t)(w + 1) / 2 * 2 * ((h + 1) / 2 * 2);
		size_t chroma = (size_t)((w + 1) / 2) * ((h + 1) / 2);
		unsigned char *yuv = malloc(encode_i420_bytes(w, h));
		const unsigned char *jpeg;
		size_t bytes;

		assert_non_null(yuv);
		assert_int_equal(encode_i420_bytes(w, h), luma + 2 * chroma);
		memset(yuv, 76, luma);
		memset(yuv + luma, 85, chroma);
		memset(yuv + luma + chroma, 255, chroma);
		encode_checked(f->enc, yuv, PIXEL_I420, w, h, &jpeg, &bytes);
		assert_decodes_to(jpeg, bytes, w, h, 255, 0, 0);
		free(yuv);
	}
}

/* The encoder's buffer is reused: a second, larger frame still comes out
 * whole, and a smaller one after it too. */
static void test_encode_reuse_sizes(void **state)
{
	static const unsigned char green[3] = { 0, 255, 0 };
	struct fixture *f = *state;
	unsigned char *small = solid_frame(f, 16, 16, green, 3);
	unsigned char *large = solid_frame(f, 640, 480, green, 3);
	const unsigned char *jpeg;
	size_t bytes;

	encode_checked(f->enc, small, PIXEL_RGB24, 16, 16, &jpeg, &bytes);
	encode_checked(f->enc, large, PIXEL_RGB24, 640, 480, &jpeg, &bytes);
	assert_decodes_to(jpeg, bytes, 640, 480, 0, 255, 0);
	encode_checked(f->enc, small, PIXEL_RGB24, 16, 16, &jpeg, &bytes);
	assert_decodes_to(jpeg, bytes, 16, 16, 0, 255, 0);
}

static void test_validate_rejects_empty_and_non_jpeg(void **state)
{
	static const unsigned char png[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	static const unsigned char tiny[] = { 0xFF, 0xD8, 0xFF };
	static const unsigned char text[] = "GIF89a or some other text";
	uint32_t w = 77, h = 77;
	const char *why = NULL;

	(void)state;
	assert_int_equal(encode_validate(text, 0, &w, &h, &why), -1);
	assert_non_null(why);
	assert_true(strlen(why) > 0);

	why = NULL;
	assert_int_equal(encode_validate(png, sizeof(png), &w, &h, &why), -1);
	assert_non_null(why);
	assert_non_null(strstr(why, "not a JPEG"));

	why = NULL;
	assert_int_equal(encode_validate(text, sizeof(text) - 1, &w, &h, &why), -1);
	assert_non_null(why);

	why = NULL;
	assert_int_equal(encode_validate(tiny, sizeof(tiny), &w, &h, &why), -1);
	assert_non_null(why);
	/* refused input does not fill the size */
	assert_int_equal(w, 77);
	assert_int_equal(h, 77);
}

static void test_validate_rejects_truncated(void **state)
{
	static const unsigned char red[3] = { 255, 0, 0 };
	struct fixture *f = *state;
	unsigned char *frame = solid_frame(f, SIDE, SIDE, red, 3);
	const unsigned char *jpeg;
	const char *why = NULL;
	uint32_t w = 77, h = 77;
	size_t bytes;

	encode_checked(f->enc, frame, PIXEL_RGB24, SIDE, SIDE, &jpeg, &bytes);
	assert_int_equal(encode_validate(jpeg, bytes - 2, &w, &h, &why), -1);
	assert_non_null(why);
	assert_non_null(strstr(why, "truncated"));
	assert_int_equal(w, 77);
	assert_int_equal(h, 77);

	/* cut in the middle */
	why = NULL;
	assert_int_equal(encode_validate(jpeg, bytes / 2, &w, &h, &why), -1);
	assert_non_null(why);
}

/* encode_validate keeps one TurboJPEG decompressor per thread.  Calls
 * that reach the decoder with bad input run in a thread of their own, so
 * that whatever they do to that decompressor cannot leak into later tests
 * (see test_validate_after_refused_header).  No cmocka asserts in there:
 * results are recorded and checked by the test afterwards. */
struct validate_call {
	const unsigned char *jpeg;
	size_t bytes;
	int rc;
	uint32_t width, height; /* 77 unless encode_validate set them */
	const char *why;        /* why_copy after a refusal */
	/* The reason, copied in the thread: encode_validate's own copy
	 * lasts only as long as the thread that asked. */
	char why_copy[256];
};

struct validate_batch {
	struct validate_call *calls;
	size_t count;
};

/* Fills the stack below the caller with 0x41 bytes, so that a local
 * variable the next call leaves unset holds 0x41414141, not whatever was
 * there by chance: makes a read of an uninitialised local deterministic. */
__attribute__((noinline)) static void paint_stack(void)
{
	volatile unsigned char pad[16384];
	size_t i;

	for (i = 0; i < sizeof(pad); i++)
		pad[i] = 0x41;
}

static void *validate_thread(void *arg)
{
	struct validate_batch *batch = arg;
	size_t i;

	for (i = 0; i < batch->count; i++) {
		struct validate_call *c = &batch->calls[i];

		c->width = c->height = 77;
		c->why = NULL;
		paint_stack();
		c->rc = encode_validate(c->jpeg, c->bytes, &c->width, &c->height, &c->why);
		if (c->why) {
			snprintf(c->why_copy, sizeof(c->why_copy), "%s", c->why);
			c->why = c->why_copy;
		}
	}
	return NULL;
}

/* Runs the calls in order in one new thread (one new decompressor). */
static void validate_in_new_thread(struct validate_call *calls, size_t count)
{
	struct validate_batch batch = { calls, count };
	pthread_t thread;

	assert_int_equal(pthread_create(&thread, NULL, validate_thread, &batch), 0);
	assert_int_equal(pthread_join(thread, NULL), 0);
}

static void assert_refused(const struct validate_call *c, const char *reason)
{
	if (c->rc != -1)
		fail_msg("encode_validate accepted %zu bytes starting %02X %02X %02X %02X as a "
			 "%ux%u JPEG",
			 c->bytes, c->jpeg[0], c->jpeg[1], c->jpeg[2], c->jpeg[3], c->width,
			 c->height);
	assert_non_null(c->why);
	if (reason && !strstr(c->why, reason))
		fail_msg("reason \"%s\" does not say \"%s\"", c->why, reason);
	assert_int_equal(c->width, 77);
	assert_int_equal(c->height, 77);
}

/* SOI, then size bytes of which none is 0xFF (so no marker), no EOI. */
static void fill_garbage(unsigned char *buf, size_t size)
{
	size_t i;

	buf[0] = 0xFF;
	buf[1] = 0xD8;
	for (i = 2; i < size; i++) {
		buf[i] = (unsigned char)(i * 37 + 11);
		if (buf[i] == 0xFF)
			buf[i] = 0x55;
	}
}

static void test_validate_rejects_garbage_after_soi(void **state)
{
	unsigned char no_eoi[600], bad_sof[600];
	struct validate_call calls[2] = {
		{ .jpeg = no_eoi, .bytes = sizeof(no_eoi) },
		{ .jpeg = bad_sof, .bytes = sizeof(bad_sof) },
	};

	(void)state;
	fill_garbage(no_eoi, sizeof(no_eoi));
	/* a frame header (SOF0) of impossible length, an end marker: the
	 * markers are right, the decoder refuses the header */
	fill_garbage(bad_sof, sizeof(bad_sof));
	memcpy(bad_sof + 2, "\xFF\xC0\x00\x02", 4);
	bad_sof[sizeof(bad_sof) - 2] = 0xFF;
	bad_sof[sizeof(bad_sof) - 1] = 0xD9;

	validate_in_new_thread(calls, 2);
	assert_refused(&calls[0], "truncated");
	assert_refused(&calls[1], "undecodable");
}

/* SOI ... EOI without a frame header.
 *
 * BUG (fcgi/encode.c, encode_validate): TurboJPEG 2.1's tjDecompressHeader3
 * takes such input as a "tables-only" datastream and returns 0 without
 * writing width and height (documented in turbojpeg.h).  encode_validate's
 * locals w and h are not initialised, so its "w <= 0 || h <= 0" check reads
 * uninitialised stack: the 4 bytes FF D8 FF D9 are accepted as a JPEG of
 * 1094795585x1094795585 here (stack painted with 0x41), and whenever the
 * stack happens to hold positive values in production (ingest answers 200
 * instead of 415, and viewers get a part that is no picture).
 * Fix: int w = 0, h = 0. */
static void test_validate_rejects_soi_eoi_without_frame(void **state)
{
	static const unsigned char soi_eoi[] = { 0xFF, 0xD8, 0xFF, 0xD9 };
	unsigned char garbage[600];
	struct validate_call calls[2] = {
		{ .jpeg = soi_eoi, .bytes = sizeof(soi_eoi) },
		{ .jpeg = garbage, .bytes = sizeof(garbage) },
	};

	(void)state;
	fill_garbage(garbage, sizeof(garbage));
	garbage[sizeof(garbage) - 2] = 0xFF;
	garbage[sizeof(garbage) - 1] = 0xD9;
	validate_in_new_thread(calls, 2);
	assert_refused(&calls[0], NULL);
	assert_refused(&calls[1], NULL);
}

/* One bad upload must not spoil the thread's decoder for good ones.
 *
 * BUG (fcgi/encode.c, encode_validate): when tjDecompressHeader3 fails
 * (libjpeg error exit), TurboJPEG 2.1 returns -1 without aborting the
 * decompression, and encode_validate keeps using that per-thread handle.
 * Its next jpeg_read_header continues the old, failed header (saw_SOI still
 * set) and fails on the new SOI, and so on forever: after one JPEG with a
 * bad header, every valid JPEG validated by that thread is refused with
 * "undecodable JPEG header" (ingest answers 415 to every later upload
 * served by that thread; the dir: source skips every later file).
 * Fix: after a failed tjDecompressHeader3, tjDestroy the handle and clear
 * the thread's key (or use a new handle per call). */
static void test_validate_after_refused_header(void **state)
{
	static const unsigned char red[3] = { 255, 0, 0 };
	struct fixture *f = *state;
	unsigned char *frame = solid_frame(f, 64, 32, red, 3);
	unsigned char bad_sof[600];
	const unsigned char *jpeg;
	size_t bytes;
	struct validate_call calls[4];

	fill_garbage(bad_sof, sizeof(bad_sof));
	memcpy(bad_sof + 2, "\xFF\xC0\x00\x02", 4);
	bad_sof[sizeof(bad_sof) - 2] = 0xFF;
	bad_sof[sizeof(bad_sof) - 1] = 0xD9;
	assert_int_equal(encode_frame(f->enc, frame, PIXEL_RGB24, 64, 32, ENCODE_QUALITY_DEFAULT,
				      &jpeg, &bytes),
			 0); /* jpeg lives in the encoder */
	memset(calls, 0, sizeof(calls));
	calls[0].jpeg = jpeg;
	calls[0].bytes = bytes;
	calls[1].jpeg = bad_sof;
	calls[1].bytes = sizeof(bad_sof);
	calls[2] = calls[0];
	calls[3] = calls[0];

	validate_in_new_thread(calls, 4);
	assert_int_equal(calls[0].rc, 0);
	assert_refused(&calls[1], "undecodable");
	if (calls[2].rc != 0)
		fail_msg("valid JPEG refused after a bad one: %s", calls[2].why);
	assert_int_equal(calls[2].width, 64);
	assert_int_equal(calls[2].height, 32);
	assert_int_equal(calls[3].rc, 0);
}

/* NULL width/height pointers are allowed. */
static void test_validate_size_optional(void **state)
{
	static const unsigned char red[3] = { 255, 0, 0 };
	struct fixture *f = *state;
	unsigned char *frame = solid_frame(f, 64, 32, red, 3);
	const unsigned char *jpeg;
	const char *why = NULL;
	size_t bytes;

	encode_checked(f->enc, frame, PIXEL_RGB24, 64, 32, &jpeg, &bytes);
	assert_int_equal(encode_validate(jpeg, bytes, NULL, NULL, &why), 0);
}

/* ---- what reaches viewers: a JPEG that decodes cleanly, within the size
 * limit.  JPEGs for these tests come from TurboJPEG directly, with a
 * picture that varies (noise-like), so that the scan data is long and
 * every part of it matters. */

struct test_jpeg {
	unsigned char *data; /* tjAlloc'd */
	size_t bytes;
};

static struct test_jpeg make_jpeg(int width, int height, int pixel_format, int subsamp,
				  int flags)
{
	int channels = tjPixelSize[pixel_format];
	size_t n = (size_t)width * height * (size_t)channels, i;
	unsigned char *pixels = malloc(n);
	tjhandle tj = tjInitCompress();
	unsigned long bytes = 0;
	struct test_jpeg out = { NULL, 0 };

	assert_non_null(pixels);
	assert_non_null(tj);
	for (i = 0; i < n; i++)
		pixels[i] = (unsigned char)((i * 7919u) ^ (i >> 5) ^ (i * i >> 11));
	if (tjCompress2(tj, pixels, width, 0, height, pixel_format, &out.data, &bytes, subsamp,
			85, flags) < 0)
		fail_msg("tjCompress2: %s", tjGetErrorStr2(tj));
	out.bytes = bytes;
	tjDestroy(tj);
	free(pixels);
	return out;
}

/* Offset of the first marker with this code (walking the segments), or 0. */
static size_t marker_at(const struct test_jpeg *j, unsigned char code)
{
	size_t at = 2;

	while (at + 4 <= j->bytes && j->data[at] == 0xFF) {
		if (j->data[at + 1] == code)
			return at;
		at += 2 + (((size_t)j->data[at + 2] << 8) | j->data[at + 3]);
	}
	return 0;
}

/* A 64x48 baseline JPEG, and in *sof the offset of its SOF0 marker: for a
 * test that rewrites the frame header. */
static struct test_jpeg baseline_with_sof(size_t *sof)
{
	struct test_jpeg j = make_jpeg(64, 48, TJPF_RGB, TJSAMP_420, 0);

	*sof = marker_at(&j, 0xC0);
	assert_true(*sof > 0);
	return j;
}

/* Offset of the first byte of entropy-coded data (after the SOS header). */
static size_t scan_data_at(const struct test_jpeg *j)
{
	size_t sos = marker_at(j, 0xDA);

	assert_true(sos > 0);
	return sos + 2 + (((size_t)j->data[sos + 2] << 8) | j->data[sos + 3]);
}

/* Validates in a new thread and checks the refusal names the reason. */
static void assert_validate_refuses(const unsigned char *jpeg, size_t bytes, const char *reason)
{
	struct validate_call call = { .jpeg = jpeg, .bytes = bytes };

	validate_in_new_thread(&call, 1);
	assert_refused(&call, reason);
	if (strchr(call.why, '\n'))
		fail_msg("reason \"%s\" is more than one line", call.why);
}

static void assert_validate_accepts(const unsigned char *jpeg, size_t bytes, uint32_t width,
				    uint32_t height)
{
	uint32_t w = 0, h = 0;
	const char *why = NULL;

	if (encode_validate(jpeg, bytes, &w, &h, &why) != 0)
		fail_msg("a good %ux%u JPEG refused: %s", width, height, why);
	assert_int_equal(w, width);
	assert_int_equal(h, height);
}

/* A header that declares 65500x65500 (what libjpeg allows at most) is
 * refused from the header, before any decoding, naming the limit.
 *
 * BUG (fcgi/encode.c, encode_validate, before validation decoded): only
 * the header was read, with no size cap, so this was accepted and sent to
 * every viewer (a browser would try to decode about 17 GB). */
static void test_validate_refuses_oversize_declared(void **state)
{
	size_t sof;
	struct test_jpeg j = baseline_with_sof(&sof);

	(void)state;
	/* SOF0: FFC0, length (2), precision (1), height (2), width (2) */
	j.data[sof + 5] = 0xFF;
	j.data[sof + 6] = 0xDC;
	j.data[sof + 7] = 0xFF;
	j.data[sof + 8] = 0xDC;
	assert_validate_refuses(j.data, j.bytes, "65500x65500 pixels, over the 8192x8192 limit");
	tjFree(j.data);
}

/* A real, clean JPEG just over the limit in one side is refused; one at
 * the limit passes. */
static void test_validate_size_limit_each_side(void **state)
{
	struct test_jpeg wide = make_jpeg(8193, 8, TJPF_GRAY, TJSAMP_GRAY, 0);
	struct test_jpeg tall = make_jpeg(8, 8193, TJPF_GRAY, TJSAMP_GRAY, 0);
	struct test_jpeg edge = make_jpeg(8192, 16, TJPF_RGB, TJSAMP_420, 0);

	(void)state;
	assert_validate_refuses(wide.data, wide.bytes, "8193x8 pixels, over the");
	assert_validate_refuses(tall.data, tall.bytes, "8x8193 pixels, over the");
	assert_validate_accepts(edge.data, edge.bytes, 8192, 16);
	tjFree(wide.data);
	tjFree(tall.data);
	tjFree(edge.data);
}

/* A body cut short with FFD9 put back at its end: the markers look right,
 * the scan data ends early.
 *
 * BUG (before validation decoded): accepted; a browser shows a grey lower
 * half, or ends the stream. */
static void test_validate_refuses_truncated_with_eoi(void **state)
{
	struct test_jpeg j = make_jpeg(320, 240, TJPF_RGB, TJSAMP_420, 0);
	size_t scan = scan_data_at(&j);
	const size_t cuts[] = { scan + (j.bytes - scan) / 2, j.bytes - 64, j.bytes - 8 };
	size_t i;

	(void)state;
	assert_validate_accepts(j.data, j.bytes, 320, 240);
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		unsigned char *cut = malloc(cuts[i] + 2);

		assert_non_null(cut);
		memcpy(cut, j.data, cuts[i]);
		cut[cuts[i]] = 0xFF;
		cut[cuts[i] + 1] = 0xD9;
		assert_validate_refuses(cut, cuts[i] + 2, "corrupt JPEG data");
		free(cut);
	}
	tjFree(j.data);
}

/* Every header, then EOI: no scan data at all.
 *
 * BUG (before validation decoded): accepted as a 320x240 JPEG. */
static void test_validate_refuses_no_scan_data(void **state)
{
	struct test_jpeg j = make_jpeg(320, 240, TJPF_RGB, TJSAMP_420, 0);
	size_t scan = scan_data_at(&j);

	(void)state;
	j.data[scan] = 0xFF;
	j.data[scan + 1] = 0xD9;
	assert_validate_refuses(j.data, scan + 2, "corrupt JPEG data");
	tjFree(j.data);
}

/* Scan data replaced by bytes that are no Huffman code stream (no FF in
 * them, so no marker either), at the right length.
 *
 * BUG (before validation decoded): accepted. */
static void test_validate_refuses_garbage_scan(void **state)
{
	struct test_jpeg j = make_jpeg(320, 240, TJPF_RGB, TJSAMP_420, 0);
	size_t scan = scan_data_at(&j), i;
	uint32_t x = 12345;

	(void)state;
	for (i = scan; i < j.bytes - 2; i++) {
		x = x * 1103515245u + 12345u; /* any fixed sequence will do */
		j.data[i] = (unsigned char)(x >> 24);
		if (j.data[i] == 0xFF)
			j.data[i] = 0x5A;
	}
	assert_validate_refuses(j.data, j.bytes, "corrupt JPEG data");
	tjFree(j.data);
}

/* A run of zero bytes over the middle of the scan (4:4:4, so chroma
 * blocks are as many as luma ones): no marker appears, the Huffman codes
 * they spell do not add up to the picture. */
static void test_validate_refuses_zeroed_scan_middle(void **state)
{
	struct test_jpeg j = make_jpeg(320, 240, TJPF_RGB, TJSAMP_444, 0);
	size_t scan = scan_data_at(&j), mid = scan + (j.bytes - scan) / 2;

	(void)state;
	memset(j.data + mid, 0x00, 256);
	assert_validate_refuses(j.data, j.bytes, "corrupt JPEG data");
	tjFree(j.data);
}

/* Progressive JPEGs (browsers show them) pass whole, and are refused cut
 * short. */
static void test_validate_progressive(void **state)
{
	struct test_jpeg j = make_jpeg(320, 240, TJPF_RGB, TJSAMP_420, TJFLAG_PROGRESSIVE);
	size_t cut = j.bytes - j.bytes / 3;
	unsigned char *data = malloc(cut + 2);

	(void)state;
	assert_non_null(data);
	assert_true(marker_at(&j, 0xC2) > 0); /* SOF2: progressive indeed */
	assert_validate_accepts(j.data, j.bytes, 320, 240);
	memcpy(data, j.data, cut);
	data[cut] = 0xFF;
	data[cut + 1] = 0xD9;
	assert_validate_refuses(data, cut + 2, "corrupt JPEG data");
	free(data);
	tjFree(j.data);
}

/* Grey and 4:4:4/4:2:2 colour pass; CMYK (and YCCK) are refused: print
 * files, shown by browsers without their colour profile, if at all. */
static void test_validate_colour_spaces(void **state)
{
	struct test_jpeg grey = make_jpeg(100, 60, TJPF_GRAY, TJSAMP_GRAY, 0);
	struct test_jpeg full = make_jpeg(100, 60, TJPF_RGB, TJSAMP_444, 0);
	struct test_jpeg half = make_jpeg(100, 60, TJPF_BGR, TJSAMP_422, 0);
	struct test_jpeg cmyk = make_jpeg(100, 60, TJPF_CMYK, TJSAMP_444, 0);

	(void)state;
	assert_validate_accepts(grey.data, grey.bytes, 100, 60);
	assert_validate_accepts(full.data, full.bytes, 100, 60);
	assert_validate_accepts(half.data, half.bytes, 100, 60);
	assert_validate_refuses(cmyk.data, cmyk.bytes, "CMYK");
	tjFree(grey.data);
	tjFree(full.data);
	tjFree(half.data);
	tjFree(cmyk.data);
}

/* Arithmetic coding (SOF9) is refused by its frame marker: libjpeg-turbo
 * would decode it, Chromium and Firefox do not.  (TurboJPEG 2.1 cannot
 * write one; the marker alone decides, so a relabelled frame does.) */
static void test_validate_refuses_arithmetic(void **state)
{
	size_t sof;
	struct test_jpeg j = baseline_with_sof(&sof);

	(void)state;
	j.data[sof + 1] = 0xC9;
	assert_validate_refuses(j.data, j.bytes, "arithmetic");
	tjFree(j.data);
}

/* One thread validates large, refused and small JPEGs in turn: its buffer
 * and decoder are reused, and a refusal spoils neither. */
static void test_validate_reuse_across_sizes(void **state)
{
	struct test_jpeg big = make_jpeg(1920, 1080, TJPF_RGB, TJSAMP_420, 0);
	struct test_jpeg small = make_jpeg(17, 9, TJPF_RGB, TJSAMP_420, 0);
	unsigned char *cut = malloc(big.bytes / 2 + 2);
	const char *why = NULL;
	int round;

	(void)state;
	assert_non_null(cut);
	memcpy(cut, big.data, big.bytes / 2);
	cut[big.bytes / 2] = 0xFF;
	cut[big.bytes / 2 + 1] = 0xD9;
	for (round = 0; round < 3; round++) {
		assert_validate_accepts(small.data, small.bytes, 17, 9);
		assert_validate_accepts(big.data, big.bytes, 1920, 1080);
		assert_int_equal(encode_validate(cut, big.bytes / 2 + 2, NULL, NULL, &why), -1);
		assert_non_null(strstr(why, "corrupt JPEG data"));
		assert_validate_accepts(small.data, small.bytes, 17, 9);
	}
	free(cut);
	tjFree(big.data);
	tjFree(small.data);
}

static void test_parse_format(void **state)
{
	static const struct {
		const char *name;
		enum pixel_format format;
	} cases[] = {
		{ "rgb24", PIXEL_RGB24 }, { "bgr24", PIXEL_BGR24 }, { "rgba", PIXEL_RGBA },
		{ "gray", PIXEL_GRAY },   { "yuyv", PIXEL_YUYV },
	};
	enum pixel_format format;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		format = (enum pixel_format)99;
		assert_int_equal(encode_parse_format(cases[i].name, &format), 0);
		assert_int_equal(format, cases[i].format);
	}
	format = (enum pixel_format)99;
	assert_int_equal(encode_parse_format("rgb", &format), -1);
	assert_int_equal(encode_parse_format("RGB24", &format), -1);
	assert_int_equal(encode_parse_format("grey", &format), -1);
	assert_int_equal(encode_parse_format("", &format), -1);
	assert_int_equal(encode_parse_format("yuyv ", &format), -1);
	/* the derived streams' own format is not a raw format */
	assert_int_equal(encode_parse_format("i420", &format), -1);
	assert_int_equal(format, 99);
}

static void test_pixel_bytes(void **state)
{
	(void)state;
	assert_int_equal(encode_pixel_bytes(PIXEL_RGB24), 3);
	assert_int_equal(encode_pixel_bytes(PIXEL_BGR24), 3);
	assert_int_equal(encode_pixel_bytes(PIXEL_RGBA), 4);
	assert_int_equal(encode_pixel_bytes(PIXEL_GRAY), 1);
	assert_int_equal(encode_pixel_bytes(PIXEL_YUYV), 2);
}

/* A test given an encoder (setup_encoder). */
#define ENCODER_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_encoder, teardown_encoder)

int main(void)
{
	const struct CMUnitTest tests[] = {
		ENCODER_TEST(test_encode_red_rgb),
		ENCODER_TEST(test_encode_bgr24),
		ENCODER_TEST(test_encode_rgba),
		ENCODER_TEST(test_encode_gray),
		ENCODER_TEST(test_encode_yuyv),
		ENCODER_TEST(test_encode_i420),
		ENCODER_TEST(test_encode_reuse_sizes),
		cmocka_unit_test(test_validate_rejects_empty_and_non_jpeg),
		ENCODER_TEST(test_validate_rejects_truncated),
		cmocka_unit_test(test_validate_rejects_garbage_after_soi),
		cmocka_unit_test(test_validate_rejects_soi_eoi_without_frame),
		ENCODER_TEST(test_validate_after_refused_header),
		ENCODER_TEST(test_validate_size_optional),
		cmocka_unit_test(test_validate_refuses_oversize_declared),
		cmocka_unit_test(test_validate_size_limit_each_side),
		cmocka_unit_test(test_validate_refuses_truncated_with_eoi),
		cmocka_unit_test(test_validate_refuses_no_scan_data),
		cmocka_unit_test(test_validate_refuses_garbage_scan),
		cmocka_unit_test(test_validate_refuses_zeroed_scan_middle),
		cmocka_unit_test(test_validate_progressive),
		cmocka_unit_test(test_validate_colour_spaces),
		cmocka_unit_test(test_validate_refuses_arithmetic),
		cmocka_unit_test(test_validate_reuse_across_sizes),
		cmocka_unit_test(test_parse_format),
		cmocka_unit_test(test_pixel_bytes),
	};

	return cmocka_run_group_tests_name("encode", tests, NULL, NULL);
}
