/* source_pipe: frames from a byte stream: a FIFO, a regular file, or stdin
 * ("-").
 *
 *   raw:    fixed-size pixel frames (width x height x bytes per pixel), as
 *           ffmpeg -f rawvideo, numpy's tobytes() or PIL's tobytes() write
 *   mjpeg:  concatenated JPEGs, as ffmpeg -f mjpeg or a camera write them,
 *           split by parsing their markers and validated one by one
 *
 * FIFO and stdin input is paced by its writer; a regular file has no pace
 * of its own, so it is played at the stream's fps and looped.  A FIFO whose
 * writer goes away is reopened and waits for the next writer; stdin at its
 * end ends the source. */
#ifndef MJPEG_SOURCE_PIPE_H
#define MJPEG_SOURCE_PIPE_H

#include "config.h"
#include "source.h"

#include <stdatomic.h>
#include <stddef.h>

struct pipe_source;

struct pipe_source *pipe_source_open(const struct stream_settings *stream, size_t frame_bytes_max)
	__attribute__((warn_unused_result));
void pipe_source_close(struct pipe_source *src);
/* As source_next (source.h). */
int pipe_source_next(struct pipe_source *src, struct source_frame *frame,
		     const _Atomic int *stopping) __attribute__((warn_unused_result));

/* The MJPEG splitter: pure, byte-exact, for any chunking of the input. */
struct mjpeg_splitter {
	unsigned char *frame;     /* the frame being assembled, frame_bytes_max bytes */
	size_t frame_bytes_max;
	size_t used;
	int state;                /* see source_pipe.c */
	int after_ff;             /* the previous byte was 0xFF */
	unsigned marker;          /* the marker whose segment is being read */
	size_t remaining;         /* bytes left in the current segment */
	int oversized;            /* this frame outgrew frame_bytes_max: dropping it */
	unsigned long dropped;    /* oversized frames dropped so far */
};

/* 0, or -1 when out of memory (logged). */
int mjpeg_splitter_init(struct mjpeg_splitter *s, size_t frame_bytes_max)
	__attribute__((warn_unused_result));
void mjpeg_splitter_destroy(struct mjpeg_splitter *s);

/* Consumes bytes up to and including the end of the next complete JPEG
 * (then *jpeg and *jpeg_bytes point to it, valid until the next call) or
 * all of them (then *jpeg is NULL).  Returns the bytes consumed.  Garbage
 * between frames is skipped; a frame longer than frame_bytes_max is
 * dropped.  What comes out is a complete marker sequence, SOI to EOI; it is
 * not decoded here. */
size_t mjpeg_splitter_feed(struct mjpeg_splitter *s, const unsigned char *data, size_t len,
			   const unsigned char **jpeg, size_t *jpeg_bytes);

#endif
