#include "fanout.h"

#include "bus.h"
#include "clock.h"
#include "log.h"
#include "multipart.h"
#include "record.h"
#include "viewer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* While stopping or retiring, how long a viewer whose socket is full may
 * hold up the end: stall_ms is far longer than a shutdown may take. */
#define STOP_STALL_USEC (500 * USEC_PER_MSEC)
/* Events taken per epoll_wait. */
#define EVENTS_PER_WAIT 64
/* Unused frame copies a writer keeps for the next frames. */
#define SPARE_FRAMES_KEEP 4
/* A watcher wakes this often without a publish, to notice that its stream
 * was retired or that its viewers left. */
#define WATCH_STEP_USEC USEC_PER_SEC

/* One copy of a published frame, shared by the viewers of one writer.
 * Owned by that writer thread: refs needs no atomics. */
struct frame_ref {
	int refs;
	struct bus_frame frame;
	char head[MULTIPART_HEAD_MAX]; /* the part's header: the same for every viewer */
	int head_len;
	struct frame_ref *next_spare;
};

/* A stream as one writer sees it.  Owned by the writer thread. */
struct feed {
	struct stream *stream;     /* borrowed: each viewer holds a reference */
	struct frame_ref *newest;  /* NULL until a first frame */
	int viewers;
	int ending;                /* stopping, or the stream was retired */
	uint64_t parts, bytes, skipped; /* not yet added to the bus's counters */
	struct feed *next;
};

/* One viewer.  Created by fanout_add, then owned by its writer thread. */
struct viewer {
	int fd, request_id;
	struct stream *stream;     /* a reference, released at the end */
	struct feed *feed;
	struct viewer_pace pace;
	long parts_max;            /* ?frames=N; 0: no end */
	long parts;
	char boundary[MULTIPART_BOUNDARY_LEN + 1];
	struct frame_ref *held;    /* the frame last sent, or being sent */
	int fresh;                 /* held was not sent before the part in flight */
	uint64_t skipped;          /* newer frames not sent before the held one */
	/* The part in flight: held's head and JPEG, then tail. */
	char tail[MULTIPART_BOUNDARY_LEN + 16];
	int tail_len;
	int busy;                  /* a part (or the end) is partly sent */
	int last;                  /* the part in flight ends the request */
	size_t sent;               /* bytes of its records written */
	int writable;              /* no EAGAIN since the last EPOLLOUT */
	int want_out;              /* EPOLLOUT is in the watched events */
	int64_t progress_usec;     /* monotonic: when bytes last went out */
	struct viewer_input input; /* what the server sends: an abort? */
	int aborted;               /* it aborted the request: end after the part in flight */
	int done;                  /* ended: to be freed at the end of the pass */
	struct viewer *next_new;   /* the writer's inbox */
};

struct writer {
	struct fanout *fanout;
	pthread_t thread;
	int started;
	int epoll_fd, event_fd;
	pthread_mutex_t inbox_lock;
	struct viewer *inbox;      /* added by fanout_add: inbox_lock */
	_Atomic int load;          /* viewers held or in the inbox */
	/* Owned by the writer thread. */
	struct viewer **viewers;
	size_t count, capacity;
	struct feed *feeds;
	struct frame_ref *spares;
	int spare_count;
};

/* Waits on one stream's bus and wakes the writers on each publish. */
struct watcher {
	struct fanout *fanout;
	struct stream *stream;     /* a reference of its own, released by the
				    * thread as it ends (done): compared, never
				    * dereferenced, after that */
	pthread_t thread;
	int viewers;               /* this process's viewers of the stream: fanout lock */
	int done;                  /* set by the watcher as it ends: fanout lock */
	struct watcher *next;
};

struct fanout {
	const struct settings *settings;
	const _Atomic int *stopping;
	_Atomic int *viewer_count;
	_Atomic int closed;        /* fanout_stop was called: no more viewers */
	pthread_mutex_t lock;      /* guards closed's transition and watchers */
	struct watcher *watchers;
	int writer_count;
	struct writer writers[FANOUT_WRITERS_MAX];
};

int fanout_writers_default(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (cpus < 1)
		return 1;
	return cpus > FANOUT_WRITERS_MAX ? FANOUT_WRITERS_MAX : (int)cpus;
}

static void wake(struct writer *w)
{
	uint64_t one = 1;

	/* Fails only when the counter is near overflow: it is readable then. */
	if (write(w->event_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("fanout: write(eventfd): %s", strerror(errno));
}

static void wake_all(struct fanout *fo)
{
	for (int i = 0; i < fo->writer_count; i++)
		wake(&fo->writers[i]);
}

/* --- watchers ----------------------------------------------------------- */

static int ending(const struct fanout *fo, const struct stream *stream)
{
	return atomic_load(fo->stopping) || atomic_load(&fo->closed) ||
	       atomic_load(&stream->retired);
}

static void *watcher_main(void *arg)
{
	struct watcher *wt = arg;
	struct fanout *fo = wt->fanout;
	struct bus *bus = wt->stream->bus;
	/* Not bus_latest(): a frame published after the writer's last look
	 * and before this thread runs would go unannounced. */
	uint64_t seen = 0;

	for (;;) {
		int end;

		if (bus_wait_newer(bus, seen, WATCH_STEP_USEC)) {
			seen = bus_latest(bus);
			wake_all(fo);
		}
		end = ending(fo, wt->stream);
		if (end)
			wake_all(fo); /* the writers end its viewers */
		/* Under the lock, so that fanout_add either sees done and
		 * starts a new watcher, or counted its viewer before we
		 * looked. */
		CHECK_ZERO(pthread_mutex_lock(&fo->lock));
		if (end || wt->viewers == 0) {
			wt->done = 1;
			CHECK_ZERO(pthread_mutex_unlock(&fo->lock));
			break;
		}
		CHECK_ZERO(pthread_mutex_unlock(&fo->lock));
	}
	/* Now, not when reaped: a retired stream's producer holds the
	 * stream's flock until its last reference goes, and its
	 * replacement's producer waits for it.  Outside the lock: freeing a
	 * stream joins its producer thread. */
	stream_release(wt->stream);
	return NULL;
}

/* Joins and frees the watchers that ended.  Call with fo->lock held. */
static void reap_watchers_locked(struct fanout *fo)
{
	struct watcher **link = &fo->watchers;

	while (*link) {
		struct watcher *wt = *link;

		if (!wt->done) {
			link = &wt->next;
			continue;
		}
		*link = wt->next;
		CHECK_ZERO(pthread_join(wt->thread, NULL)); /* it released its stream */
		free(wt);
	}
}

/* Counts a viewer of stream, starting its watcher if it has none.  Call
 * with fo->lock held.  -1 (logged) if no watcher could be started. */
static int watch_locked(struct fanout *fo, struct stream *stream)
{
	struct watcher *wt;
	int rc;

	reap_watchers_locked(fo);
	for (wt = fo->watchers; wt; wt = wt->next) {
		if (wt->stream == stream && !wt->done) {
			wt->viewers++;
			return 0;
		}
	}
	wt = calloc(1, sizeof(*wt));
	if (!wt) {
		log_error("fanout: calloc(watcher) failed");
		return -1;
	}
	wt->fanout = fo;
	wt->stream = stream;
	wt->viewers = 1;
	atomic_fetch_add(&stream->refs, 1);
	rc = pthread_create(&wt->thread, NULL, watcher_main, wt);
	if (rc != 0) {
		log_error("fanout: pthread_create(watcher of %s): %s", stream->cfg->name,
			  strerror(rc));
		stream_release(stream);
		free(wt);
		return -1;
	}
	wt->next = fo->watchers;
	fo->watchers = wt;
	return 0;
}

static void unwatch(struct fanout *fo, const struct stream *stream)
{
	CHECK_ZERO(pthread_mutex_lock(&fo->lock));
	for (struct watcher *wt = fo->watchers; wt; wt = wt->next) {
		if (wt->stream == stream && !wt->done) {
			wt->viewers--;
			break;
		}
	}
	CHECK_ZERO(pthread_mutex_unlock(&fo->lock));
}

/* --- frames and feeds (writer thread) ----------------------------------- */

static struct frame_ref *frame_get(struct writer *w)
{
	struct frame_ref *ref = w->spares;

	if (ref) {
		w->spares = ref->next_spare;
		w->spare_count--;
	} else {
		ref = calloc(1, sizeof(*ref));
		if (!ref) {
			log_error("fanout: calloc(frame) failed");
			return NULL;
		}
		ref->frame.growable = 1;
	}
	ref->refs = 1;
	return ref;
}

static void frame_put(struct writer *w, struct frame_ref *ref)
{
	if (!ref || --ref->refs > 0)
		return;
	if (w->spare_count < SPARE_FRAMES_KEEP) {
		ref->next_spare = w->spares;
		w->spares = ref;
		w->spare_count++;
		return;
	}
	free(ref->frame.jpeg);
	free(ref);
}

static struct feed *feed_get(struct writer *w, struct stream *stream)
{
	struct feed *feed;

	for (feed = w->feeds; feed; feed = feed->next)
		if (feed->stream == stream)
			return feed;
	feed = calloc(1, sizeof(*feed));
	if (!feed) {
		log_error("fanout: calloc(feed) failed");
		return NULL;
	}
	feed->stream = stream;
	feed->next = w->feeds;
	w->feeds = feed;
	return feed;
}

/* Adds a feed's counts to its bus: once per pass, not once per part, so
 * that writers do not contend for the shared counters. */
static void feed_flush(struct feed *feed)
{
	if (feed->parts || feed->skipped)
		bus_count_delivered(feed->stream->bus, feed->parts, feed->bytes, feed->skipped);
	feed->parts = feed->bytes = feed->skipped = 0;
}

/* Takes the newest frame of each feed's stream, if newer than its own. */
static void feeds_refresh(struct writer *w)
{
	for (struct feed *feed = w->feeds; feed; feed = feed->next) {
		struct bus *bus = feed->stream->bus;
		struct frame_ref *ref;
		const struct bus_frame *f;

		feed->ending = ending(w->fanout, feed->stream);
		if (feed->newest && bus_latest(bus) <= feed->newest->frame.seq)
			continue;
		if (bus_latest(bus) == 0 || !(ref = frame_get(w)))
			continue;
		if (bus_read_latest(bus, &ref->frame) <= 0) {
			frame_put(w, ref);
			continue;
		}
		f = &ref->frame;
		ref->head_len = multipart_part_head(ref->head, sizeof(ref->head), f->bytes,
						    f->publish_usec);
		if (ref->head_len < 0)
			FATAL("multipart header overflow");
		if (feed->newest && (f->width != feed->newest->frame.width ||
				     f->height != feed->newest->frame.height))
			log_info("viewer %s: picture size now %ux%u, ending %d stream%s",
				 feed->stream->cfg->name, f->width, f->height, feed->viewers,
				 feed->viewers == 1 ? "" : "s");
		frame_put(w, feed->newest);
		feed->newest = ref;
	}
}

/* --- viewers (writer thread) -------------------------------------------- */

static void viewer_free(struct writer *w, struct viewer *v)
{
	struct fanout *fo = w->fanout;
	struct feed *feed = v->feed;

	/* Out of the epoll set first: close() alone would leave it there if
	 * the socket had another descriptor. */
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, v->fd, NULL) < 0 && errno != ENOENT)
		log_warn("fanout: epoll_ctl(del fd %d): %s", v->fd, strerror(errno));
	close(v->fd);
	frame_put(w, v->held);
	if (feed && --feed->viewers == 0) {
		struct feed **link = &w->feeds;

		feed_flush(feed);
		while (*link != feed)
			link = &(*link)->next;
		*link = feed->next;
		frame_put(w, feed->newest);
		free(feed);
	}
	bus_viewer_leave(v->stream->bus);
	atomic_fetch_sub(fo->viewer_count, 1);
	atomic_fetch_sub(&w->load, 1);
	unwatch(fo, v->stream);
	stream_release(v->stream);
	free(v);
}

/* Events a viewer's connection is watched for: departure and input,
 * edge-triggered; EPOLLOUT only while a part waits for room.  (Watching it
 * always would wake the writer each time the web server reads a part.) */
#define VIEWER_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)

static void watch_out(struct writer *w, struct viewer *v, int on)
{
	struct epoll_event ev = { .events = VIEWER_EVENTS | (on ? EPOLLOUT : 0), .data.ptr = v };

	/* Adding EPOLLOUT reports at once a socket that has room again. */
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_MOD, v->fd, &ev) < 0)
		FATAL("epoll_ctl(mod fd %d): %s", v->fd, strerror(errno));
	v->want_out = on;
}

/* Sends more of the part in flight.  0 while it goes on, 1 once it is all
 * out, -1 when the viewer is gone. */
static int send_more(struct writer *w, struct viewer *v, int64_t now)
{
	struct iovec pieces[3];
	size_t before = v->sent;
	int n = 0, rc;

	if (v->held) {
		pieces[n++] = (struct iovec){ v->held->head, (size_t)v->held->head_len };
		pieces[n++] = (struct iovec){ v->held->frame.jpeg, v->held->frame.bytes };
		pieces[n++] = (struct iovec){ v->tail, (size_t)v->tail_len };
	}
	rc = record_send(v->fd, v->request_id, pieces, n, v->last, &v->sent, MSG_DONTWAIT);
	if (v->sent > before)
		v->progress_usec = now;
	if (rc <= 0) {
		v->writable = 0;
		if (rc == 0 && !v->want_out)
			watch_out(w, v, 1);
		return rc;
	}
	v->busy = 0;
	if (v->want_out)
		watch_out(w, v, 0);
	if (v->held) {
		v->parts++;
		viewer_sent(&v->pace, v->fresh, now);
		v->feed->parts++;
		v->feed->bytes += v->held->frame.bytes;
		v->feed->skipped += v->skipped;
		v->skipped = 0;
	}
	return 1;
}

/* Starts sending ref as the next part; NULL: only end the request (with
 * no frame held). */
static void start_part(struct writer *w, struct viewer *v, struct frame_ref *ref, int last,
		       int64_t now)
{
	if (ref) {
		v->fresh = ref != v->held;
		ref->refs++;
		frame_put(w, v->held);
		v->held = ref;
		v->tail_len = multipart_part_tail(v->tail, sizeof(v->tail), v->boundary, last);
		if (v->tail_len < 0)
			FATAL("multipart tail overflow");
	}
	v->busy = 1;
	v->last = last;
	v->sent = 0;
	v->progress_usec = now;
	if (send_more(w, v, now) < 0 || (!v->busy && v->last))
		v->done = 1;
}

static void on_event(struct viewer *v, uint32_t events)
{
	if (events & (EPOLLERR | EPOLLHUP)) {
		v->done = 1; /* the server closed the connection: the client left */
		return;
	}
	/* All of it, edge-triggered; and unread data would make our close
	 * reset the connection. */
	if (events & EPOLLIN) {
		int rc = viewer_input_read(&v->input, v->fd);

		if (rc < 0)
			v->done = 1;
		else if (rc > 0)
			v->aborted = 1;
	}
	if (events & EPOLLOUT)
		v->writable = 1;
}

/* Takes a viewer's next step: more of the part in flight, a new part, or
 * the end. */
static void step(struct writer *w, struct viewer *v, int64_t now)
{
	const struct settings *s = w->fanout->settings;
	struct feed *feed = v->feed;
	struct frame_ref *newest = feed->newest;
	int64_t at;
	int last;

	if (v->busy) {
		if (v->writable && send_more(w, v, now) < 0)
			v->done = 1;
		else if (v->busy && (feed->ending || v->aborted) &&
			 now - v->progress_usec >= STOP_STALL_USEC)
			v->done = 1; /* no room for its closing part: the stop goes on */
		else if (v->busy && now - v->progress_usec >= s->stall_usec) {
			log_info("viewer %s: took no bytes for %lld ms (stall_ms), dropped",
				 v->stream->cfg->name, (long long)(s->stall_usec / USEC_PER_MSEC));
			v->done = 1;
		}
		else if (!v->busy && v->last)
			v->done = 1;
		if (v->busy || v->done)
			return;
	}
	if (v->aborted) {
		/* The part in flight is out: now the end records, as FastCGI
		 * asks (FCGI_END_REQUEST), and the close. */
		frame_put(w, v->held);
		v->held = NULL;
		start_part(w, v, NULL, 1, now);
		return;
	}
	if (!v->held) {
		/* Waiting for a first frame: the watcher wakes us. */
		if (newest)
			start_part(w, v, newest, feed->ending || v->parts_max == 1, now);
		else if (feed->ending)
			start_part(w, v, NULL, 1, now);
		return;
	}
	if (feed->ending) {
		start_part(w, v, v->held, 1, now); /* once more, with the closing boundary */
		return;
	}
	last = v->parts_max && v->parts + 1 == v->parts_max;
	switch (viewer_next(&v->pace, newest && newest->frame.seq > v->held->frame.seq, now, &at)) {
	case VIEWER_WAIT:
		break;
	case VIEWER_SEND_NEWER:
		/* Clients fix the picture size at the first part: on a new
		 * size, end properly and let the client reconnect. */
		if (newest->frame.width != v->held->frame.width ||
		    newest->frame.height != v->held->frame.height) {
			start_part(w, v, v->held, 1, now);
			break;
		}
		v->skipped = newest->frame.seq - v->held->frame.seq - 1;
		start_part(w, v, newest, last, now);
		break;
	case VIEWER_RESEND:
		start_part(w, v, v->held, last, now);
		break;
	}
}

/* Lowers *wake_usec to when a viewer wants its next step at the latest: its
 * stall deadline while a part waits for room, else its next repeat or paced
 * part.  A new frame or a socket event wakes the writer anyway. */
static void schedule(const struct writer *w, const struct viewer *v, int64_t now,
		     int64_t *wake_usec)
{
	const struct frame_ref *newest = v->feed->newest;
	int64_t at;

	if (v->done)
		return;
	if (v->busy)
		at = v->progress_usec + (v->feed->ending || v->aborted
						 ? STOP_STALL_USEC
						 : w->fanout->settings->stall_usec);
	else if (v->aborted)
		at = now; /* its end records are due */
	else if (!v->held) /* waiting for a first frame: renew the demand that wakes a producer */
		at = now + w->fanout->settings->keepalive_usec;
	else if (viewer_next(&v->pace, newest && newest->frame.seq > v->held->frame.seq, now,
			     &at) != VIEWER_WAIT)
		at = now;
	if (at < *wake_usec)
		*wake_usec = at;
}

/* Moves the viewers of the inbox into the writer.  A viewer that cannot be
 * taken on (out of memory) is ended at once. */
static void take_inbox(struct writer *w)
{
	struct viewer *v, *next;

	CHECK_ZERO(pthread_mutex_lock(&w->inbox_lock));
	v = w->inbox;
	w->inbox = NULL;
	CHECK_ZERO(pthread_mutex_unlock(&w->inbox_lock));
	for (; v; v = next) {
		struct epoll_event ev = { .events = VIEWER_EVENTS, .data.ptr = v };

		next = v->next_new;
		if (w->count == w->capacity) {
			size_t capacity = w->capacity ? 2 * w->capacity : 64;
			struct viewer **grown = realloc(w->viewers, capacity * sizeof(*grown));

			if (!grown) {
				log_error("fanout: realloc(%zu viewers) failed", capacity);
				viewer_free(w, v);
				continue;
			}
			w->viewers = grown;
			w->capacity = capacity;
		}
		v->feed = feed_get(w, v->stream);
		if (!v->feed) {
			viewer_free(w, v);
			continue;
		}
		v->feed->viewers++;
		if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, v->fd, &ev) < 0) {
			log_error("fanout: epoll_ctl(add fd %d): %s", v->fd, strerror(errno));
			viewer_free(w, v);
			continue;
		}
		w->viewers[w->count++] = v;
	}
}

static int inbox_empty(struct writer *w)
{
	int empty;

	CHECK_ZERO(pthread_mutex_lock(&w->inbox_lock));
	empty = w->inbox == NULL;
	CHECK_ZERO(pthread_mutex_unlock(&w->inbox_lock));
	return empty;
}

/* One pass over every viewer, after events were taken in.  Returns when
 * the writer wants the next pass at the latest (INT64_MAX: no hurry). */
static int64_t pass(struct writer *w)
{
	int64_t now = clock_mono_usec(), wake_usec = INT64_MAX;
	size_t i, kept = 0;

	take_inbox(w);
	feeds_refresh(w);
	for (i = 0; i < w->count; i++) {
		struct viewer *v = w->viewers[i];

		if (!v->done)
			step(w, v, now);
		schedule(w, v, now, &wake_usec);
		if (v->done)
			viewer_free(w, v);
		else
			w->viewers[kept++] = v;
	}
	w->count = kept;
	for (struct feed *feed = w->feeds; feed; feed = feed->next) {
		feed_flush(feed);
		bus_demand(feed->stream->bus); /* someone watches: keep the producer on */
	}
	return wake_usec;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct fanout *fo = w->fanout;
	struct epoll_event events[EVENTS_PER_WAIT];
	int timeout_ms = -1;

	for (;;) {
		int n = epoll_wait(w->epoll_fd, events, EVENTS_PER_WAIT, timeout_ms);
		int64_t wake_usec;

		if (n < 0) {
			if (errno != EINTR)
				FATAL("epoll_wait: %s", strerror(errno));
			n = 0;
		}
		for (int i = 0; i < n; i++) {
			if (events[i].data.ptr) {
				on_event(events[i].data.ptr, events[i].events);
			} else {
				uint64_t count;

				if (read(w->event_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
					FATAL("read(eventfd): %s", strerror(errno));
			}
		}
		wake_usec = pass(w);
		if (atomic_load(&fo->closed) && w->count == 0 && inbox_empty(w))
			break;
		if (wake_usec == INT64_MAX) {
			timeout_ms = -1;
		} else {
			/* rounded up: waking early would only spin */
			int64_t left = wake_usec - clock_mono_usec();

			timeout_ms = left <= 0 ? 0 : (int)((left + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
		}
	}
	return NULL;
}

/* --- the fanout ----------------------------------------------------------- */

struct fanout *fanout_start(int writers, const struct settings *settings,
			    const _Atomic int *stopping, _Atomic int *viewer_count)
{
	struct fanout *fo;

	if (writers < 1 || writers > FANOUT_WRITERS_MAX)
		FATAL("fanout: %d writers", writers);
	fo = calloc(1, sizeof(*fo));
	if (!fo) {
		log_error("fanout: calloc failed");
		return NULL;
	}
	fo->settings = settings;
	fo->stopping = stopping;
	fo->viewer_count = viewer_count;
	CHECK_ZERO(pthread_mutex_init(&fo->lock, NULL));
	for (int i = 0; i < writers; i++) {
		struct writer *w = &fo->writers[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
		int rc;

		w->fanout = fo;
		w->epoll_fd = w->event_fd = -1;
		CHECK_ZERO(pthread_mutex_init(&w->inbox_lock, NULL));
		fo->writer_count++;
		w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
		w->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->epoll_fd < 0 || w->event_fd < 0 ||
		    epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->event_fd, &ev) < 0) {
			log_error("fanout: epoll/eventfd: %s", strerror(errno));
			goto fail;
		}
		rc = pthread_create(&w->thread, NULL, writer_main, w);
		if (rc != 0) {
			log_error("fanout: pthread_create(writer): %s", strerror(rc));
			goto fail;
		}
		w->started = 1;
	}
	return fo;
fail:
	fanout_stop(fo, USEC_PER_SEC);
	fanout_free(fo);
	return NULL;
}

int fanout_add(struct fanout *fo, int fd, int request_id, struct stream *stream,
	       const struct query *query, const char *boundary)
{
	struct viewer *v = calloc(1, sizeof(*v));
	struct writer *w = &fo->writers[0];

	if (!v) {
		log_error("fanout: calloc(viewer) failed");
		return -1;
	}
	v->fd = fd;
	v->request_id = request_id;
	v->input.request_id = request_id;
	v->stream = stream;
	v->pace.min_gap_usec = query->fps > 0 ? (int64_t)(USEC_PER_SEC / query->fps) : 0;
	v->pace.repeat_usec = fo->settings->repeat_usec;
	v->pace.keepalive_usec = fo->settings->keepalive_usec;
	v->parts_max = query->frames;
	v->writable = 1;
	memcpy(v->boundary, boundary, sizeof(v->boundary) - 1);
	for (int i = 1; i < fo->writer_count; i++)
		if (atomic_load(&fo->writers[i].load) < atomic_load(&w->load))
			w = &fo->writers[i];

	CHECK_ZERO(pthread_mutex_lock(&fo->lock));
	if (atomic_load(&fo->closed) || watch_locked(fo, stream) < 0) {
		CHECK_ZERO(pthread_mutex_unlock(&fo->lock));
		free(v);
		return -1;
	}
	atomic_fetch_add(&w->load, 1);
	CHECK_ZERO(pthread_mutex_lock(&w->inbox_lock));
	v->next_new = w->inbox;
	w->inbox = v;
	CHECK_ZERO(pthread_mutex_unlock(&w->inbox_lock));
	CHECK_ZERO(pthread_mutex_unlock(&fo->lock));
	wake(w);
	return 0;
}

int fanout_stop(struct fanout *fo, int64_t timeout_usec)
{
	int64_t deadline_usec = clock_wall_usec() + timeout_usec;
	struct timespec deadline = clock_timespec(deadline_usec);
	int left = 0;

	CHECK_ZERO(pthread_mutex_lock(&fo->lock));
	atomic_store(&fo->closed, 1);
	CHECK_ZERO(pthread_mutex_unlock(&fo->lock));
	wake_all(fo);
	for (int i = 0; i < fo->writer_count; i++) {
		struct writer *w = &fo->writers[i];

		if (!w->started)
			continue;
		if (pthread_timedjoin_np(w->thread, NULL, &deadline) == 0)
			w->started = 0;
		else
			left++;
	}
	return left;
}

void fanout_free(struct fanout *fo)
{
	if (!fo)
		return;
	for (int i = 0; i < fo->writer_count; i++)
		if (fo->writers[i].started)
			return; /* still running: leave it all to process exit */
	CHECK_ZERO(pthread_mutex_lock(&fo->lock));
	/* Writers are gone, so every watcher's viewer count is 0: each
	 * ends within WATCH_STEP_USEC. */
	while (fo->watchers) {
		struct watcher *wt = fo->watchers;

		CHECK_ZERO(pthread_mutex_unlock(&fo->lock));
		CHECK_ZERO(pthread_join(wt->thread, NULL)); /* it released its stream */
		CHECK_ZERO(pthread_mutex_lock(&fo->lock));
		fo->watchers = wt->next;
		free(wt);
	}
	CHECK_ZERO(pthread_mutex_unlock(&fo->lock));
	for (int i = 0; i < fo->writer_count; i++) {
		struct writer *w = &fo->writers[i];

		while (w->spares) {
			struct frame_ref *ref = w->spares;

			w->spares = ref->next_spare;
			free(ref->frame.jpeg);
			free(ref);
		}
		free(w->viewers);
		if (w->epoll_fd >= 0)
			close(w->epoll_fd);
		if (w->event_fd >= 0)
			close(w->event_fd);
		CHECK_ZERO(pthread_mutex_destroy(&w->inbox_lock));
	}
	CHECK_ZERO(pthread_mutex_destroy(&fo->lock));
	free(fo);
}
