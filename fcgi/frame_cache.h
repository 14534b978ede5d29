/* frame_cache: one writer thread's copies of the frames its viewers send.
 *
 * A writer reads each stream's newest frame once (a feed per stream it
 * serves) and every one of its viewers of that stream sends from that one
 * copy: a frame_ref, counted by the viewers holding it.  Copies no longer
 * held go to a few spares, reused for the next frames.  The delivery
 * counts of a feed's viewers are added up here and go to the bus once per
 * pass.
 *
 * Owned by one writer thread (fanout.c): nothing here is shared, no
 * atomics, no locks. */
#ifndef MJPEG_FRAME_CACHE_H
#define MJPEG_FRAME_CACHE_H

#include "bus.h"
#include "multipart.h"
#include "stream.h"

#include <stdint.h>

/* One copy of a published frame, shared by the viewers of one writer. */
struct frame_ref {
	int refs;
	struct bus_frame frame;
	char head[MULTIPART_HEAD_MAX]; /* the part's header: the same for every viewer */
	int head_len;
	struct frame_ref *next_spare;
};

/* A stream as one writer sees it. */
struct feed {
	struct stream *stream;     /* borrowed: each viewer holds a reference */
	struct frame_ref *newest;  /* NULL until a first frame */
	int viewers;
	int ending;                /* stopping, or the stream was retired */
	uint64_t parts, bytes, skipped; /* not yet added to the bus's counters */
	struct feed *next;
};

struct frame_cache {
	struct feed *feeds;
	struct frame_ref *spares;
	int spare_count;
};

/* One more holder of ref; returns it. */
struct frame_ref *frame_cache_hold(struct frame_ref *ref);
/* A holder lets go of ref (NULL: nothing). */
void frame_cache_put(struct frame_cache *cache, struct frame_ref *ref);

/* The feed of stream, created for a first viewer (whom it counts).  NULL
 * if memory ran out (logged). */
struct feed *frame_cache_join(struct frame_cache *cache, struct stream *stream);
/* A viewer of feed left; the last one frees it, its counts flushed. */
void frame_cache_leave(struct frame_cache *cache, struct feed *feed);

/* Takes the newest frame of each feed's stream, if newer than its own,
 * and notes whether the feed ends: closing (the server stops or the
 * fanout closed) or its stream retired. */
void frame_cache_refresh(struct frame_cache *cache, int closing);

/* Adds each feed's counts to its bus and renews its demand (someone
 * watches: keep the producer on): once per pass, not once per part, so
 * that writers do not contend for the shared counters. */
void frame_cache_flush(struct frame_cache *cache);

/* Frees the spares; every feed must be gone. */
void frame_cache_free(struct frame_cache *cache);

#endif
