#include "fanout_viewer.h"

#include "clock.h"
#include "log.h"
#include "record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* While stopping or retiring, how long a viewer whose socket is full may
 * hold up the end: stall_ms is far longer than a shutdown may take. */
#define STOP_STALL_USEC (500 * USEC_PER_MSEC)

struct fanout_viewer *fanout_viewer_new(int fd, int request_id, struct stream *stream,
					const struct settings *settings,
					const struct query *query, const char *boundary)
{
	struct fanout_viewer *v = calloc(1, sizeof(*v));

	if (!v) {
		log_error("fanout: calloc(viewer) failed");
		return NULL;
	}
	v->fd = fd;
	v->request_id = request_id;
	v->input.request_id = request_id;
	v->stream = stream;
	viewer_init(&v->engine, settings, query, boundary);
	v->writable = 1;
	return v;
}

static void watch_out(struct fanout_viewer *v, const struct fanout_env *env, int on)
{
	struct epoll_event ev = { .events = FANOUT_VIEWER_EVENTS | (on ? EPOLLOUT : 0),
				  .data.ptr = v };

	/* Adding EPOLLOUT reports at once a socket that has room again. */
	if (epoll_ctl(env->epoll_fd, EPOLL_CTL_MOD, v->fd, &ev) < 0)
		FATAL("epoll_ctl(mod fd %d): %s", v->fd, strerror(errno));
	v->want_out = on;
}

/* Sends more of the part in flight.  0 while it goes on, 1 once it is all
 * out, -1 when the viewer is gone. */
static int send_more(struct fanout_viewer *v, const struct fanout_env *env, int64_t now)
{
	struct iovec pieces[3];
	size_t before = v->sent;
	int n = 0, rc;

	if (v->held) {
		pieces[n++] = (struct iovec){ v->held->head, (size_t)v->held->head_len };
		pieces[n++] = (struct iovec){ v->held->frame.jpeg, v->held->frame.bytes };
		pieces[n++] = (struct iovec){ v->tail, (size_t)v->tail_len };
	}
	rc = record_send(v->fd, v->request_id, pieces, n, v->engine.last, &v->sent, MSG_DONTWAIT);
	if (v->sent > before)
		v->progress_usec = now;
	if (rc <= 0) {
		v->writable = 0;
		if (rc == 0 && !v->want_out)
			watch_out(v, env, 1);
		return rc;
	}
	v->busy = 0;
	if (v->want_out)
		watch_out(v, env, 0);
	if (v->held) {
		v->feed->parts++;
		v->feed->bytes += v->held->frame.bytes;
		v->feed->skipped += viewer_sent(&v->engine, now);
	}
	if (!v->held || v->engine.done)
		v->done = 1; /* the end records went out, or the last part */
	return 1;
}

/* Starts sending ref as the next part; NULL: only end the request (with
 * no frame held). */
static void start_part(struct fanout_viewer *v, const struct fanout_env *env,
		       struct frame_ref *ref, int64_t now)
{
	if (ref) {
		if (ref != v->held) {
			frame_cache_hold(ref);
			frame_cache_put(env->cache, v->held);
			v->held = ref;
		}
		v->tail_len = viewer_part_tail(&v->engine, v->tail, sizeof(v->tail));
	}
	v->busy = 1;
	v->sent = 0;
	v->progress_usec = now;
	if (send_more(v, env, now) < 0)
		v->done = 1;
}

void fanout_viewer_event(struct fanout_viewer *v, uint32_t events)
{
	if (events & (EPOLLERR | EPOLLHUP)) {
		v->done = 1; /* the server closed the connection: the client left */
		return;
	}
	/* All of it, edge-triggered; and unread data would make our close
	 * reset the connection. */
	if (events & EPOLLIN) {
		int rc = request_input_read(&v->input, v->fd);

		if (rc < 0)
			v->done = 1;
		else if (rc > 0)
			v->engine.aborted = 1;
	}
	if (events & EPOLLOUT)
		v->writable = 1;
}

/* The part in flight: more of it when the socket has room, or the end of
 * a viewer that takes nothing.  1 while it is still in flight. */
static int step_busy(struct fanout_viewer *v, const struct fanout_env *env, int64_t now)
{
	const struct settings *s = env->settings;

	if (v->writable && send_more(v, env, now) < 0) {
		v->done = 1;
	} else if (v->busy && (v->feed->ending || v->engine.aborted) &&
		   now - v->progress_usec >= STOP_STALL_USEC) {
		v->done = 1; /* no room for its closing part: the stop goes on */
	} else if (v->busy && now - v->progress_usec >= s->stall_usec) {
		log_info("viewer %s: took no bytes for %lld ms (stall_ms), dropped",
			 v->stream->cfg->name, (long long)(s->stall_usec / USEC_PER_MSEC));
		v->done = 1;
	}
	return v->busy && !v->done;
}

void fanout_viewer_step(struct fanout_viewer *v, const struct fanout_env *env, int64_t now)
{
	struct feed *feed = v->feed;
	struct frame_ref *newest = feed->newest;
	enum viewer_step step;
	int64_t at;
	int ending;

	if (v->busy && (step_busy(v, env, now) || v->done))
		return;
	/* the server's end, or the viewer's link expired */
	ending = viewer_ending(&v->engine, feed->ending, now);
	step = viewer_next(&v->engine, newest ? newest->frame.seq : 0, ending, now, &at);
	if (step == VIEWER_WAIT)
		return; /* the watcher, an event or the schedule wakes us */
	step = viewer_begin(&v->engine, step, ending, v->held ? &v->held->frame : NULL,
			    step == VIEWER_NEWEST ? &newest->frame : NULL);
	switch (step) {
	case VIEWER_WAIT:
		break;
	case VIEWER_NEWEST:
		start_part(v, env, newest, now);
		break;
	case VIEWER_HELD:
		start_part(v, env, v->held, now);
		break;
	case VIEWER_END:
		/* No more parts (an abort: the part in flight is out): now
		 * the end records, as FastCGI asks (FCGI_END_REQUEST), and
		 * the close. */
		frame_cache_put(env->cache, v->held);
		v->held = NULL;
		start_part(v, env, NULL, now);
		break;
	}
}

void fanout_viewer_schedule(const struct fanout_viewer *v, const struct fanout_env *env,
			    int64_t now, int64_t *wake_usec)
{
	const struct frame_ref *newest = v->feed->newest;
	int64_t at;

	if (v->done)
		return;
	if (v->busy)
		at = v->progress_usec + (v->feed->ending || v->engine.aborted
						 ? STOP_STALL_USEC
						 : env->settings->stall_usec);
	/* No frame yet: at a keepalive, to renew the demand that wakes a
	 * producer; aborted: its end records are due now. */
	else if (viewer_next(&v->engine, newest ? newest->frame.seq : 0, v->feed->ending, now,
			     &at) != VIEWER_WAIT)
		at = now;
	if (at < *wake_usec)
		*wake_usec = at;
}
