/* Unit tests for fcgi/source_pattern.c: the built-in test pictures, and
 * the pattern kind behind the source interface. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "source.h"
#include "source_pattern.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USEC 1000000LL
/* 2026-01-01 00:00:00.042 UTC, a fixed wall clock */
#define WALL_USEC 1767225600042000LL

/* A picture filled with 0x77, freed by tu_release. */
static unsigned char *rgb_alloc(uint32_t width, uint32_t height)
{
	unsigned char *rgb = tu_alloc((size_t)width * height * 3);

	memset(rgb, 0x77, (size_t)width * height * 3);
	return rgb;
}

/* Fails unless every pixel is (r, g, b). */
static void assert_solid(const unsigned char *rgb, uint32_t width, uint32_t height,
			 unsigned char r, unsigned char g, unsigned char b)
{
	size_t i, pixels = (size_t)width * height;

	for (i = 0; i < pixels; i++)
		if (rgb[3 * i] != r || rgb[3 * i + 1] != g || rgb[3 * i + 2] != b)
			fail_msg("pixel %zu is (%u,%u,%u), expected (%u,%u,%u)", i, rgb[3 * i],
				 rgb[3 * i + 1], rgb[3 * i + 2], r, g, b);
}

static void test_parse(void **state)
{
	enum pattern_kind kind = (enum pattern_kind)99;

	(void)state;
	assert_int_equal(pattern_parse("redblue", &kind), 0);
	assert_int_equal(kind, PATTERN_REDBLUE);
	assert_int_equal(pattern_parse("bars", &kind), 0);
	assert_int_equal(kind, PATTERN_BARS);

	kind = (enum pattern_kind)99;
	assert_int_equal(pattern_parse("", &kind), -1);
	assert_int_equal(pattern_parse("red", &kind), -1);
	assert_int_equal(pattern_parse("Bars", &kind), -1);
	assert_int_equal(pattern_parse("bars ", &kind), -1);
	assert_int_equal(pattern_parse("pattern:bars", &kind), -1);
	assert_int_equal(kind, 99);
}

static void test_redblue(void **state)
{
	const uint32_t w = 256, h = 256;
	unsigned char *rgb = rgb_alloc(w, h);

	(void)state;
	pattern_redblue(rgb, w, h, USEC / 2);
	assert_solid(rgb, w, h, 255, 0, 0);
	pattern_redblue(rgb, w, h, 3 * USEC / 2);
	assert_solid(rgb, w, h, 0, 0, 255);
	pattern_redblue(rgb, w, h, 0);
	assert_solid(rgb, w, h, 255, 0, 0);
	pattern_redblue(rgb, w, h, USEC - 1);
	assert_solid(rgb, w, h, 255, 0, 0);
	pattern_redblue(rgb, w, h, USEC);
	assert_solid(rgb, w, h, 0, 0, 255);
	pattern_redblue(rgb, w, h, 2 * USEC);
	assert_solid(rgb, w, h, 255, 0, 0);
	pattern_redblue(rgb, w, h, 3601 * USEC + 1);
	assert_solid(rgb, w, h, 0, 0, 255);
}

/* Odd sizes too: nothing assumes a multiple of anything. */
static void test_redblue_odd_size(void **state)
{
	const uint32_t w = 7, h = 3;
	unsigned char buf[7 * 3 * 3 + 2];

	(void)state;
	memset(buf, 0x77, sizeof(buf));
	pattern_redblue(buf + 1, w, h, 3 * USEC / 2);
	assert_solid(buf + 1, w, h, 0, 0, 255);
	assert_int_equal(buf[0], 0x77);
	assert_int_equal(buf[sizeof(buf) - 1], 0x77);
}

static void test_bars_frames_differ(void **state)
{
	const uint32_t w = 640, h = 480;
	const size_t bytes = (size_t)w * h * 3;
	unsigned char *a = rgb_alloc(w, h), *b = rgb_alloc(w, h), *c = rgb_alloc(w, h);

	(void)state;
	pattern_bars(a, w, h, 41, WALL_USEC);
	pattern_bars(b, w, h, 42, WALL_USEC);
	assert_memory_not_equal(a, b, bytes);

	/* the bars themselves move, not just the text: compare a row above it */
	assert_memory_not_equal(a, b, (size_t)w * 3);

	/* same (n, time): same picture, whatever the buffer held before */
	memset(c, 0x11, bytes);
	pattern_bars(c, w, h, 42, WALL_USEC);
	assert_memory_equal(b, c, bytes);

	/* same n, other time: the clock text differs */
	pattern_bars(c, w, h, 42, WALL_USEC + 1000 * 1000);
	assert_memory_not_equal(b, c, bytes);
	/* ...but only in the text, the bars above it are the same */
	assert_memory_equal(b, c, (size_t)w * 3 * (h / 2));
}

/* The text sits in the bottom-left corner: it must hold both pure white
 * and pure black pixels, colours the bars themselves never use. */
static void test_bars_text_region(void **state)
{
	const uint32_t w = 640, h = 480;
	unsigned char *rgb = rgb_alloc(w, h);
	size_t white = 0, black = 0, white_top = 0, black_top = 0;
	uint32_t x, y;

	(void)state;
	pattern_bars(rgb, w, h, 123, WALL_USEC);
	for (y = 0; y < h; y++) {
		for (x = 0; x < w; x++) {
			const unsigned char *p = rgb + 3 * ((size_t)y * w + x);
			int is_white = p[0] == 255 && p[1] == 255 && p[2] == 255;
			int is_black = p[0] == 0 && p[1] == 0 && p[2] == 0;

			if (y >= h * 3 / 4 && x < w / 2) {
				white += is_white;
				black += is_black;
			} else if (y < h / 2) {
				white_top += is_white;
				black_top += is_black;
			}
		}
	}
	assert_true(white > 100);
	assert_true(black > 100);
	assert_int_equal(white_top, 0);
	assert_int_equal(black_top, 0);
}

/* Small pictures (scale 1, text at the top) are drawn without trouble. */
static void test_bars_small(void **state)
{
	const uint32_t w = 16, h = 8;
	unsigned char buf[16 * 8 * 3 + 64];
	size_t i;

	(void)state;
	memset(buf, 0xa5, sizeof(buf));
	pattern_bars(buf + 32, w, h, 999999, WALL_USEC);
	for (i = 0; i < 32; i++) {
		assert_int_equal(buf[i], 0xa5);
		assert_int_equal(buf[sizeof(buf) - 1 - i], 0xa5);
	}
}

#define GUARD 256
#define GUARD_BYTE 0xa5
#define FILL_BYTE 0x77

static void assert_guards(const unsigned char *buf, size_t picture_bytes)
{
	size_t i;

	for (i = 0; i < GUARD; i++) {
		if (buf[i] != GUARD_BYTE)
			fail_msg("guard byte %zu before the picture overwritten", GUARD - i);
		if (buf[GUARD + picture_bytes + i] != GUARD_BYTE)
			fail_msg("guard byte %zu after the picture overwritten", i);
	}
}

static void test_draw_text_clips_right_and_bottom(void **state)
{
	const uint32_t w = 20, h = 12;
	const size_t bytes = (size_t)w * h * 3;
	unsigned char buf[GUARD + 20 * 12 * 3 + GUARD];
	unsigned char *rgb = buf + GUARD;
	size_t white = 0, drawn = 0, i;

	(void)state;
	memset(buf, GUARD_BYTE, sizeof(buf));
	memset(rgb, FILL_BYTE, bytes);
	/* starts inside, runs off the right and the bottom edges */
	pattern_draw_text(rgb, w, h, 14, 6, 2, "#88888888");
	assert_guards(buf, bytes);
	for (i = 0; i < (size_t)w * h; i++) {
		uint32_t x = (uint32_t)(i % w), y = (uint32_t)(i / w);
		const unsigned char *p = rgb + 3 * i;

		if (x >= 14 && y >= 6) {
			/* inside the text cells: black or white only */
			assert_true(p[0] == p[1] && p[1] == p[2]);
			assert_true(p[0] == 0 || p[0] == 255);
			white += p[0] == 255;
			drawn++;
		} else {
			assert_int_equal(p[0], FILL_BYTE);
			assert_int_equal(p[1], FILL_BYTE);
			assert_int_equal(p[2], FILL_BYTE);
		}
	}
	assert_int_equal(drawn, 6 * 6);
	assert_true(white > 0);
}

static void test_draw_text_entirely_outside(void **state)
{
	const uint32_t w = 20, h = 12;
	const size_t bytes = (size_t)w * h * 3;
	unsigned char buf[GUARD + 20 * 12 * 3 + GUARD];
	unsigned char *rgb = buf + GUARD;
	size_t i;

	(void)state;
	memset(buf, GUARD_BYTE, sizeof(buf));
	memset(rgb, FILL_BYTE, bytes);
	pattern_draw_text(rgb, w, h, w, 0, 1, "0123");
	pattern_draw_text(rgb, w, h, 0, h, 1, "0123");
	pattern_draw_text(rgb, w, h, 1000, 1000, 3, "0123");
	pattern_draw_text(rgb, w, h, UINT32_MAX - 2, UINT32_MAX - 2, 1, "8");
	assert_guards(buf, bytes);
	/* The UINT32_MAX position wraps to the top-left in 32-bit
	 * arithmetic; whatever it drew stayed inside the picture (guards
	 * above), and nothing else was touched. */
	for (i = 0; i < bytes; i++) {
		uint32_t px = (uint32_t)(i / 3), x = px % w, y = px / w;

		if (x < 4 && y < 7)
			continue;
		if (rgb[i] != FILL_BYTE)
			fail_msg("byte %zu (pixel %u,%u) written by text outside the picture", i, x,
				 y);
	}
}

static void test_draw_text_large_scale_fills_picture(void **state)
{
	const uint32_t w = 10, h = 10;
	const size_t bytes = (size_t)w * h * 3;
	unsigned char buf[GUARD + 10 * 10 * 3 + GUARD];
	unsigned char *rgb = buf + GUARD;

	(void)state;
	memset(buf, GUARD_BYTE, sizeof(buf));
	memset(rgb, FILL_BYTE, bytes);
	/* one glyph cell at scale 50 is 300x450 pixels: covers it all */
	pattern_draw_text(rgb, w, h, 0, 0, 50, "8");
	assert_guards(buf, bytes);
	/* top margin row of the cell is black */
	assert_int_equal(rgb[0], 0);
	assert_int_equal(rgb[3 * (w - 1)], 0);
}

static void test_draw_text_glyph(void **state)
{
	/* '-' at scale 1 in a 6x9 cell: one white row of five at font row 4
	 * (picture row 4: one margin row, then glyph rows 0..6) */
	const uint32_t w = 6, h = 9;
	unsigned char rgb[6 * 9 * 3];
	uint32_t x, y;

	(void)state;
	memset(rgb, FILL_BYTE, sizeof(rgb));
	pattern_draw_text(rgb, w, h, 0, 0, 1, "-");
	for (y = 0; y < h; y++) {
		for (x = 0; x < w; x++) {
			unsigned char expected = y == 4 && x < 5 ? 255 : 0;
			const unsigned char *p = rgb + 3 * (y * w + x);

			if (p[0] != expected || p[1] != expected || p[2] != expected)
				fail_msg("pixel (%u,%u) is %u, expected %u", x, y, p[0], expected);
		}
	}
	/* unknown characters draw as blank cells */
	memset(rgb, FILL_BYTE, sizeof(rgb));
	pattern_draw_text(rgb, w, h, 0, 0, 1, "~");
	for (x = 0; x < sizeof(rgb); x++)
		assert_int_equal(rgb[x], 0);
	/* letters (stream names): lower case drawn as upper case; 'L' is its
	 * left column and its bottom row */
	for (y = 0; y < 2; y++) {
		memset(rgb, FILL_BYTE, sizeof(rgb));
		pattern_draw_text(rgb, w, h, 0, 0, 1, y ? "l" : "L");
		for (x = 0; x < w * h; x++) {
			uint32_t px = x % w, py = x / w;
			unsigned char expected =
				py >= 1 && py <= 7 && (px == 0 || (py == 7 && px < 5)) ? 255 : 0;

			if (rgb[3 * x] != expected)
				fail_msg("L: pixel (%u,%u) is %u, expected %u", px, py, rgb[3 * x],
					 expected);
		}
	}
}

/* The pattern kind through the source interface: clock-paced, pixels of
 * the stream's size, a new picture every frame. */
static struct source *held_source; /* closed by close_source */

static int close_source(void **state)
{
	source_close(held_source);
	held_source = NULL;
	return tu_release(state);
}

static void test_pattern_source(void **state)
{
	static _Atomic int stopping;
	struct stream_settings *st = tu_alloc(sizeof(*st));
	struct source_frame frame;
	unsigned char *first;
	const size_t bytes = 16 * 8 * 3;

	(void)state;
	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "test");
	snprintf(st->source, sizeof(st->source), "pattern:bars");
	st->kind = SOURCE_PATTERN_BARS;
	st->width = 16;
	st->height = 8;
	st->fps = 240;
	held_source = source_open(st, 1024);
	assert_non_null(held_source);
	assert_int_equal(source_is_paced(held_source), 1);
	assert_int_equal(source_next(held_source, &frame, &stopping), 1);
	assert_non_null(frame.pixels);
	assert_null(frame.jpeg);
	assert_int_equal(frame.format, PIXEL_RGB24);
	assert_int_equal(frame.width, 16);
	assert_int_equal(frame.height, 8);
	first = tu_alloc(bytes);
	memcpy(first, frame.pixels, bytes);
	assert_int_equal(source_next(held_source, &frame, &stopping), 1);
	assert_true(memcmp(first, frame.pixels, bytes) != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_parse, tu_release),
		cmocka_unit_test_teardown(test_redblue, tu_release),
		cmocka_unit_test_teardown(test_redblue_odd_size, tu_release),
		cmocka_unit_test_teardown(test_bars_frames_differ, tu_release),
		cmocka_unit_test_teardown(test_bars_text_region, tu_release),
		cmocka_unit_test_teardown(test_bars_small, tu_release),
		cmocka_unit_test_teardown(test_draw_text_clips_right_and_bottom, tu_release),
		cmocka_unit_test_teardown(test_draw_text_entirely_outside, tu_release),
		cmocka_unit_test_teardown(test_draw_text_large_scale_fills_picture, tu_release),
		cmocka_unit_test_teardown(test_draw_text_glyph, tu_release),
		cmocka_unit_test_teardown(test_pattern_source, close_source),
	};

	return cmocka_run_group_tests_name("pattern", tests, NULL, NULL);
}
