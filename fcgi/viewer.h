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

#include <fastcgi.h>
#include <fcgiapp.h>
#include <stdatomic.h>
#include <stddef.h>

/* When a viewer sends its next part: shared by viewer_stream (a thread
 * per viewer) and the writer threads of fanout.c (many viewers each). */
struct viewer_pace {
	int64_t min_gap_usec;   /* ?fps=N: least time between two new frames; 0: none */
	int64_t repeat_usec;    /* resend the held frame once after this ... */
	int64_t keepalive_usec; /* ... then every this long */
	int64_t last_sent_usec; /* monotonic: when the last part went out */
	int64_t last_new_usec;  /* monotonic: when the held frame went out first */
	int repeated;           /* the frame held was already sent again */
};

enum viewer_step {
	VIEWER_WAIT,       /* nothing yet: ask again at *wake_usec, or on a new frame */
	VIEWER_SEND_NEWER, /* send the newest frame */
	VIEWER_RESEND,     /* send the held frame again */
};

/* newer: a frame newer than the one held was published.  Browsers show a
 * part only when the next one begins, so with no newer frame the held one
 * goes again after repeat_usec, then every keepalive_usec.  A newer frame
 * goes min_gap_usec (?fps) after the held one first went out; until then
 * the held one goes again every keepalive_usec (no repeat_usec: the viewer
 * asked for fewer parts, and the newer frame comes within the gap).
 * Repeats do not count against ?fps, so no gap is ever longer than
 * keepalive_usec.  Frames published meanwhile are skipped. */
enum viewer_step viewer_next(const struct viewer_pace *pace, int newer, int64_t now_usec,
			     int64_t *wake_usec);

/* Notes that a part went out (all of it) at now_usec: a frame new to this
 * viewer (fresh), or the held one again. */
void viewer_sent(struct viewer_pace *pace, int fresh, int64_t now_usec);

/* What the web server sends on a stream request's connection once the
 * request is in.  It should send nothing but FCGI_ABORT_REQUEST (the client
 * left: end the response at once, FastCGI 1.0, 5.4); records are read just
 * far enough to see one.  Owned by the thread that serves the viewer. */
struct viewer_input {
	int request_id;
	unsigned char head[FCGI_HEADER_LEN]; /* the next record's header ... */
	size_t head_len;                     /* ... of which this much was read */
	size_t skip;       /* content and padding of the current record left to read */
	int closed;        /* the server shut its side for writing: nothing comes */
};

/* Reads the request's body (FCGI_STDIN) through libfcgi to its end and
 * drops it, so that what the server sends next starts at a record boundary
 * for viewer_input_read.  Stream requests have no body: the empty
 * FCGI_STDIN record is there at once.  A body still coming after
 * timeout_usec (ingest_ms; each read is bounded by the socket's
 * SO_RCVTIMEO) ends the request.  Plain CGI (no FastCGI connection): does
 * nothing.  0, or -1 when the server aborted the request meanwhile, the
 * connection failed or the body was too slow; FCGX_Finish_r then does not
 * keep the connection. */
int viewer_skip_body(FCGX_Request *req, int64_t timeout_usec) __attribute__((warn_unused_result));

/* Reads what the server sent on fd, without blocking and never past the end
 * of a record (a kept connection's next request stays for libfcgi).
 * 1: the server aborted the request (FCGI_ABORT_REQUEST for
 * in->request_id); 0: nothing (more) for now, other records are dropped;
 * -1: the connection failed. */
int viewer_input_read(struct viewer_input *in, int fd) __attribute__((warn_unused_result));

/* Writes and flushes a stream response's head with a new boundary
 * (MULTIPART_BOUNDARY_LEN + 1 bytes).  -1 if the client is gone. */
int viewer_stream_head(FCGX_Stream *out, char *boundary) __attribute__((warn_unused_result));

/* Streams until the client leaves, the server aborts the request (checked
 * before every part and every PACE_STEP_USEC while waiting; the part in
 * flight is finished, FCGX_Finish_r then ends the request),
 * query->frames parts were sent, or *stopping is set (then the newest
 * frame is sent once more with the closing boundary).  head_only: answer
 * HEAD (headers, no body). */
void viewer_stream(FCGX_Request *req, struct stream *stream, const struct query *query,
		   int head_only, const _Atomic int *stopping);

/* Snapshots that wait for a frame (the stream has none yet, or only one
 * from before its producer paused) at once in one process; more get 503
 * with Retry-After at once, so that waiting snapshots never take every
 * request thread. */
#define VIEWER_SNAPSHOT_WAITING_MAX 8

/* Answers with the newest frame as image/jpeg, waiting up to
 * first_frame_usec for a first one (else 503).  waiting counts the
 * process's snapshots that wait (VIEWER_SNAPSHOT_WAITING_MAX); NULL: no
 * limit (plain CGI, a process per request). */
void viewer_snapshot(FCGX_Stream *out, struct stream *stream, int head_only,
		     _Atomic int *waiting);

/* Writes a one-line text/plain error response. */
void viewer_error(FCGX_Stream *out, int status, const char *extra_headers, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
