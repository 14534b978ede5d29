/* source_mjpeg: mjpeg:PATH and mjpeg:-, concatenated JPEGs (ffmpeg -f
 * mjpeg -, a camera's MJPEG), read through source_pipe.c, cut into frames
 * by mjpeg_splitter.c, checked with encode_validate and passed through.
 * What is dropped (bad or oversized JPEGs, bytes between them) is counted
 * into the input's rate-limited report line.
 *
 * Owned by the stream's producer thread (source.h). */
#include "source.h"

#include "encode.h"
#include "log.h"
#include "mjpeg_splitter.h"
#include "source_pipe.h"

#include <stdlib.h>

/* Bytes asked of each read(). */
#define MJPEG_READ_BYTES ((size_t)64 * 1024)

struct mjpeg_source {
	struct pipe_input in;
	struct mjpeg_splitter splitter;
	unsigned char *chunk;    /* chunk[chunk_pos, chunk_used) read, not yet fed */
	size_t chunk_pos, chunk_used;
	int frame_pending;       /* the splitter gave a frame: feed it again before reading */
	size_t bytes_unframed;   /* paced input: read since the last frame or pause */
};

static void mjpeg_close(void *state)
{
	struct mjpeg_source *src = state;

	if (!src)
		return;
	pipe_input_close(&src->in);
	mjpeg_splitter_destroy(&src->splitter);
	free(src->chunk);
	free(src);
}

static void *mjpeg_open(const struct stream_settings *stream, size_t frame_bytes_max)
{
	struct mjpeg_source *src = calloc(1, sizeof(*src));

	if (!src) {
		log_error("source %s: calloc failed", stream->name);
		return NULL;
	}
	mjpeg_splitter_init(&src->splitter, frame_bytes_max);
	src->chunk = malloc(MJPEG_READ_BYTES);
	if (!src->chunk) {
		log_error("source %s: malloc(%zu) failed", stream->name, MJPEG_READ_BYTES);
		mjpeg_splitter_destroy(&src->splitter);
		free(src);
		return NULL;
	}
	if (pipe_input_open(&src->in, stream, frame_bytes_max) < 0) {
		mjpeg_close(src);
		return NULL;
	}
	return src;
}

/* Takes the splitter's new drops into the input's report. */
static void note_splitter(struct mjpeg_source *src)
{
	struct drops dropped;

	drop_log_splitter(&src->in.drops, &src->splitter, &dropped);
	pipe_input_dropped(&src->in, &dropped, NULL);
}

/* Paced input: bytes without a frame are paced too.  Once more than
 * frame_bytes_max of them (more than any frame holds) came since the last
 * frame, the next read waits for a frame's turn, so a file or device of
 * garbage (mjpeg:/dev/urandom) is read at most frame_bytes_max bytes per
 * 1/fps, not as fast as the disk or the kernel gives them.  -1 when
 * *stopping was set meanwhile. */
static int pace_unframed(struct mjpeg_source *src, size_t got, const _Atomic int *stopping)
{
	src->bytes_unframed += got;
	if (src->bytes_unframed <= src->splitter.frame_bytes_max)
		return 0;
	src->bytes_unframed = 0;
	return pipe_input_tick(&src->in, stopping);
}

/* The input ended: a frame in progress is dropped. */
static int input_ended(struct mjpeg_source *src, const _Atomic int *stopping)
{
	size_t dropped = mjpeg_splitter_reset(&src->splitter);

	src->chunk_pos = src->chunk_used = 0;
	src->frame_pending = 0;
	return pipe_input_ended(&src->in, dropped, stopping);
}

/* Reads and splits until a valid JPEG comes out (SOURCE_PACE_OWN: a
 * writer's pace, or a file's tick after it); a bad one is "nothing this
 * time". */
static int mjpeg_next(void *state, struct source_frame *frame, const _Atomic int *stopping)
{
	struct mjpeg_source *src = state;
	int rc = pipe_input_begin(&src->in, stopping);

	if (rc <= 0)
		return rc;
	for (;;) {
		const unsigned char *jpeg;
		size_t jpeg_bytes, used;
		const char *why;

		if (src->chunk_pos == src->chunk_used && !src->frame_pending) {
			size_t got = 0;

			switch (pipe_input_read(&src->in, src->chunk, MJPEG_READ_BYTES, &got,
						stopping)) {
			case PIPE_DATA:
				src->chunk_pos = 0;
				src->chunk_used = got;
				if (src->in.paced && pace_unframed(src, got, stopping) < 0)
					return 0;
				break;
			case PIPE_EOF:
				return input_ended(src, stopping);
			case PIPE_STOP:
				return 0;
			case PIPE_ERROR:
				return -1;
			}
		}
		used = mjpeg_splitter_feed(&src->splitter, src->chunk + src->chunk_pos,
					   src->chunk_used - src->chunk_pos, &jpeg, &jpeg_bytes);
		src->chunk_pos += used;
		/* A frame may be followed by more kept in the splitter. */
		src->frame_pending = jpeg != NULL;
		note_splitter(src);
		if (!jpeg)
			continue;
		if (encode_validate(jpeg, jpeg_bytes, &frame->width, &frame->height, &why) < 0) {
			const struct drops invalid = { .invalid = 1 };

			pipe_input_dropped(&src->in, &invalid, why);
			return 0;
		}
		src->bytes_unframed = 0;
		if (pipe_input_frame(&src->in, stopping) < 0)
			return 0;
		frame->jpeg = jpeg;
		frame->jpeg_bytes = jpeg_bytes;
		return 1;
	}
}

/* exec: the command stops; what was read of it goes. */
static void mjpeg_pause(void *state)
{
	struct mjpeg_source *src = state;

	pipe_input_pause(&src->in);
	if (src->in.type != PIPE_COMMAND)
		return;
	(void)mjpeg_splitter_reset(&src->splitter);
	src->chunk_pos = src->chunk_used = 0;
	src->frame_pending = 0;
}

static const struct bus_upstream *mjpeg_upstream(const void *state, uint64_t *changes)
{
	const struct mjpeg_source *src = state;

	return pipe_input_upstream(&src->in, changes);
}

static int mjpeg_is_paced(const void *state)
{
	const struct mjpeg_source *src = state;

	return pipe_input_is_paced(&src->in);
}

const struct source_ops source_mjpeg_ops = {
	.pace = SOURCE_PACE_OWN,
	.open = mjpeg_open,
	.next = mjpeg_next,
	.is_paced = mjpeg_is_paced,
	.close = mjpeg_close,
	.pause = mjpeg_pause,
	.upstream = mjpeg_upstream,
};
