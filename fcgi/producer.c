#include "producer.h"

#include "clock.h"
#include "encode.h"
#include "log.h"
#include "source.h"

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
/* How long producer_stop waits for the thread before signalling again. */
#define PRODUCER_JOIN_STEP_USEC (100 * USEC_PER_MSEC)

static void produce(struct producer *p)
{
	const struct stream_settings *st = p->stream;
	struct source *src = source_open(st, p->settings->frame_bytes_max);
	struct encoder *enc = encode_open();
	int paused = 0;

	if (!src || !enc)
		goto out;
	log_info("producer %s: running %s", st->name, st->source);
	while (!atomic_load(&p->stopping)) {
		struct source_frame frame;
		const unsigned char *jpeg;
		size_t jpeg_bytes;
		int64_t encode_usec = -1, encode_start;
		int wanted, rc;

		/* Clock-paced sources sleep while nobody watches; pipes are
		 * read on so that their writer never blocks, but a frame
		 * nobody watches is not encoded. */
		wanted = bus_wait_demand(p->bus, p->settings->idle_usec,
					 source_is_paced(src) ? PRODUCER_POLL_USEC : 0);
		if (wanted != !paused) {
			paused = !wanted;
			log_info("producer %s: %s", st->name,
				 paused ? "no viewers, paused" : "viewers back, resumed");
		}
		if (!wanted && source_is_paced(src))
			continue;
		rc = source_next(src, &frame, &p->stopping);
		if (rc < 0) {
			log_error("producer %s: source %s ended", st->name, st->source);
			break;
		}
		if (rc == 0 || !wanted)
			continue;
		if (frame.pixels) {
			encode_start = clock_mono_usec();
			if (encode_frame(enc, frame.pixels, frame.format, frame.width, frame.height,
					 st->quality, &jpeg, &jpeg_bytes) < 0)
				continue;
			encode_usec = clock_mono_usec() - encode_start;
		} else {
			jpeg = frame.jpeg;
			jpeg_bytes = frame.jpeg_bytes;
		}
		if (bus_publish(p->bus, jpeg, jpeg_bytes, frame.width, frame.height,
				clock_wall_usec(), encode_usec) < 0)
			continue; /* too large: logged, the previous frame stays */
	}
out:
	encode_close(enc);
	source_close(src);
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
		/* pthread_timedjoin_np takes a CLOCK_REALTIME time */
		deadline = clock_timespec(clock_wall_usec() + PRODUCER_JOIN_STEP_USEC);
		rc = pthread_timedjoin_np(producer->thread, NULL, &deadline);
		if (rc == 0)
			break;
		if (rc != ETIMEDOUT)
			FATAL("pthread_timedjoin_np: %s", strerror(rc));
	}
	free(producer);
}
