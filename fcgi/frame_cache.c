#include "frame_cache.h"

#include "log.h"

#include <stdlib.h>

/* Unused frame copies a writer keeps for the next frames. */
#define SPARE_FRAMES_KEEP 4

static struct frame_ref *frame_get(struct frame_cache *cache)
{
	struct frame_ref *ref = cache->spares;

	if (ref) {
		cache->spares = ref->next_spare;
		cache->spare_count--;
	} else {
		ref = calloc(1, sizeof(*ref));
		if (!ref) {
			log_error("fanout: calloc(frame) failed");
			return NULL;
		}
		ref->frame.growable = 1;
	}
	ref->refs = 1;
	return ref;
}

struct frame_ref *frame_cache_hold(struct frame_ref *ref)
{
	ref->refs++;
	return ref;
}

void frame_cache_put(struct frame_cache *cache, struct frame_ref *ref)
{
	if (!ref || --ref->refs > 0)
		return;
	if (cache->spare_count < SPARE_FRAMES_KEEP) {
		ref->next_spare = cache->spares;
		cache->spares = ref;
		cache->spare_count++;
		return;
	}
	free(ref->frame.jpeg);
	free(ref);
}

struct feed *frame_cache_join(struct frame_cache *cache, struct stream *stream)
{
	struct feed *feed;

	for (feed = cache->feeds; feed; feed = feed->next)
		if (feed->stream == stream)
			break;
	if (!feed) {
		feed = calloc(1, sizeof(*feed));
		if (!feed) {
			log_error("fanout: calloc(feed) failed");
			return NULL;
		}
		feed->stream = stream;
		feed->next = cache->feeds;
		cache->feeds = feed;
	}
	feed->viewers++;
	return feed;
}

static void feed_flush(struct feed *feed)
{
	if (feed->parts || feed->skipped)
		bus_count_delivered(feed->stream->bus, feed->parts, feed->bytes, feed->skipped);
	feed->parts = feed->bytes = feed->skipped = 0;
}

void frame_cache_leave(struct frame_cache *cache, struct feed *feed)
{
	struct feed **link = &cache->feeds;

	if (--feed->viewers > 0)
		return;
	feed_flush(feed);
	while (*link != feed)
		link = &(*link)->next;
	*link = feed->next;
	frame_cache_put(cache, feed->newest);
	free(feed);
}

void frame_cache_refresh(struct frame_cache *cache, int closing)
{
	for (struct feed *feed = cache->feeds; feed; feed = feed->next) {
		struct bus *bus = feed->stream->bus;
		struct frame_ref *ref;
		const struct bus_frame *f;

		feed->ending = closing || atomic_load(&feed->stream->retired);
		if (feed->newest && bus_latest(bus) <= feed->newest->frame.seq)
			continue;
		if (bus_latest(bus) == 0 || !(ref = frame_get(cache)))
			continue;
		if (bus_read_latest(bus, &ref->frame) <= 0) {
			frame_cache_put(cache, ref);
			continue;
		}
		f = &ref->frame;
		ref->head_len = multipart_part_head(ref->head, sizeof(ref->head), f->bytes,
						    f->publish_usec);
		if (ref->head_len < 0)
			FATAL("multipart header overflow");
		if (feed->newest && (f->width != feed->newest->frame.width ||
				     f->height != feed->newest->frame.height))
			log_info("viewer %s: picture size now %ux%u, ending %d stream%s",
				 feed->stream->cfg->name, f->width, f->height, feed->viewers,
				 feed->viewers == 1 ? "" : "s");
		frame_cache_put(cache, feed->newest);
		feed->newest = ref;
	}
}

void frame_cache_flush(struct frame_cache *cache)
{
	for (struct feed *feed = cache->feeds; feed; feed = feed->next) {
		feed_flush(feed);
		bus_demand(feed->stream->bus);
	}
}

void frame_cache_free(struct frame_cache *cache)
{
	while (cache->spares) {
		struct frame_ref *ref = cache->spares;

		cache->spares = ref->next_spare;
		free(ref->frame.jpeg);
		free(ref);
	}
	cache->spare_count = 0;
}
