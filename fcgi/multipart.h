/* multipart: the bytes of a multipart/x-mixed-replace response, as every
 * client we know of needs them (see README, "Wire format"): CRLF line ends,
 * an unquoted boundary as the last parameter, the first boundary as the
 * first body bytes, and per part exactly Content-Type, Content-Length and
 * X-Timestamp.  Formatting only: no I/O. */
#ifndef MJPEG_MULTIPART_H
#define MJPEG_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

/* Letters and digits; long enough never to occur in a JPEG by chance in a
 * way that matters (parsers use Content-Length anyway). */
#define MULTIPART_BOUNDARY_LEN 24
/* Room for any part header or response head this module writes. */
#define MULTIPART_HEAD_MAX 512

/* Fills boundary (MULTIPART_BOUNDARY_LEN + 1 bytes) with random letters
 * and digits. */
void multipart_make_boundary(char *boundary);

/* The CGI response head and the first boundary line.  Returns the length,
 * or -1 if it does not fit.  extra_headers (may be NULL) is inserted as is;
 * each of its lines must end with CRLF. */
int multipart_response_head(char *buf, size_t size, const char *boundary,
			    const char *extra_headers);

/* A part's header block, up to and including the blank line. */
int multipart_part_head(char *buf, size_t size, size_t jpeg_bytes, int64_t publish_usec);

/* What follows a part's body: the next boundary line, or, when last, the
 * closing boundary. */
int multipart_part_tail(char *buf, size_t size, const char *boundary, int last);

#endif
