/* producer: the thread that feeds one stream's frame bus from its source.
 *
 * Every responder process starts one per stream on first demand; all but
 * one wait for the bus's producer lock, so exactly one process encodes each
 * frame, and when it dies the next takes over.  A producer with no viewers
 * for idle_usec pauses until one arrives. */
#ifndef MJPEG_PRODUCER_H
#define MJPEG_PRODUCER_H

#include "bus.h"
#include "config.h"
#include "source.h"

struct producer;

/* Starts the thread.  The settings, bus and inputs (a derived stream's,
 * source.h; NULL and 0 for the others) must outlive the producer.  NULL on
 * failure, logged. */
struct producer *producer_start(const struct stream_settings *stream,
				const struct settings *settings, struct bus *bus,
				const struct source_input *inputs, size_t input_count)
	__attribute__((warn_unused_result));

/* Stops the thread (waking it from any wait) and frees it. */
void producer_stop(struct producer *producer);

/* The signal producer_stop uses to interrupt a blocked lock wait; main
 * installs a no-op handler for it without SA_RESTART. */
#define PRODUCER_WAKE_SIGNAL SIGUSR2

#endif
