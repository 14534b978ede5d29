/* viewer: one request's worth of frames: a multipart stream or a snapshot.
 *
 * viewer_stream runs in the request's own thread (plain CGI, FCGI_KEEP_CONN;
 * other stream requests go to fanout.c) and holds at most one frame (its
 * own copy).  A slow viewer skips frames; it never makes anyone else wait. */
#ifndef MJPEG_VIEWER_H
#define MJPEG_VIEWER_H

#include "http.h"
#include "multipart.h"
#include "stream.h"

#include <fcgiapp.h>
#include <stdatomic.h>

/* When a viewer sends its next part: shared by viewer_stream (a thread
 * per viewer) and the writer threads of fanout.c (many viewers each). */
struct viewer_pace {
	int64_t min_gap_usec;   /* ?fps=N: least time between two parts; 0: none */
	int64_t repeat_usec;    /* resend the held frame once after this ... */
	int64_t keepalive_usec; /* ... then every this long */
	int64_t last_sent_usec; /* monotonic: when the last part went out */
	int repeated;           /* the frame held was already sent again */
};

enum viewer_step {
	VIEWER_WAIT,       /* nothing yet: ask again at *wake_usec, or on a new frame */
	VIEWER_SEND_NEWER, /* send the newest frame */
	VIEWER_RESEND,     /* send the held frame again */
};

/* newer: a frame newer than the one held was published.  Browsers show a
 * part only when the next one begins, so with no newer frame the held one
 * goes again after repeat_usec, then every keepalive_usec; a newer frame
 * waits only for ?fps pacing.  Frames published meanwhile are skipped. */
enum viewer_step viewer_next(const struct viewer_pace *pace, int newer, int64_t now_usec,
			     int64_t *wake_usec);

/* Writes and flushes a stream response's head with a new boundary
 * (MULTIPART_BOUNDARY_LEN + 1 bytes).  -1 if the client is gone. */
int viewer_stream_head(FCGX_Stream *out, char *boundary) __attribute__((warn_unused_result));

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
