#include "source_pattern.h"

#include "clock.h"
#include "log.h"
#include "source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int pattern_parse(const char *name, enum pattern_kind *kind)
{
	if (strcmp(name, "redblue") == 0)
		*kind = PATTERN_REDBLUE;
	else if (strcmp(name, "bars") == 0)
		*kind = PATTERN_BARS;
	else
		return -1;
	return 0;
}

static void fill(unsigned char *rgb, size_t pixels, unsigned char r, unsigned char g,
		 unsigned char b)
{
	size_t i;

	for (i = 0; i < pixels; i++) {
		rgb[3 * i] = r;
		rgb[3 * i + 1] = g;
		rgb[3 * i + 2] = b;
	}
}

void pattern_redblue(unsigned char *rgb, uint32_t width, uint32_t height, int64_t elapsed_usec)
{
	int blue = (elapsed_usec / USEC_PER_SEC) % 2 != 0;

	fill(rgb, (size_t)width * height, blue ? 0 : 255, 0, blue ? 255 : 0);
}

/* SMPTE-like bar colours, left to right. */
static const unsigned char bar_colours[][3] = {
	{ 192, 192, 192 }, { 192, 192, 0 }, { 0, 192, 192 }, { 0, 192, 0 },
	{ 192, 0, 192 },   { 192, 0, 0 },   { 0, 0, 192 },   { 16, 16, 16 },
};
#define BAR_COUNT (sizeof(bar_colours) / sizeof(bar_colours[0]))
/* pixels the bars move per frame */
#define BAR_STEP 4

void pattern_bars(unsigned char *rgb, uint32_t width, uint32_t height, uint64_t frame_number,
		  int64_t wall_usec)
{
	uint32_t bar_width = width / BAR_COUNT ? width / BAR_COUNT : 1;
	uint64_t shift = frame_number * BAR_STEP;
	uint32_t x, y, scale;
	char text[64];
	time_t seconds = (time_t)(wall_usec / USEC_PER_SEC);
	struct tm tm;

	/* One row computed, then copied down: the bars are vertical. */
	for (x = 0; x < width; x++) {
		const unsigned char *c = bar_colours[((x + shift) / bar_width) % BAR_COUNT];

		memcpy(rgb + 3 * (size_t)x, c, 3);
	}
	for (y = 1; y < height; y++)
		memcpy(rgb + 3 * (size_t)width * y, rgb, 3 * (size_t)width);

	gmtime_r(&seconds, &tm);
	snprintf(text, sizeof(text), "#%06llu %02d:%02d:%02d.%03d",
		 (unsigned long long)frame_number, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(wall_usec % USEC_PER_SEC / USEC_PER_MSEC));
	scale = width >= 480 ? 3 : width >= 240 ? 2 : 1;
	pattern_draw_text(rgb, width, height, 8, height > 40 ? height - 8 - 9 * scale : 0, scale,
			  text);
}

/* A 5x7 font for what the bars pattern prints and for stream names (a
 * mosaic's "no signal" tiles); each row is five bits, most significant bit
 * leftmost.  Hand-written because no library is worth linking for forty
 * small glyphs.  Lower case is drawn as upper case. */
static const struct {
	char c;
	unsigned char rows[PATTERN_GLYPH_HEIGHT];
} glyphs[] = {
	{ '0', { 0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e } },
	{ '1', { 0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e } },
	{ '2', { 0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f } },
	{ '3', { 0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e } },
	{ '4', { 0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02 } },
	{ '5', { 0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e } },
	{ '6', { 0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e } },
	{ '7', { 0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 } },
	{ '8', { 0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e } },
	{ '9', { 0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c } },
	{ ':', { 0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00 } },
	{ '.', { 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c } },
	{ '-', { 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00 } },
	{ '#', { 0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a } },
	{ '_', { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f } },
	{ 'A', { 0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11 } },
	{ 'B', { 0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e } },
	{ 'C', { 0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e } },
	{ 'D', { 0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c } },
	{ 'E', { 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f } },
	{ 'F', { 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10 } },
	{ 'G', { 0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f } },
	{ 'H', { 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11 } },
	{ 'I', { 0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e } },
	{ 'J', { 0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c } },
	{ 'K', { 0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11 } },
	{ 'L', { 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f } },
	{ 'M', { 0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11 } },
	{ 'N', { 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11 } },
	{ 'O', { 0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e } },
	{ 'P', { 0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10 } },
	{ 'Q', { 0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d } },
	{ 'R', { 0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11 } },
	{ 'S', { 0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e } },
	{ 'T', { 0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04 } },
	{ 'U', { 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e } },
	{ 'V', { 0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04 } },
	{ 'W', { 0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a } },
	{ 'X', { 0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11 } },
	{ 'Y', { 0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04 } },
	{ 'Z', { 0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f } },
};

static const unsigned char *glyph_rows(char c)
{
	size_t i;

	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	for (i = 0; i < sizeof(glyphs) / sizeof(glyphs[0]); i++)
		if (glyphs[i].c == c)
			return glyphs[i].rows;
	return NULL;
}

static void put_pixel(unsigned char *rgb, uint32_t width, uint32_t height, uint32_t x,
		      uint32_t y, unsigned char v)
{
	if (x < width && y < height)
		memset(rgb + 3 * ((size_t)y * width + x), v, 3);
}

void pattern_draw_text(unsigned char *rgb, uint32_t width, uint32_t height, uint32_t x,
		       uint32_t y, uint32_t scale, const char *text)
{
	/* one font pixel of black margin around each glyph cell */
	uint32_t cell_w = (PATTERN_GLYPH_WIDTH + 1) * scale;
	uint32_t cell_h = (PATTERN_GLYPH_HEIGHT + 2) * scale;
	size_t n;

	for (n = 0; text[n]; n++) {
		const unsigned char *rows = glyph_rows(text[n]);
		uint32_t x0 = x + (uint32_t)n * cell_w, gx, gy;

		for (gy = 0; gy < cell_h; gy++) {
			for (gx = 0; gx < cell_w; gx++) {
				uint32_t fx = gx / scale, fy = gy / scale;
				int on = rows && fy >= 1 && fy <= PATTERN_GLYPH_HEIGHT &&
					 fx < PATTERN_GLYPH_WIDTH &&
					 (rows[fy - 1] >> (PATTERN_GLYPH_WIDTH - 1 - fx) & 1);

				put_pixel(rgb, width, height, x0 + gx, y + gy, on ? 255 : 0);
			}
		}
	}
}

/* ---- the source kind: pattern:redblue, pattern:bars ---------------------- */

struct pattern_source {
	const struct stream_settings *stream;
	int64_t start_usec;      /* monotonic, for redblue's seconds */
	uint64_t frame_number;
	unsigned char *rgb;      /* the picture, width*height*3 */
};

static void pattern_close(void *state)
{
	struct pattern_source *src = state;

	if (!src)
		return;
	free(src->rgb);
	free(src);
}

static void *pattern_open(const struct stream_settings *stream, size_t frame_bytes_max)
{
	struct pattern_source *src = calloc(1, sizeof(*src));

	(void)frame_bytes_max; /* the encoder's output is checked by the bus */
	if (!src) {
		log_error("source %s: calloc failed", stream->name);
		return NULL;
	}
	src->stream = stream;
	src->start_usec = clock_mono_usec();
	src->rgb = malloc((size_t)stream->width * stream->height * 3);
	if (!src->rgb) {
		log_error("source %s: malloc for a %ux%u picture failed", stream->name,
			  stream->width, stream->height);
		pattern_close(src);
		return NULL;
	}
	return src;
}

/* Draws the next picture; called at the stream's fps (SOURCE_PACE_CLOCK). */
static int pattern_next(void *state, struct source_frame *frame, const _Atomic int *stopping)
{
	struct pattern_source *src = state;
	const struct stream_settings *st = src->stream;

	(void)stopping; /* nothing here waits */
	if (st->kind == SOURCE_PATTERN_REDBLUE)
		pattern_redblue(src->rgb, st->width, st->height,
				clock_mono_usec() - src->start_usec);
	else
		pattern_bars(src->rgb, st->width, st->height, src->frame_number,
			     clock_wall_usec());
	src->frame_number++;
	frame->pixels = src->rgb;
	frame->format = PIXEL_RGB24;
	frame->width = st->width;
	frame->height = st->height;
	return 1;
}

const struct source_ops source_pattern_ops = {
	.pace = SOURCE_PACE_CLOCK,
	.open = pattern_open,
	.next = pattern_next,
	.close = pattern_close,
};
