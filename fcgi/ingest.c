#include "ingest.h"

#include "clock.h"
#include "deadline.h"
#include "encode.h"
#include "log.h"
#include "parse.h"
#include "reply.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The scheme name is case-insensitive (RFC 9110, 11.1). */
#define BEARER "Bearer "

int ingest_token_matches(const char *authorization, const char *token)
{
	size_t presented_len, token_len = strlen(token), i;
	unsigned char diff = 0;

	if (strncasecmp(authorization, BEARER, strlen(BEARER)) != 0 || token_len == 0)
		return 0;
	authorization += strlen(BEARER);
	presented_len = strlen(authorization);
	/* Every byte of the token is compared whatever the presented value
	 * holds, so the time taken tells nothing about how much matched. */
	for (i = 0; i < token_len; i++)
		diff |= (unsigned char)(token[i] ^ (i < presented_len ? authorization[i] : 0));
	return diff == 0 && presented_len == token_len;
}

enum {
	BODY_GONE = -1,      /* the client sent less than CONTENT_LENGTH promised */
	BODY_TOO_LARGE = -2, /* more than the limit */
	BODY_LATE = -3,      /* not whole within ingest_ms */
	BODY_BAD_LENGTH = -4 /* CONTENT_LENGTH is not a number */
};

/* Reads the body, up to limit bytes, by the deadline ingest_ms from now
 * (the watchdog shuts the socket for reading then; under plain CGI, with no
 * watchdog, the CGI reader keeps the same deadline).  Returns its size or
 * one of the BODY_ values. */
static long read_body(FCGX_Request *req, unsigned char *buf, size_t limit,
		      int64_t timeout_usec, struct deadlines *watchdog)
{
	const char *length_text = FCGX_GetParam("CONTENT_LENGTH", req->envp);
	struct deadline deadline;
	long length = -1, used = 0;
	int armed = 0, late = 0;

	if (length_text && *length_text) {
		if (parse_long(length_text, 0, LONG_MAX, &length) < 0)
			return BODY_BAD_LENGTH;
		if (length > (long)limit)
			return BODY_TOO_LARGE;
	}
	if (watchdog && req->ipcFd >= 0) {
		if (deadline_arm(watchdog, &deadline, req->ipcFd, clock_mono_usec() + timeout_usec) < 0)
			return BODY_GONE;
		armed = 1;
	}
	for (;;) {
		/* Without a length (chunked upload) read to the end, one byte
		 * past the limit to tell "exactly limit" from "too large". */
		long want = length >= 0 ? length - used : (long)limit + 1 - used;
		int got;

		if (want <= 0)
			break;
		got = FCGX_GetStr((char *)buf + used, want > (1 << 30) ? (1 << 30) : (int)want,
				  req->in);
		if (got <= 0)
			break;
		used += got;
	}
	if (armed && deadline_disarm(watchdog, &deadline)) {
		late = 1;
		req->keepConnection = 0; /* its input is shut */
	}
	if (length >= 0 && used < length)
		return late || FCGX_GetError(req->in) == EAGAIN ? BODY_LATE : BODY_GONE;
	if (used > (long)limit)
		return BODY_TOO_LARGE;
	if (late && length < 0)
		return BODY_LATE; /* read "to the end", and the end was the deadline */
	return used;
}

void ingest_handle(FCGX_Request *req, struct stream *stream, const struct query *query,
		   struct deadlines *watchdog)
{
	const struct stream_settings *st = stream->cfg;
	const char *auth = FCGX_GetParam("HTTP_AUTHORIZATION", req->envp);
	size_t limit = bus_frame_bytes_max(stream->bus), raw_bytes = 0;
	unsigned char *body = NULL;
	struct encoder *enc = NULL;
	const unsigned char *jpeg;
	size_t jpeg_bytes;
	uint32_t width, height;
	int64_t encode_usec = -1;
	const char *why;
	long got;

	if (st->kind != SOURCE_INGEST) {
		reply_error(req->out, 403, NULL, "stream '%s' takes frames from %s, not from POST",
			    st->name, st->source);
		return;
	}
	if (!auth || !*auth) {
		reply_error(req->out, 401, "WWW-Authenticate: Bearer\r\n",
			    "an Authorization: Bearer TOKEN header is required");
		return;
	}
	if (!ingest_token_matches(auth, st->token)) {
		log_warn("ingest %s: wrong token from %s", st->name,
			 FCGX_GetParam("REMOTE_ADDR", req->envp) ? FCGX_GetParam("REMOTE_ADDR",
										  req->envp)
								  : "?");
		reply_error(req->out, 403, NULL, "wrong token for stream '%s'", st->name);
		return;
	}
	if (query->raw) {
		raw_bytes = (size_t)query->width * (size_t)query->height *
			    encode_pixel_bytes(query->format);
		limit = raw_bytes;
	}
	body = malloc(limit + 1);
	if (!body) {
		reply_error(req->out, 500, NULL, "out of memory");
		return;
	}
	got = read_body(req, body, limit, stream->settings->ingest_usec, watchdog);
	if (got == BODY_BAD_LENGTH) {
		reply_error(req->out, 400, NULL, "CONTENT_LENGTH is not a number");
		goto out;
	}
	if (got == BODY_TOO_LARGE) {
		reply_error(req->out, query->raw ? 415 : 413, NULL,
			    query->raw ? "raw frame larger than %zu bytes (format x width x height)"
					: "frame larger than frame_bytes_max (%zu bytes)",
			    limit);
		goto out;
	}
	if (got == BODY_LATE) {
		reply_error(req->out, 408, NULL, "the frame did not arrive within ingest_ms (%lld)",
			    (long long)(stream->settings->ingest_usec / USEC_PER_MSEC));
		goto out;
	}
	if (got < 0)
		goto out; /* the client left mid-body: nobody to answer */
	if (query->raw) {
		if ((size_t)got != raw_bytes) {
			reply_error(req->out, 415, NULL,
				    "raw frame of %ldx%ld needs %zu bytes, got %ld", query->width,
				    query->height, raw_bytes, got);
			goto out;
		}
		enc = encode_open();
		if (!enc) {
			reply_error(req->out, 500, NULL, "encoder unavailable");
			goto out;
		}
		encode_usec = clock_mono_usec();
		if (encode_frame(enc, body, query->format, (uint32_t)query->width,
				 (uint32_t)query->height, st->quality, &jpeg, &jpeg_bytes) < 0) {
			reply_error(req->out, 500, NULL, "encoding failed");
			goto out;
		}
		encode_usec = clock_mono_usec() - encode_usec;
		width = (uint32_t)query->width;
		height = (uint32_t)query->height;
	} else {
		if (encode_validate(body, (size_t)got, &width, &height, &why) < 0) {
			reply_error(req->out, 415, NULL, "%s", why);
			goto out;
		}
		jpeg = body;
		jpeg_bytes = (size_t)got;
	}
	if (jpeg_bytes > bus_frame_bytes_max(stream->bus)) {
		reply_error(req->out, 413, NULL, "encoded frame larger than frame_bytes_max (%zu)",
			    bus_frame_bytes_max(stream->bus));
		goto out;
	}
	/* A reload may have made the stream another kind while the body
	 * arrived: its new producer then holds the bus for good. */
	switch (bus_publish_shared(stream->bus, jpeg, jpeg_bytes, width, height, clock_wall_usec(),
				   encode_usec, &stream->retired)) {
	case BUS_PUBLISHED:
		break;
	case BUS_PUBLISH_CANCELLED:
		reply_error(req->out, 409, NULL,
			    "stream '%s' changed (config reload) while the frame arrived; "
			    "not published", st->name);
		goto out;
	case BUS_PUBLISH_BUSY:
		reply_error(req->out, 503, "Retry-After: 1\r\n",
			    "stream '%s' is held by another writer (a producer of another "
			    "config?) for over %lld ms; not published", st->name,
			    (long long)(BUS_PUBLISH_WAIT_USEC / USEC_PER_MSEC));
		goto out;
	default:
		reply_error(req->out, 500, NULL, "could not publish the frame");
		goto out;
	}
	{
		char head[256];
		int n = snprintf(head, sizeof(head),
				 "Status: 200 OK\r\n"
				 "Content-Type: text/plain; charset=utf-8\r\n"
				 "Cache-Control: no-store\r\n"
				 "\r\n"
				 "published frame %llu of stream '%s' (%ux%u, %zu bytes)\n",
				 (unsigned long long)bus_latest(stream->bus), st->name, width, height,
				 jpeg_bytes);

		if (n > 0 && (size_t)n < sizeof(head))
			FCGX_PutStr(head, n, req->out);
	}
out:
	encode_close(enc);
	free(body);
}
