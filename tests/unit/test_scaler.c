/* Unit tests for fcgi/scaler.c: the choice of DCT scaling, the resampler,
 * and JPEGs drawn into tiles of a picture, their colours in the right
 * places. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "encode.h"
#include "scaler.h"

#include <stdlib.h>
#include <string.h>

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

/* Encodes a width x height quadrants picture, draws it into the w x h
 * rectangle at (x, y) of a dw x dh picture, and checks the colours there
 * and that nothing outside changed. */
static void draw_case(uint32_t width, uint32_t height, uint32_t dw, uint32_t dh, uint32_t x,
		      uint32_t y, uint32_t w, uint32_t h)
{
	struct encoder *enc = encode_open();
	struct scaler *s = scaler_open();
	unsigned char *src = quadrants(width, height), *dst = calloc((size_t)dw * dh, 3);
	const unsigned char *jpeg;
	size_t bytes, i;

	assert_non_null(enc);
	assert_non_null(s);
	assert_non_null(dst);
	assert_int_equal(encode_frame(enc, src, PIXEL_RGB24, width, height, 90, &jpeg, &bytes), 0);
	assert_int_equal(scaler_draw(s, jpeg, bytes, dst, dw, x, y, w, h, "test"), 0);
	assert_quadrants(dst, dw, x, y, w, h);
	for (i = 0; i < (size_t)dw * dh; i++) {
		uint32_t px = (uint32_t)(i % dw), py = (uint32_t)(i / dw);

		if ((px < x || px >= x + w || py < y || py >= y + h) &&
		    (dst[3 * i] || dst[3 * i + 1] || dst[3 * i + 2]))
			fail_msg("pixel (%u,%u) outside the rectangle was written", px, py);
	}
	/* not a JPEG: refused, nothing drawn */
	memset(dst, 0, (size_t)dw * dh * 3);
	assert_int_equal(scaler_draw(s, src, 64, dst, dw, x, y, w, h, "test"), -1);
	for (i = 0; i < (size_t)dw * dh * 3; i++)
		assert_int_equal(dst[i], 0);
	/* and the scaler still works after the failure */
	assert_int_equal(scaler_draw(s, jpeg, bytes, dst, dw, x, y, w, h, "test"), 0);
	assert_quadrants(dst, dw, x, y, w, h);
	free(src);
	free(dst);
	scaler_close(s);
	encode_close(enc);
}

static void test_draw_exact_scaling(void **state)
{
	(void)state;
	draw_case(640, 480, 320, 240, 0, 0, 320, 240); /* scale: 1/2, no resize */
	draw_case(640, 480, 320, 240, 160, 120, 160, 120); /* a mosaic's last tile, 1/4 */
}

static void test_draw_resized(void **state)
{
	(void)state;
	draw_case(640, 480, 400, 300, 200, 0, 200, 100); /* 1/2, then shrunk */
	draw_case(64, 48, 300, 200, 150, 100, 150, 100); /* grown */
	draw_case(96, 64, 100, 100, 0, 50, 50, 50);      /* other aspect ratio */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_resize_shrinks_by_area),
		cmocka_unit_test(test_resize_grows_linearly),
		cmocka_unit_test(test_draw_exact_scaling),
		cmocka_unit_test(test_draw_resized),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
