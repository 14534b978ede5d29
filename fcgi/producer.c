#include "producer.h"

#include "clock.h"
#include "encode.h"
#include "log.h"
#include "source.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct producer {
	const struct stream_settings *stream;
	const struct settings *settings;
	struct bus *bus;
	const struct source_input *inputs; /* a derived stream's, else NULL */
	size_t input_count;
	pthread_t thread;
	_Atomic int stopping; /* set by producer_stop, read by the thread */
};

/* How often a paused or waiting producer looks at its stop flag. */
#define PRODUCER_POLL_USEC (500 * USEC_PER_MSEC)
/* An upstream's X-Timestamp is kept as the frame's publish time when it is
 * within this of our own clock: so the delay stays measurable end to end
 * through relays on synchronised machines, while a skewed upstream clock
 * never makes a frame look stale (snapshots) or from the future. */
#define PRODUCER_STAMP_SKEW_MAX_USEC (1000 * USEC_PER_MSEC)
/* How long producer_stop waits for the thread before signalling again. */
#define PRODUCER_JOIN_STEP_USEC (100 * USEC_PER_MSEC)

/* The publish time of a frame: the upstream's stamp when it is believable. */
static int64_t publish_time(const struct source_frame *frame)
{
	int64_t now = clock_wall_usec(), skew = now - frame->timestamp_usec;

	if (frame->timestamp_usec > 0 && skew <= PRODUCER_STAMP_SKEW_MAX_USEC &&
	    skew >= -PRODUCER_STAMP_SKEW_MAX_USEC)
		return frame->timestamp_usec;
	return now;
}

/* Copies the source's upstream state to the bus when it changed. */
static void report_upstream(struct producer *p, const struct source *src, uint64_t *seen)
{
	uint64_t changes = 0;
	const struct bus_upstream *up = source_upstream(src, &changes);

	if (up && changes != *seen) {
		*seen = changes;
		bus_set_upstream(p->bus, up);
	}
}

static void produce(struct producer *p)
{
	const struct stream_settings *st = p->stream;
	struct source *src =
		source_open_inputs(st, p->settings->frame_bytes_max, p->inputs, p->input_count);
	struct encoder *enc = encode_open();
	uint64_t upstream_seen = UINT64_MAX;
	int paused = 0;

	if (!src || !enc)
		goto out;
	report_upstream(p, src, &upstream_seen);
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
			if (paused)
				source_pause(src);
			report_upstream(p, src, &upstream_seen);
		}
		if (!wanted && source_is_paced(src))
			continue;
		rc = source_next(src, &frame, &p->stopping);
		report_upstream(p, src, &upstream_seen);
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
				publish_time(&frame), encode_usec) < 0)
			continue; /* too large: logged, the previous frame stays */
	}
out:
	encode_close(enc);
	if (src) {
		/* The upstream is let go of and shown idle, not "connected"
		 * with nobody holding it. */
		source_pause(src);
		report_upstream(p, src, &upstream_seen);
	}
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
				const struct settings *settings, struct bus *bus,
				const struct source_input *inputs, size_t input_count)
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
	p->inputs = inputs;
	p->input_count = input_count;
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
