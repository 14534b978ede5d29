/* viewer: one request's worth of frames: a multipart stream or a snapshot.
 *
 * Runs in the request's own thread and holds at most one frame (its own
 * copy).  A slow viewer skips frames; it never makes anyone else wait. */
#ifndef MJPEG_VIEWER_H
#define MJPEG_VIEWER_H

#include "http.h"
#include "stream.h"

#include <fcgiapp.h>
#include <stdatomic.h>

/* Streams until the client leaves, query->frames parts were sent, or
 * *stopping is set (then the newest frame is sent once more with the
 * closing boundary).  head_only: answer HEAD (headers, no body). */
void viewer_stream(FCGX_Request *req, struct stream *stream, const struct query *query,
		   int head_only, const _Atomic int *stopping);

/* Answers with the newest frame as image/jpeg, waiting up to
 * first_frame_usec for a first one (else 503). */
void viewer_snapshot(FCGX_Stream *out, struct stream *stream, int head_only);

/* Writes a one-line text/plain error response. */
void viewer_error(FCGX_Stream *out, int status, const char *extra_headers, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
