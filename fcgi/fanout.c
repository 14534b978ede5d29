#include "fanout.h"

#include "bus.h"
#include "clock.h"
#include "fanout_viewer.h"
#include "frame_cache.h"
#include "log.h"
#include "watcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Events taken per epoll_wait. */
#define EVENTS_PER_WAIT 64

/* One writer thread: an event loop over its viewers' connections and an
 * eventfd that fanout_add and the watchers write to wake it. */
struct writer {
	struct fanout *fanout;
	pthread_t thread;
	int started;
	int epoll_fd, event_fd;
	pthread_mutex_t inbox_lock;
	struct fanout_viewer *inbox; /* added by fanout_add: inbox_lock */
	_Atomic int load;          /* viewers held or in the inbox */
	/* Owned by the writer thread. */
	struct fanout_viewer **viewers;
	size_t count, capacity;
	struct frame_cache cache;
	struct fanout_env env;     /* epoll_fd, &cache, the settings */
};

struct fanout {
	const struct settings *settings;
	const _Atomic int *stopping;
	_Atomic int *viewer_count;
	_Atomic int closed;        /* fanout_stop was called: no more viewers */
	pthread_mutex_t lock;      /* guards closed's transition against fanout_add */
	struct watchers *watchers; /* a thread per stream in use: wakes every writer */
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

/* The watchers' wake: a publish, or a stream that ends. */
static void wake_all(void *arg)
{
	struct fanout *fo = arg;

	for (int i = 0; i < fo->writer_count; i++)
		wake(&fo->writers[i]);
}

/* --- a writer's viewers (writer thread) --------------------------------- */

static void viewer_free(struct writer *w, struct fanout_viewer *v)
{
	struct fanout *fo = w->fanout;

	/* Out of the epoll set first: close() alone would leave it there if
	 * the socket had another descriptor. */
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, v->fd, NULL) < 0 && errno != ENOENT)
		log_warn("fanout: epoll_ctl(del fd %d): %s", v->fd, strerror(errno));
	close(v->fd);
	frame_cache_put(&w->cache, v->held);
	if (v->feed)
		frame_cache_leave(&w->cache, v->feed);
	atomic_fetch_sub(&v->stream->viewers_here, 1);
	bus_viewer_leave(v->stream->bus);
	atomic_fetch_sub(fo->viewer_count, 1);
	atomic_fetch_sub(&w->load, 1);
	watchers_remove(fo->watchers, v->stream);
	stream_release(v->stream);
	free(v);
}

/* Moves the viewers of the inbox into the writer.  A viewer that cannot be
 * taken on (out of memory) is ended at once. */
static void take_inbox(struct writer *w)
{
	struct fanout_viewer *v, *next;

	CHECK_ZERO(pthread_mutex_lock(&w->inbox_lock));
	v = w->inbox;
	w->inbox = NULL;
	CHECK_ZERO(pthread_mutex_unlock(&w->inbox_lock));
	for (; v; v = next) {
		struct epoll_event ev = { .events = FANOUT_VIEWER_EVENTS, .data.ptr = v };

		next = v->next_new;
		if (w->count == w->capacity) {
			size_t capacity = w->capacity ? 2 * w->capacity : 64;
			struct fanout_viewer **grown = realloc(w->viewers, capacity * sizeof(*grown));

			if (!grown) {
				log_error("fanout: realloc(%zu viewers) failed", capacity);
				viewer_free(w, v);
				continue;
			}
			w->viewers = grown;
			w->capacity = capacity;
		}
		v->feed = frame_cache_join(&w->cache, v->stream);
		if (!v->feed) {
			viewer_free(w, v);
			continue;
		}
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
	struct fanout *fo = w->fanout;
	int64_t now = clock_mono_usec(), wake_usec = INT64_MAX;
	size_t i, kept = 0;

	take_inbox(w);
	frame_cache_refresh(&w->cache, atomic_load(fo->stopping) || atomic_load(&fo->closed));
	for (i = 0; i < w->count; i++) {
		struct fanout_viewer *v = w->viewers[i];

		if (!v->done)
			fanout_viewer_step(v, &w->env, now);
		fanout_viewer_schedule(v, &w->env, now, &wake_usec);
		if (v->done)
			viewer_free(w, v);
		else
			w->viewers[kept++] = v;
	}
	w->count = kept;
	frame_cache_flush(&w->cache);
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
				fanout_viewer_event(events[i].data.ptr, events[i].events);
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
	fo->watchers = watchers_new(wake_all, fo, stopping, &fo->closed);
	if (!fo->watchers)
		goto fail;
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
		w->env = (struct fanout_env){ w->epoll_fd, &w->cache, settings };
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
	struct fanout_viewer *v;
	struct writer *w = &fo->writers[0];

	v = fanout_viewer_new(fd, request_id, stream, fo->settings, query, boundary);
	if (!v)
		return -1;
	for (int i = 1; i < fo->writer_count; i++)
		if (atomic_load(&fo->writers[i].load) < atomic_load(&w->load))
			w = &fo->writers[i];

	/* Under the lock: once fanout_stop closed the fanout, no viewer
	 * reaches an inbox that its writer may no longer look at. */
	CHECK_ZERO(pthread_mutex_lock(&fo->lock));
	if (atomic_load(&fo->closed) || watchers_add(fo->watchers, stream) < 0) {
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
	/* Writers are gone, so every watcher's viewer count is 0: each
	 * ends within a second. */
	watchers_free(fo->watchers);
	for (int i = 0; i < fo->writer_count; i++) {
		struct writer *w = &fo->writers[i];

		frame_cache_free(&w->cache);
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
