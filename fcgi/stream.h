/* stream: the named streams of this process, each a frame bus plus the
 * producer thread started the first time a request wants the stream. */
#ifndef MJPEG_STREAM_H
#define MJPEG_STREAM_H

#include "bus.h"
#include "config.h"
#include "producer.h"

#include <pthread.h>
#include <stdatomic.h>

struct stream {
	const struct stream_settings *cfg;
	const struct settings *settings;
	struct bus *bus;
	pthread_mutex_t producer_lock; /* guards producer */
	struct producer *producer;     /* NULL until first wanted */
};

struct stream_set {
	size_t count;
	struct stream *streams;
};

/* Opens every configured stream's bus.  -1 on failure (logged); the set is
 * then empty. */
int streams_open(struct stream_set *set, const struct settings *settings)
	__attribute__((warn_unused_result));
void streams_close(struct stream_set *set);

struct stream *streams_find(const struct stream_set *set, const char *name);

/* A request wants this stream's frames: keeps its producer running,
 * starting this process's producer thread the first time. */
void stream_want(struct stream *stream);

/* Wakes every viewer waiting for frames (shutdown). */
void streams_wake_all(const struct stream_set *set);

#endif
