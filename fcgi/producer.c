#include "producer.h"

#include "clock.h"
#include "encode.h"
#include "log.h"
#include "source_pattern.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct producer {
	const struct stream_settings *stream;
	const struct settings *settings;
	struct bus *bus;
	pthread_t thread;
	_Atomic int stopping; /* set by producer_stop, read by the thread */
};

/* How often a paused or waiting producer looks at its stop flag. */
#define PRODUCER_POLL_USEC (500 * USEC_PER_MSEC)

static void sleep_until(int64_t mono_usec)
{
	struct timespec ts = {
		.tv_sec = mono_usec / USEC_PER_SEC,
		.tv_nsec = (long)(mono_usec % USEC_PER_SEC) * 1000,
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void produce(struct producer *p)
{
	const struct stream_settings *st = p->stream;
	size_t rgb_bytes = (size_t)st->width * st->height * 3;
	int64_t interval = (int64_t)(USEC_PER_SEC / st->fps);
	int64_t start = clock_mono_usec(), next = start;
	unsigned char *rgb = malloc(rgb_bytes);
	struct encoder *enc = encode_open();
	uint64_t frame_number = 0;
	int paused = 0;

	if (!rgb || !enc) {
		log_error("producer %s: out of memory for a %ux%u frame", st->name, st->width,
			  st->height);
		goto out;
	}
	log_info("producer %s: running %s, %ux%u at %g fps", st->name, st->source, st->width,
		 st->height, st->fps);
	while (!atomic_load(&p->stopping)) {
		const unsigned char *jpeg;
		size_t jpeg_bytes;
		int64_t now, encode_start;

		if (!bus_wait_demand(p->bus, p->settings->idle_usec, PRODUCER_POLL_USEC)) {
			if (!paused)
				log_info("producer %s: no viewers, paused", st->name);
			paused = 1;
			continue;
		}
		if (paused) {
			log_info("producer %s: viewers back, resumed", st->name);
			paused = 0;
			next = clock_mono_usec();
		}
		now = clock_mono_usec();
		if (st->kind == SOURCE_PATTERN_REDBLUE)
			pattern_redblue(rgb, st->width, st->height, now - start);
		else
			pattern_bars(rgb, st->width, st->height, frame_number, clock_wall_usec());
		encode_start = clock_mono_usec();
		if (encode_frame(enc, rgb, PIXEL_RGB24, st->width, st->height, st->quality, &jpeg,
				 &jpeg_bytes) == 0 &&
		    bus_publish(p->bus, jpeg, jpeg_bytes, st->width, st->height, clock_wall_usec(),
				clock_mono_usec() - encode_start) == 0)
			frame_number++;

		/* A fixed schedule, not "interval after the last frame", so the
		 * rate holds; after a stall (machine suspended, debugger) skip
		 * ahead instead of bursting. */
		next += interval;
		now = clock_mono_usec();
		if (next < now - interval)
			next = now;
		while (next > now && !atomic_load(&p->stopping)) {
			sleep_until(next < now + PRODUCER_POLL_USEC ? next : now + PRODUCER_POLL_USEC);
			now = clock_mono_usec();
		}
	}
out:
	encode_close(enc);
	free(rgb);
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;

	/* Blocks here while another process produces this stream. */
	if (bus_lock_producer(p->bus, &p->stopping) == 0 && !atomic_load(&p->stopping))
		produce(p);
	return NULL;
}

struct producer *producer_start(const struct stream_settings *stream,
				const struct settings *settings, struct bus *bus)
{
	struct producer *p = calloc(1, sizeof(*p));
	int rc;

	if (!p) {
		log_error("producer %s: calloc failed", stream->name);
		return NULL;
	}
	p->stream = stream;
	p->settings = settings;
	p->bus = bus;
	rc = pthread_create(&p->thread, NULL, producer_main, p);
	if (rc != 0) {
		log_error("producer %s: pthread_create: %s", stream->name, strerror(rc));
		free(p);
		return NULL;
	}
	return p;
}

void producer_stop(struct producer *producer)
{
	if (!producer)
		return;
	atomic_store(&producer->stopping, 1);
	/* The signal interrupts flock() in bus_lock_producer; it is sent
	 * again until the thread ends, in case the first one arrived just
	 * before the thread entered flock().  Every other wait in the thread
	 * polls the flag at least every PRODUCER_POLL_USEC. */
	for (;;) {
		struct timespec deadline;
		int rc;

		pthread_kill(producer->thread, PRODUCER_WAKE_SIGNAL);
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += 100 * 1000 * 1000;
		if (deadline.tv_nsec >= 1000 * 1000 * 1000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000 * 1000 * 1000;
		}
		rc = pthread_timedjoin_np(producer->thread, NULL, &deadline);
		if (rc == 0)
			break;
		if (rc != ETIMEDOUT)
			FATAL("pthread_timedjoin_np: %s", strerror(rc));
	}
	free(producer);
}
