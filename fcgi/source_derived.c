/* source_derived: the kinds made from other streams' frames, read from the
 * frame bus like any viewer reads them.
 *
 *   scale:NAME       each frame of NAME, drawn at the stream's size; a frame
 *                    arriving before the stream's own fps wants one is
 *                    skipped, never decoded
 *   mosaic:A,B,...   the newest frame of each input in its tile of a grid,
 *                    at the stream's own fps; a tile whose input published
 *                    nothing for MOSAIC_NO_SIGNAL_USEC (or never) is grey,
 *                    with the input's name and "no signal"
 *
 * The producer runs these only while the stream is watched, and each call
 * of next says that the inputs' frames are wanted: an input's producer
 * therefore runs while a derived stream made from it is watched (or while
 * it has viewers of its own), and pauses with it. */
#include "source.h"

#include "clock.h"
#include "encode.h"
#include "log.h"
#include "scaler.h"
#include "source_pattern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest wait for an input's next frame: bounds how late a stop or a
 * lack of viewers is noticed. */
#define DERIVED_POLL_USEC (200 * USEC_PER_MSEC)
/* A mosaic's "no signal" tiles. */
#define NO_SIGNAL_GREY 128
#define NO_SIGNAL_TEXT "no signal"

struct derived_input {
	struct source_input src; /* the stream's own, outlives us */
	struct bus_frame frame;  /* the newest frame read, growable */
	uint64_t seen;           /* the newest sequence looked at (read or skipped) */
	uint32_t x, y, w, h;     /* mosaic: the tile */
	int no_signal_shown;     /* mosaic: the tile holds "no signal", untouched since */
};

/* Owned by the producer thread. */
struct derived {
	const struct stream_settings *stream;
	struct scaler *scaler;
	struct scaler_picture pic; /* the picture, width x height */
	unsigned char *no_signal;  /* mosaic: a "no signal" tile, RGB24 */
	int64_t interval_usec;   /* scale: 1 / fps */
	int64_t due_usec;        /* scale: monotonic, when a frame is next taken */
	size_t count;
	struct derived_input in[DERIVED_INPUTS_MAX];
};

static void derived_close(void *state)
{
	struct derived *d = state;
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->count; i++)
		free(d->in[i].frame.jpeg);
	scaler_close(d->scaler);
	free(d->pic.yuv);
	free(d->no_signal);
	free(d);
}

static void *derived_open(const struct stream_settings *st, const struct source_input *inputs,
			  size_t count)
{
	struct derived *d = calloc(1, sizeof(*d));
	uint32_t tile_w, tile_h;
	size_t i;

	if (!d) {
		log_error("source %s: calloc failed", st->name);
		return NULL;
	}
	d->stream = st;
	d->count = count < DERIVED_INPUTS_MAX ? count : DERIVED_INPUTS_MAX;
	d->interval_usec = (int64_t)(USEC_PER_SEC / st->fps);
	/* scale: one tile, the whole picture */
	tile_w = st->kind == SOURCE_MOSAIC ? st->width / st->layout_cols : st->width;
	tile_h = st->kind == SOURCE_MOSAIC ? st->height / st->layout_rows : st->height;
	d->pic.width = st->width;
	d->pic.height = st->height;
	d->pic.yuv = malloc(encode_i420_bytes(st->width, st->height));
	if (st->kind == SOURCE_MOSAIC)
		d->no_signal = malloc((size_t)tile_w * tile_h * 3);
	d->scaler = scaler_open();
	if (!d->pic.yuv || (st->kind == SOURCE_MOSAIC && !d->no_signal) || !d->scaler) {
		if (d->scaler)
			log_error("source %s: malloc for a %ux%u picture failed", st->name,
				  st->width, st->height);
		derived_close(d);
		return NULL;
	}
	scaler_clear(&d->pic);
	for (i = 0; i < d->count; i++) {
		struct derived_input *in = &d->in[i];
		uint32_t cols = st->kind == SOURCE_MOSAIC ? st->layout_cols : 1;

		in->src = inputs[i];
		in->frame.growable = 1;
		in->x = (uint32_t)(i % cols) * tile_w;
		in->y = (uint32_t)(i / cols) * tile_h;
		in->w = tile_w;
		in->h = tile_h;
	}
	return d;
}

/* Reads the input's newest frame and draws it into its tile.  1: drawn;
 * 0: nothing new or it failed (logged). */
static int draw_input(struct derived *d, struct derived_input *in)
{
	char what[2 * STREAM_NAME_MAX + 8];

	if (bus_read_latest(in->src.bus, &in->frame) != 1)
		return 0;
	in->seen = in->frame.seq;
	snprintf(what, sizeof(what), "%s from %s", d->stream->name, in->src.name);
	return scaler_draw(d->scaler, in->frame.jpeg, in->frame.bytes, &d->pic, in->x, in->y,
			   in->w, in->h, what) == 0;
}

static void frame_out(const struct derived *d, struct source_frame *frame, int64_t stamp_usec)
{
	frame->pixels = d->pic.yuv;
	frame->format = PIXEL_I420;
	frame->width = d->stream->width;
	frame->height = d->stream->height;
	frame->timestamp_usec = stamp_usec;
}

/* ---- scale: ------------------------------------------------------------- */

static void *scale_open_inputs(const struct stream_settings *st,
			       const struct source_input *inputs, size_t count)
{
	struct derived *d = derived_open(st, inputs, count);

	if (d)
		d->due_usec = clock_mono_usec();
	return d;
}

static int scale_next(void *state, struct source_frame *frame, const _Atomic int *stopping)
{
	struct derived *d = state;
	struct derived_input *in = &d->in[0];
	int64_t now;

	(void)stopping; /* the wait below is bounded; the producer checks */
	in->src.want(in->src.ctx);
	if (bus_wait_newer(in->src.bus, in->seen, DERIVED_POLL_USEC) != 1)
		return 0;
	now = clock_mono_usec();
	/* Slower than the input: a frame before our next turn is passed
	 * over unread.  A quarter interval of slack, so that equal rates
	 * with a little jitter take every frame. */
	if (now < d->due_usec - d->interval_usec / 4) {
		in->seen = bus_latest(in->src.bus);
		return 0;
	}
	if (!draw_input(d, in))
		return 0;
	/* After a stall (no frames, a pause) the schedule starts again from
	 * now rather than taking a burst to catch up. */
	d->due_usec = now - d->due_usec > d->interval_usec ? now + d->interval_usec
							   : d->due_usec + d->interval_usec;
	/* the input's publish time: the delay stays measurable end to end */
	frame_out(d, frame, in->frame.publish_usec);
	return 1;
}

const struct source_ops source_scale_ops = {
	.pace = SOURCE_PACE_OWN,
	.open_inputs = scale_open_inputs,
	.next = scale_next,
	.close = derived_close,
};

/* ---- mosaic: ------------------------------------------------------------ */

/* Grey, with the input's name over "no signal", each line cut to the tile's
 * width, as large as the tile allows.  0, or -1 when it could not be drawn
 * (logged). */
static int draw_no_signal(struct derived *d, const struct derived_input *in)
{
	uint32_t scale, fit, cell;
	size_t name_len = strlen(in->src.name), longest, line;
	char name[STREAM_NAME_MAX + 1];

	memset(d->no_signal, NO_SIGNAL_GREY, (size_t)in->w * in->h * 3);
	longest = name_len > strlen(NO_SIGNAL_TEXT) ? name_len : strlen(NO_SIGNAL_TEXT);
	/* a glyph cell is (5 + 1) x (7 + 2) font pixels; two lines and a margin */
	scale = in->w / (uint32_t)(longest * (PATTERN_GLYPH_WIDTH + 1) + 2);
	fit = in->h / (2 * (PATTERN_GLYPH_HEIGHT + 2) + 2);
	if (fit < scale)
		scale = fit;
	if (scale < 1)
		scale = 1;
	cell = (PATTERN_GLYPH_WIDTH + 1) * scale;
	fit = in->w / cell; /* characters a line holds */
	for (line = 0; line < 2; line++) {
		const char *text = line ? NO_SIGNAL_TEXT : in->src.name;
		size_t n = strlen(text) < fit ? strlen(text) : fit;
		uint32_t ty = in->h / 2 - (line ? 0 : (PATTERN_GLYPH_HEIGHT + 2) * scale);

		memcpy(name, text, n);
		name[n] = '\0';
		pattern_draw_text(d->no_signal, in->w, in->h, (in->w - (uint32_t)n * cell) / 2, ty,
				  scale, name);
	}
	if (scaler_put_rgb(d->scaler, d->no_signal, &d->pic, in->x, in->y, in->w, in->h) < 0) {
		log_error("source %s: the no-signal tile of %s not drawn", d->stream->name,
			  in->src.name);
		return -1;
	}
	return 0;
}

static int mosaic_next(void *state, struct source_frame *frame, const _Atomic int *stopping)
{
	struct derived *d = state;
	int64_t now = clock_wall_usec();
	size_t i;

	(void)stopping;
	for (i = 0; i < d->count; i++) {
		struct derived_input *in = &d->in[i];
		uint64_t latest;

		in->src.want(in->src.ctx);
		latest = bus_latest(in->src.bus);
		if (latest && latest != in->seen) {
			in->no_signal_shown = 0; /* drawn over, or tried to be */
			draw_input(d, in);
		}
		/* drawn once, not at every frame: nothing else touches the tile */
		if (!in->no_signal_shown &&
		    (!in->frame.seq || now - in->frame.publish_usec > MOSAIC_NO_SIGNAL_USEC))
			in->no_signal_shown = draw_no_signal(d, in) == 0;
	}
	frame_out(d, frame, 0);
	return 1;
}

const struct source_ops source_mosaic_ops = {
	.pace = SOURCE_PACE_CLOCK,
	.open_inputs = derived_open,
	.next = mosaic_next,
	.close = derived_close,
};
