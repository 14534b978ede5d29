#include "stream.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

int streams_open(struct stream_set *set, const struct settings *settings)
{
	size_t i;

	set->streams = calloc(settings->stream_count, sizeof(*set->streams));
	set->count = 0;
	if (!set->streams) {
		log_error("stream: calloc failed");
		return -1;
	}
	for (i = 0; i < settings->stream_count; i++) {
		struct stream *st = &set->streams[i];

		st->cfg = &settings->streams[i];
		st->settings = settings;
		st->bus = bus_open(settings->bus_dir, st->cfg->name, settings->frame_bytes_max);
		if (!st->bus) {
			streams_close(set);
			return -1;
		}
		CHECK_ZERO(pthread_mutex_init(&st->producer_lock, NULL));
		set->count++;
	}
	return 0;
}

void streams_close(struct stream_set *set)
{
	size_t i;

	for (i = 0; i < set->count; i++) {
		producer_stop(set->streams[i].producer);
		bus_close(set->streams[i].bus);
		CHECK_ZERO(pthread_mutex_destroy(&set->streams[i].producer_lock));
	}
	free(set->streams);
	set->streams = NULL;
	set->count = 0;
}

struct stream *streams_find(const struct stream_set *set, const char *name)
{
	size_t i;

	for (i = 0; i < set->count; i++)
		if (strcmp(set->streams[i].cfg->name, name) == 0)
			return &set->streams[i];
	return NULL;
}

void stream_want(struct stream *stream)
{
	bus_demand(stream->bus);
	if (stream->cfg->kind == SOURCE_INGEST)
		return; /* fed by POST requests, not by a producer */
	CHECK_ZERO(pthread_mutex_lock(&stream->producer_lock));
	if (!stream->producer)
		stream->producer = producer_start(stream->cfg, stream->settings, stream->bus);
	CHECK_ZERO(pthread_mutex_unlock(&stream->producer_lock));
}

void streams_wake_all(const struct stream_set *set)
{
	size_t i;

	for (i = 0; i < set->count; i++)
		bus_wake_all(set->streams[i].bus);
}
