/* source_pattern: built-in test pictures, drawn into packed RGB24 buffers.
 *
 *   redblue  the demo: solid red and solid blue, alternating every second
 *   bars     colour bars that move one step per frame, with the frame number
 *            and the wall-clock time drawn in, so every frame differs
 *
 * The drawing functions below are pure functions of their arguments: no
 * state, no allocation.  The same file holds the source kind that draws
 * them at the stream's fps (source_pattern_ops, source.h). */
#ifndef MJPEG_SOURCE_PATTERN_H
#define MJPEG_SOURCE_PATTERN_H

#include <stddef.h>
#include <stdint.h>

enum pattern_kind { PATTERN_REDBLUE, PATTERN_BARS };

/* "redblue" or "bars"; -1 if unknown. */
int pattern_parse(const char *name, enum pattern_kind *kind) __attribute__((warn_unused_result));

/* elapsed_usec: time since the stream started; even seconds red. */
void pattern_redblue(unsigned char *rgb, uint32_t width, uint32_t height, int64_t elapsed_usec);

void pattern_bars(unsigned char *rgb, uint32_t width, uint32_t height, uint64_t frame_number,
		  int64_t wall_usec);

/* Draws text (letters, digits, ':', '.', '-', '_', '#' and space; other
 * characters as blanks) in white on black at (x, y), each font pixel scale x scale,
 * clipped to the picture. */
void pattern_draw_text(unsigned char *rgb, uint32_t width, uint32_t height, uint32_t x,
		       uint32_t y, uint32_t scale, const char *text);

#define PATTERN_GLYPH_WIDTH 5
#define PATTERN_GLYPH_HEIGHT 7

#endif
