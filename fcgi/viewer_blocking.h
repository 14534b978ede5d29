/* viewer_blocking: a stream viewer served by its request's own thread
 * with blocking writes: the sink of the viewer engine (viewer.c) for plain
 * CGI (the response goes to stdout through libfcgi) and for
 * FCGI_KEEP_CONN connections (the connection returns to libfcgi after the
 * response).  Other FastCGI stream requests go to the writer threads
 * (fanout.c).  The thread holds at most two frames of its own (the one
 * being sent, and a spare the next is read into); a slow viewer skips
 * frames, it never makes anyone else wait. */
#ifndef MJPEG_VIEWER_BLOCKING_H
#define MJPEG_VIEWER_BLOCKING_H

#include "http.h"
#include "stream.h"

#include <fcgiapp.h>
#include <stdatomic.h>

/* Where a blocking viewer's parts go. */
struct viewer_conn {
	FCGX_Stream *out;   /* libfcgi's output: parts go here when fd < 0, else
			     * it is flushed before each part; NULL: nothing buffered */
	int fd;             /* the FastCGI connection, parts written as records
			     * straight from the frame (one writev each); -1: plain CGI */
	int request_id;
};

/* Streams the parts after the response head (boundary sent in it) until
 * the client leaves, the server aborts the request (checked before every
 * part and every WAIT_STEP_USEC while waiting; the part in flight is
 * finished), query->frames parts were sent, the picture size changes, or
 * *stopping is set or the stream retired (then the held frame once more
 * with the closing boundary).  The caller then ends the request (the end
 * records: FCGX_Finish_r).  0, or -1 when a write failed (the client
 * left, or took no bytes for stall_ms): the connection may then be cut
 * inside a record. */
int viewer_blocking_run(const struct viewer_conn *conn, struct stream *stream,
			const struct query *query, const char *boundary,
			const _Atomic int *stopping);

/* A stream request in this thread: the response head, the request body
 * read and dropped, then viewer_blocking_run.  head_only: answer HEAD
 * (the head only). */
void viewer_blocking_serve(FCGX_Request *req, struct stream *stream, const struct query *query,
			   int head_only, const _Atomic int *stopping);

#endif
