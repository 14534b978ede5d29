/* Unit tests for fcgi/source_derived.c through the source interface, with
 * real frame buses as inputs: scale: draws each new input frame and skips
 * the ones before its turn unread; mosaic: puts each input in its tile and
 * draws "no signal" for an input without a recent frame; both say that
 * their inputs' frames are wanted on every call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus.h"
#include "clock.h"
#include "config.h"
#include "encode.h"
#include "source.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_MAX (1u << 20)
#define INPUTS 4
/* JPEG is lossy: how far a decoded solid colour may be off. */
#define COLOUR_SLACK 24

static const unsigned char colours[INPUTS][3] = {
	{ 230, 20, 20 }, { 20, 210, 20 }, { 20, 20, 230 }, { 240, 240, 240 },
};

struct fixture {
	char dir[64];
	struct bus *bus[INPUTS];
	struct source_input inputs[INPUTS];
	int wants[INPUTS];
	struct stream_settings st;
	struct encoder *enc;
	struct source *src;
	_Atomic int stopping;
};

static void count_want(void *ctx)
{
	(*(int *)ctx)++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	static const char *const names[INPUTS] = { "red", "green", "blue", "white" };
	int i;

	if (!f || tu_dir_make(f->dir, sizeof(f->dir), "derived") < 0) {
		free(f);
		return -1;
	}
	f->enc = encode_open();
	for (i = 0; i < INPUTS; i++) {
		f->bus[i] = bus_open(f->dir, names[i], FRAME_MAX);
		if (!f->bus[i] || bus_lock_producer(f->bus[i], &f->stopping) < 0)
			return -1;
		f->inputs[i] = (struct source_input){ .name = names[i],
						      .bus = f->bus[i],
						      .want = count_want,
						      .ctx = &f->wants[i] };
		snprintf(f->st.inputs[i], sizeof(f->st.inputs[i]), "%s", names[i]);
	}
	snprintf(f->st.name, sizeof(f->st.name), "derived");
	f->st.quality = 80;
	*state = f;
	return f->enc ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int i;

	source_close(f->src);
	for (i = 0; i < INPUTS; i++)
		bus_close(f->bus[i]);
	encode_close(f->enc);
	tu_dir_remove(f->dir);
	free(f);
	return tu_release(NULL);
}

/* Publishes a solid w x h picture of colour c to input i, stamped
 * age_usec ago. */
static void publish(struct fixture *f, int i, const unsigned char *c, uint32_t w, uint32_t h,
		    int64_t age_usec)
{
	unsigned char *rgb = malloc((size_t)w * h * 3);
	const unsigned char *jpeg;
	size_t bytes, p;

	assert_non_null(rgb);
	for (p = 0; p < (size_t)w * h; p++)
		memcpy(rgb + 3 * p, c, 3);
	assert_int_equal(encode_frame(f->enc, rgb, PIXEL_RGB24, w, h, 90, &jpeg, &bytes), 0);
	assert_int_equal(bus_publish(f->bus[i], jpeg, bytes, w, h, clock_wall_usec() - age_usec, 0),
			 0);
	free(rgb);
}

/* The pixel (x, y) of a derived frame (PIXEL_I420) is want, within
 * COLOUR_SLACK. */
static void assert_colour_at(const struct source_frame *fr, uint32_t x, uint32_t y,
			     const unsigned char *want)
{
	const unsigned char *p =
		tu_i420_rgb(fr->pixels, fr->width, fr->height) + ((size_t)y * fr->width + x) * 3;
	int c;

	for (c = 0; c < 3; c++)
		if (abs((int)p[c] - (int)want[c]) > COLOUR_SLACK)
			fail_msg("pixel (%u,%u) is %u,%u,%u, expected %u,%u,%u", x, y, p[0], p[1],
				 p[2], want[0], want[1], want[2]);
}

static void test_scale(void **state)
{
	struct fixture *f = *state;
	struct source_frame fr;
	int rc;

	f->st.kind = SOURCE_SCALE;
	f->st.input_count = 1;
	f->st.width = 80;
	f->st.height = 60;
	f->st.fps = 1000; /* every frame's turn has come */
	f->src = source_open_inputs(&f->st, FRAME_MAX, f->inputs, 1);
	assert_non_null(f->src);
	assert_true(source_is_paced(f->src)); /* pauses with nobody watching */
	/* nothing published: no frame, but the input was asked for one */
	assert_int_equal(source_next(f->src, &fr, &f->stopping), 0);
	assert_int_equal(f->wants[0], 1);
	publish(f, 0, colours[0], 320, 240, 0);
	rc = source_next(f->src, &fr, &f->stopping);
	assert_int_equal(rc, 1);
	assert_int_equal(fr.width, 80);
	assert_int_equal(fr.height, 60);
	assert_int_equal(fr.format, PIXEL_I420);
	assert_colour_at(&fr, 40, 30, colours[0]);
	assert_true(fr.timestamp_usec > 0); /* the input's publish time */
	/* the same frame is not made twice */
	assert_int_equal(source_next(f->src, &fr, &f->stopping), 0);
	publish(f, 0, colours[2], 100, 50, 0); /* another size too */
	assert_int_equal(source_next(f->src, &fr, &f->stopping), 1);
	assert_colour_at(&fr, 10, 50, colours[2]);
}

static void test_scale_skips_frames_before_its_turn(void **state)
{
	struct fixture *f = *state;
	struct source_frame fr;
	struct bus_stats stats;

	f->st.kind = SOURCE_SCALE;
	f->st.input_count = 1;
	f->st.width = 32;
	f->st.height = 32;
	f->st.fps = 0.01; /* one frame every 100 s */
	f->src = source_open_inputs(&f->st, FRAME_MAX, f->inputs, 1);
	assert_non_null(f->src);
	publish(f, 0, colours[0], 64, 64, 0);
	assert_int_equal(source_next(f->src, &fr, &f->stopping), 1); /* the first: due */
	/* new frames before the next turn (100 s on) are passed over */
	publish(f, 0, colours[1], 64, 64, 0);
	assert_int_equal(source_next(f->src, &fr, &f->stopping), 0);
	publish(f, 0, colours[2], 64, 64, 0);
	assert_int_equal(source_next(f->src, &fr, &f->stopping), 0);
	bus_stats(f->bus[0], &stats);
	assert_int_equal(stats.frames_published, 3);
}

static void test_mosaic(void **state)
{
	static const unsigned char grey[3] = { 128, 128, 128 }, black[3] = { 0, 0, 0 };
	struct fixture *f = *state;
	struct source_frame fr;
	int i, white = 0, dark = 0;
	const unsigned char *rgb;
	size_t p;

	f->st.kind = SOURCE_MOSAIC;
	f->st.input_count = 3; /* a 2x2 grid with one tile left empty */
	f->st.width = 200;
	f->st.height = 160;
	f->st.layout_cols = 2;
	f->st.layout_rows = 2;
	f->st.fps = 1000;
	f->src = source_open_inputs(&f->st, FRAME_MAX, f->inputs, 3);
	assert_non_null(f->src);
	publish(f, 0, colours[0], 640, 480, 0);
	publish(f, 1, colours[1], 64, 48, 0); /* grown into its tile */
	/* input 2: a frame older than the no-signal time */
	publish(f, 2, colours[2], 64, 48, MOSAIC_NO_SIGNAL_USEC + USEC_PER_SEC);
	assert_int_equal(source_next(f->src, &fr, &f->stopping), 1);
	for (i = 0; i < 3; i++)
		assert_int_equal(f->wants[i], 1);
	assert_int_equal(fr.width, 200);
	assert_int_equal(fr.height, 160);
	assert_colour_at(&fr, 50, 40, colours[0]);
	assert_colour_at(&fr, 150, 40, colours[1]);
	assert_colour_at(&fr, 4, 84, grey);   /* the stale one */
	assert_colour_at(&fr, 150, 120, black); /* no input: left black */
	/* the stale tile carries text: white glyphs on black cells (white,
	 * grey and black share their chroma: exact after the conversions) */
	rgb = tu_i420_rgb(fr.pixels, fr.width, fr.height);
	for (p = 80; p < 160; p++) {
		uint32_t x;

		for (x = 0; x < 100; x++) {
			const unsigned char *px = rgb + (p * 200 + x) * 3;

			white += px[0] == 255 && px[1] == 255 && px[2] == 255;
			dark += px[0] == 0 && px[1] == 0 && px[2] == 0;
		}
	}
	assert_true(white > 50 && dark > 50);
	/* a new frame brings the tile back; the mosaic is made at every call */
	publish(f, 2, colours[2], 64, 48, 0);
	assert_int_equal(source_next(f->src, &fr, &f->stopping), 1);
	assert_colour_at(&fr, 50, 120, colours[2]);
	assert_int_equal(source_next(f->src, &fr, &f->stopping), 1);
	assert_colour_at(&fr, 50, 40, colours[0]);
	assert_int_equal(f->wants[0], 3);
}

static void test_mosaic_never_published(void **state)
{
	static const unsigned char grey[3] = { 128, 128, 128 };
	struct fixture *f = *state;
	struct source_frame fr;

	f->st.kind = SOURCE_MOSAIC;
	f->st.input_count = 1;
	f->st.width = 64;
	f->st.height = 48;
	f->st.layout_cols = 1;
	f->st.layout_rows = 1;
	f->st.fps = 1000;
	f->src = source_open_inputs(&f->st, FRAME_MAX, f->inputs, 1);
	assert_non_null(f->src);
	assert_int_equal(source_next(f->src, &fr, &f->stopping), 1);
	assert_colour_at(&fr, 2, 2, grey);
	/* and the inputs must be as many as the settings name */
	source_close(f->src);
	f->src = NULL;
	f->st.input_count = 2;
	assert_null(source_open_inputs(&f->st, FRAME_MAX, f->inputs, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scale_skips_frames_before_its_turn, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mosaic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mosaic_never_published, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
