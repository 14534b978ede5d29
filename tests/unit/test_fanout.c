/* Unit tests for the viewer engine (fcgi/viewer.c) through both of its
 * sinks: the writer threads of fcgi/fanout.c (non-blocking records, many
 * viewers per thread) and fcgi/viewer_blocking.c (blocking writes in a
 * thread per viewer, as for plain CGI and kept connections).
 *
 * Each viewer is a socket pair, admitted as the server admits one: the
 * sink writes FastCGI records to one end, as to a web server's
 * connection, and a reader thread here (a "client") reads the other end,
 * parses the records and the multipart parts inside them, and notes when
 * each part arrived.  Each test gets a fresh bus_dir holding one ingest
 * stream (no producer thread: the test publishes), and either a fanout of
 * two writers or, for the blocking sink, a thread per viewer that runs
 * viewer_blocking_run and then ends the request as FCGX_Finish_r does.
 * The tests of what the engine decides run on both; those of the fanout's
 * own mechanism (stalls, fanout_stop, fanout_add, watcher threads, a peer
 * that closes while nothing is sent) on the fanout only.  Every wait has
 * a deadline: a test fails, it never hangs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus.h"
#include "clock.h"
#include "config.h"
#include "fanout.h"
#include "http.h"
#include "log.h"
#include "multipart.h"
#include "record.h"
#include "stream.h"
#include "testutil.h"
#include "viewer_blocking.h"

#include <errno.h>
#include <fastcgi.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define STREAM "cam"
#define WRITERS 2
#define WIDTH 640
#define HEIGHT 480
/* The fixture's timers come in two sets (struct timers, below).  Most
 * tests are about what must happen at once: a new frame, a new viewer, an
 * end.  A defect there (a missed wake) shows as the thing happening only
 * at the viewer's next timer, so there the repeat and keepalive are far
 * away (FAR_*): what is prompt and what waited for a timer then differ by
 * seconds, not by milliseconds, and PROMPT_USEC can leave a slow or busy
 * machine plenty of room.  The tests of the repeat and keepalive
 * themselves take short ones, far apart from each other. */
#define FAR_REPEAT_USEC (5 * USEC_PER_SEC)
#define FAR_KEEPALIVE_USEC (10 * USEC_PER_SEC)
#define REPEAT_USEC (200 * USEC_PER_MSEC)
#define KEEPALIVE_USEC (1000 * USEC_PER_MSEC)
/* A viewer that takes no bytes is dropped after this.  A viewer beside it
 * must get five large frames meanwhile (a few ms; 1 s is ~20 times what
 * an ASan build on a busy machine takes). */
#define STALL_USEC USEC_PER_SEC
#define FRAME_BYTES_MAX (1u << 20)
#define SMALL_FRAME 1000
/* Far more than the small socket buffers of a slow viewer. */
#define LARGE_FRAME (200 * 1000)
#define SLOW_SOCKET_BUFFER 4096

/* A new frame or an end reaches a viewer "at once": within this.  It
 * takes a few ms (tens on a busy machine under ASan); the defect, waiting
 * for the next timer, takes FAR_REPEAT_USEC (5 s): 4 s of margin. */
#define PROMPT_USEC USEC_PER_SEC
/* The longest wait for anything a test expects: only a failing test waits
 * this long. */
#define WAIT_USEC (10 * USEC_PER_SEC)
/* How much earlier than due a timed event may be seen: clock granularity.
 * (A timer never fires early; the reader, though, may note one arrival
 * late and the next on time, which is what the windows of
 * test_repeat_then_keepalive allow for.) */
#define EARLY_SLACK_USEC (10 * USEC_PER_MSEC)
/* How late a stalled viewer may be dropped.  Correct: the writer wakes at
 * the stall deadline, ms late; the defect, a stall noticed only at the
 * keepalive (FAR_KEEPALIVE_USEC, 10 s) or never, is 8 s later than this. */
#define STALL_LATE_USEC USEC_PER_SEC
/* Each reader thread looks at its quit flag this often. */
#define READER_STEP_MS 50
#define READER_STACK (256 * 1024)
#define READ_CHUNK 65536

#define TAGS_MAX 1024
#define CLIENTS_MAX 256
#define MANY_VIEWERS 200
#define WATCHER_ROUNDS 100

/* ---- the web server's end of a viewer's connection ---------------------- */

struct part {
	uint32_t tag;            /* the frame's first four bytes: which publish */
	size_t bytes;            /* JPEG length */
	int64_t timestamp_usec;  /* X-Timestamp */
	int64_t arrival_usec;    /* monotonic: when its last byte was read */
	int last;                /* followed by the closing boundary */
};

struct client {
	int fd;                  /* ours; the fanout holds the other end */
	int request_id;
	char boundary[MULTIPART_BOUNDARY_LEN + 1];
	pthread_t thread;
	int reading;             /* the reader thread was started */
	_Atomic int quit;        /* set by the test thread: the reader ends */
	unsigned char *chunk;    /* READ_CHUNK bytes: the reader's */
	/* Set by the reader thread, read by the test thread: lock.  cond is
	 * signalled on every change. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct blob wire;        /* bytes read, not yet a whole record */
	struct blob body;        /* FCGI_STDOUT content, not yet a whole part */
	struct part *parts;
	size_t part_count, part_cap;
	int closing_seen;        /* the closing boundary came */
	int stdout_ended;        /* the empty FCGI_STDOUT record came */
	int request_ended;       /* FCGI_END_REQUEST came, complete */
	int eof;                 /* read returned 0 */
	int read_errno;          /* read failed with this */
	size_t wire_total;       /* bytes read in all */
	char error[256];         /* the first thing wrong with the bytes; "" if none */
};

static void client_fail(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Notes the first error; the reader parses nothing after it. */
static void client_fail(struct client *c, const char *fmt, ...)
{
	va_list ap;

	if (c->error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
}

/* A frame whose bytes tell which it is: the tag in its first four bytes
 * (little-endian), then byte i is (i * 7 + tag). */
static void frame_fill(unsigned char *jpeg, size_t bytes, uint32_t tag)
{
	for (size_t i = 0; i < 4; i++)
		jpeg[i] = (unsigned char)(tag >> (8 * i));
	for (size_t i = 4; i < bytes; i++)
		jpeg[i] = (unsigned char)(i * 7 + tag);
}

/* The tag of a frame made by frame_fill; -1 if its bytes are not such a
 * frame. */
static int64_t frame_tag(const unsigned char *jpeg, size_t bytes)
{
	uint32_t tag = 0;

	if (bytes < 4)
		return -1;
	for (size_t i = 0; i < 4; i++)
		tag |= (uint32_t)jpeg[i] << (8 * i);
	for (size_t i = 4; i < bytes; i++)
		if (jpeg[i] != (unsigned char)(i * 7 + tag))
			return -1;
	return tag;
}

/* Takes the whole parts out of c->body.  Each is exactly: the three
 * header lines, the JPEG, then the next boundary or the closing one. */
static void parse_parts(struct client *c, int64_t now)
{
	size_t at = 0;

	while (!c->error[0] && at < c->body.len) {
		const unsigned char *p = c->body.data + at;
		size_t left = c->body.len - at, head_len, need;
		const unsigned char *blank;
		char head[MULTIPART_HEAD_MAX + 1], expect[MULTIPART_HEAD_MAX];
		unsigned long long bytes;
		long long sec, usec;
		struct part part;
		int64_t tag;

		if (c->closing_seen) {
			client_fail(c, "%zu bytes after the closing boundary", left);
			break;
		}
		blank = memmem(p, left, "\r\n\r\n", 4);
		if (!blank) {
			if (left > MULTIPART_HEAD_MAX)
				client_fail(c, "no part header in %zu bytes", left);
			break;
		}
		head_len = (size_t)(blank - p) + 4;
		if (head_len > MULTIPART_HEAD_MAX) {
			client_fail(c, "part header of %zu bytes", head_len);
			break;
		}
		memcpy(head, p, head_len);
		head[head_len] = '\0';
		if (sscanf(head, "Content-Type: image/jpeg\r\nContent-Length: %llu\r\n"
				 "X-Timestamp: %lld.%lld\r\n", &bytes, &sec, &usec) != 3) {
			client_fail(c, "bad part header: %s", head);
			break;
		}
		/* Formatted back, it must be the very same bytes: no other
		 * header, no other spelling of the numbers. */
		snprintf(expect, sizeof(expect),
			 "Content-Type: image/jpeg\r\nContent-Length: %llu\r\n"
			 "X-Timestamp: %lld.%06lld\r\n\r\n",
			 bytes, sec, usec);
		if (strcmp(head, expect) != 0 || usec >= USEC_PER_SEC) {
			client_fail(c, "bad part header: %s", head);
			break;
		}
		/* the JPEG, then "\r\n--BOUNDARY" and "\r\n" or "--\r\n" */
		need = head_len + bytes + 4 + MULTIPART_BOUNDARY_LEN + 2;
		if (left < need)
			break;
		if (memcmp(p + head_len + bytes, "\r\n--", 4) != 0 ||
		    memcmp(p + head_len + bytes + 4, c->boundary, MULTIPART_BOUNDARY_LEN) != 0) {
			client_fail(c, "no boundary after a part of %llu bytes", bytes);
			break;
		}
		part.last = memcmp(p + need - 2, "--", 2) == 0;
		if (part.last)
			need += 2;
		if (left < need)
			break;
		if (memcmp(p + need - 2, "\r\n", 2) != 0) {
			client_fail(c, "boundary line not ended by CRLF");
			break;
		}
		tag = frame_tag(p + head_len, bytes);
		if (tag < 0) {
			client_fail(c, "part of %llu bytes is no published frame", bytes);
			break;
		}
		part.tag = (uint32_t)tag;
		part.bytes = bytes;
		part.timestamp_usec = sec * USEC_PER_SEC + usec;
		part.arrival_usec = now;
		tu_grow((void **)&c->parts, &c->part_cap, c->part_count + 1, sizeof(*c->parts));
		c->parts[c->part_count++] = part;
		c->closing_seen = part.last;
		at += need;
	}
	memmove(c->body.data, c->body.data + at, c->body.len - at);
	c->body.len -= at;
}

/* Takes the whole records out of c->wire: FCGI_STDOUT content, then the
 * empty FCGI_STDOUT and FCGI_END_REQUEST, nothing else. */
static void parse_records(struct client *c, int64_t now)
{
	size_t at = 0;

	while (!c->error[0]) {
		struct tu_record rec;
		size_t whole = tu_record_parse(c->wire.data + at, c->wire.len - at, &rec);

		if (whole == 0)
			break;
		at += whole;
		if (rec.version != FCGI_VERSION_1 || rec.request_id != c->request_id) {
			client_fail(c, "record of version %d, request %d", rec.version,
				    rec.request_id);
		} else if (c->request_ended) {
			client_fail(c, "record of type %d after FCGI_END_REQUEST", rec.type);
		} else if (rec.type == FCGI_STDOUT && rec.content_len > 0) {
			if (c->stdout_ended)
				client_fail(c, "stdout content after the empty stdout record");
			blob_add(&c->body, rec.content, rec.content_len);
			parse_parts(c, now);
		} else if (rec.type == FCGI_STDOUT) {
			if (c->stdout_ended)
				client_fail(c, "two empty stdout records");
			c->stdout_ended = 1;
		} else if (rec.type == FCGI_END_REQUEST) {
			const FCGI_EndRequestBody *end = (const FCGI_EndRequestBody *)rec.content;

			if (!c->stdout_ended || rec.content_len != sizeof(*end) ||
			    end->protocolStatus != FCGI_REQUEST_COMPLETE)
				client_fail(c, "bad FCGI_END_REQUEST (stdout ended %d, %zu bytes)",
					    c->stdout_ended, rec.content_len);
			else if (c->body.len > 0)
				client_fail(c, "request ended inside a part (%zu bytes)", c->body.len);
			c->request_ended = 1;
		} else {
			client_fail(c, "record of type %d", rec.type);
		}
	}
	memmove(c->wire.data, c->wire.data + at, c->wire.len - at);
	c->wire.len -= at;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	int done = 0;

	while (!done && !atomic_load(&c->quit)) {
		struct pollfd ready = { .fd = c->fd, .events = POLLIN };
		ssize_t n;

		if (poll(&ready, 1, READER_STEP_MS) <= 0)
			continue; /* the step passed, or a signal */
		n = read(c->fd, c->chunk, READ_CHUNK);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		CHECK_ZERO(pthread_mutex_lock(&c->lock));
		if (n > 0) {
			blob_add(&c->wire, c->chunk, (size_t)n);
			c->wire_total += (size_t)n;
			parse_records(c, clock_mono_usec());
		} else if (n == 0) {
			c->eof = done = 1;
		} else {
			c->read_errno = errno;
			done = 1;
		}
		CHECK_ZERO(pthread_cond_broadcast(&c->cond));
		CHECK_ZERO(pthread_mutex_unlock(&c->lock));
	}
	return NULL;
}

static void client_start_reading(struct client *c)
{
	pthread_attr_t attr;

	assert_false(c->reading);
	assert_int_equal(pthread_attr_init(&attr), 0);
	assert_int_equal(pthread_attr_setstacksize(&attr, READER_STACK), 0);
	assert_int_equal(pthread_create(&c->thread, &attr, client_main, c), 0);
	pthread_attr_destroy(&attr);
	c->reading = 1;
}

static void client_stop_reading(struct client *c)
{
	if (!c->reading)
		return;
	atomic_store(&c->quit, 1);
	pthread_join(c->thread, NULL);
	c->reading = 0;
}

static struct client *client_new(int fd, int request_id)
{
	struct client *c = calloc(1, sizeof(*c));
	pthread_condattr_t attr;

	assert_non_null(c);
	c->fd = fd;
	c->request_id = request_id;
	multipart_make_boundary(c->boundary);
	c->chunk = malloc(READ_CHUNK);
	assert_non_null(c->chunk);
	assert_int_equal(pthread_mutex_init(&c->lock, NULL), 0);
	/* monotonic, as the deadlines of client_wait */
	assert_int_equal(pthread_condattr_init(&attr), 0);
	assert_int_equal(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC), 0);
	assert_int_equal(pthread_cond_init(&c->cond, &attr), 0);
	pthread_condattr_destroy(&attr);
	return c;
}

static void client_free(struct client *c)
{
	client_stop_reading(c);
	if (c->fd >= 0)
		close(c->fd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c->chunk);
	blob_free(&c->wire);
	blob_free(&c->body);
	free(c->parts);
	free(c);
}

/* The reader stopped: the fanout closed its end, or the read failed. */
static int client_finished(const struct client *c)
{
	return c->eof || c->read_errno;
}

/* Conditions for client_wait; called with c->lock held. */
static int has_parts(const struct client *c, uint64_t count)
{
	return c->part_count >= count || client_finished(c) || c->error[0];
}

static int has_tag(const struct client *c, uint64_t tag)
{
	for (size_t i = 0; i < c->part_count; i++)
		if (c->parts[i].tag == tag)
			return 1;
	return client_finished(c) || c->error[0];
}

static int is_finished(const struct client *c, uint64_t unused)
{
	(void)unused;
	return client_finished(c) || c->error[0];
}

/* Waits up to timeout_usec for done(c, arg).  1 if it holds. */
static int client_wait(struct client *c, int (*done)(const struct client *, uint64_t), uint64_t arg,
		       int64_t timeout_usec)
{
	int64_t deadline = clock_mono_usec() + timeout_usec;
	struct timespec at = { .tv_sec = deadline / USEC_PER_SEC,
			       .tv_nsec = (long)(deadline % USEC_PER_SEC) * 1000 };
	int rc = 0, holds;

	CHECK_ZERO(pthread_mutex_lock(&c->lock));
	while (!(holds = done(c, arg)) && rc == 0)
		rc = pthread_cond_timedwait(&c->cond, &c->lock, &at);
	if (!holds)
		holds = done(c, arg);
	CHECK_ZERO(pthread_mutex_unlock(&c->lock));
	return holds;
}

/* What the reader saw so far, copied under its lock. */
struct seen {
	size_t part_count;
	int closing_seen, stdout_ended, request_ended, eof, read_errno;
	char error[256];
};

static struct seen client_seen(struct client *c)
{
	struct seen s;

	CHECK_ZERO(pthread_mutex_lock(&c->lock));
	s.part_count = c->part_count;
	s.closing_seen = c->closing_seen;
	s.stdout_ended = c->stdout_ended;
	s.request_ended = c->request_ended;
	s.eof = c->eof;
	s.read_errno = c->read_errno;
	memcpy(s.error, c->error, sizeof(s.error));
	CHECK_ZERO(pthread_mutex_unlock(&c->lock));
	return s;
}

static struct part client_part(struct client *c, size_t i)
{
	struct part part = { 0 };
	size_t count;

	CHECK_ZERO(pthread_mutex_lock(&c->lock));
	count = c->part_count;
	if (i < count)
		part = c->parts[i];
	CHECK_ZERO(pthread_mutex_unlock(&c->lock));
	assert_true(i < count);
	return part;
}

static void assert_no_error(struct client *c)
{
	struct seen s = client_seen(c);

	if (s.error[0])
		fail_msg("request %d: %s", c->request_id, s.error);
}

/* ---- the fixture: a stream, a fanout, viewers ------------------------- */

struct fixture {
	char dir[PATH_MAX];
	/* Large (a PATH_MAX buffer per stream): why the fixture is on the
	 * heap.  The fanout and the stream point into it. */
	struct settings settings;
	struct stream_set set;
	int set_open;
	struct stream *stream;   /* the test's own reference: it publishes */
	_Atomic int stopping;
	_Atomic int viewer_count;
	struct fanout *fanout;   /* NULL for the blocking sink */
	int blocking;            /* viewers served by viewer_blocking_run */
	struct served *served[CLIENTS_MAX]; /* the blocking sink's viewers */
	size_t served_count;
	int request_ids;
	uint32_t published;      /* tags so far: the tag of a frame is its bus seq */
	int64_t publish_usec[TAGS_MAX + 1];
	size_t frame_bytes[TAGS_MAX + 1];
	unsigned char *frame;    /* FRAME_BYTES_MAX: the frame being published */
	struct client *clients[CLIENTS_MAX];
	size_t client_count;
};

/* A test's repeat and keepalive, and its sink: its cmocka prestate. */
struct timers {
	int64_t repeat_usec, keepalive_usec;
	int blocking;
};

static struct timers far_timers = { FAR_REPEAT_USEC, FAR_KEEPALIVE_USEC, 0 };
static struct timers short_timers = { REPEAT_USEC, KEEPALIVE_USEC, 0 };
static struct timers far_timers_blocking = { FAR_REPEAT_USEC, FAR_KEEPALIVE_USEC, 1 };
static struct timers short_timers_blocking = { REPEAT_USEC, KEEPALIVE_USEC, 1 };

/* A viewer of the blocking sink: the server's end of its connection and
 * the thread that serves it, as a request thread would. */
struct served {
	struct fixture *f;
	int fd, request_id;
	struct stream *stream;   /* its reference, released by the thread */
	struct query query;
	char boundary[MULTIPART_BOUNDARY_LEN + 1];
	pthread_t thread;
	int joined;
};

static int teardown(void **state);

/* *state on entry: the struct timers to use. */
static int setup(void **state)
{
	const struct timers *timers = *state;
	struct fixture *f = calloc(1, sizeof(*f));
	struct stream_settings *cfg;

	if (!f)
		return -1;
	*state = f;
	if (tu_dir_make(f->dir, sizeof(f->dir), "fanout") < 0)
		goto fail;
	f->frame = malloc(FRAME_BYTES_MAX);
	if (!f->frame)
		goto fail;
	config_defaults(&f->settings);
	snprintf(f->settings.bus_dir, sizeof(f->settings.bus_dir), "%s", f->dir);
	f->settings.repeat_usec = timers->repeat_usec;
	f->settings.keepalive_usec = timers->keepalive_usec;
	f->settings.stall_usec = STALL_USEC;
	f->settings.frame_bytes_max = FRAME_BYTES_MAX;
	/* One ingest stream, as config.c fills it for "source = ingest". */
	f->settings.stream_count = 1;
	cfg = &f->settings.streams[0];
	snprintf(cfg->name, sizeof(cfg->name), "%s", STREAM);
	snprintf(cfg->source, sizeof(cfg->source), "ingest");
	cfg->kind = SOURCE_INGEST;
	cfg->width = WIDTH;
	cfg->height = HEIGHT;
	cfg->fps = 30;
	cfg->quality = ENCODE_QUALITY_DEFAULT;
	if (streams_open(&f->set, &f->settings) < 0)
		goto fail;
	f->set_open = 1;
	f->stream = streams_get(&f->set, STREAM);
	if (!f->stream)
		goto fail;
	f->blocking = timers->blocking;
	if (f->blocking)
		return 0;
	f->fanout = fanout_start(WRITERS, &f->settings, &f->stopping, &f->viewer_count);
	if (!f->fanout)
		goto fail;
	return 0;
fail:
	teardown(state);
	return -1;
}

/* Stops the sink: the stopping flag, a wake, then fanout_stop, or for
 * the blocking sink a join of every viewer's thread.  The number of
 * threads left running. */
static int stop_fanout(struct fixture *f)
{
	int64_t deadline_usec = clock_wall_usec() + WAIT_USEC;
	struct timespec deadline = {
		.tv_sec = deadline_usec / USEC_PER_SEC,
		.tv_nsec = (long)(deadline_usec % USEC_PER_SEC) * 1000,
	};
	int left = 0;

	atomic_store(&f->stopping, 1);
	streams_wake_all(&f->set);
	if (!f->blocking)
		return fanout_stop(f->fanout, WAIT_USEC);
	for (size_t i = 0; i < f->served_count; i++) {
		struct served *sv = f->served[i];

		if (sv->joined)
			continue;
		if (pthread_timedjoin_np(sv->thread, NULL, &deadline) == 0)
			sv->joined = 1;
		else
			left++;
	}
	return left;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc = 0;

	if (f->fanout || f->blocking) {
		if (stop_fanout(f) != 0) {
			/* its threads still run: leave everything to exit */
			fprintf(stderr, "teardown: stopping left viewer threads running\n");
			return -1;
		}
		fanout_free(f->fanout);
		if (atomic_load(&f->viewer_count) != 0) {
			fprintf(stderr, "teardown: viewer_count %d after fanout_stop\n",
				atomic_load(&f->viewer_count));
			rc = -1;
		}
	}
	for (size_t i = 0; i < f->client_count; i++)
		atomic_store(&f->clients[i]->quit, 1); /* all readers end together */
	for (size_t i = 0; i < f->client_count; i++)
		client_free(f->clients[i]);
	for (size_t i = 0; i < f->served_count; i++)
		free(f->served[i]);
	if (f->stream)
		stream_release(f->stream);
	if (f->set_open)
		streams_close(&f->set);
	tu_dir_remove(f->dir);
	free(f->frame);
	free(f);
	return rc;
}

/* Publishes a frame of bytes at width x height; returns its tag. */
static uint32_t publish_sized(struct fixture *f, size_t bytes, uint32_t width, uint32_t height)
{
	uint32_t tag = f->published + 1;
	int64_t now = clock_wall_usec();

	assert_true(tag <= TAGS_MAX && bytes <= FRAME_BYTES_MAX);
	frame_fill(f->frame, bytes, tag);
	assert_int_equal(bus_publish_shared(f->stream->bus, f->frame, bytes, width, height, now, -1,
					    NULL),
			 0);
	f->published = tag;
	f->publish_usec[tag] = now;
	f->frame_bytes[tag] = bytes;
	assert_int_equal(bus_latest(f->stream->bus), tag);
	return tag;
}

static uint32_t publish(struct fixture *f)
{
	return publish_sized(f, SMALL_FRAME, WIDTH, HEIGHT);
}

/* Part i of c is the frame tag as published (bytes, X-Timestamp). */
static void assert_part(struct fixture *f, struct client *c, size_t i, uint32_t tag)
{
	struct part part = client_part(c, i);

	assert_int_equal(part.tag, tag);
	assert_int_equal(part.bytes, f->frame_bytes[tag]);
	assert_int_equal(part.timestamp_usec, f->publish_usec[tag]);
}

/* The request thread of a blocking viewer: viewer_blocking_run, then the
 * end records (FCGX_Finish_r), the close, and the admission given back. */
static void *served_main(void *arg)
{
	struct served *sv = arg;
	struct fixture *f = sv->f;
	struct viewer_conn conn = { .out = NULL, .fd = sv->fd, .request_id = sv->request_id };
	size_t sent = 0;

	viewer_blocking_run(&conn, sv->stream, &sv->query, sv->boundary, &f->stopping);
	if (record_send(sv->fd, sv->request_id, NULL, 0, 1, &sent, 0) < 0)
		fprintf(stderr, "request %d: end records: %s\n", sv->request_id, strerror(errno));
	close(sv->fd);
	bus_viewer_leave(sv->stream->bus);
	atomic_fetch_sub(&f->viewer_count, 1);
	stream_release(sv->stream);
	return NULL;
}

/* Serves a viewer in a thread of its own, as a request thread would:
 * its socket's writes time out after stall_usec, as the server sets. */
static void serve_blocking(struct fixture *f, int fd, int request_id, struct stream *st,
			   const struct query *query, const char *boundary)
{
	struct served *sv = calloc(1, sizeof(*sv));
	struct timeval timeout = { .tv_sec = STALL_USEC / USEC_PER_SEC,
				   .tv_usec = STALL_USEC % USEC_PER_SEC };
	pthread_attr_t attr;

	assert_non_null(sv);
	assert_true(f->served_count < CLIENTS_MAX);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)), 0);
	sv->f = f;
	sv->fd = fd;
	sv->request_id = request_id;
	sv->stream = st;
	sv->query = *query;
	memcpy(sv->boundary, boundary, sizeof(sv->boundary));
	f->served[f->served_count++] = sv;
	assert_int_equal(pthread_attr_init(&attr), 0);
	assert_int_equal(pthread_attr_setstacksize(&attr, READER_STACK), 0);
	assert_int_equal(pthread_create(&sv->thread, &attr, served_main, sv), 0);
	assert_int_equal(pthread_attr_destroy(&attr), 0);
}

/* A viewer as the server hands one over: admitted (viewer_count and the
 * bus's viewers), its own stream reference, its response head out.
 * slow: small socket buffers on both ends, and nobody reading yet. */
static struct client *add_viewer_opts(struct fixture *f, const struct query *query, int slow)
{
	struct stream *st;
	struct client *c;
	int sv[2];

	assert_true(f->client_count < CLIENTS_MAX);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	if (slow) {
		int size = SLOW_SOCKET_BUFFER;

		assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)), 0);
		assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)), 0);
	}
	c = client_new(sv[1], ++f->request_ids);
	f->clients[f->client_count++] = c;
	st = streams_get(&f->set, STREAM);
	assert_non_null(st);
	bus_viewer_enter(st->bus);
	atomic_fetch_add(&f->viewer_count, 1);
	if (f->blocking)
		serve_blocking(f, sv[0], c->request_id, st, query, c->boundary);
	else
		assert_int_equal(fanout_add(f->fanout, sv[0], c->request_id, st, query, c->boundary),
				 0);
	if (!slow)
		client_start_reading(c);
	return c;
}

static struct client *add_viewer(struct fixture *f, const struct query *query)
{
	return add_viewer_opts(f, query, 0);
}

static const struct query plain_query; /* no ?fps, no ?frames */

/* A viewer with query that has its first part: the frame published for
 * it (tag 1 on a fresh fixture). */
static struct client *add_watching_viewer(struct fixture *f, const struct query *query)
{
	struct client *c;

	publish(f);
	c = add_viewer(f, query);
	assert_true(client_wait(c, has_parts, 1, WAIT_USEC));
	return c;
}

static struct bus_stats stats(const struct fixture *f)
{
	struct bus_stats s;

	bus_stats(f->stream->bus, &s);
	return s;
}

/* Waits up to timeout_usec until viewer_count and the bus's viewers are
 * both count.  1 if they are. */
static int wait_viewers(struct fixture *f, int count, int64_t timeout_usec)
{
	int64_t deadline = clock_mono_usec() + timeout_usec;

	for (;;) {
		if (atomic_load(&f->viewer_count) == count && stats(f).viewers == (uint32_t)count)
			return 1;
		if (clock_mono_usec() >= deadline)
			return 0;
		clock_sleep_usec(USEC_PER_MSEC);
	}
}

/* Waits up to timeout_usec until the bus counted frames parts delivered. */
static int wait_delivered(struct fixture *f, uint64_t frames, int64_t timeout_usec)
{
	int64_t deadline = clock_mono_usec() + timeout_usec;

	for (;;) {
		if (stats(f).frames_delivered >= frames)
			return 1;
		if (clock_mono_usec() >= deadline)
			return 0;
		clock_sleep_usec(USEC_PER_MSEC);
	}
}

/* What the web server did to C's connection a moment (20 ms) ago ended
 * nothing: the next frame reaches C, with no error and no end, and it is
 * still counted. */
static void assert_still_served(struct fixture *f, struct client *c)
{
	uint32_t tag;

	clock_sleep_usec(20 * USEC_PER_MSEC);
	tag = publish(f);
	assert_true(client_wait(c, has_tag, tag, WAIT_USEC));
	assert_no_error(c);
	assert_false(client_seen(c).eof);
	assert_true(wait_viewers(f, 1, 0));
}

/* The end of a response: the held frame tag (0: none) as the closing
 * part, the empty stdout record, FCGI_END_REQUEST, then the fanout closed
 * the connection.  Returns the number of parts. */
static size_t assert_ended(struct fixture *f, struct client *c, uint32_t tag)
{
	struct seen s;

	assert_true(client_wait(c, is_finished, 0, WAIT_USEC));
	assert_no_error(c);
	s = client_seen(c);
	if (tag) {
		assert_true(s.part_count > 0);
		assert_part(f, c, s.part_count - 1, tag);
		assert_true(client_part(c, s.part_count - 1).last);
		assert_true(s.closing_seen);
	} else {
		assert_int_equal(s.part_count, 0);
		assert_false(s.closing_seen);
	}
	assert_true(s.stdout_ended);
	assert_true(s.request_ended);
	assert_true(s.eof);
	assert_int_equal(s.read_errno, 0);
	return s.part_count;
}

/* The index of the first part of c carrying frame tag. */
static size_t first_with_tag(struct client *c, uint32_t tag)
{
	size_t count = client_seen(c).part_count;

	for (size_t i = 0; i < count; i++)
		if (client_part(c, i).tag == tag)
			return i;
	fail_msg("request %d: no part of frame %u", c->request_id, tag);
	return 0;
}

/* c got every frame from first to last, in order, none skipped (each
 * perhaps repeated), and nothing after. */
static void assert_every_frame(struct fixture *f, struct client *c, uint32_t first, uint32_t last)
{
	size_t count = client_seen(c).part_count;
	uint32_t want = first;

	assert_no_error(c);
	assert_true(count > 0);
	for (size_t i = 0; i < count; i++) {
		struct part part = client_part(c, i);

		if (part.tag == want + 1)
			want++;
		assert_int_equal(part.tag, want);
		assert_part(f, c, i, part.tag);
	}
	assert_int_equal(want, last);
}

/* ---- first frames and new frames --------------------------------------- */

/* A viewer added after a publish gets that frame at once, as its first
 * part. */
static void test_first_frame_at_once(void **state)
{
	struct fixture *f = *state;
	uint32_t tag = publish(f);
	int64_t added = clock_mono_usec();
	struct client *c = add_viewer(f, &plain_query);
	struct part part;

	assert_true(client_wait(c, has_parts, 1, WAIT_USEC));
	assert_no_error(c);
	part = client_part(c, 0);
	assert_part(f, c, 0, tag);
	assert_false(part.last);
	assert_true(part.arrival_usec - added < PROMPT_USEC);
	assert_true(wait_viewers(f, 1, 0));
}

/* A viewer added before any frame waits, then gets the first one
 * published at once. */
static void test_first_frame_when_published(void **state)
{
	struct fixture *f = *state;
	struct client *c = add_viewer(f, &plain_query);
	int64_t published;
	uint32_t tag;

	/* let the writer and the watcher take the viewer on */
	clock_sleep_usec(50 * USEC_PER_MSEC);
	assert_int_equal(client_seen(c).part_count, 0);
	published = clock_mono_usec();
	tag = publish(f);
	assert_true(client_wait(c, has_parts, 1, WAIT_USEC));
	assert_no_error(c);
	assert_part(f, c, 0, tag);
	assert_true(client_part(c, 0).arrival_usec - published < PROMPT_USEC);
}

/* A frame published right after a viewer was added, as its stream's
 * watcher thread starts, reaches it at once too.  Each round starts a new
 * watcher: the last viewer left and a publish let the old one end.  (A
 * watcher that takes the bus's newest sequence number only once its
 * thread runs never announces a frame published in between.) */
static void test_publish_as_watcher_starts(void **state)
{
	struct fixture *f = *state;

	publish(f);
	for (int round = 0; round < WATCHER_ROUNDS; round++) {
		struct client *c = add_viewer(f, &plain_query);
		uint32_t tag = publish(f);
		int64_t published = clock_mono_usec();

		assert_true(client_wait(c, has_tag, tag, PROMPT_USEC));
		assert_no_error(c);
		assert_true(client_part(c, first_with_tag(c, tag)).arrival_usec - published <
			    PROMPT_USEC);
		/* the client leaves; its reader sees the end */
		assert_int_equal(shutdown(c->fd, SHUT_RDWR), 0);
		assert_true(client_wait(c, is_finished, 0, WAIT_USEC));
		assert_true(wait_viewers(f, 0, WAIT_USEC));
		publish(f); /* the watcher wakes, finds no viewer, ends */
		clock_sleep_usec(2 * USEC_PER_MSEC);
	}
}

/* A newer publish reaches a viewer at once. */
static void test_newer_frame_at_once(void **state)
{
	struct fixture *f = *state;
	struct client *c;
	int64_t published;
	uint32_t tag;

	c = add_watching_viewer(f, &plain_query);
	for (int round = 0; round < 3; round++) {
		published = clock_mono_usec();
		tag = publish(f);
		assert_true(client_wait(c, has_tag, tag, WAIT_USEC));
		assert_no_error(c);
		assert_true(client_part(c, first_with_tag(c, tag)).arrival_usec - published <
			    PROMPT_USEC);
	}
	assert_every_frame(f, c, 1, tag);
}

/* With no newer frame the held one goes again after repeat_usec, then
 * every keepalive_usec; the bus counts each part.  Each gap is asserted
 * within a window that reaches halfway to the wrong interval on either
 * side: the repeat (200 ms) in [100 ms, 600 ms], the keepalive (1000 ms)
 * in [600 ms, 1400 ms].  The defects caught, no wait at all, the keepalive
 * in place of the repeat or the repeat in place of the keepalive, miss
 * their window by 100-400 ms; a correct writer hits its mark within a few
 * ms, so a reader noting an arrival up to 100 ms late still passes. */
#define REPEAT_WINDOW_USEC ((KEEPALIVE_USEC - REPEAT_USEC) / 2)
static void test_repeat_then_keepalive(void **state)
{
	struct fixture *f = *state;
	uint32_t tag = publish(f);
	struct client *c = add_viewer(f, &plain_query);
	struct part first, second, third;
	struct bus_stats s;

	assert_true(client_wait(c, has_parts, 3, REPEAT_USEC + KEEPALIVE_USEC + WAIT_USEC));
	assert_no_error(c);
	for (size_t i = 0; i < 3; i++)
		assert_part(f, c, i, tag);
	first = client_part(c, 0);
	second = client_part(c, 1);
	third = client_part(c, 2);
	assert_true(second.arrival_usec - first.arrival_usec >= REPEAT_USEC / 2);
	assert_true(second.arrival_usec - first.arrival_usec <= REPEAT_USEC + REPEAT_WINDOW_USEC);
	assert_true(third.arrival_usec - second.arrival_usec >= KEEPALIVE_USEC - REPEAT_WINDOW_USEC);
	assert_true(third.arrival_usec - second.arrival_usec <= KEEPALIVE_USEC + REPEAT_WINDOW_USEC);
	assert_true(wait_delivered(f, 3, WAIT_USEC));
	s = stats(f);
	assert_int_equal(s.frames_delivered, 3);
	assert_int_equal(s.bytes_sent, 3 * SMALL_FRAME);
	assert_int_equal(s.frames_dropped, 0);
}

/* ---- ?frames and ?fps ---------------------------------------------------- */

/* ?frames=3: exactly three parts, the last with the closing boundary,
 * then the end records, and the connection closed. */
static void test_frames_limit(void **state)
{
	struct fixture *f = *state;
	struct query query = { .frames = 3 };
	uint32_t tags[3];
	struct client *c;

	tags[0] = publish(f);
	c = add_viewer(f, &query);
	assert_true(client_wait(c, has_parts, 1, WAIT_USEC));
	for (int i = 1; i < 3; i++) {
		tags[i] = publish(f);
		assert_true(client_wait(c, has_tag, tags[i], WAIT_USEC));
	}
	assert_int_equal(assert_ended(f, c, tags[2]), 3);
	for (size_t i = 0; i < 3; i++) {
		assert_part(f, c, i, tags[i]);
		assert_int_equal(client_part(c, i).last, i == 2);
	}
	assert_true(wait_viewers(f, 0, PROMPT_USEC));
}

/* ?frames=1: the first part is also the last.  ?frames counts repeats
 * too: ?frames=2 with no new frame ends with the repeat. */
static void test_frames_one_and_repeat(void **state)
{
	struct fixture *f = *state;
	struct query one = { .frames = 1 }, two = { .frames = 2 };
	uint32_t tag = publish(f);
	struct client *c1 = add_viewer(f, &one), *c2 = add_viewer(f, &two);

	assert_int_equal(assert_ended(f, c1, tag), 1);
	assert_int_equal(assert_ended(f, c2, tag), 2);
	assert_part(f, c2, 0, tag);
	assert_false(client_part(c2, 0).last);
	assert_true(wait_viewers(f, 0, PROMPT_USEC));
	assert_true(wait_delivered(f, 3, WAIT_USEC));
}

/* Frames published for the ?fps=5 test, one every FPS_PERIOD_USEC: about
 * a second of them, at 50 per second. */
#define FPS_PUBLISHES 50
#define FPS_PERIOD_USEC (USEC_PER_SEC / 50)

/* ?fps=5 with frames published at 50 per second: never two parts much
 * closer than the gap, each the newest frame, the last published one got
 * out; the frames skipped meanwhile are counted as dropped.
 *
 * Judged by counts over the time the publishing really took (a slow
 * machine publishes more slowly), not by a fixed window.  The defect
 * caught, ?fps ignored, sends about every frame (~50 parts, 20 ms apart);
 * paced, parts go at least a gap apart from the viewer's start to a gap
 * after the last publish: span / gap + 2 of them at most, and one more is
 * allowed for rounding.  Two parts may be seen closer than
 * the gap by as much as the reader notes one late (a busy, sanitized
 * build): three quarters of the gap (150 ms) is allowed for that, and the
 * 50 ms left is still 2.5 times the 20 ms of the unpaced defect. */
static void test_fps_pacing(void **state)
{
	struct fixture *f = *state;
	const int64_t gap = USEC_PER_SEC / 5;
	struct query query = { .fps = 5 };
	struct client *c;
	int64_t start, span;
	size_t count, distinct = 1;
	uint64_t expect_dropped = 0;
	struct part prev, part;

	publish(f);
	start = clock_mono_usec(); /* no part can go before this */
	c = add_viewer(f, &query);
	assert_true(client_wait(c, has_parts, 1, WAIT_USEC));
	for (int i = 0; i < FPS_PUBLISHES; i++) {
		publish(f);
		clock_sleep_usec(FPS_PERIOD_USEC);
	}
	span = clock_mono_usec() - start;
	/* the newest goes out within a gap; after it, only repeats, 5 s on */
	assert_true(client_wait(c, has_tag, f->published, WAIT_USEC));
	assert_no_error(c);
	count = client_seen(c).part_count;
	prev = client_part(c, 0);
	for (size_t i = 1; i < count; i++) {
		part = client_part(c, i);
		assert_part(f, c, i, part.tag);
		assert_true(part.arrival_usec - prev.arrival_usec >= gap / 4);
		assert_true(part.tag >= prev.tag);
		if (part.tag > prev.tag) {
			expect_dropped += part.tag - prev.tag - 1;
			distinct++;
		}
		prev = part;
	}
	print_message("%zu parts, %zu frames, in %lld us of publishing\n", count, distinct,
		      (long long)span);
	assert_true(count <= (size_t)(span / gap) + 3);
	assert_true(distinct >= 3); /* frames keep coming */
	assert_int_equal(prev.tag, f->published); /* the newest got out */
	assert_true(wait_delivered(f, count, WAIT_USEC));
	assert_int_equal(stats(f).frames_dropped, expect_dropped);
	assert_true(expect_dropped >= FPS_PUBLISHES - count);
}

/* ?fps=0.4 (a gap of 2.5 s, over twice keepalive_usec) with frames
 * published at 50 per second: a new frame at most once per gap, and in
 * between the frame last sent again every keepalive_usec (not after
 * repeat_usec), so the connection is never silent for much longer than
 * keepalive_usec.  Repeats do not count against ?fps; the frames skipped
 * are counted as dropped, exactly. */
static void test_low_fps_keepalives(void **state)
{
	struct fixture *f = *state;
	struct query query = { .fps = 0.4 };
	const int64_t gap = (int64_t)(USEC_PER_SEC / query.fps), period = USEC_PER_SEC / 50;
	/* Publishing long enough for new frames at 0, 2.5 and 5 s. */
	const int64_t run = 2 * gap + 200 * USEC_PER_MSEC;
	/* How far from its mark an arrival may be noted: scheduling and
	 * reader granularity, generous for a slow, busy or sanitized build
	 * (the reader may note one arrival late and the next on time, so a
	 * gap may look shorter, too).  Late: halfway from the keepalive to
	 * the gap, since the defect, a viewer without keepalives, is silent
	 * for the whole gap (2.5 s, not 1.75).  Early: a keepalive at the
	 * repeat interval comes after 200 ms (not 600), a frame not held back
	 * by ?fps after 20 ms or at the keepalive (not 2.1 s). */
	const int64_t late = (gap - KEEPALIVE_USEC) / 2, early = 400 * USEC_PER_MSEC;
	struct client *c;
	int64_t start;
	size_t count, fresh = 1;
	uint64_t expect_dropped = 0;
	struct part prev, part, last_new;
	uint32_t newest;

	publish(f);
	c = add_viewer(f, &query);
	assert_true(client_wait(c, has_parts, 1, WAIT_USEC));
	start = client_part(c, 0).arrival_usec;
	while (clock_mono_usec() - start < run) {
		publish(f);
		clock_sleep_usec(period);
	}
	/* The newest frame goes out when its gap is over; nothing newer
	 * follows, so count the parts up to it. */
	newest = f->published;
	assert_true(client_wait(c, has_tag, newest, gap + WAIT_USEC));
	assert_no_error(c);
	count = first_with_tag(c, newest) + 1;
	prev = last_new = client_part(c, 0);
	for (size_t i = 1; i < count; i++) {
		part = client_part(c, i);
		assert_part(f, c, i, part.tag);
		print_message("part %zu: frame %u at %lld ms\n", i, (unsigned)part.tag,
			      (long long)((part.arrival_usec - start) / USEC_PER_MSEC));
		assert_true(part.arrival_usec - prev.arrival_usec <= KEEPALIVE_USEC + late);
		if (part.tag == prev.tag) {
			/* a repeat: every keepalive_usec, no sooner */
			assert_true(part.arrival_usec - prev.arrival_usec >= KEEPALIVE_USEC - early);
		} else {
			assert_true(part.tag > prev.tag);
			assert_true(part.arrival_usec - last_new.arrival_usec >= gap - early);
			expect_dropped += part.tag - prev.tag - 1;
			last_new = part;
			fresh++;
		}
		prev = part;
	}
	assert_true(fresh >= 3 && fresh <= 4);
	/* keepalives between them: two are due in each gap, at 1 and 2 s;
	 * one is enough here, since a writer held up past 2.5 s sends the new
	 * frame instead (and the silence is bounded above) */
	assert_true(count >= fresh + (fresh - 1));
	assert_true(wait_delivered(f, count, WAIT_USEC));
	assert_int_equal(stats(f).frames_dropped, expect_dropped);
	assert_true(expect_dropped > 100);
}

/* ---- slow viewers -------------------------------------------------------- */

/* Waits up to timeout_usec until bytes for c (not reading) wait in its
 * socket: the fanout has begun a part.  1 if they do. */
static int wait_in_flight(struct client *c, int64_t timeout_usec)
{
	int64_t deadline = clock_mono_usec() + timeout_usec;
	int queued = 0;

	while (ioctl(c->fd, FIONREAD, &queued) == 0 && queued == 0 &&
	       clock_mono_usec() < deadline)
		clock_sleep_usec(USEC_PER_MSEC);
	return queued > 0;
}

/* A viewer that falls behind finishes the part in flight, then skips to
 * the newest frame; the frames it skipped are counted as dropped. */
static void test_slow_viewer_skips_to_newest(void **state)
{
	struct fixture *f = *state;
	struct client *slow;
	uint32_t first, newest = 0;
	struct bus_stats s;

	first = publish_sized(f, LARGE_FRAME, WIDTH, HEIGHT);
	slow = add_viewer_opts(f, &plain_query, 1);
	assert_true(wait_in_flight(slow, WAIT_USEC)); /* its first part is stuck */
	for (int i = 0; i < 4; i++)
		newest = publish_sized(f, LARGE_FRAME, WIDTH, HEIGHT);
	client_start_reading(slow);
	assert_true(client_wait(slow, has_tag, newest, WAIT_USEC));
	assert_no_error(slow);
	assert_part(f, slow, 0, first);
	assert_part(f, slow, 1, newest);
	assert_true(wait_delivered(f, 2, WAIT_USEC));
	s = stats(f);
	assert_int_equal(s.frames_dropped, newest - first - 1);
	assert_true(wait_viewers(f, 1, 0)); /* it caught up in time: not dropped */
}

/* A viewer that takes no bytes does not hold back another on the same
 * fanout, and is dropped after stall_usec: its admission is given back
 * and its connection closed mid-part, with no end records. */
static void test_stalled_viewer_dropped(void **state)
{
	struct fixture *f = *state;
	struct client *slow, *fast;
	int64_t stuck, dropped;
	uint32_t tag = publish_sized(f, LARGE_FRAME, WIDTH, HEIGHT);
	struct seen s;

	stuck = clock_mono_usec(); /* before the fanout can start its clock */
	slow = add_viewer_opts(f, &plain_query, 1);
	fast = add_viewer(f, &plain_query);
	assert_true(client_wait(fast, has_tag, tag, WAIT_USEC));
	for (int i = 0; i < 5; i++) {
		tag = publish_sized(f, LARGE_FRAME, WIDTH, HEIGHT);
		assert_true(client_wait(fast, has_tag, tag, PROMPT_USEC));
	}
	/* all of that while the slow one was still there: counted, not timed
	 * (held back by it, fast would have waited out STALL_USEC, 1 s) */
	assert_int_equal(atomic_load(&f->viewer_count), 2);
	assert_every_frame(f, fast, 1, tag);

	assert_true(wait_viewers(f, 1, STALL_USEC + WAIT_USEC));
	dropped = clock_mono_usec();
	assert_true(dropped - stuck >= STALL_USEC - EARLY_SLACK_USEC);
	assert_true(dropped - stuck <= STALL_USEC + STALL_LATE_USEC);

	/* what it was sent, then the end of the connection */
	client_start_reading(slow);
	assert_true(client_wait(slow, is_finished, 0, WAIT_USEC));
	s = client_seen(slow);
	assert_true(s.eof || s.read_errno == ECONNRESET);
	assert_int_equal(s.part_count, 0);
	assert_false(s.request_ended);
	assert_no_error(slow);

	/* the fast one goes on */
	tag = publish(f);
	assert_true(client_wait(fast, has_tag, tag, PROMPT_USEC));
	assert_false(client_seen(fast).eof);
}

/* A viewer stuck on its very first part is dropped after stall_usec even
 * when nothing else happens meanwhile (no publish, no other viewer). */
static void test_stalled_first_part_dropped(void **state)
{
	struct fixture *f = *state;
	int64_t stuck;

	publish_sized(f, LARGE_FRAME, WIDTH, HEIGHT);
	stuck = clock_mono_usec(); /* before the fanout can start its clock */
	add_viewer_opts(f, &plain_query, 1);
	assert_true(wait_viewers(f, 1, 0));
	assert_true(wait_viewers(f, 0, STALL_USEC + WAIT_USEC));
	assert_true(clock_mono_usec() - stuck >= STALL_USEC - EARLY_SLACK_USEC);
	assert_true(clock_mono_usec() - stuck <= STALL_USEC + STALL_LATE_USEC);
}

/* ---- the connection's end ------------------------------------------------ */

/* The web server closing the connection (the client left) ends the
 * viewer at once. */
static void test_peer_close_removes_viewer(void **state)
{
	struct fixture *f = *state;
	struct client *c;
	int64_t closed;

	c = add_watching_viewer(f, &plain_query);
	assert_true(wait_viewers(f, 1, 0));
	client_stop_reading(c);
	close(c->fd);
	c->fd = -1;
	closed = clock_mono_usec();
	assert_true(wait_viewers(f, 0, WAIT_USEC));
	assert_true(clock_mono_usec() - closed < PROMPT_USEC);
}

/* The web server shutting down its side for writing only (end of its
 * input) is not the client leaving: the viewer goes on. */
static void test_peer_half_close_keeps_viewer(void **state)
{
	struct fixture *f = *state;
	struct client *c;

	c = add_watching_viewer(f, &plain_query);
	assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
	assert_still_served(f, c);
}

/* What the web server sends on the connection (an FCGI_STDIN record, an
 * abort) is read and dropped: the response still ends with a clean close,
 * not a reset. */
static void test_input_drained_clean_end(void **state)
{
	struct fixture *f = *state;
	struct query query = { .frames = 2 };
	static const unsigned char input[4096];
	struct client *c;
	uint32_t tag;

	c = add_watching_viewer(f, &query);
	assert_int_equal(send(c->fd, input, sizeof(input), MSG_NOSIGNAL), (ssize_t)sizeof(input));
	clock_sleep_usec(20 * USEC_PER_MSEC);
	tag = publish(f);
	assert_int_equal(assert_ended(f, c, tag), 2);
}

/* ---- FCGI_ABORT_REQUEST ---------------------------------------------------- */

/* Sends one record from the web server's end: a header, content, padding
 * bytes; bytewise: one byte per send, a millisecond apart, so that the
 * writer sees the record in pieces. */
static void client_send_record(struct client *c, int type, int request_id, const void *content,
			       size_t content_len, size_t padding, int bytewise)
{
	unsigned char record[FCGI_HEADER_LEN + 1024 + 255];
	FCGI_Header *h = (FCGI_Header *)record;
	size_t total = FCGI_HEADER_LEN + content_len + padding;

	assert_true(content_len <= 1024 && padding <= 255);
	memset(record, 0, sizeof(record));
	h->version = FCGI_VERSION_1;
	h->type = (unsigned char)type;
	h->requestIdB1 = (unsigned char)(request_id >> 8);
	h->requestIdB0 = (unsigned char)request_id;
	h->contentLengthB1 = (unsigned char)(content_len >> 8);
	h->contentLengthB0 = (unsigned char)content_len;
	h->paddingLength = (unsigned char)padding;
	if (content_len)
		memcpy(record + FCGI_HEADER_LEN, content, content_len);
	if (!bytewise) {
		assert_int_equal(send(c->fd, record, total, MSG_NOSIGNAL), (ssize_t)total);
		return;
	}
	for (size_t i = 0; i < total; i++) {
		assert_int_equal(send(c->fd, record + i, 1, MSG_NOSIGNAL), 1);
		clock_sleep_usec(USEC_PER_MSEC);
	}
}

static void client_send_abort(struct client *c)
{
	client_send_record(c, FCGI_ABORT_REQUEST, c->request_id, NULL, 0, 0, 0);
}

/* The bytes of one part of a frame sent to c, not the last (its records,
 * not the end records). */
static size_t part_wire_bytes(struct fixture *f, struct client *c, uint32_t tag)
{
	char head[MULTIPART_HEAD_MAX], tail[MULTIPART_HEAD_MAX];
	int head_len = multipart_part_head(head, sizeof(head), f->frame_bytes[tag],
					   f->publish_usec[tag]);
	int tail_len = multipart_part_tail(tail, sizeof(tail), c->boundary, 0);

	assert_true(head_len > 0 && tail_len > 0);
	return record_wire_bytes((size_t)head_len + f->frame_bytes[tag] + (size_t)tail_len, 0);
}

/* An abort that comes while a part is in flight: that part is finished
 * (so the last bytes are a whole part), then the end records, then the
 * close; nothing published meanwhile is sent.  The bytes after the abort
 * are at most the part in flight: here, with the part stuck in small
 * socket buffers, exactly that part and the end records in all. */
static void test_abort_ends_after_part_in_flight(void **state)
{
	struct fixture *f = *state;
	uint32_t first = publish_sized(f, LARGE_FRAME, WIDTH, HEIGHT);
	struct client *c = add_viewer_opts(f, &plain_query, 1);
	struct seen s;

	clock_sleep_usec(20 * USEC_PER_MSEC); /* its first part is stuck */
	client_send_abort(c);
	clock_sleep_usec(20 * USEC_PER_MSEC);
	for (int i = 0; i < 3; i++)
		publish_sized(f, LARGE_FRAME, WIDTH, HEIGHT);
	client_start_reading(c);
	assert_true(client_wait(c, is_finished, 0, WAIT_USEC));
	assert_no_error(c);
	s = client_seen(c);
	assert_int_equal(s.part_count, 1);
	assert_part(f, c, 0, first);
	assert_false(client_part(c, 0).last); /* cut short: no closing boundary */
	assert_true(s.stdout_ended);
	assert_true(s.request_ended);
	assert_true(s.eof);
	CHECK_ZERO(pthread_mutex_lock(&c->lock));
	assert_int_equal(c->wire_total, part_wire_bytes(f, c, first) + record_wire_bytes(0, 1));
	CHECK_ZERO(pthread_mutex_unlock(&c->lock));
	assert_true(wait_viewers(f, 0, PROMPT_USEC));
}

/* An abort between parts ends the viewer at once, with at most the part
 * in flight (a repeat that had just started) before the end records. */
static void test_abort_between_parts(void **state)
{
	struct fixture *f = *state;
	struct client *c;
	uint32_t tag;
	size_t before;
	int64_t aborted;
	struct seen s;

	publish(f);
	c = add_viewer(f, &plain_query);
	assert_true(client_wait(c, has_parts, 1, WAIT_USEC));
	tag = publish(f);
	assert_true(client_wait(c, has_tag, tag, WAIT_USEC));
	before = client_seen(c).part_count;
	aborted = clock_mono_usec();
	client_send_abort(c);
	assert_true(client_wait(c, is_finished, 0, WAIT_USEC));
	assert_true(clock_mono_usec() - aborted < PROMPT_USEC);
	assert_no_error(c);
	s = client_seen(c);
	assert_true(s.part_count <= before + 1);
	assert_true(s.request_ended);
	assert_true(s.eof);
	assert_true(wait_viewers(f, 0, PROMPT_USEC));
	/* a publish now reaches nobody */
	publish(f);
	clock_sleep_usec(20 * USEC_PER_MSEC);
	assert_int_equal(client_seen(c).part_count, s.part_count);
}

/* A viewer still waiting for a first frame ends with the end records only. */
static void test_abort_before_first_frame(void **state)
{
	struct fixture *f = *state;
	struct client *c = add_viewer(f, &plain_query);

	clock_sleep_usec(20 * USEC_PER_MSEC);
	client_send_abort(c);
	assert_ended(f, c, 0);
	assert_true(wait_viewers(f, 0, PROMPT_USEC));
}

/* The records on the connection are read by their lengths, in whatever
 * pieces they come: stdin content (holding the bytes of an abort record of
 * this very request), padding, a management record and an abort of
 * another request end nothing; the viewer's own abort, in two pieces,
 * does. */
static void test_abort_records_parsed(void **state)
{
	struct fixture *f = *state;
	unsigned char content[100], values[12] = { 0 };
	FCGI_Header *fake = (FCGI_Header *)(content + 16);
	struct client *c;
	size_t before;
	FCGI_Header abort_head = { .version = FCGI_VERSION_1, .type = FCGI_ABORT_REQUEST };

	publish(f);
	c = add_viewer(f, &plain_query);
	assert_true(client_wait(c, has_parts, 1, WAIT_USEC));
	memset(content, 'x', sizeof(content));
	memset(fake, 0, sizeof(*fake));
	fake->version = FCGI_VERSION_1;
	fake->type = FCGI_ABORT_REQUEST;
	fake->requestIdB0 = (unsigned char)c->request_id;
	client_send_record(c, FCGI_STDIN, c->request_id, content, sizeof(content), 4, 1);
	client_send_record(c, FCGI_STDIN, c->request_id, NULL, 0, 0, 0);
	client_send_record(c, FCGI_GET_VALUES, FCGI_NULL_REQUEST_ID, values, sizeof(values), 0, 0);
	client_send_record(c, FCGI_ABORT_REQUEST, c->request_id + 1, NULL, 0, 0, 1);
	assert_still_served(f, c);

	abort_head.requestIdB0 = (unsigned char)c->request_id;
	before = client_seen(c).part_count;
	assert_int_equal(send(c->fd, &abort_head, 3, MSG_NOSIGNAL), 3);
	clock_sleep_usec(20 * USEC_PER_MSEC);
	assert_false(client_seen(c).eof);
	assert_int_equal(send(c->fd, (char *)&abort_head + 3, sizeof(abort_head) - 3, MSG_NOSIGNAL),
			 (ssize_t)(sizeof(abort_head) - 3));
	assert_true(client_wait(c, is_finished, 0, WAIT_USEC));
	assert_no_error(c);
	assert_true(client_seen(c).part_count <= before + 1);
	assert_true(client_seen(c).request_ended);
	assert_true(wait_viewers(f, 0, PROMPT_USEC));
}

/* ---- endings --------------------------------------------------------------- */

/* Stopping: every viewer gets its held frame once more with the closing
 * boundary, then the end records; fanout_stop returns 0 (no thread left). */
static void test_stop_ends_viewers(void **state)
{
	struct fixture *f = *state;
	struct client *c1, *c2;
	uint32_t tag;
	size_t n1, n2;

	c1 = add_watching_viewer(f, &plain_query);
	tag = publish(f);
	assert_true(client_wait(c1, has_tag, tag, WAIT_USEC));
	c2 = add_viewer(f, &plain_query);
	assert_true(client_wait(c2, has_tag, tag, WAIT_USEC));
	n1 = client_seen(c1).part_count;
	n2 = client_seen(c2).part_count;
	assert_int_equal(stop_fanout(f), 0);
	fanout_free(f->fanout);
	f->fanout = NULL;
	assert_int_equal(atomic_load(&f->viewer_count), 0);
	assert_int_equal(stats(f).viewers, 0);
	/* once more (a repeat may have come in between) */
	assert_true(assert_ended(f, c1, tag) > n1);
	assert_true(assert_ended(f, c2, tag) > n2);
}

/* A viewer that has no frame yet when the fanout stops ends with the end
 * records only. */
static void test_stop_before_first_frame(void **state)
{
	struct fixture *f = *state;
	struct client *c = add_viewer(f, &plain_query);

	clock_sleep_usec(20 * USEC_PER_MSEC);
	assert_int_equal(stop_fanout(f), 0);
	fanout_free(f->fanout);
	f->fanout = NULL;
	assert_ended(f, c, 0);
	assert_int_equal(atomic_load(&f->viewer_count), 0);
}

/* fanout.h: fanout_stop "ends every viewer", the stopping flag set or
 * not (as fanout_start's own failure path calls it). */
static void test_stop_without_flag(void **state)
{
	struct fixture *f = *state;
	struct client *c = add_watching_viewer(f, &plain_query);
	uint32_t tag = f->published;
	int left;

	left = fanout_stop(f->fanout, WAIT_USEC);
	assert_int_equal(left, 0);
	fanout_free(f->fanout);
	f->fanout = NULL;
	assert_ended(f, c, tag);
}

/* A stream retired by a reload ends its viewers the same way, while the
 * fanout goes on. */
static void test_retired_stream_ends_viewers(void **state)
{
	struct fixture *f = *state;
	struct client *c1 = add_watching_viewer(f, &plain_query);
	struct client *c2 = add_viewer(f, &plain_query);
	uint32_t tag = f->published;
	size_t n1, n2;

	assert_true(client_wait(c2, has_parts, 1, WAIT_USEC));
	n1 = client_seen(c1).part_count;
	n2 = client_seen(c2).part_count;
	atomic_store(&f->stream->retired, 1);
	bus_wake_all(f->stream->bus);
	assert_true(assert_ended(f, c1, tag) > n1);
	assert_true(assert_ended(f, c2, tag) > n2);
	assert_true(wait_viewers(f, 0, PROMPT_USEC));
}

/* A new picture size ends the viewer: the held frame once more with the
 * closing boundary (clients fix the size at the first part). */
static void test_size_change_ends_viewer(void **state)
{
	struct fixture *f = *state;
	struct client *c = add_watching_viewer(f, &plain_query);
	uint32_t tag = f->published;
	size_t n;

	n = client_seen(c).part_count;
	publish_sized(f, SMALL_FRAME, WIDTH / 2, HEIGHT / 2);
	assert_true(assert_ended(f, c, tag) > n);
	assert_true(wait_viewers(f, 0, PROMPT_USEC));
}

/* After fanout_stop, fanout_add refuses: the connection, the stream
 * reference and the admission stay the caller's. */
static void test_add_after_stop_refused(void **state)
{
	struct fixture *f = *state;
	char boundary[MULTIPART_BOUNDARY_LEN + 1];
	struct stream *st;
	int sv[2], refs;

	assert_int_equal(stop_fanout(f), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	multipart_make_boundary(boundary);
	st = streams_get(&f->set, STREAM);
	assert_non_null(st);
	bus_viewer_enter(st->bus);
	atomic_fetch_add(&f->viewer_count, 1);
	refs = atomic_load(&st->refs);
	assert_int_equal(fanout_add(f->fanout, sv[0], 1, st, &plain_query, boundary), -1);
	assert_int_equal(atomic_load(&st->refs), refs);
	assert_int_equal(atomic_load(&f->viewer_count), 1);
	assert_int_equal(stats(f).viewers, 1);
	assert_true(fcntl(sv[0], F_GETFD) >= 0); /* not closed */
	/* the caller ends it */
	bus_viewer_leave(st->bus);
	atomic_fetch_sub(&f->viewer_count, 1);
	stream_release(st);
	close(sv[0]);
	close(sv[1]);
}

/* ---- many viewers ---------------------------------------------------------- */

/* Hundreds of viewers across the writers each get every new frame. */
static void test_many_viewers(void **state)
{
	struct fixture *f = *state;
	struct client *c[MANY_VIEWERS];
	struct rlimit files;
	uint32_t tag;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &files), 0);
	if (files.rlim_cur < 4 * MANY_VIEWERS) {
		files.rlim_cur = files.rlim_max < 4 * MANY_VIEWERS ? files.rlim_max : 4 * MANY_VIEWERS;
		if (files.rlim_cur < 2 * MANY_VIEWERS + 64 || setrlimit(RLIMIT_NOFILE, &files) < 0)
			skip(); /* not enough file descriptors here */
	}
	publish(f);
	for (int i = 0; i < MANY_VIEWERS; i++)
		c[i] = add_viewer(f, &plain_query);
	assert_true(wait_viewers(f, MANY_VIEWERS, 0));
	for (int round = 0; round < 3; round++) {
		tag = publish(f);
		for (int i = 0; i < MANY_VIEWERS; i++)
			assert_true(client_wait(c[i], has_tag, tag, WAIT_USEC));
	}
	for (int i = 0; i < MANY_VIEWERS; i++) {
		assert_every_frame(f, c[i], 1, tag);
		assert_false(client_seen(c[i]).eof);
	}
	assert_int_equal(stats(f).frames_dropped, 0);
}

/* Most tests: the far timers.  The repeat's own tests: the short ones. */
#define FANOUT_TEST(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &far_timers)
#define SHORT_TIMERS_TEST(fn) \
	cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &short_timers)
/* The same tests through the blocking sink, named apart. */
#define BLOCKING_TEST(fn) { "blocking " #fn, fn, setup, teardown, &far_timers_blocking }
#define BLOCKING_SHORT_TIMERS_TEST(fn) \
	{ "blocking " #fn, fn, setup, teardown, &short_timers_blocking }

int main(void)
{
	const struct CMUnitTest tests[] = {
		FANOUT_TEST(test_first_frame_at_once),
		FANOUT_TEST(test_first_frame_when_published),
		FANOUT_TEST(test_publish_as_watcher_starts),
		FANOUT_TEST(test_newer_frame_at_once),
		SHORT_TIMERS_TEST(test_repeat_then_keepalive),
		FANOUT_TEST(test_frames_limit),
		SHORT_TIMERS_TEST(test_frames_one_and_repeat),
		FANOUT_TEST(test_fps_pacing),
		SHORT_TIMERS_TEST(test_low_fps_keepalives),
		FANOUT_TEST(test_slow_viewer_skips_to_newest),
		FANOUT_TEST(test_stalled_viewer_dropped),
		FANOUT_TEST(test_stalled_first_part_dropped),
		FANOUT_TEST(test_peer_close_removes_viewer),
		FANOUT_TEST(test_peer_half_close_keeps_viewer),
		FANOUT_TEST(test_input_drained_clean_end),
		FANOUT_TEST(test_abort_ends_after_part_in_flight),
		FANOUT_TEST(test_abort_between_parts),
		FANOUT_TEST(test_abort_before_first_frame),
		FANOUT_TEST(test_abort_records_parsed),
		FANOUT_TEST(test_stop_ends_viewers),
		FANOUT_TEST(test_stop_before_first_frame),
		FANOUT_TEST(test_stop_without_flag),
		FANOUT_TEST(test_retired_stream_ends_viewers),
		FANOUT_TEST(test_size_change_ends_viewer),
		FANOUT_TEST(test_add_after_stop_refused),
		FANOUT_TEST(test_many_viewers),

		BLOCKING_TEST(test_first_frame_at_once),
		BLOCKING_TEST(test_first_frame_when_published),
		BLOCKING_TEST(test_newer_frame_at_once),
		BLOCKING_SHORT_TIMERS_TEST(test_repeat_then_keepalive),
		BLOCKING_TEST(test_frames_limit),
		BLOCKING_SHORT_TIMERS_TEST(test_frames_one_and_repeat),
		BLOCKING_TEST(test_fps_pacing),
		BLOCKING_SHORT_TIMERS_TEST(test_low_fps_keepalives),
		BLOCKING_TEST(test_slow_viewer_skips_to_newest),
		BLOCKING_TEST(test_peer_half_close_keeps_viewer),
		BLOCKING_TEST(test_input_drained_clean_end),
		BLOCKING_TEST(test_abort_ends_after_part_in_flight),
		BLOCKING_TEST(test_abort_between_parts),
		BLOCKING_TEST(test_abort_before_first_frame),
		BLOCKING_TEST(test_abort_records_parsed),
		BLOCKING_TEST(test_stop_ends_viewers),
		BLOCKING_TEST(test_stop_before_first_frame),
		BLOCKING_TEST(test_retired_stream_ends_viewers),
		BLOCKING_TEST(test_size_change_ends_viewer),
		BLOCKING_TEST(test_many_viewers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
