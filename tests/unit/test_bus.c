/* Unit tests for fcgi/bus.c: the shared-memory frame bus.  Each test gets
 * a fresh directory under /tmp as its bus_dir, removed afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus.h"
#include "clock.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define FRAME_MAX 65536u
#define STREAM "cam"
/* how much earlier than its timeout a wait may return: clock granularity */
#define EARLY_SLACK_USEC (3 * USEC_PER_MSEC)
/* The timeout of a wait that should end early (at once, or woken by
 * another thread 30-50 ms in), and the most it may take: half of it.  A
 * correct wait takes microseconds (or the 30-50 ms); the defect caught,
 * a wait that sleeps out its timeout, takes all 5 s.  So a slower or busy
 * machine has over 2 s of slack, 40 times the longest correct wait. */
#define WAIT_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define EARLY_END_MAX_USEC (WAIT_TIMEOUT_USEC / 2)
/* A timed-out wait of 50 ms may return this late: the defect caught is a
 * wait that does not time out (it would block for good) or takes its
 * timeout in the wrong unit (50 s, or 1000 times longer); 20 times the
 * timeout is room for any slow machine. */
#define TIMEOUT_LATE_MAX_USEC USEC_PER_SEC

struct fixture {
	char dir[PATH_MAX];
	char file[PATH_MAX + 16];   /* dir/STREAM: the stream's bus file */
	char victim[PATH_MAX + 16]; /* dir/victim: what a planted link points at */
	struct bus *bus;      /* opened by bus_setup, closed by teardown */
	struct bus *other;    /* a second opening by a test, closed by teardown */
	struct bus_frame frame;
	_Atomic int cancel;   /* for bus_lock_producer; never set */
};

static int teardown(void **state);

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	f->frame.capacity = FRAME_MAX;
	f->frame.jpeg = malloc(FRAME_MAX);
	if (!f->frame.jpeg || tu_dir_make(f->dir, sizeof(f->dir), "bus") < 0) {
		teardown(state);
		return -1;
	}
	snprintf(f->file, sizeof(f->file), "%s/%s", f->dir, STREAM);
	snprintf(f->victim, sizeof(f->victim), "%s/victim", f->dir);
	return 0;
}

/* setup plus an open bus, not yet locked. */
static int bus_setup(void **state)
{
	struct fixture *f;

	if (setup(state) < 0)
		return -1;
	f = *state;
	f->bus = bus_open(f->dir, STREAM, FRAME_MAX);
	return f->bus ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	bus_close(f->bus);
	bus_close(f->other);
	tu_dir_remove(f->dir); /* FTW_PHYS: never follows the planted links */
	free(f->frame.jpeg);
	free(f);
	return 0;
}

static void lock_producer(struct fixture *f)
{
	assert_int_equal(bus_lock_producer(f->bus, &f->cancel), 0);
}

/* A frame whose bytes tell which it is: byte i is (i * 7 + tag). */
static unsigned char *make_frame(size_t bytes, unsigned tag)
{
	unsigned char *buf = malloc(bytes ? bytes : 1);
	size_t i;

	assert_non_null(buf);
	for (i = 0; i < bytes; i++)
		buf[i] = (unsigned char)(i * 7 + tag);
	return buf;
}

static void publish_tagged(struct bus *bus, size_t bytes, unsigned tag, int64_t publish_usec)
{
	unsigned char *buf = make_frame(bytes, tag);

	assert_int_equal(bus_publish(bus, buf, bytes, 640, 480, publish_usec, 1000), 0);
	free(buf);
}

static void assert_frame_is(const struct bus_frame *frame, size_t bytes, unsigned tag)
{
	unsigned char *expected = make_frame(bytes, tag);

	assert_int_equal(frame->bytes, bytes);
	assert_memory_equal(frame->jpeg, expected, bytes);
	free(expected);
}

/* An ingest publish into f->bus: a frame of BYTES tagged 6, 32x16 at
 * PUBLISH_USEC; bus_publish_shared's result. */
static int publish_ingest(struct fixture *f, size_t bytes, int64_t publish_usec,
			  _Atomic int *cancel)
{
	unsigned char *jpeg = make_frame(bytes, 6);
	int rc = bus_publish_shared(f->bus, jpeg, bytes, 32, 16, publish_usec, -1, cancel);

	free(jpeg);
	return rc;
}

/* f->other: a second opening of the stream, closed by teardown (or by the
 * test, which then sets it to NULL). */
static struct bus *open_other(struct fixture *f)
{
	f->other = bus_open(f->dir, STREAM, FRAME_MAX);
	assert_non_null(f->other);
	return f->other;
}

/* ---- opening ------------------------------------------------------------ */

static void test_open_creates_file_0600(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_int_equal(stat(f->file, &st), -1);
	f->bus = bus_open(f->dir, STREAM, FRAME_MAX);
	assert_non_null(f->bus);
	assert_int_equal(stat(f->file, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	/* room for the header and BUS_SLOTS frames of FRAME_MAX */
	assert_true((size_t)st.st_size >= (size_t)BUS_SLOTS * FRAME_MAX);
	assert_string_equal(bus_name(f->bus), STREAM);
	assert_int_equal(bus_frame_bytes_max(f->bus), FRAME_MAX);
}

/* The bus directory itself is created when missing, private too. */
static void test_open_creates_dir(void **state)
{
	struct fixture *f = *state;
	char sub[PATH_MAX + 16];
	struct stat st;

	snprintf(sub, sizeof(sub), "%s/sub", f->dir);
	f->bus = bus_open(sub, STREAM, FRAME_MAX);
	assert_non_null(f->bus);
	assert_int_equal(stat(sub, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0077, 0);
}

static void test_empty_bus_has_no_frame(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(bus_latest(f->bus), 0);
	f->frame.seq = 0;
	f->frame.bytes = 0;
	assert_int_equal(bus_read_latest(f->bus, &f->frame), 0);
	assert_int_equal(f->frame.seq, 0);
	assert_int_equal(f->frame.bytes, 0);

	/* locking alone publishes nothing */
	lock_producer(f);
	assert_int_equal(bus_latest(f->bus), 0);
	assert_int_equal(bus_read_latest(f->bus, &f->frame), 0);
}

/* ---- publish and read --------------------------------------------------- */

static void test_publish_reads_back_exact(void **state)
{
	struct fixture *f = *state;
	unsigned char *jpeg = make_frame(12345, 3);

	lock_producer(f);
	assert_int_equal(bus_publish(f->bus, jpeg, 12345, 320, 200, 1767225600000042LL, 1500), 0);
	assert_int_equal(bus_latest(f->bus), 1);
	assert_int_equal(bus_read_latest(f->bus, &f->frame), 1);
	assert_int_equal(f->frame.seq, 1);
	assert_int_equal(f->frame.bytes, 12345);
	assert_memory_equal(f->frame.jpeg, jpeg, 12345);
	assert_int_equal(f->frame.width, 320);
	assert_int_equal(f->frame.height, 200);
	assert_int_equal(f->frame.publish_usec, 1767225600000042LL);

	/* reading again gives the same frame */
	memset(f->frame.jpeg, 0, FRAME_MAX);
	assert_int_equal(bus_read_latest(f->bus, &f->frame), 1);
	assert_int_equal(f->frame.seq, 1);
	assert_memory_equal(f->frame.jpeg, jpeg, 12345);
	free(jpeg);
}

static void test_publish_exactly_max(void **state)
{
	struct fixture *f = *state;

	lock_producer(f);
	publish_tagged(f->bus, FRAME_MAX, 9, 1);
	assert_int_equal(bus_read_latest(f->bus, &f->frame), 1);
	assert_frame_is(&f->frame, FRAME_MAX, 9);
}

static void test_publish_too_large_changes_nothing(void **state)
{
	struct fixture *f = *state;
	unsigned char *big = make_frame(FRAME_MAX + 1, 5);
	struct bus_stats before, after;

	lock_producer(f);
	publish_tagged(f->bus, 1000, 1, 111);
	bus_stats(f->bus, &before);

	assert_int_equal(bus_publish(f->bus, big, FRAME_MAX + 1, 999, 999, 222, 10), -1);

	assert_int_equal(bus_latest(f->bus), 1);
	bus_stats(f->bus, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(bus_read_latest(f->bus, &f->frame), 1);
	assert_int_equal(f->frame.seq, 1);
	assert_int_equal(f->frame.publish_usec, 111);
	assert_int_equal(f->frame.width, 640);
	assert_frame_is(&f->frame, 1000, 1);
	free(big);
}

static void test_ring_wrap(void **state)
{
	struct fixture *f = *state;
	unsigned i;

	lock_producer(f);
	for (i = 1; i <= 10; i++)
		publish_tagged(f->bus, 1000 + i * 100, i, (int64_t)i * 1000);
	assert_int_equal(bus_latest(f->bus), 10);
	assert_int_equal(bus_read_latest(f->bus, &f->frame), 1);
	assert_int_equal(f->frame.seq, 10);
	assert_int_equal(f->frame.publish_usec, 10000);
	assert_frame_is(&f->frame, 2000, 10);
}

/* A buffer too small for the frame is an error, not an overflow. */
static void test_read_into_small_buffer(void **state)
{
	struct fixture *f = *state;
	unsigned char small[16 + 16];
	struct bus_frame frame = { .jpeg = small, .capacity = 16 };

	lock_producer(f);
	publish_tagged(f->bus, 1000, 1, 1);
	memset(small, 0xa5, sizeof(small));
	assert_int_equal(bus_read_latest(f->bus, &frame), -1);
	assert_int_equal(frame.seq, 0);
	assert_int_equal(small[16], 0xa5);
}

/* ---- waiting ------------------------------------------------------------ */

/* bus_wait_newer(after, timeout_usec), which must return want; the
 * microseconds it took. */
static int64_t timed_wait_newer(struct fixture *f, uint64_t after, int64_t timeout_usec, int want)
{
	int64_t t0 = clock_mono_usec();

	assert_int_equal(bus_wait_newer(f->bus, after, timeout_usec), want);
	return clock_mono_usec() - t0;
}

static void test_wait_newer_immediate(void **state)
{
	struct fixture *f = *state;

	lock_producer(f);
	publish_tagged(f->bus, 100, 1, 1);
	assert_true(timed_wait_newer(f, 0, WAIT_TIMEOUT_USEC, 1) < EARLY_END_MAX_USEC);
}

static void test_wait_newer_times_out(void **state)
{
	struct fixture *f = *state;
	const int64_t timeout = 50 * USEC_PER_MSEC;
	const uint64_t after[] = { 1, 5 }; /* the newest, and one the bus never had */

	lock_producer(f);
	publish_tagged(f->bus, 100, 1, 1);
	for (size_t i = 0; i < sizeof(after) / sizeof(after[0]); i++) {
		int64_t dt = timed_wait_newer(f, after[i], timeout, 0);

		if (dt < timeout - EARLY_SLACK_USEC || dt > TIMEOUT_LATE_MAX_USEC)
			fail_msg("bus_wait_newer(%llu, timeout 50 ms) returned after %lld usec",
				 (unsigned long long)after[i], (long long)dt);
	}
}

struct delayed {
	struct bus *bus;
	int64_t delay_usec;
	int wake_only; /* bus_wake_all instead of a publish */
};

static void *delayed_publish(void *arg)
{
	struct delayed *d = arg;
	static const unsigned char jpeg[4] = { 0xFF, 0xD8, 0xFF, 0xD9 };

	clock_sleep_usec(d->delay_usec);
	if (d->wake_only)
		bus_wake_all(d->bus);
	else if (bus_publish(d->bus, jpeg, sizeof(jpeg), 1, 1, 1, -1) != 0)
		abort();
	return NULL;
}

/* bus_wait_newer(0) as producer while another thread, 30 ms in, publishes
 * (wake_only 0) or only wakes the waiters (1).  Returns what the wait
 * returned, which must have ended long before its timeout. */
static int wait_newer_beside(struct fixture *f, int wake_only)
{
	struct delayed d = { .bus = f->bus, .delay_usec = 30 * USEC_PER_MSEC,
			     .wake_only = wake_only };
	pthread_t thread;
	int64_t t0, dt;
	int rc;

	lock_producer(f);
	t0 = clock_mono_usec();
	assert_int_equal(pthread_create(&thread, NULL, delayed_publish, &d), 0);
	rc = bus_wait_newer(f->bus, 0, WAIT_TIMEOUT_USEC);
	dt = clock_mono_usec() - t0;
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_true(dt < EARLY_END_MAX_USEC);
	return rc;
}

/* A publish from another thread ends the wait long before its timeout. */
static void test_wait_newer_woken_by_publish(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(wait_newer_beside(f, 0), 1);
	assert_int_equal(bus_latest(f->bus), 1);
}

static void test_wake_all_ends_wait(void **state)
{
	assert_int_equal(wait_newer_beside(*state, 1), 0);
}

/* ---- sharing ------------------------------------------------------------ */

static void test_second_open_shares_frames(void **state)
{
	struct fixture *f = *state;
	struct bus_stats stats;
	struct bus *other;

	lock_producer(f);
	publish_tagged(f->bus, 777, 4, 44);
	other = open_other(f);
	assert_int_equal(bus_latest(other), 1);
	assert_int_equal(bus_read_latest(other, &f->frame), 1);
	assert_int_equal(f->frame.seq, 1);
	assert_int_equal(f->frame.publish_usec, 44);
	assert_frame_is(&f->frame, 777, 4);

	/* later publishes show up too, and so do counters the other way */
	publish_tagged(f->bus, 888, 5, 55);
	assert_int_equal(bus_latest(other), 2);
	assert_int_equal(bus_read_latest(other, &f->frame), 1);
	assert_int_equal(f->frame.seq, 2);
	assert_frame_is(&f->frame, 888, 5);
	bus_viewer_enter(other);
	bus_stats(f->bus, &stats);
	assert_int_equal(stats.viewers, 1);
	assert_int_equal(stats.frames_published, 2);
}

/* Ingest: a stream without producer takes the lock per frame. */
static void test_publish_shared(void **state)
{
	struct fixture *f = *state;
	struct bus_stats stats;

	assert_int_equal(publish_ingest(f, 500, 66, NULL), 0);
	assert_int_equal(publish_ingest(f, 500, 67, NULL), 0);
	assert_int_equal(bus_latest(f->bus), 2);
	assert_int_equal(bus_read_latest(f->bus, &f->frame), 1);
	assert_int_equal(f->frame.publish_usec, 67);
	assert_int_equal(f->frame.width, 32);
	assert_frame_is(&f->frame, 500, 6);
	bus_stats(f->bus, &stats);
	assert_int_equal(stats.frames_published, 2);
	assert_int_equal(stats.frames_encoded, 0);
	assert_int_equal(publish_ingest(f, FRAME_MAX + 1, 68, NULL), -1);
	assert_int_equal(bus_latest(f->bus), 2);
}

/* ---- counters ----------------------------------------------------------- */

/* A producer holds the stream's lock for as long as it runs (a reload made
 * an ingest stream into another kind): an ingest publish gives up after
 * BUS_PUBLISH_WAIT_USEC instead of blocking for ever, publishing nothing. */
static void test_publish_shared_gives_up_on_a_producer(void **state)
{
	struct fixture *f = *state;
	_Atomic int never = 0;
	int64_t start, waited;

	assert_int_equal(bus_lock_producer(open_other(f), &f->cancel), 0);
	start = clock_mono_usec();
	assert_int_equal(publish_ingest(f, 500, 66, &never), BUS_PUBLISH_BUSY);
	waited = clock_mono_usec() - start;
	/* a lower bound only: how much longer it took depends on the machine */
	assert_true(waited >= BUS_PUBLISH_WAIT_USEC - EARLY_SLACK_USEC);
	assert_int_equal(bus_latest(f->bus), 0);
	/* once the producer is gone the lock is free again */
	bus_close(f->other);
	f->other = NULL;
	assert_int_equal(publish_ingest(f, 500, 67, &never), BUS_PUBLISHED);
	assert_int_equal(bus_latest(f->bus), 1);
}

/* A set cancel flag (the stream was retired) publishes nothing, whether
 * the lock is free or held. */
static void test_publish_shared_cancelled(void **state)
{
	struct fixture *f = *state;
	struct bus *producer = open_other(f);
	_Atomic int retired = 1;
	int64_t start;

	assert_int_equal(publish_ingest(f, 500, 66, &retired), BUS_PUBLISH_CANCELLED);
	assert_int_equal(bus_latest(f->bus), 0);
	assert_int_equal(bus_lock_producer(producer, &f->cancel), 0);
	start = clock_mono_usec();
	assert_int_equal(publish_ingest(f, 500, 67, &retired), BUS_PUBLISH_CANCELLED);
	/* it did not sit out the wait: the flag is looked at between tries
	 * (the margin is the whole wait, which no slow machine takes) */
	assert_true(clock_mono_usec() - start < BUS_PUBLISH_WAIT_USEC);
	assert_int_equal(bus_latest(f->bus), 0);
}

static void test_stats(void **state)
{
	struct fixture *f = *state;
	static const unsigned char jpeg[100];
	struct bus_stats stats;
	size_t i;

	bus_stats(f->bus, &stats);
	assert_int_equal(stats.frames_published, 0);
	assert_int_equal(stats.frames_encoded, 0);
	assert_int_equal(stats.frames_delivered, 0);
	assert_int_equal(stats.viewers, 0);
	assert_int_equal(stats.producer_pid, 0);

	lock_producer(f);
	bus_stats(f->bus, &stats);
	assert_int_equal(stats.producer_pid, getpid());

	/* buckets: <=500, <=1000, <=2000, <=5000, ..., >50000 */
	assert_int_equal(bus_publish(f->bus, jpeg, 100, 10, 20, 1000, 1500), 0);
	assert_int_equal(bus_publish(f->bus, jpeg, 100, 10, 20, 2000, -1), 0);
	assert_int_equal(bus_publish(f->bus, jpeg, 100, 10, 20, 3000, 0), 0);
	assert_int_equal(bus_publish(f->bus, jpeg, 100, 30, 40, 4000, 100000), 0);
	bus_stats(f->bus, &stats);
	assert_int_equal(stats.frames_published, 4);
	assert_int_equal(stats.frames_encoded, 3);
	assert_int_equal(stats.encode_usec_total, 101500);
	for (i = 0; i < BUS_ENCODE_BUCKETS; i++)
		assert_int_equal(stats.encode_hist[i], i == 0 || i == 2 || i == 7 ? 1 : 0);
	assert_int_equal(stats.width, 30);
	assert_int_equal(stats.height, 40);
	assert_int_equal(stats.last_publish_usec, 4000);

	bus_count_delivered(f->bus, 1, 1000, 0);
	bus_count_delivered(f->bus, 1, 500, 3);
	bus_viewer_enter(f->bus);
	bus_viewer_enter(f->bus);
	bus_viewer_enter(f->bus);
	bus_viewer_leave(f->bus);
	bus_stats(f->bus, &stats);
	assert_int_equal(stats.frames_delivered, 2);
	assert_int_equal(stats.bytes_sent, 1500);
	assert_int_equal(stats.frames_dropped, 3);
	assert_int_equal(stats.viewers, 2);
	bus_viewer_leave(f->bus);
	bus_viewer_leave(f->bus);
	bus_stats(f->bus, &stats);
	assert_int_equal(stats.viewers, 0);
}

/* ---- demand ------------------------------------------------------------- */

static void test_demand(void **state)
{
	struct fixture *f = *state;
	int64_t t0, dt;

	lock_producer(f);
	/* nobody asked yet: the producer sleeps out its timeout */
	t0 = clock_mono_usec();
	assert_int_equal(bus_wait_demand(f->bus, USEC_PER_SEC, 50 * USEC_PER_MSEC), 0);
	dt = clock_mono_usec() - t0;
	assert_true(dt >= 50 * USEC_PER_MSEC - EARLY_SLACK_USEC);
	/* a viewer wants frames: returns at once */
	bus_demand(f->bus);
	t0 = clock_mono_usec();
	assert_int_equal(bus_wait_demand(f->bus, USEC_PER_SEC, WAIT_TIMEOUT_USEC), 1);
	dt = clock_mono_usec() - t0;
	assert_true(dt < EARLY_END_MAX_USEC);
}

static void *delayed_demand(void *arg)
{
	clock_sleep_usec(50 * USEC_PER_MSEC);
	bus_demand(arg);
	return NULL;
}

static void test_demand_wakes_paused_producer(void **state)
{
	struct fixture *f = *state;
	pthread_t thread;
	int64_t t0, dt;
	int rc;

	lock_producer(f);
	t0 = clock_mono_usec();
	assert_int_equal(pthread_create(&thread, NULL, delayed_demand, f->bus), 0);
	rc = bus_wait_demand(f->bus, USEC_PER_SEC, WAIT_TIMEOUT_USEC);
	dt = clock_mono_usec() - t0;
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_int_equal(rc, 1);
	assert_true(dt < EARLY_END_MAX_USEC);
}

/* ---- files that are not ours ------------------------------------------- */

/* What a second local user plants, and what the bus must refuse without
 * touching it.  Files of "another user" are chowned to OTHER_UID, which
 * needs root; as another user those tests are skipped. */
#define OTHER_UID 65534 /* nobody */
#define PLANTED "planted by another user\n"

/* bus_open with its log (stderr) captured into log, NUL-terminated. */
static struct bus *open_logged(const char *dir, const char *name, char *log, size_t size)
{
	char tmpl[] = "/tmp/mjpeg-fcgi-test-log-XXXXXX";
	int fd = mkstemp(tmpl), saved = dup(STDERR_FILENO);
	struct bus *bus;
	ssize_t got;

	assert_true(fd >= 0 && saved >= 0);
	unlink(tmpl);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	bus = bus_open(dir, name, FRAME_MAX);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	got = pread(fd, log, size - 1, 0);
	close(fd);
	log[got > 0 ? got : 0] = '\0';
	return bus;
}

/* bus_open must fail, saying path and words. */
static void assert_refused(const char *dir, const char *name, const char *path,
			   const char *words)
{
	char log[4096];
	struct bus *bus = open_logged(dir, name, log, sizeof(log));

	if (bus)
		bus_close(bus);
	assert_null(bus);
	if (!strstr(log, path) || !strstr(log, words))
		fail_msg("log should name %s and say '%s', was: %s", path, words, log);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

/* The file at path still holds exactly text. */
static void assert_file_holds(const char *path, const char *text)
{
	char buf[256];
	int fd = open(path, O_RDONLY);
	ssize_t got;

	assert_true(fd >= 0);
	got = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(got, (ssize_t)strlen(text));
	assert_memory_equal(buf, text, strlen(text));
}

static int entries_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static int skip_unless_root(void)
{
	if (geteuid() == 0)
		return 0;
	skip();
	return 1;
}

static void test_refuses_dir_of_another_user(void **state)
{
	struct fixture *f = *state;
	char bus_dir[PATH_MAX + 16];

	if (skip_unless_root())
		return;
	snprintf(bus_dir, sizeof(bus_dir), "%s/bus", f->dir);
	assert_int_equal(mkdir(bus_dir, 0700), 0);
	assert_int_equal(chown(bus_dir, OTHER_UID, OTHER_UID), 0);
	assert_refused(bus_dir, STREAM, bus_dir, "is owned by uid 65534");
	assert_int_equal(entries_in(bus_dir), 0);
}

static void test_refuses_dir_others_may_write(void **state)
{
	struct fixture *f = *state;
	static const mode_t modes[] = { 0777, 0775, 0730, 0702, 01777 };
	char bus_dir[PATH_MAX + 16], expect[32];
	struct bus *bus;

	snprintf(bus_dir, sizeof(bus_dir), "%s/bus", f->dir);
	assert_int_equal(mkdir(bus_dir, 0700), 0);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(bus_dir, modes[i]), 0);
		snprintf(expect, sizeof(expect), "has mode %04o", (unsigned)modes[i]);
		assert_refused(bus_dir, STREAM, bus_dir, expect);
		assert_int_equal(entries_in(bus_dir), 0);
	}
	/* others may look in (0755): the files themselves are 0600 */
	assert_int_equal(chmod(bus_dir, 0755), 0);
	bus = bus_open(bus_dir, STREAM, FRAME_MAX);
	assert_non_null(bus);
	bus_close(bus);
}

static void test_refuses_symlinked_dir(void **state)
{
	struct fixture *f = *state;
	char target[PATH_MAX + 16], link_path[PATH_MAX + 16];

	snprintf(target, sizeof(target), "%s/elsewhere", f->dir);
	snprintf(link_path, sizeof(link_path), "%s/bus", f->dir);
	assert_int_equal(mkdir(target, 0700), 0);
	assert_int_equal(symlink(target, link_path), 0);
	assert_refused(link_path, STREAM, link_path, "is a symbolic link, not a directory");
	assert_int_equal(entries_in(target), 0);
	/* a symbolic link to a file, too */
	unlink(link_path);
	snprintf(target, sizeof(target), "%s/file", f->dir);
	write_file(target, PLANTED, 0600);
	assert_int_equal(symlink(target, link_path), 0);
	assert_refused(link_path, STREAM, link_path, "is a symbolic link");
	assert_file_holds(target, PLANTED);
}

static void test_refuses_file_of_another_user(void **state)
{
	struct fixture *f = *state;
	static const mode_t modes[] = { 0600, 0666 };

	if (skip_unless_root())
		return;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		write_file(f->file, PLANTED, modes[i]);
		assert_int_equal(chown(f->file, OTHER_UID, OTHER_UID), 0);
		assert_refused(f->dir, STREAM, f->file, "is owned by uid 65534");
		assert_file_holds(f->file, PLANTED);
		unlink(f->file);
	}
}

static void test_refuses_file_of_ours_with_other_mode(void **state)
{
	struct fixture *f = *state;
	static const mode_t modes[] = { 0666, 0644, 0660, 0700, 0640 };
	char expect[64];

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		write_file(f->file, PLANTED, modes[i]);
		snprintf(expect, sizeof(expect), "has mode %04o, not 0600", (unsigned)modes[i]);
		assert_refused(f->dir, STREAM, f->file, expect);
		assert_file_holds(f->file, PLANTED);
		unlink(f->file);
	}
}

static void test_refuses_symlink_as_stream_file(void **state)
{
	struct fixture *f = *state;

	write_file(f->victim, PLANTED, 0600);
	assert_int_equal(symlink(f->victim, f->file), 0);
	assert_refused(f->dir, STREAM, f->file, "is a symbolic link");
	assert_file_holds(f->victim, PLANTED);
	/* dangling: nothing is created at the f->victim */
	unlink(f->victim);
	assert_refused(f->dir, STREAM, f->file, "is a symbolic link");
	assert_int_equal(access(f->victim, F_OK), -1);
}

static void test_refuses_hard_link(void **state)
{
	struct fixture *f = *state;

	write_file(f->victim, PLANTED, 0600);
	assert_int_equal(link(f->victim, f->file), 0);
	assert_refused(f->dir, STREAM, f->file, "has 2 links");
	assert_file_holds(f->victim, PLANTED);
}

static void test_refuses_fifo_and_directory(void **state)
{
	struct fixture *f = *state;

	/* a FIFO: refused at once, not waited on for a writer */
	assert_int_equal(mkfifo(f->file, 0600), 0);
	assert_refused(f->dir, STREAM, f->file, "is a FIFO");
	unlink(f->file);
	assert_int_equal(mkdir(f->file, 0700), 0);
	assert_refused(f->dir, STREAM, f->file, "is a directory");
	assert_int_equal(entries_in(f->file), 0);
}

/* A file we made before, 0600 and ours, is taken as it is (a restart). */
static void test_reopens_own_file(void **state)
{
	struct fixture *f = *state;
	struct bus *again;

	f->bus = bus_open(f->dir, STREAM, FRAME_MAX);
	assert_non_null(f->bus);
	lock_producer(f);
	publish_tagged(f->bus, 100, 5, 1);
	again = bus_open(f->dir, STREAM, FRAME_MAX);
	assert_non_null(again);
	assert_int_equal(bus_latest(again), 1);
	bus_close(again);
}

/* Created under a umask that takes owner bits: still exactly 0600. */
static void test_file_mode_whatever_the_umask(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	mode_t was = umask(0277);

	f->bus = bus_open(f->dir, STREAM, FRAME_MAX);
	umask(was);
	assert_non_null(f->bus);
	assert_int_equal(stat(f->file, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

/* ---- incompatible files ------------------------------------------------- */

static void test_refuses_other_layout_version(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX + 16];
	uint32_t words[4] = { BUS_MAGIC, 99, BUS_SLOTS, 0 };
	uint64_t slot_bytes = FRAME_MAX;
	FILE *file;

	snprintf(path, sizeof(path), "%s/old", f->dir);
	file = fopen(path, "wb");
	assert_non_null(file);
	assert_int_equal(fwrite(words, sizeof(words), 1, file), 1);
	assert_int_equal(fwrite(&slot_bytes, sizeof(slot_bytes), 1, file), 1);
	assert_int_equal(fclose(file), 0);
	assert_int_equal(chmod(path, 0600), 0);

	assert_null(bus_open(f->dir, "old", FRAME_MAX));

	/* the same file with this build's version opens */
	words[1] = BUS_VERSION;
	file = fopen(path, "r+b");
	assert_non_null(file);
	assert_int_equal(fwrite(words, sizeof(words), 1, file), 1);
	assert_int_equal(fclose(file), 0);
	f->bus = bus_open(f->dir, "old", FRAME_MAX);
	assert_non_null(f->bus);
}

static void test_refuses_other_frame_bytes_max(void **state)
{
	struct fixture *f = *state;

	lock_producer(f); /* initialises the file's layout */
	assert_null(bus_open(f->dir, STREAM, FRAME_MAX * 2));
	assert_null(bus_open(f->dir, STREAM, FRAME_MAX / 2));
	open_other(f);
}

/* ---- concurrency -------------------------------------------------------- */

#define RACE_FRAME_MAX 16384u
#define RACE_READERS 2
/* The race runs at least RACE_USEC and until the producer published, and
 * each reader read, RACE_FRAMES frames: the race is judged by the frames
 * that met, not by how many fit in a time, so a slow machine or a
 * sanitizer build runs it longer rather than failing it.  RACE_DEADLINE_USEC
 * ends it if a thread makes no progress at all (a reader stuck in
 * bus_read_latest): then it fails. */
#define RACE_USEC (300 * USEC_PER_MSEC)
#define RACE_FRAMES 1000
#define RACE_DEADLINE_USEC (60 * USEC_PER_SEC)

/* The length a frame of sequence number seq is published with. */
static size_t race_bytes(uint64_t seq)
{
	return 1 + (size_t)((seq * 2654435761u) % RACE_FRAME_MAX);
}

struct race {
	struct bus *bus;
	_Atomic int stop;
	_Atomic uint64_t published;
};

struct race_reader {
	struct race *race;
	_Atomic uint64_t reads;  /* the test thread watches it grow */
	uint64_t empty, errors, torn, backwards;
	uint64_t first_bad_seq;
	char first_bad[160];
};

static void *race_producer(void *arg)
{
	struct race *race = arg;
	unsigned char *buf = malloc(RACE_FRAME_MAX);
	uint64_t seq = bus_latest(race->bus);

	if (!buf)
		abort();
	while (!atomic_load(&race->stop)) {
		size_t bytes;

		seq++;
		bytes = race_bytes(seq);
		memset(buf, (int)(seq & 0xff), bytes);
		/* width carries the low bits of seq, height the length, so
		 * the metadata is checked for tearing as well */
		if (bus_publish(race->bus, buf, bytes, (uint32_t)seq, (uint32_t)bytes,
				(int64_t)seq * 1000, -1) != 0)
			abort();
		atomic_store(&race->published, seq);
	}
	free(buf);
	return NULL;
}

static void *race_reader(void *arg)
{
	struct race_reader *r = arg;
	struct bus_frame frame = { .capacity = RACE_FRAME_MAX };
	uint64_t last = 0;

	frame.jpeg = malloc(RACE_FRAME_MAX);
	if (!frame.jpeg)
		abort();
	while (!atomic_load(&r->race->stop)) {
		int rc = bus_read_latest(r->race->bus, &frame);
		size_t i;
		const char *bad = NULL;

		if (rc < 0) {
			r->errors++;
			continue;
		}
		if (rc == 0) {
			r->empty++;
			continue;
		}
		atomic_fetch_add(&r->reads, 1);
		if (frame.seq < last)
			r->backwards++;
		last = frame.seq;
		if (frame.bytes != race_bytes(frame.seq))
			bad = "length";
		else if (frame.width != (uint32_t)frame.seq || frame.height != frame.bytes ||
			 frame.publish_usec != (int64_t)frame.seq * 1000)
			bad = "metadata";
		for (i = 0; !bad && i < frame.bytes; i++)
			if (frame.jpeg[i] != (unsigned char)(frame.seq & 0xff))
				bad = "content";
		if (bad) {
			if (!r->torn++) {
				r->first_bad_seq = frame.seq;
				snprintf(r->first_bad, sizeof(r->first_bad),
					 "seq %llu: %s (bytes %zu, width %u, byte0 %u)",
					 (unsigned long long)frame.seq, bad, frame.bytes,
					 frame.width, frame.jpeg[0]);
			}
		}
	}
	free(frame.jpeg);
	return NULL;
}

/* The producer published, and every reader read, RACE_FRAMES frames. */
static int race_done(struct race *race, struct race_reader *readers)
{
	int i;

	if (atomic_load(&race->published) < RACE_FRAMES)
		return 0;
	for (i = 0; i < RACE_READERS; i++)
		if (atomic_load(&readers[i].reads) < RACE_FRAMES)
			return 0;
	return 1;
}

static void test_concurrent_readers_never_see_torn_frames(void **state)
{
	struct fixture *f = *state;
	struct race race = { 0 };
	struct race_reader readers[RACE_READERS];
	pthread_t producer, threads[RACE_READERS];
	int64_t start = clock_mono_usec();
	int i;

	f->bus = bus_open(f->dir, "race", RACE_FRAME_MAX);
	assert_non_null(f->bus);
	lock_producer(f);
	race.bus = f->bus;
	memset(readers, 0, sizeof(readers));

	assert_int_equal(pthread_create(&producer, NULL, race_producer, &race), 0);
	for (i = 0; i < RACE_READERS; i++) {
		readers[i].race = &race;
		assert_int_equal(pthread_create(&threads[i], NULL, race_reader, &readers[i]), 0);
	}
	clock_sleep_usec(RACE_USEC);
	while (!race_done(&race, readers) && clock_mono_usec() - start < RACE_DEADLINE_USEC)
		clock_sleep_usec(10 * USEC_PER_MSEC);
	atomic_store(&race.stop, 1);
	assert_int_equal(pthread_join(producer, NULL), 0);
	for (i = 0; i < RACE_READERS; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);

	print_message("published %llu frames\n", (unsigned long long)atomic_load(&race.published));
	assert_true(atomic_load(&race.published) >= RACE_FRAMES);
	for (i = 0; i < RACE_READERS; i++) {
		print_message("reader %d: %llu reads, %llu empty\n", i,
			      (unsigned long long)atomic_load(&readers[i].reads),
			      (unsigned long long)readers[i].empty);
		if (readers[i].torn)
			fail_msg("reader %d got %llu torn frames, first %s", i,
				 (unsigned long long)readers[i].torn, readers[i].first_bad);
		assert_int_equal(readers[i].errors, 0);
		assert_int_equal(readers[i].backwards, 0);
		assert_true(atomic_load(&readers[i].reads) >= RACE_FRAMES);
	}
}

/* ---- across processes --------------------------------------------------- */

enum child_exit {
	CHILD_OK = 0,
	CHILD_OPEN_FAILED = 10,
	CHILD_NOT_WOKEN = 11,
	CHILD_WOKEN_LATE = 12,
	CHILD_READ_FAILED = 13,
	CHILD_WRONG_FRAME = 14,
};

/* The child: waits for a frame the parent publishes.  Reports by exit
 * status only: no cmocka in a forked child. */
static void child_wait_for_frame(const char *dir, int ready_fd)
{
	struct bus_frame frame = { .capacity = FRAME_MAX };
	unsigned char *expected = make_frame(4321, 8);
	struct bus *bus;
	int64_t t0, dt;
	int rc;

	frame.jpeg = malloc(FRAME_MAX);
	bus = bus_open(dir, STREAM, FRAME_MAX);
	if (!bus || !frame.jpeg)
		_exit(CHILD_OPEN_FAILED);
	if (write(ready_fd, "r", 1) != 1)
		_exit(CHILD_OPEN_FAILED);
	t0 = clock_mono_usec();
	rc = bus_wait_newer(bus, 0, 10 * USEC_PER_SEC);
	dt = clock_mono_usec() - t0;
	if (rc != 1)
		_exit(CHILD_NOT_WOKEN);
	/* a wake by futex, not by timeout: the defect takes all 10 s, a wake
	 * takes microseconds; half the timeout is room for any slow machine */
	if (dt > 5 * USEC_PER_SEC)
		_exit(CHILD_WOKEN_LATE);
	if (bus_read_latest(bus, &frame) != 1 || frame.seq != 1)
		_exit(CHILD_READ_FAILED);
	if (frame.bytes != 4321 || memcmp(frame.jpeg, expected, 4321) != 0 ||
	    frame.publish_usec != 77)
		_exit(CHILD_WRONG_FRAME);
	_exit(CHILD_OK);
}

static void test_cross_process_wake(void **state)
{
	struct fixture *f = *state;
	int pipe_fds[2], status;
	char ready;
	pid_t pid;

	lock_producer(f);
	assert_int_equal(pipe(pipe_fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pipe_fds[0]);
		child_wait_for_frame(f->dir, pipe_fds[1]);
	}
	close(pipe_fds[1]);
	assert_int_equal(read(pipe_fds[0], &ready, 1), 1);
	close(pipe_fds[0]);
	/* give the child time to be asleep in the futex */
	clock_sleep_usec(100 * USEC_PER_MSEC);
	publish_tagged(f->bus, 4321, 8, 77);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != CHILD_OK)
		fail_msg("child exited with %d (see enum child_exit)", WEXITSTATUS(status));
}

/* A child process that counts `viewers` viewers of the bus, tells the
 * parent through ready, then waits until the parent closes go[1] and exits
 * without leaving: as a process killed with viewers does.  Returns its
 * pid. */
static pid_t child_with_viewers(struct bus *bus, int viewers, int ready, const int go[2])
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		char c = 'r';

		close(go[1]); /* else its own copy keeps go open */
		for (int i = 0; i < viewers; i++)
			bus_viewer_enter(bus);
		if (write(ready, &c, 1) != 1 || read(go[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	return pid;
}

static uint32_t viewers_now(struct bus *bus)
{
	struct bus_stats stats;

	bus_stats(bus, &stats);
	return stats.viewers;
}

static void reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Viewers of a process that died without leaving stop counting. */
static void test_viewers_of_a_dead_process_stop_counting(void **state)
{
	struct fixture *f = *state;
	int ready[2], go[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	bus_viewer_enter(f->bus);
	pid = child_with_viewers(f->bus, 3, ready[1], go);
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(viewers_now(f->bus), 4);
	close(go[1]);
	reap(pid);
	assert_int_equal(viewers_now(f->bus), 1);
	bus_viewer_leave(f->bus);
	assert_int_equal(viewers_now(f->bus), 0);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
}

/* More dead processes than slots: their slots are taken again, so the
 * last one's viewers still stop counting when it dies. */
static void test_slots_of_dead_processes_are_reused(void **state)
{
	struct fixture *f = *state;
	int ready[2], go[2];
	char c;

	assert_int_equal(pipe(ready), 0);
	for (int i = 0; i < BUS_VIEWER_SLOTS + 20; i++) {
		pid_t pid;

		assert_int_equal(pipe(go), 0);
		pid = child_with_viewers(f->bus, 1, ready[1], go);
		assert_int_equal(read(ready[0], &c, 1), 1);
		assert_int_equal(viewers_now(f->bus), 1);
		close(go[1]);
		reap(pid);
		close(go[0]);
		assert_int_equal(viewers_now(f->bus), 0);
	}
	close(ready[0]);
	close(ready[1]);
}

/* With every slot held by a live process, viewers go to the shared count:
 * still counted, but left behind by a process that dies. */
static void test_viewers_beyond_the_slots_share_one_count(void **state)
{
	struct fixture *f = *state;
	pid_t pids[BUS_VIEWER_SLOTS + 1];
	int ready[2], go[2];
	char c;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	for (int i = 0; i <= BUS_VIEWER_SLOTS; i++) {
		pids[i] = child_with_viewers(f->bus, 1, ready[1], go);
		assert_int_equal(read(ready[0], &c, 1), 1);
	}
	assert_int_equal(viewers_now(f->bus), BUS_VIEWER_SLOTS + 1);
	close(go[1]);
	for (int i = 0; i <= BUS_VIEWER_SLOTS; i++)
		reap(pids[i]);
	assert_int_equal(viewers_now(f->bus), 1); /* the shared one */
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
}

/* DIR_TEST: a test given a fresh bus directory; BUS_TEST: and the bus open in it. */
#define DIR_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define BUS_TEST(fn) cmocka_unit_test_setup_teardown(fn, bus_setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		DIR_TEST(test_open_creates_file_0600),
		DIR_TEST(test_open_creates_dir),
		BUS_TEST(test_empty_bus_has_no_frame),
		BUS_TEST(test_publish_reads_back_exact),
		BUS_TEST(test_publish_exactly_max),
		BUS_TEST(test_publish_too_large_changes_nothing),
		BUS_TEST(test_ring_wrap),
		BUS_TEST(test_read_into_small_buffer),
		BUS_TEST(test_wait_newer_immediate),
		BUS_TEST(test_wait_newer_times_out),
		BUS_TEST(test_wait_newer_woken_by_publish),
		BUS_TEST(test_wake_all_ends_wait),
		BUS_TEST(test_second_open_shares_frames),
		BUS_TEST(test_publish_shared),
		BUS_TEST(test_publish_shared_gives_up_on_a_producer),
		BUS_TEST(test_publish_shared_cancelled),
		BUS_TEST(test_stats),
		BUS_TEST(test_demand),
		BUS_TEST(test_demand_wakes_paused_producer),
		DIR_TEST(test_refuses_dir_of_another_user),
		DIR_TEST(test_refuses_dir_others_may_write),
		DIR_TEST(test_refuses_symlinked_dir),
		DIR_TEST(test_refuses_file_of_another_user),
		DIR_TEST(test_refuses_file_of_ours_with_other_mode),
		DIR_TEST(test_refuses_symlink_as_stream_file),
		DIR_TEST(test_refuses_hard_link),
		DIR_TEST(test_refuses_fifo_and_directory),
		DIR_TEST(test_reopens_own_file),
		DIR_TEST(test_file_mode_whatever_the_umask),
		DIR_TEST(test_refuses_other_layout_version),
		BUS_TEST(test_refuses_other_frame_bytes_max),
		DIR_TEST(test_concurrent_readers_never_see_torn_frames),
		BUS_TEST(test_cross_process_wake),
		BUS_TEST(test_viewers_of_a_dead_process_stop_counting),
		BUS_TEST(test_slots_of_dead_processes_are_reused),
		BUS_TEST(test_viewers_beyond_the_slots_share_one_count),
	};

	return cmocka_run_group_tests_name("bus", tests, NULL, NULL);
}
