#include "request_input.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

int request_skip_body(FCGX_Request *req, int64_t timeout_usec)
{
	int64_t deadline = clock_mono_usec() + timeout_usec;

	if (req->ipcFd < 0)
		return 0;
	/* A byte at a time: each call reads the socket at most once (an
	 * empty body is one record, already buffered), so the deadline is
	 * looked at between reads. */
	while (FCGX_GetChar(req->in) != EOF) {
		if (clock_mono_usec() > deadline) {
			log_info("request: body still coming after %lld ms (ingest_ms), "
				 "ending the request",
				 (long long)(timeout_usec / USEC_PER_MSEC));
			req->keepConnection = 0; /* its input is not at a record boundary */
			return -1;
		}
	}
	if (FCGX_GetError(req->in) != 0)
		return -1; /* an abort (to libfcgi, a record of the wrong type), or a failed read */
	return 0;
}

int request_input_read(struct request_input *in, int fd)
{
	unsigned char scrap[512];

	while (!in->closed) {
		const FCGI_Header *h = (const FCGI_Header *)in->head;
		ssize_t n;

		/* Content is dropped into scrap; a header is kept. */
		if (in->skip)
			n = recv(fd, scrap, in->skip < sizeof(scrap) ? in->skip : sizeof(scrap),
				 MSG_DONTWAIT);
		else
			n = recv(fd, in->head + in->head_len, sizeof(in->head) - in->head_len,
				 MSG_DONTWAIT);

		if (n == 0) {
			in->closed = 1; /* shut for writing only; a full close fails our writes */
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		if (in->skip) {
			in->skip -= (size_t)n;
			continue;
		}
		in->head_len += (size_t)n;
		if (in->head_len < sizeof(in->head))
			continue;
		in->head_len = 0;
		in->skip = ((size_t)h->contentLengthB1 << 8 | h->contentLengthB0) + h->paddingLength;
		if (h->version == FCGI_VERSION_1 && h->type == FCGI_ABORT_REQUEST &&
		    (h->requestIdB1 << 8 | h->requestIdB0) == in->request_id)
			return 1;
	}
	return 0;
}
