#include "record.h"

#include <errno.h>
#include <fastcgi.h>
#include <string.h>
#include <sys/socket.h>

/* Up to RECORDS_PER_CALL records (1 MiB) go in one sendmsg; longer data
 * takes more calls.  Each record: its 8-byte header, then slices of the
 * pieces (a record may span piece boundaries). */
#define RECORDS_PER_CALL 16
#define IOV_PER_CALL (RECORDS_PER_CALL * (1 + RECORD_PIECES_MAX) + 2)
/* A full record on the wire. */
#define RECORD_FULL_BYTES (sizeof(FCGI_Header) + RECORD_CONTENT_MAX)
/* The empty stdout record and FCGI_END_REQUEST. */
#define RECORD_END_BYTES (sizeof(FCGI_Header) + sizeof(FCGI_EndRequestRecord))

struct end_records {
	FCGI_Header stdout_end;
	FCGI_EndRequestRecord end_request;
};

static void make_header(FCGI_Header *h, int type, int request_id, size_t content)
{
	memset(h, 0, sizeof(*h));
	h->version = FCGI_VERSION_1;
	h->type = (unsigned char)type;
	h->requestIdB1 = (unsigned char)((request_id >> 8) & 0xff);
	h->requestIdB0 = (unsigned char)(request_id & 0xff);
	h->contentLengthB1 = (unsigned char)((content >> 8) & 0xff);
	h->contentLengthB0 = (unsigned char)(content & 0xff);
	/* no padding: it is optional (FastCGI 1.0, 3.3) */
}

static size_t records_for(size_t content)
{
	return (content + RECORD_CONTENT_MAX - 1) / RECORD_CONTENT_MAX;
}

size_t record_wire_bytes(size_t content, int end)
{
	return records_for(content) * sizeof(FCGI_Header) + content + (end ? RECORD_END_BYTES : 0);
}

/* Fills iov with the wire bytes from record first on: up to
 * RECORDS_PER_CALL records, then the end records if they are reached.
 * Returns the entries used. */
static int build(struct iovec *iov, FCGI_Header *headers, struct end_records *end_rec,
		 int request_id, const struct iovec *pieces, int n, size_t content, int end,
		 size_t first)
{
	size_t records = records_for(content), k, offset = first * RECORD_CONTENT_MAX;
	int piece = 0, count = 0;

	/* Find where record first's content starts among the pieces. */
	while (piece < n && offset >= pieces[piece].iov_len) {
		offset -= pieces[piece].iov_len;
		piece++;
	}
	for (k = first; k < records && k < first + RECORDS_PER_CALL; k++) {
		size_t want = k + 1 < records ? RECORD_CONTENT_MAX : content - k * RECORD_CONTENT_MAX;

		make_header(&headers[k - first], FCGI_STDOUT, request_id, want);
		iov[count].iov_base = &headers[k - first];
		iov[count++].iov_len = sizeof(FCGI_Header);
		while (want > 0) {
			size_t take = pieces[piece].iov_len - offset;

			if (take > want)
				take = want;
			if (take) {
				iov[count].iov_base = (char *)pieces[piece].iov_base + offset;
				iov[count++].iov_len = take;
			}
			want -= take;
			offset += take;
			if (offset == pieces[piece].iov_len) {
				piece++;
				offset = 0;
			}
		}
	}
	if (end && k == records) {
		make_header(&end_rec->stdout_end, FCGI_STDOUT, request_id, 0);
		make_header(&end_rec->end_request.header, FCGI_END_REQUEST, request_id,
			    sizeof(end_rec->end_request.body));
		memset(&end_rec->end_request.body, 0, sizeof(end_rec->end_request.body));
		end_rec->end_request.body.protocolStatus = FCGI_REQUEST_COMPLETE;
		iov[count].iov_base = end_rec;
		iov[count++].iov_len = RECORD_END_BYTES;
	}
	return count;
}

int record_send(int fd, int request_id, const struct iovec *pieces, int n, int end, size_t *sent,
		int flags)
{
	FCGI_Header headers[RECORDS_PER_CALL];
	struct end_records end_rec;
	struct iovec iov[IOV_PER_CALL];
	size_t content = 0, total;
	int i;

	if (n > RECORD_PIECES_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++)
		content += pieces[i].iov_len;
	total = record_wire_bytes(content, end);
	while (*sent < total) {
		/* Every record but the last is full, so record first starts
		 * at first * RECORD_FULL_BYTES; from there, skip what went
		 * out already.  Past the records (inside the end records,
		 * which may start anywhere in a would-be full record), start
		 * from the end records themselves. */
		size_t records_bytes = record_wire_bytes(content, 0), first, skip;

		if (*sent >= records_bytes) {
			first = records_for(content);
			skip = *sent - records_bytes;
		} else {
			first = *sent / RECORD_FULL_BYTES;
			skip = *sent - first * RECORD_FULL_BYTES;
		}
		struct msghdr msg = { .msg_iov = iov };
		struct iovec *at = iov;
		int count;
		ssize_t done;

		count = build(iov, headers, &end_rec, request_id, pieces, n, content, end, first);
		while (skip > 0 && skip >= at->iov_len) {
			skip -= at->iov_len;
			at++;
			count--;
		}
		at->iov_base = (char *)at->iov_base + skip;
		at->iov_len -= skip;
		msg.msg_iov = at;
		msg.msg_iovlen = (size_t)count;
		done = sendmsg(fd, &msg, flags | MSG_NOSIGNAL);
		if (done < 0) {
			if (errno == EINTR)
				continue;
			if ((errno == EAGAIN || errno == EWOULDBLOCK) && (flags & MSG_DONTWAIT))
				return 0;
			return -1;
		}
		*sent += (size_t)done;
	}
	return 1;
}

int record_write_stdout(int fd, int request_id, const struct iovec *pieces, int n)
{
	size_t sent = 0;

	return record_send(fd, request_id, pieces, n, 0, &sent, 0) < 0 ? -1 : 0;
}
