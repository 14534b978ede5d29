/* snapshot: a request for one picture: the stream's newest frame as
 * image/jpeg, answered in the request's own thread. */
#ifndef MJPEG_SNAPSHOT_H
#define MJPEG_SNAPSHOT_H

#include "stream.h"

#include <fcgiapp.h>
#include <stdatomic.h>

/* Snapshots that wait for a frame (the stream has none yet, or only one
 * from before its producer paused) at once in one process; more get 503
 * with Retry-After at once, so that waiting snapshots never take every
 * request thread. */
#define SNAPSHOT_WAITING_MAX 8

/* Answers with the newest frame as image/jpeg, waiting up to
 * first_frame_usec for a first one (else 503).  waiting counts the
 * process's snapshots that wait (SNAPSHOT_WAITING_MAX); NULL: no limit
 * (plain CGI, a process per request).  head_only: answer HEAD. */
void snapshot_serve(FCGX_Stream *out, struct stream *stream, int head_only,
		    _Atomic int *waiting);

#endif
