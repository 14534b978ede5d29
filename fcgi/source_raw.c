/* source_raw: raw:PATH and raw:-, pixel frames of the stream's fixed size
 * and format (rgb24, bgr24, rgba, gray, yuyv) back to back, as written by
 * ffmpeg -f rawvideo, PIL's Image.tobytes() or numpy's tobytes(); read
 * through source_pipe.c and encoded by the producer.
 *
 * Owned by the stream's producer thread (source.h). */
#include "source.h"

#include "encode.h"
#include "log.h"
#include "source_pipe.h"

#include <stdint.h>
#include <stdlib.h>

struct raw_source {
	struct pipe_input in;
	unsigned char *frame;    /* one frame, allocated once */
	size_t frame_bytes, frame_used;
};

static void raw_close(void *state)
{
	struct raw_source *src = state;

	if (!src)
		return;
	pipe_input_close(&src->in);
	free(src->frame);
	free(src);
}

static void *raw_open(const struct stream_settings *stream, size_t frame_bytes_max)
{
	struct raw_source *src = calloc(1, sizeof(*src));
	size_t pixel_bytes = encode_pixel_bytes(stream->format);

	if (!src) {
		log_error("source %s: calloc failed", stream->name);
		return NULL;
	}
	if (stream->width == 0 || stream->height == 0 ||
	    (size_t)stream->width > SIZE_MAX / stream->height / pixel_bytes) {
		log_error("source %s: raw frames of %ux%u cannot be read", stream->name,
			  stream->width, stream->height);
		goto fail;
	}
	src->frame_bytes = (size_t)stream->width * stream->height * pixel_bytes;
	src->frame = malloc(src->frame_bytes);
	if (!src->frame) {
		log_error("source %s: malloc(%zu) for a raw frame failed", stream->name,
			  src->frame_bytes);
		goto fail;
	}
	if (pipe_input_open(&src->in, stream, frame_bytes_max) < 0) {
		raw_close(src);
		return NULL;
	}
	return src;
fail:
	free(src->frame);
	free(src);
	return NULL;
}

/* Reads until a whole frame is in (SOURCE_PACE_OWN: a writer's pace, or a
 * file's tick after it). */
static int raw_next(void *state, struct source_frame *frame, const _Atomic int *stopping)
{
	struct raw_source *src = state;
	const struct stream_settings *st = src->in.stream;
	int rc = pipe_input_begin(&src->in, stopping);

	if (rc <= 0)
		return rc;
	while (src->frame_used < src->frame_bytes) {
		size_t got = 0, dropped;

		switch (pipe_input_read(&src->in, src->frame + src->frame_used,
					src->frame_bytes - src->frame_used, &got, stopping)) {
		case PIPE_DATA:
			src->frame_used += got;
			break;
		case PIPE_EOF:
			dropped = src->frame_used; /* a partial frame */
			src->frame_used = 0;
			return pipe_input_ended(&src->in, dropped, stopping);
		case PIPE_STOP:
			return 0;
		case PIPE_ERROR:
			return -1;
		}
	}
	src->frame_used = 0; /* the next call reads over it */
	if (pipe_input_frame(&src->in, stopping) < 0)
		return 0;
	frame->pixels = src->frame;
	frame->format = st->format;
	frame->width = st->width;
	frame->height = st->height;
	return 1;
}

/* exec: the command stops; a partial frame of it goes. */
static void raw_pause(void *state)
{
	struct raw_source *src = state;

	pipe_input_pause(&src->in);
	if (src->in.type == PIPE_COMMAND)
		src->frame_used = 0;
}

static const struct bus_upstream *raw_upstream(const void *state, uint64_t *changes)
{
	const struct raw_source *src = state;

	return pipe_input_upstream(&src->in, changes);
}

static int raw_is_paced(const void *state)
{
	const struct raw_source *src = state;

	return pipe_input_is_paced(&src->in);
}

const struct source_ops source_raw_ops = {
	.pace = SOURCE_PACE_OWN,
	.open = raw_open,
	.next = raw_next,
	.is_paced = raw_is_paced,
	.close = raw_close,
	.pause = raw_pause,
	.upstream = raw_upstream,
};
