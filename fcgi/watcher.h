/* watcher: one thread per stream in use that waits on the stream's bus
 * and calls a wake function on each publish (and when the stream must
 * end).  The bus is shared with other processes, so a publish announces
 * itself on the bus's futex only: this is what turns it into a wake of
 * the writer threads (fanout.c).  Knows nothing of viewers beyond a count
 * per stream.
 *
 * Threads: watchers_add and watchers_remove are called from any thread
 * (the fanout's request threads and writer threads); watchers_free from
 * the one that owns the set, once nothing adds any more. */
#ifndef MJPEG_WATCHER_H
#define MJPEG_WATCHER_H

#include "stream.h"

#include <stdatomic.h>

struct watchers;

/* An empty set.  wake(arg) is called from watcher threads.  A watcher
 * ends once its stream has no viewer left, or once *stopping, *closed or
 * the stream's retired flag is set (after a last wake).  NULL on failure,
 * logged. */
struct watchers *watchers_new(void (*wake)(void *arg), void *arg, const _Atomic int *stopping,
			      const _Atomic int *closed) __attribute__((warn_unused_result));

/* Counts a viewer of stream, starting its watcher (which takes a stream
 * reference of its own) if it has none.  -1 (logged) if none could be
 * started. */
int watchers_add(struct watchers *ws, struct stream *stream) __attribute__((warn_unused_result));

/* A viewer of stream left. */
void watchers_remove(struct watchers *ws, const struct stream *stream);

/* Joins every watcher (each ends within a second once its viewers are
 * gone) and frees the set. */
void watchers_free(struct watchers *ws);

#endif
