/* fanout: writer threads that send each stream's frames to many viewers.
 *
 * Once its response head is out, a stream viewer behind a FastCGI server is
 * a socket that takes frame parts.  Rather than one thread blocked per
 * viewer, woken on every publish (a context switch per viewer per frame),
 * a few writer threads, one per core, each hold many viewers' connections
 * and send every new frame to all of them with non-blocking writes, from
 * one copy of the frame per thread (frame_cache.c).  This file is the
 * mechanism: the writers' event loops (epoll, an eventfd to wake them) and
 * their inboxes.  What a viewer is sent and when is the viewer engine's
 * (viewer.c), driven by fanout_viewer.c (the part in flight, stalls,
 * aborts).
 *
 * The bus is shared with other processes, so a publish announces itself on
 * the bus's futex; one watcher thread per stream in use waits there and
 * wakes the writers (watcher.c).
 *
 * Threads: fanout_start, fanout_stop and fanout_free belong to the thread
 * that runs the server; fanout_add is called from request threads. */
#ifndef MJPEG_FANOUT_H
#define MJPEG_FANOUT_H

#include "config.h"
#include "http.h"
#include "stream.h"

#include <stdatomic.h>
#include <stdint.h>

struct fanout;

/* Writer threads used when none are asked for: one per online CPU,
 * FANOUT_WRITERS_MAX at most. */
#define FANOUT_WRITERS_MAX 8
int fanout_writers_default(void);

/* Starts writer threads.  Viewers end once *stopping is set: each gets the
 * held frame once more with the closing boundary (one that got no frame
 * yet: the end of the request only); viewer_count is decremented as each
 * viewer ends.
 * NULL on failure, logged. */
struct fanout *fanout_start(int writers, const struct settings *settings,
			    const _Atomic int *stopping, _Atomic int *viewer_count)
	__attribute__((warn_unused_result));

/* Hands a viewer to a writer: fd is its FastCGI connection (libfcgi
 * detached from it, the response head with boundary already sent),
 * request_id its request; stream is a reference the viewer keeps, counted in the bus's and
 * in viewer_count's viewers (bus_viewer_enter done).  On success all of
 * these are the fanout's, and 0 is returned; -1 when the fanout is stopping
 * or memory ran out (logged), and the caller still owns them. */
int fanout_add(struct fanout *fanout, int fd, int request_id, struct stream *stream,
	       const struct query *query, const char *boundary)
	__attribute__((warn_unused_result));

/* Ends every viewer (the held frame once more with the closing boundary;
 * a viewer whose socket stays full is dropped after half a second),
 * accepts no more, and waits up to timeout_usec for the threads.  Returns
 * the number of writer threads still running. */
int fanout_stop(struct fanout *fanout, int64_t timeout_usec);

/* Frees what fanout_stop let end; with threads still running (it timed
 * out) it leaves everything to process exit. */
void fanout_free(struct fanout *fanout);

#endif
