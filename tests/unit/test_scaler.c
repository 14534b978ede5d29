/* Unit tests for fcgi/scaler.c: the choice of DCT scaling, the resampler,
 * and JPEGs of every subsampling drawn into tiles of a planar picture at
 * even and odd places and sizes, their colours in the right places and
 * nothing outside written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "encode.h"
#include "scaler.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* JPEG is lossy, and 4:2:0 blurs colour across block edges: how far a
 * decoded solid colour may be off, well inside a quadrant. */
#define COLOUR_SLACK 12

static const unsigned char quad_colours[4][3] = {
	{ 255, 0, 0 }, { 0, 255, 0 }, { 0, 0, 255 }, { 255, 255, 0 },
};

/* An RGB24 picture of four solid quadrants: red, green / blue, yellow. */
static unsigned char *quadrants(uint32_t w, uint32_t h)
{
	unsigned char *rgb = malloc((size_t)w * h * 3);
	uint32_t x, y;

	assert_non_null(rgb);
	for (y = 0; y < h; y++)
		for (x = 0; x < w; x++)
			memcpy(rgb + ((size_t)y * w + x) * 3,
			       quad_colours[(y >= h / 2) * 2 + (x >= w / 2)], 3);
	return rgb;
}

static void assert_colour(const unsigned char *rgb, uint32_t width, uint32_t x, uint32_t y,
			  const unsigned char *want)
{
	const unsigned char *p = rgb + ((size_t)y * width + x) * 3;
	int c;

	for (c = 0; c < 3; c++)
		if (abs((int)p[c] - (int)want[c]) > COLOUR_SLACK)
			fail_msg("pixel (%u,%u) is %u,%u,%u, expected %u,%u,%u", x, y, p[0], p[1],
				 p[2], want[0], want[1], want[2]);
}

/* The middle of each quadrant of the w x h rectangle at (x0, y0). */
static void assert_quadrants(const unsigned char *rgb, uint32_t width, uint32_t x0, uint32_t y0,
			     uint32_t w, uint32_t h)
{
	int q;

	for (q = 0; q < 4; q++)
		assert_colour(rgb, width, x0 + w / 4 + (uint32_t)(q % 2) * w / 2,
			      y0 + h / 4 + (uint32_t)(q / 2) * h / 2, quad_colours[q]);
}

static void test_pick(void **state)
{
	static const struct {
		uint32_t width, height, w, h;
		int num, denom;
	} cases[] = {
		{ 640, 480, 320, 240, 1, 2 }, /* exact */
		{ 640, 480, 160, 120, 1, 4 },
		{ 640, 480, 80, 60, 1, 8 },
		{ 640, 480, 10, 10, 1, 8 },   /* no smaller than 1/8 */
		{ 640, 480, 300, 200, 1, 2 }, /* 1/2 covers it; 3/8 (240x180) does not */
		{ 640, 480, 640, 480, 1, 1 },
		{ 640, 480, 1280, 960, 1, 1 }, /* growing: no upscaling IDCT */
		{ 640, 480, 320, 400, 7, 8 },  /* the taller side decides: 560x420 */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int num, denom;

		scaler_pick(cases[i].width, cases[i].height, cases[i].w, cases[i].h, &num, &denom);
		if (num * cases[i].denom != cases[i].num * denom)
			fail_msg("%ux%u for %ux%u: %d/%d, expected %d/%d", cases[i].width,
				 cases[i].height, cases[i].w, cases[i].h, num, denom, cases[i].num,
				 cases[i].denom);
	}
}

static void test_resize_shrinks_by_area(void **state)
{
	/* 6x2 -> 3x1: each output pixel the mean of a 2x2 block */
	static const unsigned char src[2][6][3] = {
		{ { 0, 0, 0 }, { 100, 0, 0 }, { 10, 20, 30 }, { 10, 20, 30 }, { 255, 255, 255 },
		  { 255, 255, 255 } },
		{ { 0, 0, 0 }, { 100, 0, 0 }, { 30, 40, 50 }, { 30, 40, 50 }, { 0, 0, 0 }, { 1, 1, 1 } },
	};
	unsigned char out[3][3];

	(void)state;
	scaler_resize(&src[0][0][0], 6, 2, &out[0][0], sizeof(out), 3, 1);
	assert_int_equal(out[0][0], 50);
	assert_int_equal(out[0][1], 0);
	assert_int_equal(out[1][0], 20);
	assert_int_equal(out[1][1], 30);
	assert_int_equal(out[1][2], 40);
	assert_int_equal(out[2][0], 128); /* (255 + 255 + 0 + 1) / 4, rounded */
}

static void test_resize_grows_linearly(void **state)
{
	/* 2x1 -> 4x1: ends keep their colours, the middle blends */
	static const unsigned char src[2][3] = { { 0, 0, 0 }, { 200, 100, 40 } };
	unsigned char out[4][3];

	(void)state;
	scaler_resize(&src[0][0], 2, 1, &out[0][0], sizeof(out), 4, 1);
	assert_int_equal(out[0][0], 0);
	assert_int_equal(out[3][0], 200);
	assert_int_equal(out[3][2], 40);
	assert_in_range(out[1][0], 40, 60);   /* a quarter of the way */
	assert_in_range(out[2][0], 140, 160); /* three quarters */
	/* and a picture grows into its quadrants, with the stride kept */
	{
		unsigned char *q = quadrants(8, 8), *big = calloc(40 * 30, 3);

		assert_non_null(big);
		scaler_resize(q, 8, 8, big + 3 * (40 * 2 + 4), 40 * 3, 32, 24);
		assert_quadrants(big, 40, 4, 2, 32, 24);
		assert_int_equal(big[0], 0); /* outside the rectangle: untouched */
		free(q);
		free(big);
	}
}

/* A JPEG (quality 90, TurboJPEG) of a width x height quadrants picture
 * with the chroma subsampling subsamp (TJSAMP_*), in memory from tu_alloc. */
static const unsigned char *quadrants_jpeg(uint32_t width, uint32_t height, int subsamp,
					   size_t *bytes)
{
	tjhandle tj = tjInitCompress();
	unsigned char *src = quadrants(width, height), *jpeg = NULL, *copy;
	unsigned long size = 0;

	assert_non_null(tj);
	assert_int_equal(tjCompress2(tj, src, (int)width, 0, (int)height, TJPF_RGB, &jpeg, &size,
				     subsamp, 90, 0),
			 0);
	copy = tu_alloc(size);
	memcpy(copy, jpeg, size);
	tjFree(jpeg);
	tjDestroy(tj);
	free(src);
	*bytes = size;
	return copy;
}

/* Whether the pixel (px, py) lies in the w x h rectangle at (x, y). */
static int inside(uint32_t px, uint32_t py, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	return px >= x && px < x + w && py >= y && py < y + h;
}

/* Nothing of pic outside the rectangle was written: luma black, and
 * chroma neutral outside the samples the rectangle's pixels fall in. */
static void assert_rest_black(const struct scaler_picture *pic, uint32_t x, uint32_t y,
			      uint32_t w, uint32_t h)
{
	uint32_t lw = (pic->width + 1) / 2 * 2, lh = (pic->height + 1) / 2 * 2;
	uint32_t cw = lw / 2, ch = lh / 2, px, py;
	const unsigned char *cb = pic->yuv + (size_t)lw * lh, *cr = cb + (size_t)cw * ch;

	for (py = 0; py < pic->height; py++)
		for (px = 0; px < pic->width; px++)
			if (!inside(px, py, x, y, w, h) && pic->yuv[(size_t)py * lw + px] != 0)
				fail_msg("luma (%u,%u) outside the rectangle was written", px, py);
	for (py = 0; py < ch; py++)
		for (px = 0; px < cw; px++)
			if (!inside(px, py, x / 2, y / 2, (x + w + 1) / 2 - x / 2,
				    (y + h + 1) / 2 - y / 2) &&
			    (cb[(size_t)py * cw + px] != 128 || cr[(size_t)py * cw + px] != 128))
				fail_msg("chroma (%u,%u) outside the rectangle was written", px, py);
}

/* Draws a width x height quadrants JPEG (subsampling subsamp) into the w x
 * h rectangle at (x, y) of a black dw x dh picture, and checks the colours
 * there and that nothing outside changed; then that a JPEG that does not
 * decode is refused, changing nothing, and that the scaler works after. */
static void draw_case(uint32_t width, uint32_t height, int subsamp, uint32_t dw, uint32_t dh,
		      uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	struct scaler *s = scaler_open();
	size_t size = encode_i420_bytes(dw, dh), bytes;
	struct scaler_picture pic = { tu_alloc(size), dw, dh };
	unsigned char *black = tu_alloc(size);
	const unsigned char *jpeg = quadrants_jpeg(width, height, subsamp, &bytes);

	assert_non_null(s);
	scaler_clear(&pic);
	memcpy(black, pic.yuv, size);
	assert_int_equal(scaler_draw(s, jpeg, bytes, &pic, x, y, w, h, "test"), 0);
	assert_quadrants(tu_i420_rgb(pic.yuv, dw, dh), dw, x, y, w, h);
	assert_rest_black(&pic, x, y, w, h);
	/* not a JPEG: refused, nothing drawn */
	memcpy(pic.yuv, black, size);
	assert_int_equal(scaler_draw(s, black, 64, &pic, x, y, w, h, "test"), -1);
	assert_memory_equal(pic.yuv, black, size);
	/* and the scaler still works after the failure */
	assert_int_equal(scaler_draw(s, jpeg, bytes, &pic, x, y, w, h, "test"), 0);
	assert_quadrants(tu_i420_rgb(pic.yuv, dw, dh), dw, x, y, w, h);
	scaler_close(s);
}

/* 4:2:0 at a size the DCT scaling reaches: decoded into the planes. */
static void test_draw_exact_scaling(void **state)
{
	(void)state;
	draw_case(640, 480, TJSAMP_420, 320, 240, 0, 0, 320, 240); /* scale: 1/2, no resize */
	draw_case(640, 480, TJSAMP_420, 320, 240, 160, 120, 160, 120); /* a mosaic's last tile, 1/4 */
	/* odd sizes at the picture's edge: the planes' padding column and row */
	draw_case(66, 50, TJSAMP_420, 73, 45, 40, 20, 33, 25);
	/* an odd place: decoded aside, then copied in */
	draw_case(640, 480, TJSAMP_420, 331, 251, 171, 131, 160, 120);
	draw_case(320, 240, TJSAMP_420, 500, 400, 100, 51, 320, 240);
}

/* Sizes the DCT scaling does not reach, and other subsamplings: decoded
 * to RGB, resized, converted. */
static void test_draw_resized(void **state)
{
	(void)state;
	draw_case(640, 480, TJSAMP_420, 400, 300, 200, 0, 200, 100); /* 1/2, then shrunk */
	draw_case(64, 48, TJSAMP_420, 300, 200, 150, 100, 150, 100); /* grown */
	draw_case(96, 64, TJSAMP_420, 100, 100, 0, 50, 50, 50);      /* other aspect ratio */
	draw_case(64, 48, TJSAMP_420, 101, 75, 50, 36, 51, 39);      /* odd, at the edge */
	draw_case(96, 64, TJSAMP_420, 101, 75, 13, 7, 51, 39);       /* odd, anywhere */
	draw_case(640, 480, TJSAMP_444, 320, 240, 0, 0, 320, 240);
	draw_case(640, 480, TJSAMP_422, 320, 240, 160, 0, 160, 120);
	draw_case(640, 480, TJSAMP_440, 331, 251, 171, 131, 160, 120);
}

/* A grey JPEG draws grey; an RGB picture put in place keeps its colours. */
static void test_draw_grey_and_rgb(void **state)
{
	static const unsigned char mid_grey[3] = { 100, 100, 100 };
	struct scaler *s = scaler_open();
	struct scaler_picture pic = { tu_alloc(encode_i420_bytes(64, 64)), 64, 64 };
	unsigned char *grey = tu_alloc(32 * 32), *q = quadrants(30, 20);
	tjhandle tj = tjInitCompress();
	unsigned char *jpeg = NULL;
	unsigned long bytes = 0;

	(void)state;
	assert_non_null(s);
	assert_non_null(tj);
	memset(grey, 100, 32 * 32);
	assert_int_equal(tjCompress2(tj, grey, 32, 0, 32, TJPF_GRAY, &jpeg, &bytes, TJSAMP_GRAY,
				     90, 0),
			 0);
	tjDestroy(tj);
	scaler_clear(&pic);
	assert_int_equal(scaler_draw(s, jpeg, bytes, &pic, 0, 0, 64, 64, "test"), 0);
	tjFree(jpeg);
	assert_colour(tu_i420_rgb(pic.yuv, 64, 64), 64, 20, 40, mid_grey);
	scaler_clear(&pic);
	assert_int_equal(scaler_put_rgb(s, q, &pic, 3, 5, 30, 20), 0);
	assert_quadrants(tu_i420_rgb(pic.yuv, 64, 64), 64, 3, 5, 30, 20);
	assert_rest_black(&pic, 3, 5, 30, 20);
	free(q);
	scaler_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_resize_shrinks_by_area),
		cmocka_unit_test(test_resize_grows_linearly),
		cmocka_unit_test_teardown(test_draw_exact_scaling, tu_release),
		cmocka_unit_test_teardown(test_draw_resized, tu_release),
		cmocka_unit_test_teardown(test_draw_grey_and_rgb, tu_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
