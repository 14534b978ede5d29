/* record: FastCGI stdout records written straight to the connection.
 *
 * libfcgi copies output through an 8 KiB buffer and writes one record per
 * buffer, so a 40 KiB frame costs five write() calls per viewer.  A frame
 * part (headers, JPEG, next boundary) goes out here as one record per
 * 64 KiB in a single sendmsg(), from the frame buffer itself.  A send may
 * stop part-way when the socket is full and resume later from a byte count:
 * this is what lets one thread serve many viewers (fanout.c). */
#ifndef MJPEG_RECORD_H
#define MJPEG_RECORD_H

#include <stddef.h>
#include <sys/uio.h>

/* Largest content of one FastCGI record (a 16-bit length). */
#define RECORD_CONTENT_MAX 65535
/* Pieces one call accepts. */
#define RECORD_PIECES_MAX 8

/* Bytes on the wire for content bytes of stdout records, plus, when end,
 * the empty stdout record and FCGI_END_REQUEST that end a request. */
size_t record_wire_bytes(size_t content, int end);

/* Sends the records carrying the concatenation of pieces[0..n) as
 * FCGI_STDOUT of request_id (and, when end, the records that end the
 * request), starting *sent bytes into them and adding what went out to
 * *sent.  flags: 0 blocks until everything is sent (bounded by the
 * socket's SO_SNDTIMEO); MSG_DONTWAIT returns when the socket is full.
 * Call only with libfcgi's own output stream flushed, so that records do
 * not interleave.
 * 1: all sent; 0: the socket is full (MSG_DONTWAIT only: call again with
 * the same pieces once it is writable); -1: errno set (the peer left, or
 * SO_SNDTIMEO expired). */
int record_send(int fd, int request_id, const struct iovec *pieces, int n, int end, size_t *sent,
		int flags) __attribute__((warn_unused_result));

/* record_send of the whole of pieces, blocking.  0 or -1 (errno set). */
int record_write_stdout(int fd, int request_id, const struct iovec *pieces, int n)
	__attribute__((warn_unused_result));

#endif
