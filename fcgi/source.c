#include "source.h"

#include "clock.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* Longest single sleep while waiting for a frame to be due: bounds how late
 * a stop is noticed. */
#define SOURCE_POLL_USEC (200 * USEC_PER_MSEC)

/* Every kind, by the config's source_kind.  A new kind is one file
 * defining its struct source_ops and one row here. */
static const struct source_ops *const source_ops_by_kind[] = {
	[SOURCE_PATTERN_REDBLUE] = &source_pattern_ops,
	[SOURCE_PATTERN_BARS] = &source_pattern_ops,
	[SOURCE_DIR] = &source_dir_ops,
	[SOURCE_RAW] = &source_raw_ops,
	[SOURCE_MJPEG] = &source_mjpeg_ops,
	[SOURCE_INGEST] = NULL, /* frames come from ingest.c, no producer */
	[SOURCE_HTTP] = &source_http_ops,
	[SOURCE_EXEC] = &source_exec_ops,
};

struct source {
	const struct source_ops *ops;  /* the kind's */
	void *state;             /* the kind's, owned */
	struct clock_pace pace;  /* SOURCE_PACE_CLOCK: the stream's fps */
};

struct source *source_open(const struct stream_settings *stream, size_t frame_bytes_max)
{
	const struct source_ops *ops = NULL;
	struct source *src;

	if ((size_t)stream->kind < sizeof(source_ops_by_kind) / sizeof(source_ops_by_kind[0]))
		ops = source_ops_by_kind[stream->kind];
	if (!ops) {
		log_error("source %s: %s streams have no producer", stream->name, stream->source);
		return NULL;
	}
	src = calloc(1, sizeof(*src));
	if (!src) {
		log_error("source %s: calloc failed", stream->name);
		return NULL;
	}
	src->ops = ops;
	clock_pace_init(&src->pace, (int64_t)(USEC_PER_SEC / stream->fps));
	src->state = ops->open(stream, frame_bytes_max);
	if (!src->state) {
		free(src);
		return NULL;
	}
	return src;
}

int source_is_paced(const struct source *src)
{
	return src->ops->is_paced == NULL || src->ops->is_paced(src->state);
}

int source_next(struct source *src, struct source_frame *frame, const _Atomic int *stopping)
{
	memset(frame, 0, sizeof(*frame));
	if (src->ops->pace == SOURCE_PACE_CLOCK &&
	    clock_pace_wait(&src->pace, stopping, SOURCE_POLL_USEC) < 0)
		return 0;
	return src->ops->next(src->state, frame, stopping);
}

void source_pause(struct source *src)
{
	if (src->ops->pause)
		src->ops->pause(src->state);
}

const struct bus_upstream *source_upstream(const struct source *src, uint64_t *changes)
{
	return src->ops->upstream ? src->ops->upstream(src->state, changes) : NULL;
}

void source_close(struct source *src)
{
	if (!src)
		return;
	src->ops->close(src->state);
	free(src);
}
