/* source: where a stream's frames come from.  The producer thread owns its
 * source and calls source_next in a loop; each call blocks until the next
 * frame is due (patterns, files: paced at the stream's fps) or has arrived
 * (pipes), and hands back either pixels to encode or a complete JPEG to pass
 * through.
 *
 * Every kind is one file behind struct source_ops; source.c picks the kind
 * from the stream's settings (its table, one row per kind) and does what all
 * kinds share.  Kinds, as written in a config's source key:
 *   pattern:redblue  pattern:bars     built-in pictures     (source_pattern.c)
 *   dir:PATH                          JPEG files, looped     (source_dir.c)
 *   raw:PATH  raw:-                   raw frames from a FIFO/file or stdin (source_raw.c)
 *   mjpeg:PATH  mjpeg:-               concatenated JPEGs    (source_mjpeg.c)
 *   ingest                            frames POSTed to ingest/NAME: no producer thread
 *   http://URL  https://URL           a camera or server, relayed (source_http.c)
 *   exec:COMMAND ARGS                 a command's output, run while watched (source_exec.c)
 * raw: and mjpeg: read their bytes through source_pipe.c (FIFOs, files,
 * stdin; a command's output for exec:, which reads as one of them);
 * mjpeg: cuts them into JPEGs with mjpeg_splitter.c. */
#ifndef MJPEG_SOURCE_H
#define MJPEG_SOURCE_H

#include "bus.h"
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
	/* When the frame was made, microseconds since the epoch, as an
	 * upstream said (an X-Timestamp); 0: now (the producer stamps it). */
	int64_t timestamp_usec;
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

/* The producer pauses for lack of viewers: a kind that holds something
 * while it runs (a connection upstream, a command) lets go of it here; the
 * next source_next takes it up again. */
void source_pause(struct source *source);

/* Kinds with an upstream (http:, exec:): its state, and a count that
 * changes whenever the state does; NULL for the others. */
const struct bus_upstream *source_upstream(const struct source *source, uint64_t *changes);

/* Blocks until the next frame; the frame's buffers stay valid until the
 * next call.  1: a frame; 0: none this time (try again; also when *stopping was set);
 * -1: the source cannot go on (logged). */
int source_next(struct source *source, struct source_frame *frame, const _Atomic int *stopping)
	__attribute__((warn_unused_result));

/* ---- for the kinds ------------------------------------------------------ */

/* Who waits for a frame's turn. */
enum source_pace {
	/* source_next waits for the next tick at the stream's fps, then
	 * calls next, which makes the frame at once (patterns, dir:). */
	SOURCE_PACE_CLOCK,
	/* next waits itself: for bytes from a writer, or, reading a file,
	 * for the tick after a frame was read (raw:, mjpeg:). */
	SOURCE_PACE_OWN,
};

/* One kind of source.  Its state belongs to the producer thread, which
 * makes every call; the stream settings are read-only and outlive it. */
struct source_ops {
	enum source_pace pace;
	/* The kind's state, or NULL (logged). */
	void *(*open)(const struct stream_settings *stream, size_t frame_bytes_max);
	/* As source_next, with *frame zeroed by the caller. */
	int (*next)(void *state, struct source_frame *frame, const _Atomic int *stopping);
	/* As source_is_paced; NULL for kinds the clock always paces. */
	int (*is_paced)(const void *state);
	/* Frees the state; called with NULL too. */
	void (*close)(void *state);
	/* As source_pause; NULL for kinds that hold nothing while paused. */
	void (*pause)(void *state);
	/* As source_upstream; NULL for kinds without an upstream. */
	const struct bus_upstream *(*upstream)(const void *state, uint64_t *changes);
};

/* The kinds, each defined in its own file and named in source.c's table. */
extern const struct source_ops source_pattern_ops; /* source_pattern.c */
extern const struct source_ops source_dir_ops;     /* source_dir.c */
extern const struct source_ops source_raw_ops;     /* source_raw.c */
extern const struct source_ops source_mjpeg_ops;   /* source_mjpeg.c */
extern const struct source_ops source_http_ops;    /* source_http.c */
extern const struct source_ops source_exec_ops;    /* source_exec.c */

#endif
