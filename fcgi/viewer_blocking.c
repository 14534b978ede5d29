#include "viewer_blocking.h"

#include "clock.h"
#include "log.h"
#include "multipart.h"
#include "record.h"
#include "reply.h"
#include "request_input.h"
#include "viewer.h"

#include <stdlib.h>
#include <string.h>

/* Longest single sleep while waiting for a viewer's next part: bounds how
 * late a shutdown or an abort is noticed. */
#define WAIT_STEP_USEC (100 * USEC_PER_MSEC)

/* 0, or -1 when the client is gone (the write or flush failed). */
static int send_part(const struct viewer_conn *conn, const struct viewer *v,
		     const struct bus_frame *frame)
{
	char head[MULTIPART_HEAD_MAX], tail[MULTIPART_HEAD_MAX];
	int head_len = multipart_part_head(head, sizeof(head), frame->bytes, frame->publish_usec);
	int tail_len = viewer_part_tail(v, tail, sizeof(tail));
	FCGX_Stream *out = conn->out;

	if (head_len < 0)
		FATAL("multipart header overflow");
	/* The next boundary goes out in the same write as the frame: clients
	 * that wait for it to show a part need no extra round. */
	if (conn->fd >= 0) {
		/* FastCGI: one writev per part, straight from the frame
		 * buffer, once libfcgi's own buffer is out. */
		struct iovec pieces[] = {
			{ head, (size_t)head_len },
			{ frame->jpeg, frame->bytes },
			{ tail, (size_t)tail_len },
		};

		if ((out && FCGX_FFlush(out) < 0) ||
		    record_write_stdout(conn->fd, conn->request_id, pieces, 3) < 0)
			return -1;
		return 0;
	}
	if (FCGX_PutStr(head, head_len, out) < 0 ||
	    FCGX_PutStr((const char *)frame->jpeg, (int)frame->bytes, out) < 0 ||
	    FCGX_PutStr(tail, tail_len, out) < 0 || FCGX_FFlush(out) < 0)
		return -1;
	return 0;
}

/* The response must end: the server stops, or a reload retired the
 * stream. */
static int ending(const struct stream *stream, const _Atomic int *stopping)
{
	return atomic_load(stopping) || atomic_load(&stream->retired);
}

/* The server aborted the request, or its connection failed: the response
 * ends here, without a closing boundary. */
static int aborted(const struct viewer_conn *conn, struct request_input *input)
{
	return conn->fd >= 0 && request_input_read(input, conn->fd) != 0;
}

int viewer_blocking_run(const struct viewer_conn *conn, struct stream *stream,
			const struct query *query, const char *boundary,
			const _Atomic int *stopping)
{
	const struct settings *s = stream->settings;
	struct bus *bus = stream->bus;
	/* The frame held (sent last), and a spare that the next frame is
	 * read into: a read that fails half-way must never touch the held
	 * one. */
	struct bus_frame frames[2], *held = NULL, *spare = &frames[1];
	struct request_input input = { .request_id = conn->request_id };
	struct viewer v;
	int64_t demanded_usec = clock_mono_usec();
	int rc = 0;

	memset(frames, 0, sizeof(frames));
	frames[0].growable = frames[1].growable = 1;
	viewer_init(&v, s, query, boundary);
	stream_want(stream);
	while (!v.done) {
		int64_t now = clock_mono_usec(), wake = now;
		uint64_t newest_seq = bus_latest(bus);
		int end = viewer_ending(&v, ending(stream, stopping), now);
		enum viewer_step step;
		struct bus_frame *newest = NULL;

		if (aborted(conn, &input))
			v.aborted = 1;
		step = viewer_next(&v, newest_seq, end, now, &wake);
		if (step == VIEWER_NEWEST) {
			newest = bus_read_latest(bus, spare) > 0 ? spare : NULL;
			step = viewer_begin(&v, step, end, held, newest);
		} else if (step != VIEWER_WAIT) {
			step = viewer_begin(&v, step, end, held, NULL);
		}
		if (step == VIEWER_END)
			break;
		if (step == VIEWER_WAIT) {
			uint64_t held_seq = held ? held->seq : 0;

			/* In short steps: a shutdown or an abort is noticed
			 * within one.  (wake is now when a first frame could
			 * not be read.) */
			if (wake <= now || wake - now > WAIT_STEP_USEC)
				wake = now + WAIT_STEP_USEC;
			if (newest_seq > held_seq)
				clock_sleep_usec(wake - now); /* only ?fps holds it back */
			else
				bus_wait_newer(bus, held_seq, wake - now);
			if (!held && clock_mono_usec() - demanded_usec >= s->keepalive_usec) {
				/* still no first frame: renew the demand that
				 * wakes a producer */
				bus_demand(bus);
				demanded_usec = clock_mono_usec();
			}
			continue;
		}
		if (step == VIEWER_NEWEST) {
			spare = held ? held : &frames[0];
			held = newest;
		} else if (newest) {
			log_info("viewer %s: picture size now %ux%u, ending the stream",
				 stream->cfg->name, newest->width, newest->height);
		}
		if (send_part(conn, &v, held) < 0) {
			rc = -1; /* the client left */
			break;
		}
		bus_count_delivered(bus, 1, held->bytes, viewer_sent(&v, clock_mono_usec()));
		bus_demand(bus);
	}
	free(frames[0].jpeg);
	free(frames[1].jpeg);
	return rc;
}

void viewer_blocking_serve(FCGX_Request *req, struct stream *stream, const struct query *query,
			   int head_only, const _Atomic int *stopping)
{
	char boundary[MULTIPART_BOUNDARY_LEN + 1];
	struct viewer_conn conn = { .out = req->out, .fd = req->ipcFd, .request_id = req->requestId };

	if (reply_stream_head(req->out, boundary) < 0 || head_only ||
	    request_skip_body(req, stream->settings->ingest_usec) < 0)
		return;
	/* A write that failed (SO_SNDTIMEO: stall_ms) may have cut a record:
	 * the connection is not at a record boundary, so it is not kept. */
	if (viewer_blocking_run(&conn, stream, query, boundary, stopping) < 0)
		req->keepConnection = 0;
}
