#include "ingest.h"

#include "cgi.h"
#include "clock.h"
#include "deadline.h"
#include "drops.h"
#include "encode.h"
#include "log.h"
#include "mjpeg_reader.h"
#include "parse.h"
#include "reply.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <unistd.h>

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

/* Bytes a push reads from its body at a time (one FastCGI record holds
 * at most 64 KiB). */
#define PUSH_READ_BYTES (64 * 1024)

/* The push lock, BUS_DIR/NAME.push (a name no stream file can have: stream
 * names hold no dot): a push holds it exclusively for as long as its
 * request lasts, a one-frame POST shared for its one frame, so frames of
 * two writers never interleave on a stream, over every responder process.
 * flock: released when the descriptor closes, also when the process dies.
 * Returns the descriptor holding the lock; -1 when another writer holds it
 * (EWOULDBLOCK), -2 on any other failure (logged). */
static int push_lock(const struct stream *stream, int exclusive)
{
	char path[PATH_MAX];
	int fd, n = snprintf(path, sizeof(path), "%s/%s.push", stream->settings->bus_dir,
			     stream->cfg->name);

	if (n < 0 || (size_t)n >= sizeof(path)) {
		log_error("ingest %s: lock path too long", stream->cfg->name);
		return -2;
	}
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("ingest: open(%s): %s", path, strerror(errno));
		return -2;
	}
	if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
		int busy = errno == EWOULDBLOCK;

		if (!busy)
			log_error("ingest: flock(%s): %s", path, strerror(errno));
		close(fd);
		return busy ? -1 : -2;
	}
	return fd;
}

/* A push: the body read as it comes, each frame published when whole.
 * Owned by the request's thread. */
struct push {
	FCGX_Request *req;
	struct stream *stream;
	struct deadlines *watchdog; /* NULL under plain CGI */
	struct deadline deadline;   /* armed while the body is read (FastCGI) */
	int armed;
	int late;                   /* the stall deadline fired */
	struct mjpeg_reader reader;
	struct drop_log drops;
	char who[96];               /* "ingest NAME", for log lines */
	uint64_t published;         /* frames published by this request */
	uint64_t invalid, oversized; /* frames dropped, for the answer */
	char invalid_why[DROPS_WHY_BYTES];
	size_t last_bytes;
	uint32_t width, height;     /* of the last frame published */
	int cancelled;              /* a publish failed and was answered: the push ends */
};

/* (Re)starts the stall clock: the next frame must be whole within
 * ingest_ms from now.  Under FastCGI the watchdog shuts the socket for
 * reading at the deadline (a read blocked in libfcgi then returns; the
 * socket's SO_RCVTIMEO of ingest_ms bounds each single read as well);
 * under plain CGI the reader polls stdin up to the deadline itself.  -1 if
 * the deadline fired meanwhile or could not be armed. */
static int push_clock(struct push *p)
{
	int64_t at = clock_mono_usec() + p->stream->settings->ingest_usec;

	if (p->req->ipcFd < 0) {
		cgi_input_deadline(p->req->in, at);
		return 0;
	}
	if (!p->watchdog)
		return 0; /* the body is read whole already */
	if (p->armed) {
		p->armed = 0;
		if (deadline_disarm(p->watchdog, &p->deadline)) {
			p->late = 1;
			p->req->keepConnection = 0; /* its input is shut */
			return -1;
		}
	}
	if (deadline_arm(p->watchdog, &p->deadline, p->req->ipcFd, at) < 0)
		return -1;
	p->armed = 1;
	return 0;
}

static void push_clock_stop(struct push *p)
{
	if (p->armed && deadline_disarm(p->watchdog, &p->deadline)) {
		p->late = 1;
		p->req->keepConnection = 0;
	}
	p->armed = 0;
}

/* Validates and publishes one frame the reader completed.  A bad frame is
 * counted and dropped; the push goes on.  -1 when the stream cannot take
 * frames any more (reload, another writer, failure; answered here) or the
 * stall deadline fired: the push ends. */
static int push_frame(struct push *p, const struct mjpeg_reader_frame *frame)
{
	struct stream *stream = p->stream;
	uint32_t width, height;
	const char *why;

	if (encode_validate(frame->jpeg, frame->jpeg_bytes, &width, &height, &why) < 0) {
		const struct drops invalid = { .invalid = 1 };

		drop_log_add(&p->drops, &invalid, why);
		p->invalid++;
		snprintf(p->invalid_why, sizeof(p->invalid_why), "%s", why);
		return 0;
	}
	switch (bus_publish_shared(stream->bus, frame->jpeg, frame->jpeg_bytes, width, height,
				   clock_wall_usec(), -1, &stream->retired)) {
	case BUS_PUBLISHED:
		break;
	case BUS_PUBLISH_CANCELLED:
		reply_error(p->req->out, 409, NULL,
			    "stream '%s' changed (config reload) while frames arrived; "
			    "not published from then on (%llu were)",
			    stream->cfg->name, (unsigned long long)p->published);
		p->cancelled = 1;
		return -1;
	case BUS_PUBLISH_BUSY:
		reply_error(p->req->out, 503, "Retry-After: 1\r\n",
			    "stream '%s' is held by another writer (a producer of another "
			    "config?) for over %lld ms; not published",
			    stream->cfg->name, (long long)(BUS_PUBLISH_WAIT_USEC / USEC_PER_MSEC));
		p->cancelled = 1;
		return -1;
	default:
		reply_error(p->req->out, 500, NULL, "could not publish the frame");
		p->cancelled = 1;
		return -1;
	}
	p->published++;
	p->width = width;
	p->height = height;
	p->last_bytes = frame->jpeg_bytes;
	return push_clock(p);
}

/* Feeds data[0, len) to the reader and publishes every frame it completes.
 * -1: the push ends (push_frame). */
static int push_feed(struct push *p, const unsigned char *data, size_t len)
{
	struct drops dropped;
	size_t used = 0;
	int rc = 0;

	for (;;) {
		struct mjpeg_reader_frame frame;

		used += mjpeg_reader_feed(&p->reader, data + used, len - used, &frame);
		if (!frame.jpeg)
			break;
		if (push_frame(p, &frame) < 0) {
			rc = -1;
			break;
		}
	}
	drop_log_splitter(&p->drops, &p->reader.splitter, &dropped);
	p->oversized += dropped.oversized;
	drop_log_add(&p->drops, &dropped, NULL);
	drop_log_flush(&p->drops, p->who, 0);
	return rc;
}

/* Reads what the body has now, at least one byte, at most cap: blocks only
 * when nothing is buffered (one read of the socket, or of stdin under
 * CGI), where FCGX_GetStr would wait until cap bytes came.  0 at the end
 * of the body or on failure (FCGX_GetError tells which). */
static size_t read_some(FCGX_Stream *in, unsigned char *buf, size_t cap)
{
	int c = FCGX_GetChar(in);
	size_t have;

	if (c == EOF)
		return 0;
	buf[0] = (unsigned char)c;
	have = (size_t)(in->stop - in->rdNext); /* buffered: taken without a read */
	if (have > cap - 1)
		have = cap - 1;
	return 1 + (have ? (size_t)FCGX_GetStr((char *)buf + 1, (int)have, in) : 0);
}

static void push_init(struct push *p, FCGX_Request *req, struct stream *stream,
		      struct deadlines *watchdog)
{
	size_t limit = bus_frame_bytes_max(stream->bus);

	memset(p, 0, sizeof(*p));
	p->req = req;
	p->stream = stream;
	p->watchdog = watchdog;
	mjpeg_reader_init(&p->reader, limit);
	drop_log_init(&p->drops, limit);
	snprintf(p->who, sizeof(p->who), "ingest %s", stream->cfg->name);
}

static void push_destroy(struct push *p)
{
	push_clock_stop(p);
	drop_log_flush(&p->drops, p->who, 1);
	mjpeg_reader_destroy(&p->reader);
}

/* The answer once the body ended (unless push_frame gave one).
 * client_gone: the body failed; nobody is left to answer. */
static void push_answer(struct push *p, int client_gone)
{
	const struct stream_settings *st = p->stream->cfg;
	char text[320];
	int n;

	if (p->cancelled)
		return;
	if (p->late) {
		reply_error(p->req->out, 408, NULL,
			    "no frame completed within ingest_ms (%lld ms); %llu published",
			    (long long)(p->stream->settings->ingest_usec / USEC_PER_MSEC),
			    (unsigned long long)p->published);
		return;
	}
	if (client_gone)
		return;
	if (p->published == 0) {
		if (p->oversized)
			reply_error(p->req->out, 413, NULL,
				    "frame larger than frame_bytes_max (%zu bytes)",
				    bus_frame_bytes_max(p->stream->bus));
		else if (p->invalid)
			reply_error(p->req->out, 415, NULL, "%s", p->invalid_why);
		else
			reply_error(p->req->out, 415, NULL,
				    "no JPEG in the body (neither JPEG parts nor concatenated JPEGs)");
		return;
	}
	if (p->published == 1)
		n = snprintf(text, sizeof(text),
			     "published frame %llu of stream '%s' (%ux%u, %zu bytes)\n",
			     (unsigned long long)bus_latest(p->stream->bus), st->name, p->width,
			     p->height, p->last_bytes);
	else
		n = snprintf(text, sizeof(text),
			     "published %llu frames of stream '%s' (last %llu, %ux%u); "
			     "dropped %llu invalid, %llu over frame_bytes_max\n",
			     (unsigned long long)p->published, st->name,
			     (unsigned long long)bus_latest(p->stream->bus), p->width, p->height,
			     (unsigned long long)p->invalid, (unsigned long long)p->oversized);
	if (n > 0 && (size_t)n < sizeof(text))
		FCGX_FPrintF(p->req->out,
			     "Status: 200 OK\r\n"
			     "Content-Type: text/plain; charset=utf-8\r\n"
			     "Cache-Control: no-store\r\n"
			     "\r\n%s",
			     text);
}

/* A push: reads the body as it comes, to its end, publishing each frame. */
static void push_serve(FCGX_Request *req, struct stream *stream, struct deadlines *watchdog)
{
	unsigned char *chunk = malloc(PUSH_READ_BYTES);
	struct push p;
	int gone = 0;

	if (!chunk) {
		reply_error(req->out, 500, NULL, "out of memory");
		return;
	}
	push_init(&p, req, stream, watchdog);
	if (push_clock(&p) < 0) {
		reply_error(req->out, 500, NULL, "the body's deadline cannot be kept");
		p.cancelled = 1;
		goto out;
	}
	for (;;) {
		size_t got = read_some(req->in, chunk, PUSH_READ_BYTES);

		if (got == 0) {
			int err = FCGX_GetError(req->in);

			if (err == EAGAIN) /* SO_RCVTIMEO, or the CGI reader's deadline */
				p.late = 1;
			else if (err != 0)
				gone = 1;
			break;
		}
		if (push_feed(&p, chunk, got) < 0)
			break;
	}
	push_clock_stop(&p);
	if (!p.late && !gone && !p.cancelled && mjpeg_reader_reset(&p.reader) > 0) {
		/* A frame whose end never came: counted, not published. */
		const struct drops partial = { .partial = 1 };

		drop_log_add(&p.drops, &partial, NULL);
	}
out:
	push_answer(&p, gone);
	push_destroy(&p);
	free(chunk);
}

/* Whether the request is a push (read as it comes, one writer at a time)
 * rather than a body read whole (at most frame_bytes_max, else 413 at
 * once): a body with no length (chunked, as ffmpeg and curl -T - send it)
 * or a multipart one.  Raw frames are always one frame. */
static int is_push(FCGX_Request *req, const struct query *query)
{
	const char *length_text = FCGX_GetParam("CONTENT_LENGTH", req->envp);
	const char *type = FCGX_GetParam("CONTENT_TYPE", req->envp);

	if (query->raw)
		return 0;
	if (type && strncasecmp(type, "multipart/", strlen("multipart/")) == 0)
		return 1;
	return !length_text || !*length_text;
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
	int push, lock_fd = -1;

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
	push = is_push(req, query);
	lock_fd = push_lock(stream, push);
	if (lock_fd == -1) {
		reply_error(req->out, 409, NULL,
			    push ? "stream '%s' already has a pusher connected, or a frame is "
				   "being posted to it (one pusher at a time)"
				 : "stream '%s' has a pusher connected; it takes no other frames",
			    st->name);
		return;
	}
	if (lock_fd < 0) {
		reply_error(req->out, 500, NULL, "the stream's push lock cannot be taken");
		return;
	}
	if (push) {
		push_serve(req, stream, watchdog);
		goto out;
	}
	if (query->raw) {
		raw_bytes = (size_t)query->width * (size_t)query->height *
			    encode_pixel_bytes(query->format);
		limit = raw_bytes;
	}
	body = malloc(limit + 1);
	if (!body) {
		reply_error(req->out, 500, NULL, "out of memory");
		goto out;
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
		if (got >= 2 && ((body[0] == 0xFF && body[1] == 0xD8) ||
				 (body[0] == '-' && body[1] == '-'))) {
			/* Cut into frames, as a push would be: one JPEG, or
			 * several concatenated or in parts, sent with a
			 * length (a decoder would take bytes after the first
			 * JPEG's end as part of it).  Nothing found: the body
			 * is judged whole, below. */
			struct push p;
			int done;

			push_init(&p, req, stream, NULL);
			done = push_feed(&p, body, (size_t)got) < 0 || p.published > 0;
			if (done)
				push_answer(&p, 0);
			push_destroy(&p);
			if (done)
				goto out;
		}
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
	if (lock_fd >= 0)
		close(lock_fd); /* releases the push lock */
}
