/* source: where a stream's frames come from.  The producer thread owns its
 * source and calls source_next in a loop; each call blocks until the next
 * frame is due (patterns, files: paced at the stream's fps) or has arrived
 * (pipes), and hands back either pixels to encode or a complete JPEG to pass
 * through.
 *
 * Kinds, as written in a config's source key:
 *   pattern:redblue  pattern:bars     built-in pictures     (source_pattern.c)
 *   dir:PATH                          JPEG files, looped     (source.c)
 *   raw:PATH  raw:-                   raw frames from a FIFO/file or stdin (source_pipe.c)
 *   mjpeg:PATH  mjpeg:-               concatenated JPEGs    (source_pipe.c)
 *   ingest                            frames POSTed to ingest/NAME: no producer thread */
#ifndef MJPEG_SOURCE_H
#define MJPEG_SOURCE_H

#include "config.h"
#include "encode.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct source_frame {
	/* Either pixels (to encode) ... */
	const unsigned char *pixels;
	enum pixel_format format;
	uint32_t width, height;
	/* ... or a complete, validated JPEG (pixels NULL). */
	const unsigned char *jpeg;
	size_t jpeg_bytes;
};

struct source;

/* frame_bytes_max: the largest JPEG the stream's bus carries.  NULL on
 * failure, logged. */
struct source *source_open(const struct stream_settings *stream, size_t frame_bytes_max)
	__attribute__((warn_unused_result));

/* 1 for sources paced by the clock (patterns, dir:, raw:/mjpeg: regular
 * files and devices), which pause when nobody watches; 0 for FIFOs and
 * piped stdin, paced by their writer, which are read on (so the writer
 * never blocks) but not encoded while nobody watches. */
int source_is_paced(const struct source *source);
void source_close(struct source *source);

/* Blocks until the next frame; the frame's buffers stay valid until the
 * next call.  1: a frame; 0: none this time (try again; also when *stopping was set);
 * -1: the source cannot go on (logged). */
int source_next(struct source *source, struct source_frame *frame, const _Atomic int *stopping)
	__attribute__((warn_unused_result));

#endif
