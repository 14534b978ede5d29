/* Unit tests for the raw: and mjpeg: sources (fcgi/source_raw.c,
 * source_mjpeg.c over source_pipe.c, opened through source.h): reading
 * from a FIFO written by forked children, from a regular file, from a
 * device and from stdin.  The splitter under mjpeg: has its own tests
 * (test_mjpeg_splitter.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "encode.h"
#include "source.h"
#include "source_pipe.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Raw test frames: rgb24 4x2. */
#define RAW_W 4u
#define RAW_H 2u
#define RAW_BYTES (RAW_W * RAW_H * 3u)
/* Calls a source test makes before giving up on a frame that should come. */
#define NEXT_TRIES 50

/* What a test holds, released by teardown_held even when a failed
 * assertion ended the test early: so a failure is reported once, and not
 * again as a leak or a stray child.  One test runs at a time. */
#define HELD_BLOBS 4
static struct {
	struct blob blobs[HELD_BLOBS];
	size_t blob_count;
	struct stream_settings st;    /* the source's, kept by reference */
	struct source *src;
	pid_t child;                  /* a writer not yet waited for; 0: none */
	int saved_stdin;              /* fd 0 to put back; -1: none */
} held;

static int setup_held(void **state)
{
	(void)state;
	memset(&held, 0, sizeof(held));
	held.saved_stdin = -1;
	return 0;
}

static void held_close_source(void)
{
	source_close(held.src);
	held.src = NULL;
}

static int teardown_held(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < held.blob_count; i++)
		blob_free(&held.blobs[i]);
	if (held.src)
		held_close_source();
	if (held.child > 0) {
		kill(held.child, SIGKILL);
		waitpid(held.child, NULL, 0);
	}
	if (held.saved_stdin >= 0) {
		dup2(held.saved_stdin, STDIN_FILENO);
		close(held.saved_stdin);
	}
	memset(&held, 0, sizeof(held));
	return 0;
}

/* An empty blob that teardown_held frees. */
static struct blob *held_blob(void)
{
	assert_true(held.blob_count < HELD_BLOBS);
	return &held.blobs[held.blob_count++];
}

static struct blob f1, f2;

static int setup_jpegs(void **state)
{
	(void)state;
	f1 = tu_noisy_jpeg(64, 48, 1);
	f2 = tu_noisy_jpeg(40, 32, 2);
	return 0;
}

static int teardown_jpegs(void **state)
{
	(void)state;
	blob_free(&f1);
	blob_free(&f2);
	return 0;
}

static char tmp_dir[PATH_MAX];

static int setup_tmp(void **state)
{
	if (tu_dir_make(tmp_dir, sizeof(tmp_dir), "source-pipe") < 0)
		return -1;
	/* A test's writer may die on a vanished reader; the test sees it. */
	signal(SIGPIPE, SIG_IGN);
	return setup_jpegs(state);
}

static int teardown_tmp(void **state)
{
	tu_dir_remove(tmp_dir);
	return teardown_jpegs(state);
}

static void tmp_path(char *path, size_t size, const char *name)
{
	assert_true(snprintf(path, size, "%s/%s", tmp_dir, name) < (int)size);
}

/* held.st made a stream of kind reading path, for held_open. */
static struct stream_settings *held_stream(enum source_kind kind, const char *path)
{
	struct stream_settings *st = &held.st;

	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "test");
	snprintf(st->source, sizeof(st->source), "%s:%s", kind == SOURCE_RAW ? "raw" : "mjpeg",
		 path);
	st->kind = kind;
	snprintf(st->path, sizeof(st->path), "%s", path);
	st->format = PIXEL_RGB24;
	st->width = RAW_W;
	st->height = RAW_H;
	st->fps = 50;
	st->quality = ENCODE_QUALITY_DEFAULT;
	return st;
}

/* A pipe source on held.st, which teardown_held closes. */
static struct source *held_open(void)
{
	assert_null(held.src);
	held.src = source_open(&held.st, FRAME_BYTES_MAX_DEFAULT);
	assert_non_null(held.src);
	return held.src;
}

/* A new FIFO name in the test directory (its path into path, size bytes),
 * and a source of kind reading it. */
static struct source *held_fifo_source(enum source_kind kind, const char *name, char *path,
					    size_t size)
{
	tmp_path(path, size, name);
	assert_int_equal(mkfifo(path, 0600), 0);
	held_stream(kind, path);
	return held_open();
}

static void raw_frame(unsigned char *frame, unsigned number)
{
	unsigned i;

	for (i = 0; i < RAW_BYTES; i++)
		frame[i] = (unsigned char)(number * 40 + i);
}

static void write_all(int fd, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(2);
		p += n;
		len -= (size_t)n;
	}
}

/* Forks a child into held.child; 1 in the child, 0 in the parent. */
static int held_fork(void)
{
	pid_t pid;

	assert_int_equal(held.child, 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		return 1;
	held.child = pid;
	return 0;
}

/* Forks a writer: it opens path, writes frames first..first+count-1 and
 * then extra bytes of one more, and exits (the writer goes away). */
static void fork_raw_writer(const char *path, unsigned first, unsigned count, size_t extra)
{
	if (held_fork()) {
		unsigned char frame[RAW_BYTES];
		int fd = open(path, O_WRONLY);
		unsigned i;

		if (fd < 0)
			_exit(1);
		for (i = 0; i < count; i++) {
			raw_frame(frame, first + i);
			write_all(fd, frame, RAW_BYTES);
			usleep(10000); /* the reader sees frames in several reads */
		}
		raw_frame(frame, first + count);
		write_all(fd, frame, extra);
		_exit(0);
	}
}

/* Waits for held.child, which must have exited with 0. */
static void wait_child(void)
{
	pid_t pid = held.child;
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	held.child = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* The next frame, skipping "nothing this time" answers. */
static void next_frame(struct source *src, struct source_frame *frame,
		       const _Atomic int *stopping)
{
	int tries, rc = 0;

	for (tries = 0; tries < NEXT_TRIES && rc == 0; tries++)
		rc = source_next(src, frame, stopping);
	assert_int_equal(rc, 1);
}

static void assert_raw_frame(const struct source_frame *frame, unsigned number)
{
	unsigned char want[RAW_BYTES];

	raw_frame(want, number);
	assert_non_null(frame->pixels);
	assert_null(frame->jpeg);
	assert_int_equal(frame->format, PIXEL_RGB24);
	assert_int_equal(frame->width, RAW_W);
	assert_int_equal(frame->height, RAW_H);
	assert_memory_equal(frame->pixels, want, RAW_BYTES);
}

static void test_raw_fifo_writers_come_and_go(void **state)
{
	static _Atomic int stopping;
	struct source_frame frame;
	struct source *src;
	char path[PATH_MAX];
	unsigned i;

	(void)state;
	src = held_fifo_source(SOURCE_RAW, "raw.fifo", path, sizeof(path));
	assert_int_equal(source_is_paced(src), 0);

	fork_raw_writer(path, 0, 3, 0);
	for (i = 0; i < 3; i++) {
		next_frame(src, &frame, &stopping);
		assert_raw_frame(&frame, i);
	}
	wait_child();
	/* The writer went away: nothing this time, and the FIFO reopened. */
	assert_int_equal(source_next(src, &frame, &stopping), 0);
	assert_null(frame.pixels);

	/* A second writer: one frame, then part of another, dropped. */
	fork_raw_writer(path, 10, 1, RAW_BYTES / 2);
	next_frame(src, &frame, &stopping);
	assert_raw_frame(&frame, 10);
	wait_child();
	assert_int_equal(source_next(src, &frame, &stopping), 0);

	/* A third: its frame comes out whole, none of the partial one in it. */
	fork_raw_writer(path, 20, 1, 0);
	next_frame(src, &frame, &stopping);
	assert_raw_frame(&frame, 20);
	wait_child();
}

/* How long a source without a writer waits before its stop is set. */
#define IDLE_USEC USEC_PER_SEC
/* The most of the idle time the calling thread may be runnable (on a CPU
 * or waiting for one), in percent.  A source that spins is runnable all
 * the time (100%), however busy or slow the machine, since it never
 * blocks.  One that sleeps in poll() is runnable for the few system calls
 * of each wake (under 1% here; a 3x slower CPU and a sanitizer make that a
 * few percent; a waiting run queue on a loaded machine adds at most tens
 * of ms per wake).  Half the time catches any spin with 2x margin. */
#define IDLE_RUNNABLE_PERCENT_MAX 50
/* The most times the thread may block in the idle second.  The source
 * sleeps PIPE_POLL_MSEC (200 ms) or PIPE_EMPTY_EOF_USEC (100 ms) at a
 * time: at most ~10 wakes, plus a few for the stopper thread's create and
 * join; timers set these, so a slower machine makes no more of them.  A
 * source that polls in short sleeps instead (10 ms or less) wakes 100 or
 * more times: caught with ~5x margin either side. */
#define IDLE_WAKEUPS_MAX 50
/* source_next notices *stopping within PIPE_POLL_MSEC (200 ms, as
 * source_pipe.h promises); this allows three times that, for a slow or
 * busy machine.  Caught: a source that waits for a writer without looking
 * at the flag (it never returns: the test hangs in source_next), or
 * that sleeps PIPE_RETRY_USEC (1 s) in one piece. */
#define STOP_LATENCY_MAX_USEC (3 * 200 * USEC_PER_MSEC)

struct stopper {
	_Atomic int *stopping;
	int64_t delay_usec;
	int64_t set_usec; /* monotonic time the flag was set */
};

static void *stopper_main(void *arg)
{
	struct stopper *stopper = arg;

	clock_sleep_usec(stopper->delay_usec);
	stopper->set_usec = clock_mono_usec();
	atomic_store(stopper->stopping, 1);
	return NULL;
}

/* source_next(SRC) while STOPPER's thread sets the flag: it must
 * return 0 (stopped, no frame).  Returns clock_mono_usec() at its return. */
static int64_t next_until_stopped(struct source *src, struct stopper *stopper)
{
	struct source_frame frame;
	pthread_t thread;
	int64_t returned;

	assert_int_equal(pthread_create(&thread, NULL, stopper_main, stopper), 0);
	assert_int_equal(source_next(src, &frame, stopper->stopping), 0);
	returned = clock_mono_usec();
	assert_int_equal(pthread_join(thread, NULL), 0);
	return returned;
}

/* With no writer (none yet, and none after one went away) the source
 * sleeps: next neither spins nor misses a stop.  It is judged by what the
 * kernel counted for this thread, not by CPU microseconds: see the three
 * bounds above. */
static void test_fifo_without_writer_sleeps_and_stops(void **state)
{
	_Atomic int stopping = 0;
	struct stopper stopper = { &stopping, IDLE_USEC, 0 };
	struct source_frame frame;
	struct source *src;
	char path[PATH_MAX];
	int round;

	(void)state;
	src = held_fifo_source(SOURCE_MJPEG, "idle.fifo", path, sizeof(path));
	for (round = 0; round < 2; round++) {
		struct tu_thread_sched before, after;
		int64_t started, returned, runnable, wakeups;

		atomic_store(&stopping, 0);
		before = tu_thread_sched();
		started = clock_mono_usec();
		returned = next_until_stopped(src, &stopper);
		after = tu_thread_sched();
		runnable = after.runnable_usec - before.runnable_usec;
		wakeups = after.wakeups - before.wakeups;
		print_message("round %d: runnable %lld us of %lld, %lld wakes, stop seen after "
			      "%lld us\n", round, (long long)runnable,
			      (long long)(returned - started), (long long)wakeups,
			      (long long)(returned - stopper.set_usec));
		if (runnable * 100 > IDLE_RUNNABLE_PERCENT_MAX * (returned - started))
			fail_msg("runnable %lld us of %lld us without a writer: it spins",
				 (long long)runnable, (long long)(returned - started));
		if (wakeups > IDLE_WAKEUPS_MAX)
			fail_msg("%lld wakes in %lld us without a writer", (long long)wakeups,
				 (long long)(returned - started));
		if (returned - stopper.set_usec > STOP_LATENCY_MAX_USEC)
			fail_msg("stop noticed after %lld us",
				 (long long)(returned - stopper.set_usec));
		if (round == 0) {
			/* A writer comes and goes without a byte; then none. */
			int fd = open(path, O_WRONLY | O_NONBLOCK);

			assert_true(fd >= 0);
			close(fd);
			atomic_store(&stopping, 0);
			assert_int_equal(source_next(src, &frame, &stopping), 0);
		}
	}
}

static void write_file(const char *path, const struct blob *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n;

	assert_true(fd >= 0);
	n = write(fd, data->data, data->len);
	close(fd);
	assert_int_equal(n, (ssize_t)data->len);
}

/* A regular file of two JPEGs plays them in turn, looping, at fps. */
static void test_mjpeg_file_loops(void **state)
{
	static _Atomic int stopping;
	struct blob *in = held_blob();
	const struct blob *want[] = { &f1, &f2 };
	struct source_frame frame;
	struct source *src;
	char path[PATH_MAX];
	int64_t start;
	int i;

	(void)state;
	tmp_path(path, sizeof(path), "two.mjpeg");
	blob_add(in, f1.data, f1.len);
	blob_add(in, f2.data, f2.len);
	write_file(path, in);
	held_stream(SOURCE_MJPEG, path)->fps = 20;
	src = held_open();
	assert_int_equal(source_is_paced(src), 1);
	start = clock_mono_usec();
	for (i = 0; i < 7; i++) {
		next_frame(src, &frame, &stopping);
		assert_null(frame.pixels);
		assert_non_null(frame.jpeg);
		assert_int_equal(frame.jpeg_bytes, want[i % 2]->len);
		assert_memory_equal(frame.jpeg, want[i % 2]->data, want[i % 2]->len);
		assert_int_equal(frame.width, i % 2 ? 40 : 64);
		assert_int_equal(frame.height, i % 2 ? 32 : 48);
	}
	/* 7 frames at 20 fps: the first at once, then 6 intervals of 50 ms.
	 * Only a floor (a slow machine is later, never earlier), less 5 ms
	 * of clock granularity; caught: a file played unpaced, in ~0 ms. */
	assert_true(clock_mono_usec() - start >= 6 * 50 * USEC_PER_MSEC - 5 * USEC_PER_MSEC);
}

/* A structurally complete JPEG that does not decode is skipped (0), the
 * good one after it comes out. */
static void test_mjpeg_fifo_skips_invalid(void **state)
{
	static const unsigned char invalid[] = { 0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x03,
						 0x41, 0xFF, 0xD9 };
	static _Atomic int stopping;
	struct source_frame frame;
	struct source *src;
	char path[PATH_MAX];
	int rc;

	(void)state;
	src = held_fifo_source(SOURCE_MJPEG, "mjpeg.fifo", path, sizeof(path));
	if (held_fork()) {
		int fd = open(path, O_WRONLY);

		if (fd < 0)
			_exit(1);
		write_all(fd, "junk", 4);
		write_all(fd, invalid, sizeof(invalid));
		write_all(fd, f1.data, f1.len);
		write_all(fd, f2.data, f2.len / 2); /* cut off by the writer's end */
		_exit(0);
	}
	rc = source_next(src, &frame, &stopping);
	assert_int_equal(rc, 0); /* the invalid one */
	next_frame(src, &frame, &stopping);
	assert_int_equal(frame.jpeg_bytes, f1.len);
	assert_memory_equal(frame.jpeg, f1.data, f1.len);
	wait_child();
	assert_int_equal(source_next(src, &frame, &stopping), 0); /* writer gone */
}

/* stdin ("-"): frames, then its end ends the source; fd 0 stays open. */
static void test_raw_stdin(void **state)
{
	static _Atomic int stopping;
	unsigned char frames[2 * RAW_BYTES];
	struct source_frame frame;
	struct source *src;
	int fds[2];

	(void)state;
	held.saved_stdin = dup(STDIN_FILENO);
	assert_true(held.saved_stdin >= 0);
	assert_int_equal(pipe(fds), 0);
	raw_frame(frames, 5);
	raw_frame(frames + RAW_BYTES, 6);
	assert_int_equal(write(fds[1], frames, sizeof(frames) - 3), (ssize_t)sizeof(frames) - 3);
	close(fds[1]);
	assert_int_equal(dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
	close(fds[0]);

	held_stream(SOURCE_RAW, "-");
	src = held_open();
	next_frame(src, &frame, &stopping);
	assert_raw_frame(&frame, 5);
	assert_int_equal(source_next(src, &frame, &stopping), -1);
	assert_int_equal(source_next(src, &frame, &stopping), -1);
	held_close_source();
	assert_true(fcntl(STDIN_FILENO, F_GETFD) >= 0);
}

/* A raw file with a partial frame at its end: whole frames only, looped. */
static void test_raw_file_drops_partial_and_loops(void **state)
{
	static _Atomic int stopping;
	unsigned char frames[2 * RAW_BYTES];
	struct blob *in = held_blob();
	struct source_frame frame;
	struct source *src;
	char path[PATH_MAX];
	int i;

	(void)state;
	raw_frame(frames, 1);
	raw_frame(frames + RAW_BYTES, 2);
	blob_add(in, frames, sizeof(frames) - 1);
	tmp_path(path, sizeof(path), "frames.raw");
	write_file(path, in);
	held_stream(SOURCE_RAW, path)->fps = 200;
	src = held_open();
	for (i = 0; i < 3; i++) {
		next_frame(src, &frame, &stopping);
		assert_raw_frame(&frame, 1);
	}
}

static void test_open_failures(void **state)
{
	struct source_frame frame;
	_Atomic int stopping = 0;

	(void)state;
	/* A path missing (or not yet a FIFO) at start is waited for: the
	 * source opens, and gives no frame while the path cannot be read. */
	held_stream(SOURCE_RAW, "/nonexistent/test_source_pipe.fifo");
	assert_int_equal(source_next(held_open(), &frame, &stopping), 0);
	held_close_source();
	held_stream(SOURCE_MJPEG, tmp_dir);
	assert_int_equal(source_next(held_open(), &frame, &stopping), 0);
	held_close_source();
	/* The one kind without a producer (source.c's table has no row). */
	held_stream(SOURCE_INGEST, "/dev/null");
	assert_null(source_open(&held.st, FRAME_BYTES_MAX_DEFAULT));
	held_stream(SOURCE_RAW, "/dev/null")->width = 0;
	assert_null(source_open(&held.st, FRAME_BYTES_MAX_DEFAULT));
}

/* Bytes this process has read (read() and friends, any file), from
 * /proc/self/io: counts what a source pulled from a device without
 * depending on how fast the machine is. */
static uint64_t process_read_bytes(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	unsigned long long rchar = 0;
	char line[128];

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "rchar: %llu", &rchar) == 1)
			break;
	fclose(f);
	return rchar;
}

/* A character device (/dev/zero: bytes as fast as they are read) has no
 * writer to pace it: it is played at fps like a file, and the producer
 * pauses it without viewers (it pauses what source_is_paced says).
 *
 * BUG (source_pipe.c, open_path): only regular files were paced; raw:
 * /dev/zero gave about 1,100 frames a second at fps 30 and was read on
 * without viewers. */
static void test_raw_char_device_paced(void **state)
{
	static _Atomic int stopping;
	struct source_frame frame;
	struct source *src;
	int64_t start, took;
	int i;

	(void)state;
	held_stream(SOURCE_RAW, "/dev/zero")->fps = 20;
	src = held_open();
	assert_int_equal(source_is_paced(src), 1);
	start = clock_mono_usec();
	for (i = 0; i < 6; i++) {
		next_frame(src, &frame, &stopping);
		assert_non_null(frame.pixels);
		assert_int_equal(frame.pixels[0], 0);
	}
	/* The first at once, then 5 intervals of 50 ms: a lower bound, which
	 * a slow machine only exceeds (5 ms for clock granularity). */
	took = clock_mono_usec() - start;
	if (took < 5 * 50 * USEC_PER_MSEC - 5 * USEC_PER_MSEC)
		fail_msg("6 frames at 20 fps from /dev/zero in %lld us", (long long)took);
}

/* mjpeg: on a device that never gives a JPEG: the bytes without a frame
 * are paced too, at most about frame_bytes_max (plus a read) per 1/fps.
 *
 * BUG (source_pipe.c): mjpeg:/dev/zero was read as fast as the kernel
 * gives zeros (gigabytes a second, a core at 100 %) until stopped. */
static void test_mjpeg_char_device_garbage_paced(void **state)
{
	enum { FPS = 10, MAX_BYTES = 64 * 1024, READ_BYTES = 64 * 1024 };
	_Atomic int stopping = 0;
	struct stopper stopper = { &stopping, USEC_PER_SEC, 0 };
	struct source *src;
	uint64_t read_bytes, allowed;
	int64_t start, returned;

	(void)state;
	held_stream(SOURCE_MJPEG, "/dev/zero")->fps = FPS;
	assert_null(held.src);
	src = held.src = source_open(&held.st, MAX_BYTES); /* teardown_held closes it */
	assert_non_null(src);
	assert_int_equal(source_is_paced(src), 1);
	read_bytes = process_read_bytes();
	start = clock_mono_usec();
	returned = next_until_stopped(src, &stopper);
	read_bytes = process_read_bytes() - read_bytes;
	/* Paced: a frame's turn per MAX_BYTES + READ_BYTES, one turn at once
	 * and one per 100 ms after; 4x that as margin (and the /proc reads).
	 * Unpaced, 1 s of /dev/zero is gigabytes. */
	allowed = 4 * (uint64_t)(MAX_BYTES + READ_BYTES) *
		  (uint64_t)(1 + (returned - start) * FPS / USEC_PER_SEC);
	if (read_bytes > allowed)
		fail_msg("%llu bytes read from /dev/zero in %lld us (at most %llu)",
			 (unsigned long long)read_bytes, (long long)(returned - start),
			 (unsigned long long)allowed);
}

/* Every test holds what it makes in held; teardown_held frees it. */
#define HELD_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_held, teardown_held)

int main(void)
{
	const struct CMUnitTest source_tests[] = {
		HELD_TEST(test_raw_fifo_writers_come_and_go),
		HELD_TEST(test_fifo_without_writer_sleeps_and_stops),
		HELD_TEST(test_mjpeg_file_loops),
		HELD_TEST(test_mjpeg_fifo_skips_invalid),
		HELD_TEST(test_raw_stdin),
		HELD_TEST(test_raw_file_drops_partial_and_loops),
		HELD_TEST(test_open_failures),
		HELD_TEST(test_raw_char_device_paced),
		HELD_TEST(test_mjpeg_char_device_garbage_paced),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("pipe_source", source_tests, setup_tmp,
					      teardown_tmp);
	return failed ? 1 : 0;
}
