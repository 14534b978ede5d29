#include "source_pipe.h"

#include "clock.h"
#include "encode.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest wait in poll(): bounds how late a stop is noticed. */
#define PIPE_POLL_MSEC 250
/* Bytes read per read() for MJPEG input. */
#define PIPE_CHUNK (64 * 1024)
/* At most one line per this interval for frames that keep going wrong. */
#define COMPLAIN_EVERY_USEC (1000 * USEC_PER_MSEC)

/* Splitter states. */
enum {
	SEEK_SOI,   /* between frames: looking for FF D8 */
	MARKER,     /* inside a frame, expecting FF and a marker */
	LENGTH_HI,  /* the marker's segment length, high byte */
	LENGTH_LO,  /* and low byte */
	SEGMENT,    /* skipping the segment's payload */
	ENTROPY,    /* entropy-coded data after SOS */
};

#define M_SOI 0xD8
#define M_EOI 0xD9
#define M_SOS 0xDA
#define M_TEM 0x01

int mjpeg_splitter_init(struct mjpeg_splitter *s, size_t frame_bytes_max)
{
	memset(s, 0, sizeof(*s));
	s->frame = malloc(frame_bytes_max);
	if (!s->frame) {
		log_error("mjpeg: malloc(%zu) failed", frame_bytes_max);
		return -1;
	}
	s->frame_bytes_max = frame_bytes_max;
	s->state = SEEK_SOI;
	return 0;
}

void mjpeg_splitter_destroy(struct mjpeg_splitter *s)
{
	free(s->frame);
	s->frame = NULL;
}

static void begin_frame(struct mjpeg_splitter *s)
{
	s->frame[0] = 0xFF;
	s->frame[1] = M_SOI;
	s->used = 2;
	s->oversized = 0;
	s->after_ff = 0;
	s->state = MARKER;
}

static void append(struct mjpeg_splitter *s, const unsigned char *p, size_t n)
{
	if (s->oversized)
		return;
	if (s->used + n > s->frame_bytes_max) {
		s->oversized = 1;
		s->dropped++;
		return;
	}
	memcpy(s->frame + s->used, p, n);
	s->used += n;
}

/* Markers with no length field: SOI, EOI, RSTn, TEM. */
static int standalone(unsigned marker)
{
	return marker == M_SOI || marker == M_EOI || (marker >= 0xD0 && marker <= 0xD7) ||
	       marker == M_TEM;
}

/* A marker byte after FF, inside a frame.  1 when it ends the frame. */
static int on_marker(struct mjpeg_splitter *s, unsigned marker)
{
	if (marker == M_SOI) {
		/* A new frame starts before the old one ended: the old one
		 * was cut short.  Start over with the new one. */
		begin_frame(s);
		return 0;
	}
	append(s, (const unsigned char[]){ 0xFF, (unsigned char)marker }, 2);
	if (marker == M_EOI)
		return 1;
	if (standalone(marker)) {
		s->state = MARKER;
	} else {
		s->marker = marker;
		s->state = LENGTH_HI;
	}
	return 0;
}

size_t mjpeg_splitter_feed(struct mjpeg_splitter *s, const unsigned char *data, size_t len,
			   const unsigned char **jpeg, size_t *jpeg_bytes)
{
	size_t i = 0;

	*jpeg = NULL;
	*jpeg_bytes = 0;
	while (i < len) {
		unsigned char b = data[i];
		int complete = 0;

		switch (s->state) {
		case SEEK_SOI:
			if (s->after_ff && b == M_SOI)
				begin_frame(s);
			else
				s->after_ff = b == 0xFF;
			i++;
			break;
		case MARKER:
			i++;
			if (!s->after_ff) {
				if (b == 0xFF) {
					s->after_ff = 1;
				} else {
					/* not a marker where one must be: resync */
					s->state = SEEK_SOI;
				}
			} else if (b != 0xFF) { /* FF FF is fill */
				s->after_ff = 0;
				complete = on_marker(s, b);
			}
			break;
		case LENGTH_HI:
			append(s, &b, 1);
			s->remaining = (size_t)b << 8;
			s->state = LENGTH_LO;
			i++;
			break;
		case LENGTH_LO:
			append(s, &b, 1);
			s->remaining |= b;
			i++;
			if (s->remaining < 2) {
				s->state = SEEK_SOI; /* impossible length: resync */
				s->after_ff = 0;
				break;
			}
			s->remaining -= 2;
			s->state = s->remaining ? SEGMENT : s->marker == M_SOS ? ENTROPY : MARKER;
			break;
		case SEGMENT: {
			/* Payloads are skipped by length, so FF D9 inside an
			 * EXIF thumbnail does not end the frame. */
			size_t n = len - i < s->remaining ? len - i : s->remaining;

			append(s, data + i, n);
			i += n;
			s->remaining -= n;
			if (!s->remaining)
				s->state = s->marker == M_SOS ? ENTROPY : MARKER;
			break;
		}
		case ENTROPY:
			if (!s->after_ff) {
				const unsigned char *ff = memchr(data + i, 0xFF, len - i);
				size_t n = ff ? (size_t)(ff - (data + i)) : len - i;

				append(s, data + i, n);
				i += n;
				if (ff) {
					s->after_ff = 1;
					i++;
				}
				break;
			}
			i++;
			if (b == 0x00 || (b >= 0xD0 && b <= 0xD7)) {
				/* stuffed FF, or a restart marker: still data */
				append(s, (const unsigned char[]){ 0xFF, b }, 2);
				s->after_ff = 0;
			} else if (b != 0xFF) {
				s->after_ff = 0;
				/* EOI, or the next segment (progressive JPEGs
				 * have several scans) */
				complete = on_marker(s, b);
			}
			break;
		}
		if (complete) {
			s->state = SEEK_SOI;
			s->after_ff = 0;
			if (!s->oversized) {
				*jpeg = s->frame;
				*jpeg_bytes = s->used;
				return i;
			}
		}
	}
	return i;
}

struct pipe_source {
	const struct stream_settings *stream;
	char path[PATH_MAX];
	int fd;
	int is_stdin, is_fifo, is_file;
	unsigned char *buf;        /* raw: one frame; mjpeg: read chunk */
	size_t buf_size, buf_used; /* raw: bytes of the frame so far */
	size_t chunk_pos, chunk_len; /* mjpeg: unconsumed part of buf */
	size_t raw_bytes;          /* raw: bytes per frame */
	struct mjpeg_splitter splitter;
	int64_t due_usec;          /* files: when the next frame is due */
	int64_t complained_usec;   /* last rate-limited complaint */
	int waiting_logged;        /* "waiting for a writer" said once */
};

static int open_input(struct pipe_source *src)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer (we could
	 * not notice a stop), and reads go through poll() anyway.  A FIFO
	 * opened afresh reports no hang-up until a writer has come and
	 * gone, so the wait for the next writer does not spin. */
	src->fd = open(src->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (src->fd < 0) {
		log_error("source %s: open(%s): %s", src->stream->name, src->path, strerror(errno));
		return -1;
	}
	return 0;
}

struct pipe_source *pipe_source_open(const struct stream_settings *stream, size_t frame_bytes_max)
{
	struct pipe_source *src = calloc(1, sizeof(*src));
	struct stat st;

	if (!src) {
		log_error("source %s: calloc failed", stream->name);
		return NULL;
	}
	src->stream = stream;
	src->fd = -1;
	src->due_usec = clock_mono_usec();
	snprintf(src->path, sizeof(src->path), "%s", stream->path);
	if (strcmp(stream->path, "-") == 0) {
		src->is_stdin = 1;
		src->fd = STDIN_FILENO;
	} else {
		if (stat(stream->path, &st) < 0) {
			log_error("source %s: stat(%s): %s", stream->name, stream->path,
				  strerror(errno));
			goto fail;
		}
		src->is_fifo = S_ISFIFO(st.st_mode);
		src->is_file = S_ISREG(st.st_mode);
		if (!src->is_fifo && !src->is_file) {
			log_error("source %s: %s is neither a FIFO nor a regular file", stream->name,
				  stream->path);
			goto fail;
		}
		if (open_input(src) < 0)
			goto fail;
	}
	if (stream->kind == SOURCE_RAW) {
		src->raw_bytes = (size_t)stream->width * stream->height *
				 encode_pixel_bytes(stream->format);
		src->buf_size = src->raw_bytes;
	} else {
		src->buf_size = PIPE_CHUNK;
		if (mjpeg_splitter_init(&src->splitter, frame_bytes_max) < 0)
			goto fail;
	}
	src->buf = malloc(src->buf_size);
	if (!src->buf) {
		log_error("source %s: malloc(%zu) failed", stream->name, src->buf_size);
		goto fail;
	}
	return src;
fail:
	pipe_source_close(src);
	return NULL;
}

void pipe_source_close(struct pipe_source *src)
{
	if (!src)
		return;
	if (src->fd >= 0 && !src->is_stdin)
		close(src->fd);
	mjpeg_splitter_destroy(&src->splitter);
	free(src->buf);
	free(src);
}

/* One line per COMPLAIN_EVERY_USEC at most, for input that keeps going
 * wrong the same way. */
static int may_complain(struct pipe_source *src)
{
	int64_t now = clock_mono_usec();

	if (now - src->complained_usec < COMPLAIN_EVERY_USEC)
		return 0;
	src->complained_usec = now;
	return 1;
}

/* The input ended.  A file starts over, a FIFO waits for its next writer,
 * stdin ends the source.  0 to go on, -1 to stop. */
static int on_end_of_input(struct pipe_source *src)
{
	if (src->is_stdin) {
		log_warn("source %s: standard input ended", src->stream->name);
		return -1;
	}
	if (src->is_file) {
		if (lseek(src->fd, 0, SEEK_SET) < 0) {
			log_error("source %s: lseek(%s): %s", src->stream->name, src->path,
				  strerror(errno));
			return -1;
		}
		return 0;
	}
	log_info("source %s: the writer of %s went away; waiting for the next", src->stream->name,
		 src->path);
	close(src->fd);
	src->fd = -1;
	open_input(src); /* on failure pipe_source_next tries again */
	return 0;
}

/* Reads what is there into buf+offset, waiting up to PIPE_POLL_MSEC.
 * Returns bytes read (0: nothing yet or input restarted), -1 to stop. */
static ssize_t read_some(struct pipe_source *src, unsigned char *into, size_t want)
{
	struct pollfd pfd = { .fd = src->fd, .events = POLLIN };
	ssize_t n;
	int rc;

	rc = poll(&pfd, 1, PIPE_POLL_MSEC);
	if (rc < 0 && errno != EINTR) {
		log_error("source %s: poll(%s): %s", src->stream->name, src->path, strerror(errno));
		return -1;
	}
	if (rc <= 0)
		return 0;
	n = read(src->fd, into, want);
	if (n > 0)
		return n;
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		log_error("source %s: read(%s): %s", src->stream->name, src->path, strerror(errno));
		return -1;
	}
	/* end of input: a raw frame cut short is dropped, never encoded */
	if (src->raw_bytes && src->buf_used) {
		log_warn("source %s: input ended inside a frame; %zu of %zu bytes dropped",
			 src->stream->name, src->buf_used, src->raw_bytes);
		src->buf_used = 0;
	}
	return on_end_of_input(src) < 0 ? -1 : 0;
}

/* Files play at the stream's fps; FIFOs and stdin at their writer's. */
static int pace(struct pipe_source *src, const _Atomic int *stopping)
{
	int64_t now = clock_mono_usec(), interval = (int64_t)(USEC_PER_SEC / src->stream->fps);

	if (!src->is_file)
		return 0;
	while (src->due_usec > now) {
		if (atomic_load(stopping))
			return -1;
		clock_sleep_usec(src->due_usec - now < PIPE_POLL_MSEC * USEC_PER_MSEC
					 ? src->due_usec - now
					 : PIPE_POLL_MSEC * USEC_PER_MSEC);
		now = clock_mono_usec();
	}
	src->due_usec += interval;
	if (src->due_usec < now)
		src->due_usec = now + interval;
	return 0;
}

static int next_raw(struct pipe_source *src, struct source_frame *frame,
		    const _Atomic int *stopping)
{
	while (src->buf_used < src->raw_bytes) {
		ssize_t n;

		if (atomic_load(stopping))
			return 0;
		n = read_some(src, src->buf + src->buf_used, src->raw_bytes - src->buf_used);
		if (n < 0)
			return -1;
		src->buf_used += (size_t)n;
	}
	src->buf_used = 0;
	if (pace(src, stopping) < 0)
		return 0;
	frame->pixels = src->buf;
	frame->format = src->stream->format;
	frame->width = src->stream->width;
	frame->height = src->stream->height;
	return 1;
}

static int next_mjpeg(struct pipe_source *src, struct source_frame *frame,
		      const _Atomic int *stopping)
{
	for (;;) {
		const unsigned char *jpeg;
		size_t jpeg_bytes;
		unsigned long dropped = src->splitter.dropped;
		const char *why;

		if (atomic_load(stopping))
			return 0;
		if (src->chunk_pos == src->chunk_len) {
			ssize_t n = read_some(src, src->buf, src->buf_size);

			if (n < 0)
				return -1;
			src->chunk_pos = 0;
			src->chunk_len = (size_t)n;
			continue;
		}
		src->chunk_pos += mjpeg_splitter_feed(&src->splitter, src->buf + src->chunk_pos,
						      src->chunk_len - src->chunk_pos, &jpeg,
						      &jpeg_bytes);
		if (src->splitter.dropped != dropped && may_complain(src))
			log_warn("source %s: a frame over frame_bytes_max (%zu) dropped",
				 src->stream->name, src->splitter.frame_bytes_max);
		if (!jpeg)
			continue;
		if (encode_validate(jpeg, jpeg_bytes, &frame->width, &frame->height, &why) < 0) {
			if (may_complain(src))
				log_warn("source %s: a frame of %zu bytes skipped: %s",
					 src->stream->name, jpeg_bytes, why);
			continue;
		}
		if (pace(src, stopping) < 0)
			return 0;
		frame->jpeg = jpeg;
		frame->jpeg_bytes = jpeg_bytes;
		return 1;
	}
}

int pipe_source_next(struct pipe_source *src, struct source_frame *frame,
		     const _Atomic int *stopping)
{
	if (src->fd < 0 && open_input(src) < 0) {
		/* The FIFO vanished; try again later rather than give up. */
		clock_sleep_usec(PIPE_POLL_MSEC * USEC_PER_MSEC);
		return 0;
	}
	return src->raw_bytes ? next_raw(src, frame, stopping) : next_mjpeg(src, frame, stopping);
}
