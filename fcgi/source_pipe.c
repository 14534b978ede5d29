#include "source_pipe.h"

#include "clock.h"
#include "encode.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- mjpeg_splitter ---------------------------------------------------- */

enum splitter_state {
	SPLIT_HUNT,        /* outside a frame: bytes are skipped */
	SPLIT_HUNT_FF,     /* outside a frame, after an FF: D8 starts one */
	SPLIT_MARKER,      /* between segments: an FF is due */
	SPLIT_MARKER_CODE, /* after that FF: the marker's code; another FF is fill */
	SPLIT_LENGTH_HI,   /* segment length, big-endian, counting its own 2 bytes */
	SPLIT_LENGTH_LO,
	SPLIT_SEGMENT,     /* segment_left payload bytes, whatever they hold */
	SPLIT_SCAN,        /* entropy-coded data after SOS */
	SPLIT_SCAN_FF,     /* entropy-coded data, after an FF */
};

/* Why split_run stopped before the end of its bytes. */
enum split_event { SPLIT_MORE, SPLIT_FRAME, SPLIT_BROKEN };

#define JPEG_TEM 0x01
#define JPEG_RST0 0xD0
#define JPEG_RST7 0xD7
#define JPEG_SOI 0xD8
#define JPEG_EOI 0xD9
#define JPEG_SOS 0xDA

/* First allocation of the frame buffer, bytes; doubled as frames need. */
#define SPLITTER_BUF_MIN ((size_t)64 * 1024)

void mjpeg_splitter_init(struct mjpeg_splitter *s, size_t frame_bytes_max)
{
	memset(s, 0, sizeof(*s));
	s->frame_bytes_max = frame_bytes_max;
	s->state = SPLIT_HUNT;
}

void mjpeg_splitter_destroy(struct mjpeg_splitter *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

size_t mjpeg_splitter_reset(struct mjpeg_splitter *s)
{
	size_t dropped = s->replay_end - s->replay_start;

	if (!s->frame_returned)
		dropped += s->frame_bytes;
	s->frame_bytes = 0;
	s->replay_start = s->replay_end = 0;
	s->frame_returned = 0;
	s->discarding = 0;
	s->state = SPLIT_HUNT;
	return dropped;
}

/* The frame outgrew frame_bytes_max (or memory): parse on, keep nothing. */
static void split_discard(struct mjpeg_splitter *s)
{
	s->discarding = 1;
	s->frame_bytes = 0;
	s->frames_oversized++;
}

static int split_grow(struct mjpeg_splitter *s, size_t need)
{
	size_t capacity = s->capacity ? s->capacity : SPLITTER_BUF_MIN;
	unsigned char *grown;

	/* Bytes being parsed again point into buf: it must not move under
	 * them.  They never need more room than they already occupy. */
	if (s->replay_start < s->replay_end)
		FATAL("splitter: buffer grown while parsing kept bytes");
	while (capacity < need)
		capacity = capacity > s->frame_bytes_max / 2 ? s->frame_bytes_max : capacity * 2;
	if (capacity > s->frame_bytes_max)
		capacity = s->frame_bytes_max;
	grown = realloc(s->buf, capacity);
	if (!grown)
		return -1;
	s->buf = grown;
	s->capacity = capacity;
	return 0;
}

/* Appends n bytes to the frame.  p may point into buf at or after
 * frame_bytes (bytes parsed again), hence memmove. */
static void split_store(struct mjpeg_splitter *s, const unsigned char *p, size_t n)
{
	if (s->discarding || n == 0)
		return;
	if (n > s->frame_bytes_max - s->frame_bytes ||
	    (s->frame_bytes + n > s->capacity && split_grow(s, s->frame_bytes + n) < 0)) {
		split_discard(s);
		return;
	}
	memmove(s->buf + s->frame_bytes, p, n);
	s->frame_bytes += n;
}

static void split_start(struct mjpeg_splitter *s)
{
	static const unsigned char soi[2] = { 0xFF, JPEG_SOI };

	s->frame_bytes = 0;
	s->discarding = 0;
	s->seen_sof = 0;
	s->state = SPLIT_MARKER;
	split_store(s, soi, sizeof(soi));
}

/* SOF0-SOF15: C0-CF but for DHT (C4), JPG (C8) and DAC (CC). */
static int is_sof(unsigned char code)
{
	return code >= 0xC0 && code <= 0xCF && code != 0xC4 && code != 0xC8 && code != 0xCC;
}

/* An SOI inside a frame: the frame was cut short, a new one begins. */
static void split_restart(struct mjpeg_splitter *s)
{
	if (!s->discarding)
		s->frames_cut++; /* an oversized frame was counted already */
	split_start(s);
}

/* The byte after an FF inside a frame (state SPLIT_MARKER_CODE or
 * SPLIT_SCAN_FF). */
static enum split_event split_marker(struct mjpeg_splitter *s, unsigned char code)
{
	int in_scan = s->state == SPLIT_SCAN_FF;

	if (code == JPEG_SOI) {
		/* No JPEG holds FFD8 here: this frame was cut short and a new
		 * one begins. */
		split_restart(s);
		return SPLIT_MORE;
	}
	split_store(s, &code, 1);
	if (code == 0xFF)
		return SPLIT_MORE; /* fill byte: the code is still to come */
	if (in_scan && (code == 0x00 || (code >= JPEG_RST0 && code <= JPEG_RST7))) {
		s->state = SPLIT_SCAN; /* stuffed FF, restart marker: data goes on */
		return SPLIT_MORE;
	}
	if (code == JPEG_EOI) {
		int kept = !s->discarding;

		s->discarding = 0;
		s->state = SPLIT_HUNT;
		return kept ? SPLIT_FRAME : SPLIT_MORE;
	}
	if (code == 0x00)
		return SPLIT_BROKEN; /* between segments FF00 stands for nothing */
	if (code == JPEG_TEM || (code >= JPEG_RST0 && code <= JPEG_RST7)) {
		s->state = SPLIT_MARKER; /* markers without a length */
		return SPLIT_MORE;
	}
	if (is_sof(code)) {
		/* One frame header per JPEG (hierarchical JPEGs, which have
		 * more, are not decoded by TurboJPEG anyway).  A second one is
		 * the next frame's, spliced on after a cut whose segment
		 * length swallowed that frame's SOI. */
		if (s->seen_sof)
			return SPLIT_BROKEN;
		s->seen_sof = 1;
	}
	/* Every other marker (APPn, DQT, SOFn, DHT, DRI, COM, SOS, DNL, the
	 * reserved ones) has a length. */
	s->marker = code;
	s->state = SPLIT_LENGTH_HI;
	return SPLIT_MORE;
}

/* Parses data[0, len) (new input, or bytes kept in buf) until it runs out,
 * a frame completes or the frame breaks.  *used gets the bytes parsed. */
static enum split_event split_run(struct mjpeg_splitter *s, const unsigned char *data, size_t len,
				  size_t *used)
{
	enum split_event event = SPLIT_MORE;
	size_t i = 0;

	while (i < len && event == SPLIT_MORE) {
		const unsigned char *ff;
		unsigned char c;
		size_t n;

		/* The states that take runs of bytes, a run at a time. */
		switch (s->state) {
		case SPLIT_HUNT:
			ff = memchr(data + i, 0xFF, len - i);
			n = ff ? (size_t)(ff - (data + i)) : len - i;
			s->bytes_skipped += n;
			i += n;
			if (ff) {
				i++;
				s->state = SPLIT_HUNT_FF;
			}
			continue;
		case SPLIT_SEGMENT:
			n = s->segment_left < len - i ? s->segment_left : len - i;
			split_store(s, data + i, n);
			i += n;
			s->segment_left -= n;
			if (s->segment_left == 0)
				s->state = s->marker == JPEG_SOS ? SPLIT_SCAN : SPLIT_MARKER;
			continue;
		case SPLIT_SCAN:
			ff = memchr(data + i, 0xFF, len - i);
			n = ff ? (size_t)(ff - (data + i)) + 1 : len - i;
			split_store(s, data + i, n);
			i += n;
			if (ff)
				s->state = SPLIT_SCAN_FF;
			continue;
		default:
			break;
		}
		c = data[i++];
		switch (s->state) {
		case SPLIT_HUNT_FF:
			if (c == JPEG_SOI) {
				split_start(s);
			} else if (c == 0xFF) {
				s->bytes_skipped++; /* the FF before this one */
			} else {
				s->bytes_skipped += 2;
				s->state = SPLIT_HUNT;
			}
			break;
		case SPLIT_MARKER:
			/* Kept even when wrong: with the byte before it, it may
			 * be the next frame's SOI, found when parsed again. */
			split_store(s, &c, 1);
			if (c == 0xFF)
				s->state = SPLIT_MARKER_CODE;
			else
				event = SPLIT_BROKEN;
			break;
		case SPLIT_MARKER_CODE:
		case SPLIT_SCAN_FF:
			event = split_marker(s, c);
			break;
		case SPLIT_LENGTH_HI:
			split_store(s, &c, 1);
			s->segment_left = (size_t)c << 8;
			s->state = SPLIT_LENGTH_LO;
			break;
		case SPLIT_LENGTH_LO:
			if (s->segment_left == 0xFF00 && c == JPEG_SOI) {
				/* FFD8 where a length stands is taken for the
				 * next frame's SOI after a frame cut right after
				 * a marker code: read as a length, it would
				 * swallow 64 kB of the frames after it.  The cost:
				 * a real segment of exactly 65496 bytes (rare)
				 * loses its frame. */
				split_restart(s);
				break;
			}
			split_store(s, &c, 1);
			s->segment_left |= c;
			if (s->segment_left < 2) {
				event = SPLIT_BROKEN;
				break;
			}
			s->segment_left -= 2;
			if (s->segment_left > 0)
				s->state = SPLIT_SEGMENT;
			else
				s->state = s->marker == JPEG_SOS ? SPLIT_SCAN : SPLIT_MARKER;
			break;
		default:
			FATAL("splitter: state %d", s->state);
		}
	}
	*used = i;
	return event;
}

/* The frame broke (see the header): drop it, and parse its bytes after its
 * SOI again when the credit allows, ahead of any bytes still kept. */
static void split_resync(struct mjpeg_splitter *s)
{
	size_t again;

	s->state = SPLIT_HUNT;
	if (s->discarding) {
		s->discarding = 0; /* already counted as oversized; nothing kept */
		return;
	}
	s->frames_cut++;
	/* From buf[1]: buf[0] is the FF of the frame's own SOI. */
	again = s->frame_bytes > 0 ? s->frame_bytes - 1 : 0;
	if (again > 0 && again <= s->replay_credit) {
		size_t kept = s->replay_end - s->replay_start;

		memmove(s->buf + s->frame_bytes, s->buf + s->replay_start, kept);
		s->replay_start = 1;
		s->replay_end = s->frame_bytes + kept;
		s->replay_credit -= again;
	}
	s->frame_bytes = 0;
}

size_t mjpeg_splitter_feed(struct mjpeg_splitter *s, const unsigned char *data, size_t len,
			   const unsigned char **jpeg, size_t *jpeg_bytes)
{
	size_t consumed = 0;

	*jpeg = NULL;
	*jpeg_bytes = 0;
	if (s->frame_returned) {
		s->frame_returned = 0;
		s->frame_bytes = 0;
	}
	for (;;) {
		enum split_event event;
		size_t used;

		/* Bytes kept from before come first: they precede data. */
		if (s->replay_start < s->replay_end) {
			event = split_run(s, s->buf + s->replay_start,
					  s->replay_end - s->replay_start, &used);
			s->replay_start += used;
			if (s->replay_start == s->replay_end)
				s->replay_start = s->replay_end = 0;
		} else if (consumed < len) {
			event = split_run(s, data + consumed, len - consumed, &used);
			consumed += used;
			/* Capped, so a long good stream does not pay for an
			 * unbounded amount of parsing again later. */
			s->replay_credit = used < s->frame_bytes_max - s->replay_credit
						   ? s->replay_credit + used
						   : s->frame_bytes_max;
		} else {
			break;
		}
		if (event == SPLIT_FRAME) {
			s->frame_returned = 1;
			s->frames++;
			*jpeg = s->buf;
			*jpeg_bytes = s->frame_bytes;
			break;
		}
		if (event == SPLIT_BROKEN)
			split_resync(s);
	}
	return consumed;
}

/* ---- pipe_source -------------------------------------------------------- */

/* Longest wait in poll() or a sleep before *stopping is looked at again. */
#define PIPE_POLL_MSEC 200
#define PIPE_POLL_USEC (PIPE_POLL_MSEC * USEC_PER_MSEC)
/* mjpeg: bytes asked of each read(). */
#define PIPE_READ_BYTES ((size_t)64 * 1024)
/* Pause after an EOF that brought no byte at all.  Linux never gives one
 * for a FIFO without a writer (see reopen_input); other systems may. */
#define PIPE_EMPTY_EOF_USEC (100 * USEC_PER_MSEC)
/* Pause before reading a file with no complete frame again, or trying a
 * path that could not be opened again. */
#define PIPE_RETRY_USEC USEC_PER_SEC
/* Problems that can recur with every frame are reported at most this
 * often, with counts. */
#define PIPE_LOG_INTERVAL_USEC USEC_PER_SEC
/* Longest "dropped ..." report line, bytes. */
#define PIPE_REPORT_BYTES 512
/* Longest reason kept for a report line, bytes. */
#define PIPE_WHY_BYTES 160

enum pipe_input {
	PIPE_STDIN, /* fd 0: never closed, never reopened */
	PIPE_FIFO,  /* a FIFO: paced by its writer, reopened when the writer goes */
	PIPE_FILE,  /* a regular file or a device: played at fps, reopened at its end */
};

enum pipe_read { PIPE_DATA, PIPE_EOF, PIPE_STOP, PIPE_ERROR };

/* What was dropped since the last report line. */
struct pipe_problems {
	uint64_t invalid;       /* JPEGs encode_validate refused */
	char invalid_why[PIPE_WHY_BYTES]; /* the last one's reason */
	uint64_t oversized, cut, partial, bytes_skipped;
};

struct pipe_source {
	const struct stream_settings *stream; /* settings: read-only, outlive us */
	enum pipe_input input;
	int fd;                  /* -1 after a reopen failed */
	int paced;               /* not a FIFO or socket (stdin included): played at fps */
	int ended;               /* stdin reached its end: every call returns -1 */
	int open_failed;         /* the last open failed, logged: the next failure is not */
	size_t bytes_since_open; /* an EOF with none pauses (no busy loop) */
	size_t bytes_unframed;   /* mjpeg, paced: read since the last frame or pause */
	uint64_t frames_since_open;
	uint64_t passes;         /* a file's ends reached; problems reported in pass 0 only */

	unsigned char *frame;    /* raw: one frame, allocated once */
	size_t frame_bytes, frame_used;

	struct mjpeg_splitter splitter; /* mjpeg */
	unsigned char *chunk;    /* mjpeg: chunk[chunk_pos, chunk_used) read, not yet fed */
	size_t chunk_pos, chunk_used;
	int frame_pending;       /* the splitter gave a frame: feed it again before reading */
	uint64_t seen_oversized, seen_cut, seen_skipped; /* splitter counts taken into problems */

	struct clock_pace pace;  /* a file's frames, at the stream's fps */

	struct pipe_problems problems;
	int64_t report_usec;     /* monotonic time the next report may be logged */
	int64_t writer_log_usec; /* the same for "writer went away" lines */
};

/* The input as log lines name it. */
static const char *input_name(const struct pipe_source *src)
{
	return src->input == PIPE_STDIN ? "stdin" : src->stream->path;
}

static int stopping_set(const _Atomic int *stopping)
{
	/* A plain flag: nothing else is published with it. */
	return atomic_load_explicit(stopping, memory_order_relaxed);
}

/* 1 when a limited line may be logged now (and takes the slot). */
static int log_slot(int64_t *next_usec)
{
	int64_t now = clock_mono_usec();

	if (now < *next_usec)
		return 0;
	*next_usec = now + PIPE_LOG_INTERVAL_USEC;
	return 1;
}

static void report_add(char *line, size_t *used, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Appends ", " and a formatted part to line (PIPE_REPORT_BYTES); a line
 * that fills up is cut short. */
static void report_add(char *line, size_t *used, const char *fmt, ...)
{
	size_t room;
	va_list ap;
	int n;

	if (*used > 0 && *used + 2 < PIPE_REPORT_BYTES) {
		memcpy(line + *used, ", ", 3);
		*used += 2;
	}
	room = PIPE_REPORT_BYTES - *used; /* *used < PIPE_REPORT_BYTES always */
	if (room < 2)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line + *used, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used += (size_t)n < room ? (size_t)n : room - 1;
}

static const char *plural(uint64_t count)
{
	return count == 1 ? "" : "s";
}

/* Logs what was dropped since the last line, when the rate limit allows
 * or now_anyway (closing); otherwise the counts wait for a later call. */
static void report_problems(struct pipe_source *src, int now_anyway)
{
	struct pipe_problems *p = &src->problems;
	char line[PIPE_REPORT_BYTES];
	size_t used = 0;

	if (!p->invalid && !p->oversized && !p->cut && !p->partial && !p->bytes_skipped)
		return;
	if (!log_slot(&src->report_usec) && !now_anyway)
		return;
	line[0] = '\0';
	if (p->invalid)
		report_add(line, &used, "%" PRIu64 " invalid JPEG%s (%s)", p->invalid,
			   plural(p->invalid), p->invalid_why);
	if (p->oversized)
		report_add(line, &used, "%" PRIu64 " JPEG%s over frame_bytes_max (%zu bytes)",
			   p->oversized, plural(p->oversized), src->splitter.frame_bytes_max);
	if (p->cut)
		report_add(line, &used, "%" PRIu64 " JPEG%s cut short or broken", p->cut,
			   plural(p->cut));
	if (p->partial)
		report_add(line, &used, "%" PRIu64 " partial frame%s at the end of the input",
			   p->partial, plural(p->partial));
	if (p->bytes_skipped)
		report_add(line, &used, "%" PRIu64 " byte%s outside any JPEG", p->bytes_skipped,
			   plural(p->bytes_skipped));
	log_warn("source %s: %s: dropped %s", src->stream->name, input_name(src), line);
	memset(p, 0, sizeof(*p));
}

/* A file's problems are the same on every pass: only the first counts. */
static int problems_counted(const struct pipe_source *src)
{
	return !(src->input == PIPE_FILE && src->passes > 0);
}

/* Takes the splitter's new drops into the problems. */
static void note_splitter(struct pipe_source *src)
{
	const struct mjpeg_splitter *s = &src->splitter;

	if (problems_counted(src)) {
		src->problems.oversized += s->frames_oversized - src->seen_oversized;
		src->problems.cut += s->frames_cut - src->seen_cut;
		src->problems.bytes_skipped += s->bytes_skipped - src->seen_skipped;
	}
	src->seen_oversized = s->frames_oversized;
	src->seen_cut = s->frames_cut;
	src->seen_skipped = s->bytes_skipped;
	report_problems(src, 0);
}

/* 1 for what a writer paces: a FIFO or a socket.  Regular files and
 * devices (/dev/zero gives bytes as fast as they are read) are paced here,
 * at the stream's fps. */
static int writer_paced(const struct stat *st)
{
	return S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode);
}

/* Opens the path.  Logs a failure only when the last open succeeded, so a
 * path that stays missing is one line.  The fd, or -1. */
static int open_path(struct pipe_source *src)
{
	const char *path = src->stream->path;
	struct stat st;
	int fd;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer (nor may
	 * reads: poll() waits, so *stopping is seen). */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (!src->open_failed)
			log_error("source %s: open(%s): %s", src->stream->name, path,
				  strerror(errno));
		src->open_failed = 1;
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		if (!src->open_failed)
			log_error("source %s: fstat(%s): %s", src->stream->name, path,
				  strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		if (!src->open_failed)
			log_error("source %s: %s is a directory (dir: reads those)",
				  src->stream->name, path);
		goto fail;
	}
	if (src->open_failed)
		log_info("source %s: %s opened again", src->stream->name, path);
	src->open_failed = 0;
	src->input = writer_paced(&st) ? PIPE_FIFO : PIPE_FILE;
	src->paced = src->input == PIPE_FILE;
	src->bytes_since_open = 0;
	src->frames_since_open = 0;
	return fd;
fail:
	src->open_failed = 1;
	close(fd);
	return -1;
}

/* The new fd is opened before the old one is closed, so a FIFO always has
 * a reader: a new writer neither blocks in open() nor gets EPIPE meanwhile.
 *
 * Why this does not spin while no writer is there: a FIFO read end opened
 * with O_NONBLOCK makes read() return 0 when there is no writer, but on
 * Linux poll() reports POLLHUP only after a writer has come and gone since
 * the read end was opened.  So a freshly reopened FIFO sleeps in poll()
 * until a writer arrives; CPU stays at 0.  Where a system reports POLLHUP
 * at once, the EOF brings no byte and input_ended pauses
 * PIPE_EMPTY_EOF_USEC before reopening.  (O_RDWR would never see an EOF at
 * all, so a writer change could not be told apart from a slow writer.) */
static int reopen_input(struct pipe_source *src)
{
	int fd = open_path(src);

	if (src->fd >= 0)
		close(src->fd);
	src->fd = fd;
	return fd < 0 ? -1 : 0;
}

/* Waits for bytes and reads up to want of them.  Never blocks in read():
 * poll() waits, at most PIPE_POLL_MSEC at a time. */
static enum pipe_read read_some(struct pipe_source *src, unsigned char *buf, size_t want,
				size_t *got, const _Atomic int *stopping)
{
	for (;;) {
		struct pollfd pfd = { .fd = src->fd, .events = POLLIN };
		ssize_t n;
		int ready;

		if (stopping_set(stopping))
			return PIPE_STOP;
		ready = poll(&pfd, 1, PIPE_POLL_MSEC);
		if (ready < 0 && errno != EINTR) {
			log_error("source %s: poll(%s): %s", src->stream->name, input_name(src),
				  strerror(errno));
			return PIPE_ERROR;
		}
		if (ready <= 0)
			continue;
		n = read(src->fd, buf, want);
		if (n > 0) {
			*got = (size_t)n;
			src->bytes_since_open += (size_t)n;
			return PIPE_DATA;
		}
		if (n == 0)
			return PIPE_EOF;
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			continue;
		log_error("source %s: read(%s): %s", src->stream->name, input_name(src),
			  strerror(errno));
		return PIPE_ERROR;
	}
}

/* The input ended.  Drops a partial frame; then stdin ends the source, a
 * file is reopened to loop, a FIFO is reopened to wait for its next
 * writer.  0 (nothing this time) or -1. */
static int input_ended(struct pipe_source *src, const _Atomic int *stopping)
{
	const struct stream_settings *st = src->stream;
	size_t dropped = 0;

	if (st->kind == SOURCE_RAW) {
		dropped = src->frame_used;
		src->frame_used = 0;
	} else {
		dropped = mjpeg_splitter_reset(&src->splitter);
		src->chunk_pos = src->chunk_used = 0;
		src->frame_pending = 0;
	}
	if (dropped > 0 && problems_counted(src))
		src->problems.partial++;
	report_problems(src, 0);
	switch (src->input) {
	case PIPE_STDIN:
		log_warn("source %s: stdin ended; it cannot be reopened", st->name);
		src->ended = 1;
		return -1;
	case PIPE_FIFO:
		if (src->bytes_since_open == 0) {
			if (clock_sleep_unless(PIPE_EMPTY_EOF_USEC, stopping, PIPE_POLL_USEC) < 0)
				return 0;
		} else if (log_slot(&src->writer_log_usec)) {
			log_info("source %s: the writer of %s went away, waiting for a new one",
				 st->name, st->path);
		}
		break;
	case PIPE_FILE:
		if (src->frames_since_open == 0) {
			if (src->passes == 0)
				log_warn("source %s: no complete frame in %s; reading it again "
					 "every second", st->name, st->path);
			src->passes++;
			if (clock_sleep_unless(PIPE_RETRY_USEC, stopping, PIPE_POLL_USEC) < 0)
				return 0;
		} else {
			src->passes++;
		}
		break;
	}
	(void)reopen_input(src); /* a failure is logged; the next call retries */
	return 0;
}

static int next_raw(struct pipe_source *src, struct source_frame *frame,
		    const _Atomic int *stopping)
{
	const struct stream_settings *st = src->stream;

	while (src->frame_used < src->frame_bytes) {
		size_t got = 0;

		switch (read_some(src, src->frame + src->frame_used,
				  src->frame_bytes - src->frame_used, &got, stopping)) {
		case PIPE_DATA:
			src->frame_used += got;
			break;
		case PIPE_EOF:
			return input_ended(src, stopping);
		case PIPE_STOP:
			return 0;
		case PIPE_ERROR:
			return -1;
		}
	}
	src->frame_used = 0; /* the next call reads over it */
	src->frames_since_open++;
	if (src->paced && clock_pace_wait(&src->pace, stopping, PIPE_POLL_USEC) < 0)
		return 0;
	frame->pixels = src->frame;
	frame->format = st->format;
	frame->width = st->width;
	frame->height = st->height;
	return 1;
}

/* mjpeg, paced input: bytes without a frame are paced too.  Once more
 * than frame_bytes_max of them (more than any frame holds) came since the
 * last frame, the next read waits for a frame's turn, so a file or device
 * of garbage (mjpeg:/dev/urandom) is read at most frame_bytes_max bytes
 * per 1/fps, not as fast as the disk or the kernel gives them.  -1 when
 * *stopping was set meanwhile. */
static int pace_unframed(struct pipe_source *src, size_t got, const _Atomic int *stopping)
{
	src->bytes_unframed += got;
	if (src->bytes_unframed <= src->splitter.frame_bytes_max)
		return 0;
	src->bytes_unframed = 0;
	return clock_pace_wait(&src->pace, stopping, PIPE_POLL_USEC);
}

static int next_mjpeg(struct pipe_source *src, struct source_frame *frame,
		      const _Atomic int *stopping)
{
	for (;;) {
		const unsigned char *jpeg;
		size_t jpeg_bytes, used;
		const char *why;

		if (src->chunk_pos == src->chunk_used && !src->frame_pending) {
			size_t got = 0;

			switch (read_some(src, src->chunk, PIPE_READ_BYTES, &got, stopping)) {
			case PIPE_DATA:
				src->chunk_pos = 0;
				src->chunk_used = got;
				if (src->paced && pace_unframed(src, got, stopping) < 0)
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
			if (problems_counted(src)) {
				src->problems.invalid++;
				/* why lasts only until the next validation */
				if (snprintf(src->problems.invalid_why,
					     sizeof(src->problems.invalid_why), "%s", why) < 0)
					src->problems.invalid_why[0] = '\0';
				report_problems(src, 0);
			}
			return 0;
		}
		src->frames_since_open++;
		src->bytes_unframed = 0;
		if (src->paced && clock_pace_wait(&src->pace, stopping, PIPE_POLL_USEC) < 0)
			return 0;
		frame->jpeg = jpeg;
		frame->jpeg_bytes = jpeg_bytes;
		return 1;
	}
}

int pipe_source_next(struct pipe_source *src, struct source_frame *frame,
		     const _Atomic int *stopping)
{
	memset(frame, 0, sizeof(*frame));
	if (src->ended)
		return -1;
	report_problems(src, 0); /* counts held back by the rate limit */
	if (src->fd < 0 && reopen_input(src) < 0) {
		(void)clock_sleep_unless(PIPE_RETRY_USEC, stopping, PIPE_POLL_USEC);
		return 0;
	}
	if (src->stream->kind == SOURCE_RAW)
		return next_raw(src, frame, stopping);
	return next_mjpeg(src, frame, stopping);
}

/* stdin as input.  -1 (logged) when it cannot be read from. */
static int open_stdin(struct pipe_source *src)
{
	struct stat st;
	int listening = 0;
	socklen_t len = sizeof(listening);

	if (fstat(STDIN_FILENO, &st) < 0) {
		log_error("source %s: fstat(stdin): %s", src->stream->name, strerror(errno));
		return -1;
	}
	/* Under spawn-fcgi and friends fd 0 is the FastCGI socket: reading
	 * frames from it would steal connections. */
	if (S_ISSOCK(st.st_mode) &&
	    getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 &&
	    listening) {
		log_error("source %s: stdin is a listening socket (the FastCGI socket?), "
			  "not a stream of frames", src->stream->name);
		return -1;
	}
	src->input = PIPE_STDIN;
	src->fd = STDIN_FILENO;
	src->paced = !writer_paced(&st); /* mjpeg-fcgi < file: no writer paces it */
	return 0;
}

struct pipe_source *pipe_source_open(const struct stream_settings *stream, size_t frame_bytes_max)
{
	struct pipe_source *src = calloc(1, sizeof(*src));

	if (!src) {
		log_error("source %s: calloc failed", stream->name);
		return NULL;
	}
	src->stream = stream;
	src->fd = -1;
	mjpeg_splitter_init(&src->splitter, frame_bytes_max);
	clock_pace_init(&src->pace, stream->fps > 0 ? (int64_t)(USEC_PER_SEC / stream->fps) : 0);
	switch (stream->kind) {
	case SOURCE_RAW: {
		size_t pixel_bytes = encode_pixel_bytes(stream->format);

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
		break;
	}
	case SOURCE_MJPEG:
		src->chunk = malloc(PIPE_READ_BYTES);
		if (!src->chunk) {
			log_error("source %s: malloc(%zu) failed", stream->name, PIPE_READ_BYTES);
			goto fail;
		}
		break;
	default:
		log_error("source %s: %s is not a raw: or mjpeg: source", stream->name,
			  stream->source);
		goto fail;
	}
	if (strcmp(stream->path, "-") == 0) {
		if (open_stdin(src) < 0)
			goto fail;
	} else {
		/* A path missing at start (the FIFO is made by the writer, later)
		 * is one log line; pipe_source_next keeps trying to open it. */
		(void)reopen_input(src);
	}
	return src;
fail:
	pipe_source_close(src);
	return NULL;
}

int pipe_source_is_paced(const struct pipe_source *src)
{
	return src->paced;
}

void pipe_source_close(struct pipe_source *src)
{
	if (!src)
		return;
	report_problems(src, 1);
	if (src->fd >= 0 && src->input != PIPE_STDIN)
		close(src->fd);
	mjpeg_splitter_destroy(&src->splitter);
	free(src->chunk);
	free(src->frame);
	free(src);
}
