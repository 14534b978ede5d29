#include "viewer.h"

#include "clock.h"
#include "log.h"

#include <string.h>

void viewer_init(struct viewer *v, const struct settings *settings, const struct query *query,
		 const char *boundary)
{
	memset(v, 0, sizeof(*v));
	v->pace.min_gap_usec = query->fps > 0 ? (int64_t)(USEC_PER_SEC / query->fps) : 0;
	v->pace.repeat_usec = settings->repeat_usec;
	v->pace.keepalive_usec = settings->keepalive_usec;
	v->parts_max = query->frames;
	memcpy(v->boundary, boundary, sizeof(v->boundary) - 1);
	if (query->expires_sec) {
		/* The wall clock's exp on the monotonic clock the engine
		 * keeps: a clock step later does not move it. */
		int64_t now = clock_mono_usec();
		int64_t left = query->expires_sec * USEC_PER_SEC - clock_wall_usec();

		v->ends_usec = now + (left > 0 ? left : 0);
		if (v->ends_usec <= 0)
			v->ends_usec = 1;
	}
}

int viewer_ending(const struct viewer *v, int ending, int64_t now_usec)
{
	return ending || (v->ends_usec && now_usec >= v->ends_usec);
}

enum viewer_step viewer_next(const struct viewer *v, uint64_t newest_seq, int ending,
			     int64_t now_usec, int64_t *wake_usec)
{
	ending = viewer_ending(v, ending, now_usec);
	if (v->aborted || v->done)
		return VIEWER_END;
	if (!v->held_seq) {
		/* A new viewer gets the newest frame at once; with none
		 * published yet it waits, renewing its demand so that the
		 * producer starts. */
		if (newest_seq)
			return VIEWER_NEWEST;
		if (ending)
			return VIEWER_END;
		*wake_usec = now_usec + v->pace.keepalive_usec;
		if (v->ends_usec && v->ends_usec < *wake_usec)
			*wake_usec = v->ends_usec;
		return VIEWER_WAIT;
	}
	if (ending)
		return VIEWER_HELD; /* once more, with the closing boundary */
	switch (pace_next(&v->pace, newest_seq > v->held_seq, now_usec, wake_usec)) {
	case PACE_SEND_NEWER:
		return VIEWER_NEWEST;
	case PACE_RESEND:
		return VIEWER_HELD;
	case PACE_WAIT:
		break;
	}
	if (v->ends_usec && v->ends_usec < *wake_usec)
		*wake_usec = v->ends_usec; /* the link's expiry ends it then */
	return VIEWER_WAIT;
}

enum viewer_step viewer_begin(struct viewer *v, enum viewer_step step, int ending,
			      const struct bus_frame *held, const struct bus_frame *newest)
{
	int last = ending || (v->parts_max && v->parts + 1 == v->parts_max);

	if (step == VIEWER_WAIT)
		return step;
	if (step == VIEWER_END) {
		v->last = 1;
		v->done = 1;
		return step;
	}
	if (step == VIEWER_NEWEST && newest) {
		if (held && (newest->width != held->width || newest->height != held->height)) {
			/* Clients fix the picture size at the first part: end
			 * this response properly (the held frame once more,
			 * then the closing boundary); the client reconnects. */
			v->fresh = 0;
			v->last = 1;
			return VIEWER_HELD;
		}
		v->skipped = held ? newest->seq - held->seq - 1 : 0;
		v->held_seq = newest->seq;
		v->fresh = 1;
		v->last = last;
		return VIEWER_NEWEST;
	}
	if (!held)
		return VIEWER_WAIT; /* the first frame could not be read */
	/* VIEWER_HELD, or a newest frame that could not be read: the held
	 * one again. */
	v->fresh = 0;
	v->last = last;
	return VIEWER_HELD;
}

uint64_t viewer_sent(struct viewer *v, int64_t now_usec)
{
	uint64_t skipped = v->skipped;

	v->parts++;
	pace_sent(&v->pace, v->fresh, now_usec);
	v->skipped = 0;
	if (v->last)
		v->done = 1;
	return skipped;
}

int viewer_part_tail(const struct viewer *v, char *tail, size_t size)
{
	int n = multipart_part_tail(tail, size, v->boundary, v->last);

	if (n < 0)
		FATAL("multipart tail overflow");
	return n;
}
