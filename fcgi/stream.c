#include "stream.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

static struct stream *stream_open(const struct stream_settings *cfg,
				  const struct settings *settings)
{
	struct stream *st = calloc(1, sizeof(*st));

	if (!st) {
		log_error("stream %s: calloc failed", cfg->name);
		return NULL;
	}
	st->cfg_copy = *cfg;
	st->cfg = &st->cfg_copy;
	st->settings = settings;
	st->bus = bus_open(settings->bus_dir, cfg->name, settings->frame_bytes_max);
	if (!st->bus) {
		free(st);
		return NULL;
	}
	CHECK_ZERO(pthread_mutex_init(&st->producer_lock, NULL));
	atomic_store(&st->refs, 1);
	return st;
}

static void stream_free(struct stream *st)
{
	size_t i;

	producer_stop(st->producer);
	for (i = 0; i < st->input_count; i++)
		stream_release(st->inputs[i].ctx);
	bus_close(st->bus);
	CHECK_ZERO(pthread_mutex_destroy(&st->producer_lock));
	free(st);
}

void stream_release(struct stream *st)
{
	/* acq_rel: the last holder must see every other holder's writes
	 * before it frees the stream. */
	if (atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1)
		stream_free(st);
}

static void stream_retire(struct stream *st)
{
	atomic_store(&st->retired, 1);
	bus_wake_all(st->bus); /* its viewers notice at once */
	stream_release(st);
}

static struct stream *find(const struct stream_set *set, const char *name);

/* source_input.want: a derived stream's producer wants an input's frames. */
static void want_input(void *ctx)
{
	stream_want(ctx);
}

/* Gives a derived stream of set its inputs from set (the others have
 * none).  Called once per stream, when it joins a set. */
static void stream_link(struct stream *st, const struct stream_set *set)
{
	int k;

	for (k = 0; k < st->cfg->input_count; k++) {
		struct stream *in = find(set, st->cfg->inputs[k]);

		if (!in) /* the config's checks make sure every input exists */
			FATAL("stream %s: input %s not in the set", st->cfg->name,
			      st->cfg->inputs[k]);
		else
			st->inputs[st->input_count++] = (struct source_input){
				.name = in->cfg->name,
				.bus = in->bus,
				.want = want_input,
				.ctx = stream_ref(in),
			};
	}
}

int streams_open(struct stream_set *set, const struct settings *settings)
{
	size_t i;

	set->count = 0;
	set->streams = calloc(settings->stream_count ? settings->stream_count : 1,
			      sizeof(*set->streams));
	if (!set->streams) {
		log_error("stream: calloc failed");
		return -1;
	}
	for (i = 0; i < settings->stream_count; i++) {
		set->streams[i] = stream_open(&settings->streams[i], settings);
		if (!set->streams[i]) {
			streams_close(set);
			return -1;
		}
		set->count++;
	}
	for (i = 0; i < set->count; i++)
		stream_link(set->streams[i], set);
	return 0;
}

void streams_close(struct stream_set *set)
{
	size_t i;

	for (i = 0; i < set->count; i++)
		stream_release(set->streams[i]);
	free(set->streams);
	set->streams = NULL;
	set->count = 0;
}

static struct stream *find(const struct stream_set *set, const char *name)
{
	size_t i;

	for (i = 0; i < set->count; i++)
		if (set->streams[i] && strcmp(set->streams[i]->cfg->name, name) == 0)
			return set->streams[i];
	return NULL;
}

struct stream *stream_ref(struct stream *st)
{
	/* Relaxed: the caller's own reference keeps the stream alive; the
	 * release in stream_release orders the frees. */
	atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
	return st;
}

struct stream *streams_get(const struct stream_set *set, const char *name)
{
	struct stream *st = find(set, name);

	return st ? stream_ref(st) : NULL;
}

/* 1 when the stream of this name in old can move to new_settings as it
 * is: its settings are the same and, for a derived stream, so are its
 * inputs', all the way down (a stream made from one that changed is made
 * anew with it). */
static int stream_unchanged(const struct stream_set *old, const struct settings *new_settings,
			    const char *name)
{
	const struct stream_settings *cfg = config_find_stream(new_settings, name);
	const struct stream *same = find(old, name);
	int k;

	if (!cfg || !same || memcmp(same->cfg, cfg, sizeof(*cfg)) != 0)
		return 0;
	/* no cycles (config checks): this ends */
	for (k = 0; k < cfg->input_count; k++)
		if (!stream_unchanged(old, new_settings, cfg->inputs[k]))
			return 0;
	return 1;
}

static int find_name(const struct settings *settings, const char *name)
{
	return config_find_stream(settings, name) != NULL;
}

int streams_reload(struct stream_set *old, struct stream_set *next,
		   const struct settings *settings, const struct settings *new_settings)
{
	size_t i, kept = 0, added = 0, retired = 0;

	next->count = 0;
	next->streams = calloc(new_settings->stream_count ? new_settings->stream_count : 1,
			       sizeof(*next->streams));
	if (!next->streams) {
		log_error("reload: calloc failed");
		return -1;
	}
	/* First open what is new, so that a failure changes nothing. */
	for (i = 0; i < new_settings->stream_count; i++) {
		const struct stream_settings *cfg = &new_settings->streams[i];
		struct stream *same = find(old, cfg->name);

		if (same && stream_unchanged(old, new_settings, cfg->name))
			continue;
		next->streams[i] = stream_open(cfg, settings);
		if (!next->streams[i]) {
			for (; i-- > 0;)
				if (next->streams[i])
					stream_release(next->streams[i]);
			free(next->streams);
			next->streams = NULL;
			return -1;
		}
		added++;
	}
	/* Then move the unchanged ones, and retire the rest. */
	for (i = 0; i < old->count; i++) {
		struct stream *st = old->streams[i];
		size_t k;

		for (k = 0; k < new_settings->stream_count; k++)
			if (!next->streams[k] &&
			    strcmp(new_settings->streams[k].name, st->cfg->name) == 0)
				break;
		if (k < new_settings->stream_count) {
			next->streams[k] = st;
			kept++;
		} else {
			log_info("reload: stream %s %s; its viewers are ended", st->cfg->name,
				 find_name(new_settings, st->cfg->name) ? "changed" : "removed");
			stream_retire(st);
			retired++;
		}
	}
	next->count = new_settings->stream_count;
	for (i = 0; i < next->count; i++)
		if (!next->streams[i]->input_count)
			stream_link(next->streams[i], next);
	free(old->streams);
	old->streams = NULL;
	old->count = 0;
	log_info("reload: %zu stream%s kept, %zu opened, %zu retired", kept,
		 kept == 1 ? "" : "s", added, retired);
	return 0;
}

void stream_want(struct stream *stream)
{
	bus_demand(stream->bus);
	if (stream->cfg->kind == SOURCE_INGEST)
		return; /* fed by POST requests, not by a producer */
	CHECK_ZERO(pthread_mutex_lock(&stream->producer_lock));
	if (!stream->producer && !atomic_load(&stream->retired))
		stream->producer = producer_start(stream->cfg, stream->settings, stream->bus,
						  stream->inputs, stream->input_count);
	CHECK_ZERO(pthread_mutex_unlock(&stream->producer_lock));
}

void streams_wake_all(const struct stream_set *set)
{
	size_t i;

	for (i = 0; i < set->count; i++)
		bus_wake_all(set->streams[i]->bus);
}
