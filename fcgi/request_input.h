/* request_input: what the web server sends on a stream request's FastCGI
 * connection once the request is in.  It should send nothing but
 * FCGI_ABORT_REQUEST (the client left: end the response at once, FastCGI
 * 1.0, 5.4); records are read just far enough to see one.  Used by the
 * thread that serves the viewer: its request thread (viewer_blocking.c)
 * or a writer thread (fanout.c). */
#ifndef MJPEG_REQUEST_INPUT_H
#define MJPEG_REQUEST_INPUT_H

#include <fastcgi.h>
#include <fcgiapp.h>
#include <stddef.h>
#include <stdint.h>

/* Owned by the thread that serves the viewer. */
struct request_input {
	int request_id;
	unsigned char head[FCGI_HEADER_LEN]; /* the next record's header ... */
	size_t head_len;                     /* ... of which this much was read */
	size_t skip;       /* content and padding of the current record left to read */
	int closed;        /* the server shut its side for writing: nothing comes */
};

/* Reads the request's body (FCGI_STDIN) through libfcgi to its end and
 * drops it, so that what the server sends next starts at a record boundary
 * for request_input_read.  Stream requests have no body: the empty
 * FCGI_STDIN record is there at once.  A body still coming after
 * timeout_usec (ingest_ms; each read is bounded by the socket's
 * SO_RCVTIMEO) ends the request.  Plain CGI (no FastCGI connection): does
 * nothing.  0, or -1 when the server aborted the request meanwhile, the
 * connection failed or the body was too slow; FCGX_Finish_r then does not
 * keep the connection. */
int request_skip_body(FCGX_Request *req, int64_t timeout_usec) __attribute__((warn_unused_result));

/* Reads what the server sent on fd, without blocking and never past the end
 * of a record (a kept connection's next request stays for libfcgi).
 * 1: the server aborted the request (FCGI_ABORT_REQUEST for
 * in->request_id); 0: nothing (more) for now, other records are dropped;
 * -1: the connection failed. */
int request_input_read(struct request_input *in, int fd) __attribute__((warn_unused_result));

#endif
