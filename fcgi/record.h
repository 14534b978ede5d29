/* record: FastCGI stdout records written straight to the connection.
 *
 * libfcgi copies output through an 8 KiB buffer and writes one record per
 * buffer, so a 40 KiB frame costs five write() calls per viewer.  A frame
 * part (headers, JPEG, next boundary) goes out here as one record per
 * 64 KiB in a single writev(), from the frame buffer itself. */
#ifndef MJPEG_RECORD_H
#define MJPEG_RECORD_H

#include <sys/uio.h>

/* Largest content of one FastCGI record (a 16-bit length). */
#define RECORD_CONTENT_MAX 65535
/* Pieces one call accepts. */
#define RECORD_PIECES_MAX 8

/* Writes the concatenation of pieces[0..n) to fd as FCGI_STDOUT records of
 * request_id.  Call only with libfcgi's own output stream flushed, so the
 * records do not interleave.  0, or -1 with errno set (the peer left, or
 * SO_SNDTIMEO expired). */
int record_write_stdout(int fd, int request_id, const struct iovec *pieces, int n)
	__attribute__((warn_unused_result));

#endif
