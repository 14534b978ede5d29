#include "deadline.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct deadlines {
	pthread_t thread;
	pthread_mutex_t lock;   /* guards the fields below and every armed deadline's link */
	pthread_cond_t changed; /* a deadline was armed, or stop was asked */
	struct deadline *armed; /* unsorted: a handful are armed at a time */
	int expired;            /* deadlines_expire was called: every deadline is due */
	int stopping;
};

/* Shuts every socket whose deadline passed; returns the earliest deadline
 * still to come, or -1.  Call with the lock held. */
static int64_t fire_due_locked(struct deadlines *w, int64_t now_usec)
{
	int64_t next = -1;
	struct deadline *d;

	for (d = w->armed; d; d = d->next) {
		if (atomic_load_explicit(&d->fired, memory_order_relaxed))
			continue;
		if (d->at_usec <= now_usec) {
			if (shutdown(d->fd, SHUT_RD) < 0 && errno != ENOTCONN)
				log_warn("deadline: shutdown(fd %d): %s", d->fd, strerror(errno));
			/* Relaxed: the arming thread reads it after deadline_disarm
			 * took the lock, which orders it. */
			atomic_store_explicit(&d->fired, 1, memory_order_relaxed);
		} else if (next < 0 || d->at_usec < next) {
			next = d->at_usec;
		}
	}
	return next;
}

static void *watchdog_main(void *arg)
{
	struct deadlines *w = arg;

	CHECK_ZERO(pthread_mutex_lock(&w->lock));
	while (!w->stopping) {
		int64_t next = fire_due_locked(w, clock_mono_usec());
		int rc;

		if (next < 0) {
			CHECK_ZERO(pthread_cond_wait(&w->changed, &w->lock));
			continue;
		}
		struct timespec until = clock_timespec(next);

		rc = pthread_cond_timedwait(&w->changed, &w->lock, &until);
		if (rc != 0 && rc != ETIMEDOUT)
			FATAL("pthread_cond_timedwait: %s", strerror(rc));
	}
	CHECK_ZERO(pthread_mutex_unlock(&w->lock));
	return NULL;
}

struct deadlines *deadlines_start(void)
{
	struct deadlines *w = calloc(1, sizeof(*w));
	pthread_condattr_t attr;
	sigset_t all, saved;
	int rc;

	if (!w) {
		log_error("deadline: calloc failed");
		return NULL;
	}
	CHECK_ZERO(pthread_mutex_init(&w->lock, NULL));
	CHECK_ZERO(pthread_condattr_init(&attr));
	CHECK_ZERO(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC));
	CHECK_ZERO(pthread_cond_init(&w->changed, &attr));
	CHECK_ZERO(pthread_condattr_destroy(&attr));
	/* No signal is for this thread. */
	sigfillset(&all);
	CHECK_ZERO(pthread_sigmask(SIG_BLOCK, &all, &saved));
	rc = pthread_create(&w->thread, NULL, watchdog_main, w);
	CHECK_ZERO(pthread_sigmask(SIG_SETMASK, &saved, NULL));
	if (rc != 0) {
		log_error("deadline: pthread_create: %s", strerror(rc));
		CHECK_ZERO(pthread_cond_destroy(&w->changed));
		CHECK_ZERO(pthread_mutex_destroy(&w->lock));
		free(w);
		return NULL;
	}
	return w;
}

void deadlines_stop(struct deadlines *w)
{
	if (!w)
		return;
	CHECK_ZERO(pthread_mutex_lock(&w->lock));
	if (w->armed)
		FATAL("deadlines_stop with a deadline still armed");
	w->stopping = 1;
	CHECK_ZERO(pthread_cond_signal(&w->changed));
	CHECK_ZERO(pthread_mutex_unlock(&w->lock));
	CHECK_ZERO(pthread_join(w->thread, NULL));
	CHECK_ZERO(pthread_cond_destroy(&w->changed));
	CHECK_ZERO(pthread_mutex_destroy(&w->lock));
	free(w);
}

int deadline_arm(struct deadlines *w, struct deadline *d, int fd, int64_t at_usec)
{
	d->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (d->fd < 0) {
		log_error("deadline: dup(fd %d): %s", fd, strerror(errno));
		return -1;
	}
	atomic_store_explicit(&d->fired, 0, memory_order_relaxed);
	CHECK_ZERO(pthread_mutex_lock(&w->lock));
	d->at_usec = w->expired ? 0 : at_usec;
	d->next = w->armed;
	w->armed = d;
	CHECK_ZERO(pthread_cond_signal(&w->changed));
	CHECK_ZERO(pthread_mutex_unlock(&w->lock));
	return 0;
}

void deadlines_expire(struct deadlines *w)
{
	if (!w)
		return;
	CHECK_ZERO(pthread_mutex_lock(&w->lock));
	w->expired = 1;
	fire_due_locked(w, INT64_MAX);
	CHECK_ZERO(pthread_mutex_unlock(&w->lock));
}

int deadline_disarm(struct deadlines *w, struct deadline *d)
{
	struct deadline **link;
	int fired;

	CHECK_ZERO(pthread_mutex_lock(&w->lock));
	for (link = &w->armed; *link && *link != d; link = &(*link)->next)
		;
	if (!*link)
		FATAL("deadline_disarm of a deadline not armed");
	*link = d->next;
	fired = atomic_load_explicit(&d->fired, memory_order_relaxed);
	CHECK_ZERO(pthread_mutex_unlock(&w->lock));
	close(d->fd);
	d->fd = -1;
	return fired;
}
