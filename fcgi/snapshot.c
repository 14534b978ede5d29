#include "snapshot.h"

#include "clock.h"
#include "log.h"
#include "multipart.h"
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest single wait for a first frame: a snapshot's thread looks up
 * this often (the same step as a blocking viewer's). */
#define WAIT_STEP_USEC (100 * USEC_PER_MSEC)

/* The buffer starts empty and grows to what the stream's frames need. */
static void frame_init(struct bus_frame *frame)
{
	memset(frame, 0, sizeof(*frame));
	frame->growable = 1;
}

/* Reads the newest frame, waiting up to timeout_usec for a first one.
 * 1: a frame is held; 0: none. */
static int first_frame(struct stream *stream, struct bus_frame *frame, int64_t timeout_usec)
{
	int64_t deadline = clock_mono_usec() + timeout_usec;
	int rc;

	while ((rc = bus_read_latest(stream->bus, frame)) == 0) {
		int64_t left = deadline - clock_mono_usec();

		if (left <= 0)
			return 0;
		bus_wait_newer(stream->bus, 0, left < WAIT_STEP_USEC ? left : WAIT_STEP_USEC);
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

void snapshot_serve(FCGX_Stream *out, struct stream *stream, int head_only,
		     _Atomic int *waiting)
{
	struct bus_frame frame;
	char head[MULTIPART_HEAD_MAX];
	int n, has_frame, counted = 0;

	frame_init(&frame);
	stream_want(stream);
	has_frame = first_frame(stream, &frame, 0);
	if ((!has_frame || snapshot_stale(stream, &frame)) && waiting) {
		/* Relaxed: a count, ordering nothing else. */
		if (atomic_fetch_add_explicit(waiting, 1, memory_order_relaxed) >=
		    SNAPSHOT_WAITING_MAX) {
			atomic_fetch_sub_explicit(waiting, 1, memory_order_relaxed);
			reply_error(out, 503, "Retry-After: 1\r\n",
				    "stream '%s' has no current frame, and %d snapshots already "
				    "wait for one", stream->cfg->name, SNAPSHOT_WAITING_MAX);
			goto out;
		}
		counted = 1;
	}
	if (!has_frame && !first_frame(stream, &frame, stream->settings->first_frame_usec)) {
		reply_error(out, 503, "Retry-After: 1\r\n", "stream '%s' has no frame yet",
			    stream->cfg->name);
		goto out;
	}
	if (snapshot_stale(stream, &frame) &&
	    bus_wait_newer(stream->bus, frame.seq, stream->settings->first_frame_usec) &&
	    bus_read_latest(stream->bus, &frame) < 0) {
		reply_error(out, 500, NULL, "could not read the frame");
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
