#include "viewer.h"

#include "clock.h"
#include "log.h"
#include "multipart.h"
#include "record.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Longest single sleep while pacing a viewer: bounds how late a shutdown
 * is noticed. */
#define PACE_STEP_USEC (100 * USEC_PER_MSEC)

void viewer_error(FCGX_Stream *out, int status, const char *extra_headers, const char *fmt, ...)
{
	char message[256], response[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	n = http_error_response(response, sizeof(response), status, extra_headers, message);
	if (n > 0)
		FCGX_PutStr(response, n, out);
}

/* 0, or -1 when the client is gone (the write or flush failed). */
static int send_part(FCGX_Request *req, const struct bus_frame *frame, const char *boundary,
		     int last)
{
	char head[MULTIPART_HEAD_MAX], tail[MULTIPART_HEAD_MAX];
	int head_len = multipart_part_head(head, sizeof(head), frame->bytes, frame->publish_usec);
	int tail_len = multipart_part_tail(tail, sizeof(tail), boundary, last);
	FCGX_Stream *out = req->out;

	if (head_len < 0 || tail_len < 0)
		FATAL("multipart header overflow");
	/* The next boundary goes out in the same write as the frame: clients
	 * that wait for it to show a part need no extra round. */
	if (req->ipcFd >= 0) {
		/* FastCGI: one writev per part, straight from the frame
		 * buffer, once libfcgi's own buffer is out. */
		struct iovec pieces[] = {
			{ head, (size_t)head_len },
			{ frame->jpeg, frame->bytes },
			{ tail, (size_t)tail_len },
		};

		if (FCGX_FFlush(out) < 0 ||
		    record_write_stdout(req->ipcFd, req->requestId, pieces, 3) < 0)
			return -1;
		return 0;
	}
	if (FCGX_PutStr(head, head_len, out) < 0 ||
	    FCGX_PutStr((const char *)frame->jpeg, (int)frame->bytes, out) < 0 ||
	    FCGX_PutStr(tail, tail_len, out) < 0 || FCGX_FFlush(out) < 0)
		return -1;
	return 0;
}

/* The buffer starts empty and grows to what the stream's frames need. */
static void frame_init(struct bus_frame *frame)
{
	memset(frame, 0, sizeof(*frame));
	frame->growable = 1;
}

/* The response must end: the server stops, or a reload retired the
 * stream. */
static int ending(const struct stream *stream, const _Atomic int *stopping)
{
	return atomic_load(stopping) || atomic_load(&stream->retired);
}

/* Reads the newest frame, waiting up to timeout_usec for a first one.
 * 1: a frame is held; 0: none. */
static int first_frame(struct stream *stream, struct bus_frame *frame, int64_t timeout_usec,
		       const _Atomic int *stopping)
{
	int64_t deadline = clock_mono_usec() + timeout_usec;
	int rc;

	while ((rc = bus_read_latest(stream->bus, frame)) == 0) {
		int64_t left = deadline - clock_mono_usec();

		if (left <= 0 || (stopping && ending(stream, stopping)))
			return 0;
		bus_wait_newer(stream->bus, 0, left < PACE_STEP_USEC ? left : PACE_STEP_USEC);
	}
	return rc > 0;
}

/* How old a snapshot may be before it is taken afresh: two frame
 * intervals, at least the keepalive second. */
static int64_t snapshot_stale_usec(const struct stream_settings *cfg)
{
	int64_t two_frames = (int64_t)(2 * USEC_PER_SEC / cfg->fps);

	return two_frames > USEC_PER_SEC ? two_frames : USEC_PER_SEC;
}

/* A frame left from before the producer paused is not "now": the snapshot
 * waits (up to first_frame_usec) for the producer, just woken, to publish.
 * Ingest streams publish when their clients do; theirs is current. */
static int snapshot_stale(const struct stream *stream, const struct bus_frame *frame)
{
	return stream->cfg->kind != SOURCE_INGEST &&
	       clock_wall_usec() - frame->publish_usec > snapshot_stale_usec(stream->cfg);
}

void viewer_snapshot(FCGX_Stream *out, struct stream *stream, int head_only,
		     _Atomic int *waiting)
{
	struct bus_frame frame;
	char head[MULTIPART_HEAD_MAX];
	int n, has_frame, counted = 0;

	frame_init(&frame);
	stream_want(stream);
	has_frame = first_frame(stream, &frame, 0, NULL);
	if ((!has_frame || snapshot_stale(stream, &frame)) && waiting) {
		/* Relaxed: a count, ordering nothing else. */
		if (atomic_fetch_add_explicit(waiting, 1, memory_order_relaxed) >=
		    VIEWER_SNAPSHOT_WAITING_MAX) {
			atomic_fetch_sub_explicit(waiting, 1, memory_order_relaxed);
			viewer_error(out, 503, "Retry-After: 1\r\n",
				     "stream '%s' has no current frame, and %d snapshots already "
				     "wait for one", stream->cfg->name, VIEWER_SNAPSHOT_WAITING_MAX);
			goto out;
		}
		counted = 1;
	}
	if (!has_frame && !first_frame(stream, &frame, stream->settings->first_frame_usec, NULL)) {
		viewer_error(out, 503, "Retry-After: 1\r\n", "stream '%s' has no frame yet",
			     stream->cfg->name);
		goto out;
	}
	if (snapshot_stale(stream, &frame) &&
	    bus_wait_newer(stream->bus, frame.seq, stream->settings->first_frame_usec) &&
	    bus_read_latest(stream->bus, &frame) < 0) {
		viewer_error(out, 500, NULL, "could not read the frame");
		goto out;
	}
	if (counted) {
		atomic_fetch_sub_explicit(waiting, 1, memory_order_relaxed);
		counted = 0;
	}
	n = snprintf(head, sizeof(head),
		     "Status: 200 OK\r\n"
		     "Content-Type: image/jpeg\r\n"
		     "Content-Length: %zu\r\n"
		     "Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n"
		     "X-Timestamp: %lld.%06lld\r\n"
		     "\r\n",
		     frame.bytes, (long long)(frame.publish_usec / USEC_PER_SEC),
		     (long long)(frame.publish_usec % USEC_PER_SEC));
	if (n < 0 || (size_t)n >= sizeof(head))
		FATAL("snapshot header overflow");
	if (FCGX_PutStr(head, n, out) < 0)
		goto out;
	if (!head_only && FCGX_PutStr((const char *)frame.jpeg, (int)frame.bytes, out) >= 0)
		bus_count_delivered(stream->bus, 1, frame.bytes, 0);
out:
	if (counted)
		atomic_fetch_sub_explicit(waiting, 1, memory_order_relaxed);
	free(frame.jpeg);
}

enum viewer_step viewer_next(const struct viewer_pace *pace, int newer, int64_t now_usec,
			     int64_t *wake_usec)
{
	int64_t newer_due = pace->last_new_usec + pace->min_gap_usec;
	int64_t resend_due = pace->last_sent_usec + (newer || pace->repeated ? pace->keepalive_usec
									      : pace->repeat_usec);

	if (newer && now_usec >= newer_due)
		return VIEWER_SEND_NEWER;
	if (now_usec >= resend_due)
		return VIEWER_RESEND;
	*wake_usec = newer && newer_due < resend_due ? newer_due : resend_due;
	return VIEWER_WAIT;
}

void viewer_sent(struct viewer_pace *pace, int fresh, int64_t now_usec)
{
	pace->last_sent_usec = now_usec;
	if (fresh)
		pace->last_new_usec = now_usec;
	pace->repeated = !fresh;
}

int viewer_skip_body(FCGX_Request *req, int64_t timeout_usec)
{
	int64_t deadline = clock_mono_usec() + timeout_usec;

	if (req->ipcFd < 0)
		return 0;
	/* A byte at a time: each call reads the socket at most once (an
	 * empty body is one record, already buffered), so the deadline is
	 * looked at between reads. */
	while (FCGX_GetChar(req->in) != EOF) {
		if (clock_mono_usec() > deadline) {
			log_info("viewer: request body still coming after %lld ms (ingest_ms), "
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

int viewer_input_read(struct viewer_input *in, int fd)
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

int viewer_stream_head(FCGX_Stream *out, char *boundary)
{
	char head[MULTIPART_HEAD_MAX];
	int n;

	multipart_make_boundary(boundary);
	n = multipart_response_head(head, sizeof(head), boundary, NULL);
	if (n < 0)
		FATAL("multipart head overflow");
	if (FCGX_PutStr(head, n, out) < 0 || FCGX_FFlush(out) < 0)
		return -1;
	return 0;
}

/* The server aborted the request, or its connection failed: the response
 * ends here, without a closing boundary (FCGX_Finish_r ends the request). */
static int aborted(const FCGX_Request *req, struct viewer_input *input)
{
	return req->ipcFd >= 0 && viewer_input_read(input, req->ipcFd) != 0;
}

void viewer_stream(FCGX_Request *req, struct stream *stream, const struct query *query,
		   int head_only, const _Atomic int *stopping)
{
	FCGX_Stream *out = req->out;
	const struct settings *s = stream->settings;
	struct bus *bus = stream->bus;
	/* The frame being sent, and a spare that the next frame is read
	 * into: a read that fails half-way must never touch the held one. */
	struct bus_frame frames[2], *frame = &frames[0], *spare = &frames[1];
	char boundary[MULTIPART_BOUNDARY_LEN + 1];
	struct viewer_pace pace = {
		.min_gap_usec = query->fps > 0 ? (int64_t)(USEC_PER_SEC / query->fps) : 0,
		.repeat_usec = s->repeat_usec,
		.keepalive_usec = s->keepalive_usec,
	};
	struct viewer_input input = { .request_id = req->requestId };
	uint64_t skipped = 0;   /* frames published but not sent before the held one */
	long parts = 0;
	int fresh = 1;          /* the held frame was not sent yet */
	enum viewer_step step = VIEWER_WAIT;

	frame_init(frame);
	frame_init(spare);
	if (viewer_stream_head(out, boundary) < 0 || head_only ||
	    viewer_skip_body(req, s->ingest_usec) < 0)
		goto out;

	stream_want(stream);
	/* A new viewer gets the newest frame at once; with none published
	 * yet it waits, renewing its demand so the producer starts. */
	while (!first_frame(stream, frame, s->keepalive_usec, stopping)) {
		if (ending(stream, stopping) || aborted(req, &input))
			goto out;
		bus_demand(bus);
	}

	for (;;) {
		int last = query->frames && parts + 1 == query->frames;

		if (send_part(req, frame, boundary, last || ending(stream, stopping)) < 0)
			break; /* the client left */
		parts++;
		viewer_sent(&pace, fresh, clock_mono_usec());
		bus_count_delivered(bus, 1, frame->bytes, skipped);
		skipped = 0;
		bus_demand(bus);
		if (last || ending(stream, stopping))
			break;

		/* Wait, in short steps (a shutdown is noticed within one),
		 * until it is time for the next part. */
		for (;;) {
			int64_t now = clock_mono_usec(), wake;
			int newer = bus_latest(bus) > frame->seq;

			if (aborted(req, &input))
				goto out;
			if (ending(stream, stopping))
				break;
			step = viewer_next(&pace, newer, now, &wake);
			if (step != VIEWER_WAIT)
				break;
			if (wake - now > PACE_STEP_USEC)
				wake = now + PACE_STEP_USEC;
			if (newer)
				clock_sleep_usec(wake - now);
			else
				bus_wait_newer(bus, frame->seq, wake - now);
		}
		if (ending(stream, stopping))
			continue; /* the held frame again, with the closing boundary */
		if (step == VIEWER_SEND_NEWER && bus_read_latest(bus, spare) > 0) {
			struct bus_frame *newer = spare;
			uint64_t held = frame->seq;

			/* Clients fix the picture size at the first part: on a
			 * new size, end this response properly (the held frame
			 * once more, then the closing boundary) and let the
			 * client reconnect. */
			if (newer->width != frame->width || newer->height != frame->height) {
				log_info("viewer %s: picture size now %ux%u, ending the stream",
					 stream->cfg->name, newer->width, newer->height);
				send_part(req, frame, boundary, 1);
				break;
			}

			spare = frame;
			frame = newer;
			skipped = frame->seq - held - 1;
			fresh = 1;
		} else {
			fresh = 0;
		}
	}
out:
	free(frames[0].jpeg);
	free(frames[1].jpeg);
}
