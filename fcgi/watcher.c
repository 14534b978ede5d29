#include "watcher.h"

#include "bus.h"
#include "clock.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A watcher wakes this often without a publish, to notice that its stream
 * was retired or that its viewers left. */
#define WATCH_STEP_USEC USEC_PER_SEC

struct watcher {
	struct watchers *set;
	struct stream *stream;     /* a reference of its own, released by the
				    * thread as it ends (done): compared, never
				    * dereferenced, after that */
	pthread_t thread;
	int viewers;               /* this process's viewers of the stream: set lock */
	int done;                  /* set by the watcher as it ends: set lock */
	struct watcher *next;
};

struct watchers {
	void (*wake)(void *arg);
	void *arg;
	const _Atomic int *stopping, *closed;
	pthread_mutex_t lock;      /* guards list and each watcher's viewers, done */
	struct watcher *list;
};

struct watchers *watchers_new(void (*wake)(void *arg), void *arg, const _Atomic int *stopping,
			      const _Atomic int *closed)
{
	struct watchers *ws = calloc(1, sizeof(*ws));

	if (!ws) {
		log_error("watcher: calloc failed");
		return NULL;
	}
	ws->wake = wake;
	ws->arg = arg;
	ws->stopping = stopping;
	ws->closed = closed;
	CHECK_ZERO(pthread_mutex_init(&ws->lock, NULL));
	return ws;
}

static int ending(const struct watchers *ws, const struct stream *stream)
{
	return atomic_load(ws->stopping) || atomic_load(ws->closed) ||
	       atomic_load(&stream->retired);
}

static void *watcher_main(void *arg)
{
	struct watcher *wt = arg;
	struct watchers *ws = wt->set;
	struct bus *bus = wt->stream->bus;
	/* Not bus_latest(): a frame published after the writer's last look
	 * and before this thread runs would go unannounced. */
	uint64_t seen = 0;

	for (;;) {
		int end;

		if (bus_wait_newer(bus, seen, WATCH_STEP_USEC)) {
			seen = bus_latest(bus);
			ws->wake(ws->arg);
		}
		end = ending(ws, wt->stream);
		if (end)
			ws->wake(ws->arg); /* the writers end its viewers */
		/* Under the lock, so that watchers_add either sees done and
		 * starts a new watcher, or counted its viewer before we
		 * looked. */
		CHECK_ZERO(pthread_mutex_lock(&ws->lock));
		if (end || wt->viewers == 0) {
			wt->done = 1;
			CHECK_ZERO(pthread_mutex_unlock(&ws->lock));
			break;
		}
		CHECK_ZERO(pthread_mutex_unlock(&ws->lock));
	}
	/* Now, not when reaped: a retired stream's producer holds the
	 * stream's flock until its last reference goes, and its
	 * replacement's producer waits for it.  Outside the lock: freeing a
	 * stream joins its producer thread. */
	stream_release(wt->stream);
	return NULL;
}

/* Joins and frees the watchers that ended.  Call with ws->lock held. */
static void reap_locked(struct watchers *ws)
{
	struct watcher **link = &ws->list;

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

int watchers_add(struct watchers *ws, struct stream *stream)
{
	struct watcher *wt;
	int rc;

	CHECK_ZERO(pthread_mutex_lock(&ws->lock));
	reap_locked(ws);
	for (wt = ws->list; wt; wt = wt->next) {
		if (wt->stream == stream && !wt->done) {
			wt->viewers++;
			CHECK_ZERO(pthread_mutex_unlock(&ws->lock));
			return 0;
		}
	}
	wt = calloc(1, sizeof(*wt));
	if (!wt) {
		log_error("watcher: calloc failed");
		goto fail;
	}
	wt->set = ws;
	wt->stream = stream_ref(stream);
	wt->viewers = 1;
	rc = pthread_create(&wt->thread, NULL, watcher_main, wt);
	if (rc != 0) {
		log_error("watcher: pthread_create(watcher of %s): %s", stream->cfg->name,
			  strerror(rc));
		stream_release(stream);
		free(wt);
		goto fail;
	}
	wt->next = ws->list;
	ws->list = wt;
	CHECK_ZERO(pthread_mutex_unlock(&ws->lock));
	return 0;
fail:
	CHECK_ZERO(pthread_mutex_unlock(&ws->lock));
	return -1;
}

void watchers_remove(struct watchers *ws, const struct stream *stream)
{
	CHECK_ZERO(pthread_mutex_lock(&ws->lock));
	for (struct watcher *wt = ws->list; wt; wt = wt->next) {
		if (wt->stream == stream && !wt->done) {
			wt->viewers--;
			break;
		}
	}
	CHECK_ZERO(pthread_mutex_unlock(&ws->lock));
}

void watchers_free(struct watchers *ws)
{
	if (!ws)
		return;
	CHECK_ZERO(pthread_mutex_lock(&ws->lock));
	while (ws->list) {
		struct watcher *wt = ws->list;

		CHECK_ZERO(pthread_mutex_unlock(&ws->lock));
		CHECK_ZERO(pthread_join(wt->thread, NULL)); /* it released its stream */
		CHECK_ZERO(pthread_mutex_lock(&ws->lock));
		ws->list = wt->next;
		free(wt);
	}
	CHECK_ZERO(pthread_mutex_unlock(&ws->lock));
	CHECK_ZERO(pthread_mutex_destroy(&ws->lock));
	free(ws);
}
