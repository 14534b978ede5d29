/* Unit tests for fcgi/mjpeg_splitter.c: the MJPEG splitter on real JPEGs
 * made by encode_frame at test time (whole, byte by byte, in random chunks,
 * among garbage, cut short, oversized). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "encode.h"
#include "mjpeg_splitter.h"
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
#include <turbojpeg.h>
#include <unistd.h>

/* Frames a splitter test may collect. */
#define OUT_MAX 16

struct frames {
	size_t count;
	struct blob items[OUT_MAX];
};

static void frames_free(struct frames *f)
{
	size_t i;

	for (i = 0; i < f->count; i++)
		blob_free(&f->items[i]);
	f->count = 0;
}

/* What a test holds, released by teardown_held even when a failed
 * assertion ended the test early: so a failure is reported once, and not
 * again as a leak.  One test runs at a time. */
#define HELD_BLOBS 4
static struct {
	struct blob blobs[HELD_BLOBS];
	size_t blob_count;
	struct frames out;            /* what split_all collected */
	struct mjpeg_splitter splitter;
	int splitter_open;
} held;

static int setup_held(void **state)
{
	(void)state;
	memset(&held, 0, sizeof(held));
	return 0;
}

static int teardown_held(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < held.blob_count; i++)
		blob_free(&held.blobs[i]);
	frames_free(&held.out);
	if (held.splitter_open)
		mjpeg_splitter_destroy(&held.splitter);
	memset(&held, 0, sizeof(held));
	return 0;
}

/* An empty blob that teardown_held frees. */
static struct blob *held_blob(void)
{
	assert_true(held.blob_count < HELD_BLOBS);
	return &held.blobs[held.blob_count++];
}

/* A fresh splitter, in place of the test's last one. */
static struct mjpeg_splitter *held_splitter(size_t frame_bytes_max)
{
	if (held.splitter_open)
		mjpeg_splitter_destroy(&held.splitter);
	mjpeg_splitter_init(&held.splitter, frame_bytes_max);
	held.splitter_open = 1;
	frames_free(&held.out);
	return &held.splitter;
}

/* Feeds all of in to s in chunks: chunk_max 0 whole, 1 byte by byte,
 * otherwise random sizes 1..chunk_max.  Collects every frame. */
static void split_all(struct mjpeg_splitter *s, const struct blob *in, size_t chunk_max,
		      uint32_t seed, struct frames *out)
{
	size_t pos = 0;

	while (pos < in->len) {
		size_t n = chunk_max == 0 ? in->len - pos : 1 + tu_rng_next(&seed) % chunk_max;
		const unsigned char *p = in->data + pos;
		size_t left;

		if (n > in->len - pos)
			n = in->len - pos;
		left = n;
		/* After a frame, call again even with nothing left: more may be
		 * kept in the splitter. */
		for (;;) {
			const unsigned char *jpeg = (const unsigned char *)"x";
			size_t bytes = 99, used;

			used = mjpeg_splitter_feed(s, p, left, &jpeg, &bytes);
			assert_true(used <= left);
			p += used;
			left -= used;
			if (!jpeg) {
				assert_int_equal(bytes, 0);
				assert_int_equal(left, 0);
				break;
			}
			assert_true(out->count < OUT_MAX);
			assert_true(bytes >= 4);
			assert_int_equal(jpeg[0], 0xFF);
			assert_int_equal(jpeg[1], 0xD8);
			assert_int_equal(jpeg[bytes - 2], 0xFF);
			assert_int_equal(jpeg[bytes - 1], 0xD9);
			out->items[out->count] = (struct blob){ 0 };
			blob_add(&out->items[out->count++], jpeg, bytes);
		}
		pos += n;
	}
}

static void assert_blob_equal(const struct blob *got, const struct blob *want)
{
	assert_int_equal(got->len, want->len);
	assert_memory_equal(got->data, want->data, want->len);
}

/* Splits in with a fresh splitter and checks exactly want come out. */
static void assert_splits_to(const struct blob *in, size_t frame_bytes_max, size_t chunk_max,
			     uint32_t seed, const struct blob *const *want, size_t want_count)
{
	struct mjpeg_splitter *s = held_splitter(frame_bytes_max);
	size_t i;

	split_all(s, in, chunk_max, seed, &held.out);
	if (held.out.count != want_count)
		fail_msg("%zu frames out, %zu expected (chunks up to %zu, seed %u)",
			 held.out.count, want_count, chunk_max, seed);
	for (i = 0; i < want_count; i++)
		assert_blob_equal(&held.out.items[i], want[i]);
	assert_int_equal(s->frames, want_count);
	frames_free(&held.out);
}

/* Every way of chunking: whole, byte by byte, and random sizes. */
static void assert_splits_to_any_chunking(const struct blob *in, size_t frame_bytes_max,
					  const struct blob *const *want, size_t want_count)
{
	static const size_t chunk_maxes[] = { 2, 7, 100, 1000, 5000 };
	size_t i;
	uint32_t seed;

	assert_splits_to(in, frame_bytes_max, 0, 0, want, want_count);
	assert_splits_to(in, frame_bytes_max, 1, 0, want, want_count);
	for (i = 0; i < sizeof(chunk_maxes) / sizeof(chunk_maxes[0]); i++)
		for (seed = 1; seed <= 5; seed++)
			assert_splits_to(in, frame_bytes_max, chunk_maxes[i], seed, want,
					 want_count);
}

/* Splits in into want under every chunking, then once more whole into
 * held.out: the splitter is returned for its counters. */
static struct mjpeg_splitter *split_counted(const struct blob *in, size_t frame_bytes_max,
					    const struct blob *const *want, size_t want_count)
{
	struct mjpeg_splitter *s;

	assert_splits_to_any_chunking(in, frame_bytes_max, want, want_count);
	s = held_splitter(frame_bytes_max);
	split_all(s, in, 0, 0, &held.out);
	return s;
}

/* Where the entropy-coded data of a (single-scan) JPEG begins. */
static size_t scan_start(const struct blob *jpeg)
{
	size_t pos = 2;

	while (pos + 4 <= jpeg->len) {
		size_t length = (size_t)jpeg->data[pos + 2] << 8 | jpeg->data[pos + 3];

		assert_int_equal(jpeg->data[pos], 0xFF);
		if (jpeg->data[pos + 1] == 0xDA)
			return pos + 2 + length;
		pos += 2 + length;
	}
	fail_msg("no SOS");
	return 0;
}

static struct blob f1, f2, big;

static int setup_jpegs(void **state)
{
	(void)state;
	f1 = tu_noisy_jpeg(64, 48, 1);
	f2 = tu_noisy_jpeg(40, 32, 2);
	big = tu_noisy_jpeg(256, 256, 3);
	return 0;
}

static int teardown_jpegs(void **state)
{
	(void)state;
	blob_free(&f1);
	blob_free(&f2);
	blob_free(&big);
	return 0;
}

static void test_split_two_frames(void **state)
{
	const struct blob *want[] = { &f1, &f2 };
	struct blob *in = held_blob();
	size_t stuffed = 0, i;

	(void)state;
	/* The test is only as good as its frames: they hold stuffed bytes. */
	for (i = scan_start(&f1); i + 1 < f1.len; i++)
		stuffed += f1.data[i] == 0xFF && f1.data[i + 1] == 0x00;
	assert_true(stuffed > 0);
	blob_add(in, f1.data, f1.len);
	blob_add(in, f2.data, f2.len);
	assert_splits_to_any_chunking(in, FRAME_BYTES_MAX_DEFAULT, want, 2);
}

/* The frame comes out at its EOI, consuming nothing after it. */
static void test_split_stops_at_eoi(void **state)
{
	struct mjpeg_splitter *s = held_splitter(FRAME_BYTES_MAX_DEFAULT);
	struct blob *in = held_blob();
	const unsigned char *jpeg;
	size_t bytes, used;

	(void)state;
	blob_add(in, f1.data, f1.len);
	blob_add(in, f2.data, f2.len);
	used = mjpeg_splitter_feed(s, in->data, in->len, &jpeg, &bytes);
	assert_int_equal(used, f1.len);
	assert_non_null(jpeg);
	assert_int_equal(bytes, f1.len);
	used = mjpeg_splitter_feed(s, in->data + f1.len, in->len - f1.len, &jpeg, &bytes);
	assert_int_equal(used, f2.len);
	assert_int_equal(bytes, f2.len);
	used = mjpeg_splitter_feed(s, NULL, 0, &jpeg, &bytes);
	assert_int_equal(used, 0);
	assert_null(jpeg);
	assert_int_equal(s->frames, 2);
	assert_int_equal(s->frames_cut, 0);
	assert_int_equal(s->bytes_skipped, 0);
}

static void test_split_skips_garbage(void **state)
{
	/* FF bytes, fill, a stray EOI, FF00, and a false SOI whose "frame"
	 * breaks at once: none of it may come out or hide a frame. */
	static const unsigned char before[] = "text\xff\xff\xd9\xff\x00 more\xff";
	static const unsigned char between[] = { 0x00, 0xFF, 0xD9, 0xFF, 0xFF, 0x12,
						  0xFF, 0xD8, 0x00, 0x34, 0xFF, 0x00 };
	static const unsigned char after[] = "\xff\xd9trailing\xff";
	const struct blob *want[] = { &f1, &f2 };
	struct blob *in = held_blob();
	struct mjpeg_splitter *s;

	(void)state;
	blob_add(in, before, sizeof(before) - 1);
	blob_add(in, f1.data, f1.len);
	blob_add(in, between, sizeof(between));
	blob_add(in, f2.data, f2.len);
	blob_add(in, after, sizeof(after) - 1);
	s = split_counted(in, FRAME_BYTES_MAX_DEFAULT, want, 2);
	assert_int_equal(s->frames_cut, 1); /* the false SOI */
	assert_true(s->bytes_skipped > 0);
}

/* Into out: f with an APP1 segment holding payload inserted after its SOI. */
static void with_app1(struct blob *out, const struct blob *f, const struct blob *payload)
{
	static const unsigned char exif[] = { 'E', 'x', 'i', 'f', 0, 0 };
	size_t length = 2 + sizeof(exif) + payload->len;
	unsigned char head[4] = { 0xFF, 0xE1, (unsigned char)(length >> 8),
				  (unsigned char)length };

	assert_true(length <= 0xFFFF);
	blob_add(out, f->data, 2);
	blob_add(out, head, sizeof(head));
	blob_add(out, exif, sizeof(exif));
	blob_add(out, payload->data, payload->len);
	blob_add(out, f->data + 2, f->len - 2);
}

/* FFD9 (and FFD8) inside an APP1 segment, as an EXIF thumbnail has them,
 * neither end nor restart the frame. */
static void test_split_app1_with_markers_inside(void **state)
{
	static const unsigned char markers[] = { 0xFF, 0xD9, 0xFF, 0xD8, 0xFF, 0xD9,
						 0x00, 0xFF, 0xFF, 0xD9, 0xFF };
	struct blob *payload = held_blob(), *with_markers = held_blob();
	struct blob *with_thumbnail = held_blob(), *in = held_blob();
	const struct blob *want[] = { with_markers, with_thumbnail, &f2 };
	uint32_t w = 0, h = 0;
	const char *why = "";

	(void)state;
	blob_add(payload, markers, sizeof(markers));
	with_app1(with_markers, &f1, payload);
	with_app1(with_thumbnail, &f1, &f2); /* a whole JPEG as thumbnail */
	/* Real JPEGs still: the decoder skips APP1 the same way. */
	assert_int_equal(encode_validate(with_markers->data, with_markers->len, &w, &h, &why), 0);
	assert_int_equal(w, 64);
	assert_int_equal(encode_validate(with_thumbnail->data, with_thumbnail->len, &w, &h, &why),
			 0);
	blob_add(in, with_markers->data, with_markers->len);
	blob_add(in, with_thumbnail->data, with_thumbnail->len);
	blob_add(in, f2.data, f2.len);
	assert_splits_to_any_chunking(in, FRAME_BYTES_MAX_DEFAULT, want, 3);
}

/* Markers in and between scans, made up (not decodable): stuffing, restart
 * markers, fill bytes, a DHT between two scans (as in progressive JPEGs)
 * whose payload holds FFD9, and fill before EOI. */
static void test_split_scan_markers(void **state)
{
	static const unsigned char jpeg[] = {
		0xFF, 0xD8,
		0xFF, 0xDB, 0x00, 0x04, 0xAA, 0xBB,             /* DQT */
		0xFF, 0xDD, 0x00, 0x04, 0x00, 0x10,             /* DRI */
		0xFF, 0xFF, 0xC0, 0x00, 0x03, 0x08,             /* fill, then SOF0 */
		0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02,             /* SOS */
		0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, /* scan 1 */
		0xFF, 0xD3, 0x78, 0xFF, 0x00,
		0xFF, 0xC4, 0x00, 0x05, 0xFF, 0xD9, 0x01,       /* DHT */
		0xFF, 0xDA, 0x00, 0x03, 0x09,                   /* SOS */
		0x9A, 0xFF, 0xD7, 0xBC, 0xFF, 0x00,             /* scan 2 */
		0xFF, 0xFF, 0xD9,                               /* fill, EOI */
	};
	struct blob *in = held_blob(), *one = held_blob();
	const struct blob *want[] = { one, one };

	(void)state;
	blob_add(one, jpeg, sizeof(jpeg));
	blob_add(in, jpeg, sizeof(jpeg));
	blob_add(in, jpeg, sizeof(jpeg));
	assert_splits_to_any_chunking(in, FRAME_BYTES_MAX_DEFAULT, want, 2);
}

/* Progressive JPEGs have several scans, with DHT segments between them. */
static void test_split_progressive(void **state)
{
	struct blob *rgb = held_blob(), *prog = held_blob(), *in = held_blob();
	const struct blob *want[] = { prog, &f1, prog };
	unsigned char *out = NULL;
	unsigned long out_bytes = 0;
	uint32_t seed = 9, w = 0, h = 0;
	size_t i, scans = 0;
	const char *why = "";
	tjhandle tj;
	int rc;

	(void)state;
	for (i = 0; i < 64 * 48 * 3; i++) {
		unsigned char c = (unsigned char)tu_rng_next(&seed);

		blob_add(rgb, &c, 1);
	}
	tj = tjInitCompress();
	assert_non_null(tj);
	rc = tjCompress2(tj, rgb->data, 64, 0, 48, TJPF_RGB, &out, &out_bytes, TJSAMP_420, 85,
			 TJFLAG_PROGRESSIVE);
	if (rc == 0)
		blob_add(prog, out, out_bytes);
	tjFree(out);
	tjDestroy(tj);
	assert_int_equal(rc, 0);
	for (i = 0; i + 1 < prog->len; i++)
		scans += prog->data[i] == 0xFF && prog->data[i + 1] == 0xDA;
	assert_true(scans >= 2);
	assert_int_equal(encode_validate(prog->data, prog->len, &w, &h, &why), 0);
	blob_add(in, prog->data, prog->len);
	blob_add(in, f1.data, f1.len);
	blob_add(in, prog->data, prog->len);
	assert_splits_to_any_chunking(in, FRAME_BYTES_MAX_DEFAULT, want, 3);
}

/* A frame cut short inside its entropy-coded data, then a whole one: the
 * next SOI restarts, the whole one comes out, the cut one is counted. */
static void test_split_cut_in_scan(void **state)
{
	const struct blob *want[] = { &f2, &f1 };
	struct blob *in = held_blob();
	struct mjpeg_splitter *s;

	(void)state;
	blob_add(in, f1.data, f1.len - 50);
	blob_add(in, f2.data, f2.len);
	blob_add(in, f1.data, f1.len);
	s = split_counted(in, FRAME_BYTES_MAX_DEFAULT, want, 2);
	assert_int_equal(s->frames_cut, 1);
}

/* A frame cut inside its headers, then f2 and f1.  Usually the cut
 * segment's length swallows f2's start, the parse breaks (no FF where a
 * marker is due, a second SOF), and the bytes parsed again find f2's SOI:
 * f2 comes out exact.  When the swallowed length happens to end on one of
 * f2's marker boundaries (frames from one encoder share their layout), the
 * parse goes on through f2 without a break: out comes the splice
 * f1[0, cut) + f2, which either decodes as f2's picture or is refused by
 * encode_validate later.  f1 after it always comes out exact. */
static void test_split_cut_in_header(void **state)
{
	size_t cut, start = scan_start(&f1), exact = 0, spliced = 0;
	struct blob *in = held_blob(), *splice = held_blob();

	(void)state;
	for (cut = 2; cut < start; cut++) {
		struct mjpeg_splitter *s = held_splitter(FRAME_BYTES_MAX_DEFAULT);

		blob_free(in);
		blob_free(splice);
		blob_add(in, f1.data, cut);
		blob_add(in, f2.data, f2.len);
		blob_add(in, f1.data, f1.len);
		blob_add(splice, f1.data, cut);
		blob_add(splice, f2.data, f2.len);
		split_all(s, in, 100, (uint32_t)cut, &held.out);
		if (held.out.count != 2)
			fail_msg("cut at %zu: %zu frames out", cut, held.out.count);
		assert_blob_equal(&held.out.items[1], &f1);
		if (held.out.items[0].len == f2.len) {
			assert_blob_equal(&held.out.items[0], &f2);
			exact++;
		} else {
			assert_blob_equal(&held.out.items[0], splice);
			spliced++;
		}
	}
	assert_true(spliced * 50 < exact); /* under 2% */
}

/* Cut anywhere in its entropy-coded data: always the next two frames. */
static void test_split_cut_anywhere_in_scan(void **state)
{
	const struct blob *want[] = { &f2, &f1 };
	struct blob *in = held_blob();
	size_t cut;

	(void)state;
	for (cut = scan_start(&f1); cut < f1.len; cut++) {
		blob_free(in);
		blob_add(in, f1.data, cut);
		blob_add(in, f2.data, f2.len);
		blob_add(in, f1.data, f1.len);
		assert_splits_to(in, FRAME_BYTES_MAX_DEFAULT, 0, 0, want, 2);
	}
}

/* A frame over frame_bytes_max is dropped; the frames around it come out. */
static void test_split_oversized(void **state)
{
	size_t max = (f1.len > f2.len ? f1.len : f2.len) + 16;
	const struct blob *want[] = { &f1, &f2 };
	struct blob *in = held_blob();
	struct mjpeg_splitter *s;

	(void)state;
	assert_true(big.len > max);
	blob_add(in, big.data, big.len);
	blob_add(in, f1.data, f1.len);
	blob_add(in, big.data, big.len);
	blob_add(in, f2.data, f2.len);
	s = split_counted(in, max, want, 2);
	assert_int_equal(s->frames_oversized, 2);
	assert_int_equal(s->frames_cut, 0);
	assert_true(s->capacity <= max);
}

/* An oversized frame is still parsed: a thumbnail JPEG in its APP1 beyond
 * frame_bytes_max does not come out as a frame of its own. */
static void test_split_oversized_keeps_parsing(void **state)
{
	static const unsigned char zeros[20000];
	size_t max = 16384;
	struct blob *payload = held_blob(), *huge = held_blob(), *in = held_blob();
	const struct blob *want[] = { &f1 };

	(void)state;
	assert_true(f1.len < max && f2.len < max);
	blob_add(payload, zeros, sizeof(zeros));
	blob_add(payload, f2.data, f2.len);
	blob_add(payload, zeros, 16);
	with_app1(huge, &f1, payload);
	blob_add(in, huge->data, huge->len);
	blob_add(in, f1.data, f1.len);
	assert_splits_to_any_chunking(in, max, want, 1);
}

/* Nested SOIs for the resync test: 900 kB, whose square would never end.
 * It runs first with a tenth of them, so that a quadratic splitter fails
 * there, in seconds, instead of running for hours. */
#define RESYNC_SEGMENTS 150000
#define RESYNC_STEPS 2
/* How many times the CPU of parsing once the resync stream may cost. */
#define RESYNC_COST_MAX 20
/* Each cost is the least of this many runs: one preempted run or one
 * cache-cold run does not count. */
#define RESYNC_RUNS 3

static int64_t thread_cpu_usec(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts), 0);
	return (int64_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* The least CPU time, over RESYNC_RUNS, of splitting in (whole, then in
 * 4 kB chunks) into want alone. */
static int64_t split_cost_usec(const struct blob *in, const struct blob *const *want)
{
	int64_t least = INT64_MAX;
	int run;

	for (run = 0; run < RESYNC_RUNS; run++) {
		int64_t cpu = thread_cpu_usec();

		assert_splits_to(in, 1u << 20, 0, 0, want, 1);
		assert_splits_to(in, 1u << 20, 4096, 1, want, 1);
		cpu = thread_cpu_usec() - cpu;
		if (cpu < least)
			least = cpu;
	}
	return least;
}

/* SOIs nested in segments, then a broken byte: parsing again is paid from
 * a credit, so this costs about twice its length, not its square.
 *
 * The defect caught: parsing again without the credit, quadratic here
 * (about segments / 2 times the baseline: 7,500 times at the first step,
 * where it fails in seconds).  The baseline is the same bytes without the broken byte, which
 * parse once, measured here in the same build on the same machine; a
 * correct splitter costs about 2 times it.  The bound of RESYNC_COST_MAX
 * (20) times leaves 10x for noise and a sanitizer's uneven costs, and no
 * speed of the machine enters it. */
static void test_split_resync_is_linear(void **state)
{
	static const unsigned char soi[] = { 0xFF, 0xD8 };
	static const unsigned char com[] = { 0xFF, 0xFE, 0x00, 0x04, 0xFF, 0xD8 };
	static const unsigned char broken[] = { 0x00 };
	const struct blob *want[] = { &f1 };
	struct blob *in = held_blob(), *once = held_blob();
	size_t segments = RESYNC_SEGMENTS, i;
	int step;

	(void)state;
	for (step = 1; step < RESYNC_STEPS; step++)
		segments /= 10;
	for (step = 0; step < RESYNC_STEPS; step++, segments *= 10) {
		int64_t resync_usec, once_usec;

		blob_free(in);
		blob_free(once);
		blob_add(in, soi, sizeof(soi));
		for (i = 0; i < segments; i++)
			blob_add(in, com, sizeof(com));
		/* the baseline: f1's SOI ends the COM run where a marker is due */
		blob_add(once, in->data, in->len);
		blob_add(once, f1.data, f1.len);
		blob_add(in, broken, sizeof(broken));
		blob_add(in, f1.data, f1.len);
		once_usec = split_cost_usec(once, want);
		resync_usec = split_cost_usec(in, want);
		print_message("%zu segments: resync %lld us of CPU, parsed once %lld us\n",
			      segments, (long long)resync_usec, (long long)once_usec);
		if (resync_usec > RESYNC_COST_MAX * (once_usec + 1))
			fail_msg("%zu segments: resync cost %lld us, over %d times the %lld us "
				 "of parsing once", segments, (long long)resync_usec,
				 RESYNC_COST_MAX, (long long)once_usec);
	}
}

/* Random bytes: no crash, and whatever comes out is SOI..EOI (checked in
 * split_all).  After a reset, a whole frame comes out as it went in. */
static void test_split_random_bytes(void **state)
{
	struct blob *in = held_blob();
	struct mjpeg_splitter *s = held_splitter(16384);
	uint32_t seed = 42;
	size_t i;

	(void)state;
	for (i = 0; i < 200000; i++) {
		/* Many FF, D8, D9 and 00 bytes, to reach every state. */
		static const unsigned char pick[] = { 0xFF, 0xFF, 0xD8, 0xD9, 0x00, 0xDA, 0x00 };
		uint32_t r = tu_rng_next(&seed);
		unsigned char c = (unsigned char)(r % 3 ? r >> 8 : pick[(r >> 8) % sizeof(pick)]);

		blob_add(in, &c, 1);
	}
	split_all(s, in, 3000, 7, &held.out);
	frames_free(&held.out);
	/* A new writer starts afresh: a whole frame after reset comes out. */
	(void)mjpeg_splitter_reset(s);
	split_all(s, &f1, 0, 0, &held.out);
	assert_int_equal(held.out.count, 1);
	assert_blob_equal(&held.out.items[0], &f1);
}

/* A partial frame is forgotten by reset; the next frame comes out alone. */
static void test_split_reset(void **state)
{
	struct mjpeg_splitter *s = held_splitter(FRAME_BYTES_MAX_DEFAULT);
	const unsigned char *jpeg;
	size_t bytes;

	(void)state;
	assert_int_equal(mjpeg_splitter_feed(s, f1.data, 100, &jpeg, &bytes), 100);
	assert_null(jpeg);
	assert_int_equal(mjpeg_splitter_reset(s), 100);
	assert_int_equal(mjpeg_splitter_feed(s, f2.data, f2.len, &jpeg, &bytes), f2.len);
	assert_non_null(jpeg);
	assert_int_equal(bytes, f2.len);
	assert_memory_equal(jpeg, f2.data, f2.len);
	assert_int_equal(mjpeg_splitter_reset(s), 0); /* a returned frame is not partial */
}

/* feed_frame takes the bytes of a frame the caller began, and not one
 * byte after its EOI, also when the frame was oversized. */
static void test_split_feed_frame(void **state)
{
	static const unsigned char text[] = "\r\n--b\r\n\r\n";
	struct mjpeg_splitter *s = held_splitter(f1.len + 16);
	struct blob *in = held_blob();
	const unsigned char *jpeg;
	size_t bytes, used;

	(void)state;
	assert_true(big.len > f1.len + 16);
	blob_add(in, f1.data + 2, f1.len - 2);
	blob_add(in, text, sizeof(text) - 1);
	assert_true(mjpeg_splitter_hunting(s));
	/* hunting: nothing taken */
	assert_int_equal(mjpeg_splitter_feed_frame(s, in->data, in->len, &jpeg, &bytes), 0);
	assert_null(jpeg);
	mjpeg_splitter_begin(s);
	assert_false(mjpeg_splitter_hunting(s));
	used = mjpeg_splitter_feed_frame(s, in->data, in->len, &jpeg, &bytes);
	assert_int_equal(used, f1.len - 2);
	assert_non_null(jpeg);
	assert_blob_equal(&(struct blob){ .data = (unsigned char *)jpeg, .len = bytes }, &f1);
	assert_true(mjpeg_splitter_hunting(s));
	assert_int_equal(mjpeg_splitter_feed_frame(s, in->data + used, in->len - used, &jpeg,
						   &bytes), 0);
	assert_null(jpeg);
	/* an oversized frame: no frame, and nothing after its EOI taken */
	blob_free(in);
	blob_add(in, big.data + 2, big.len - 2);
	blob_add(in, text, sizeof(text) - 1);
	mjpeg_splitter_begin(s);
	used = mjpeg_splitter_feed_frame(s, in->data, in->len, &jpeg, &bytes);
	assert_int_equal(used, big.len - 2);
	assert_null(jpeg);
	assert_true(mjpeg_splitter_hunting(s));
	assert_int_equal(s->frames_oversized, 1);
}

/* Every test holds what it makes in held; teardown_held frees it. */
#define HELD_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_held, teardown_held)

int main(void)
{
	const struct CMUnitTest splitter_tests[] = {
		HELD_TEST(test_split_two_frames),
		HELD_TEST(test_split_stops_at_eoi),
		HELD_TEST(test_split_skips_garbage),
		HELD_TEST(test_split_app1_with_markers_inside),
		HELD_TEST(test_split_scan_markers),
		HELD_TEST(test_split_progressive),
		HELD_TEST(test_split_cut_in_scan),
		HELD_TEST(test_split_cut_in_header),
		HELD_TEST(test_split_cut_anywhere_in_scan),
		HELD_TEST(test_split_oversized),
		HELD_TEST(test_split_oversized_keeps_parsing),
		HELD_TEST(test_split_resync_is_linear),
		HELD_TEST(test_split_random_bytes),
		HELD_TEST(test_split_reset),
		HELD_TEST(test_split_feed_frame),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("mjpeg_splitter", splitter_tests, setup_jpegs,
					      teardown_jpegs);
	return failed ? 1 : 0;
}
