#include "record.h"

#include <errno.h>
#include <fastcgi.h>
#include <string.h>

/* Each record: its 8-byte header, then slices of the pieces (a record may
 * span piece boundaries).  Up to RECORDS_PER_CALL records (1 MiB) go in
 * one writev; longer data takes more calls. */
#define RECORDS_PER_CALL 16
#define IOV_PER_CALL (RECORDS_PER_CALL * (1 + RECORD_PIECES_MAX))

static void make_header(FCGI_Header *h, int request_id, size_t content)
{
	h->version = FCGI_VERSION_1;
	h->type = FCGI_STDOUT;
	h->requestIdB1 = (unsigned char)((request_id >> 8) & 0xff);
	h->requestIdB0 = (unsigned char)(request_id & 0xff);
	h->contentLengthB1 = (unsigned char)((content >> 8) & 0xff);
	h->contentLengthB0 = (unsigned char)(content & 0xff);
	h->paddingLength = 0; /* padding is optional (FastCGI 1.0, 3.3) */
	h->reserved = 0;
}

/* Writes all of iov, resuming after short writes. */
static int writev_all(int fd, struct iovec *iov, int count)
{
	while (count > 0) {
		ssize_t n = writev(fd, iov, count);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (count > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			count--;
		}
		if (count > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int record_write_stdout(int fd, int request_id, const struct iovec *pieces, int n)
{
	FCGI_Header headers[RECORDS_PER_CALL];
	struct iovec iov[IOV_PER_CALL];
	size_t offset = 0; /* into pieces[piece] */
	int piece = 0;

	if (n > RECORD_PIECES_MAX) {
		errno = EINVAL;
		return -1;
	}
	while (piece < n) {
		int records = 0, count = 0;

		while (piece < n && records < RECORDS_PER_CALL) {
			size_t content = 0;
			int header_at = count++;

			while (piece < n && content < RECORD_CONTENT_MAX) {
				size_t take = pieces[piece].iov_len - offset;

				if (take > RECORD_CONTENT_MAX - content)
					take = RECORD_CONTENT_MAX - content;
				if (take) {
					iov[count].iov_base = (char *)pieces[piece].iov_base + offset;
					iov[count].iov_len = take;
					count++;
				}
				content += take;
				offset += take;
				if (offset == pieces[piece].iov_len) {
					piece++;
					offset = 0;
				}
			}
			if (content == 0) { /* only empty pieces were left */
				count--;
				break;
			}
			make_header(&headers[records], request_id, content);
			iov[header_at].iov_base = &headers[records];
			iov[header_at].iov_len = sizeof(headers[records]);
			records++;
		}
		if (count && writev_all(fd, iov, count) < 0)
			return -1;
	}
	return 0;
}
