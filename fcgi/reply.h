/* reply: responses written whole through libfcgi's output stream, by the
 * request thread: a one-line error, and the head of a multipart stream
 * response (what follows it is the viewer engine's, viewer.c). */
#ifndef MJPEG_REPLY_H
#define MJPEG_REPLY_H

#include <fcgiapp.h>

/* Writes a one-line text/plain error response (http_error_response). */
void reply_error(FCGX_Stream *out, int status, const char *extra_headers, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes and flushes a stream response's head with a new boundary
 * (MULTIPART_BOUNDARY_LEN + 1 bytes).  -1 if the client is gone. */
int reply_stream_head(FCGX_Stream *out, char *boundary) __attribute__((warn_unused_result));

#endif
