/* Unit tests for fcgi/mjpeg_reader.c: every body layout a camera, ffmpeg or
 * another mjpeg-fcgi sends, built around real JPEGs made by encode_frame at
 * test time; each fed whole, byte by byte and 7 bytes at a time, which must
 * give the same frames, timestamps and counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "mjpeg_reader.h"
#include "multipart.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

/* Frames a reader test may collect. */
#define OUT_MAX 16
/* Blobs a test may hold. */
#define HELD_BLOBS 8

struct frames {
	size_t count;
	struct blob items[OUT_MAX];
	int64_t stamps[OUT_MAX];
};

/* A frame a test expects: its bytes and its timestamp. */
struct want {
	const struct blob *jpeg;
	int64_t stamp;
};

static void frames_free(struct frames *f)
{
	size_t i;

	for (i = 0; i < f->count; i++)
		blob_free(&f->items[i]);
	f->count = 0;
}

/* What a test holds, released by teardown_held even when a failed
 * assertion ended the test early.  One test runs at a time. */
static struct {
	struct blob blobs[HELD_BLOBS];
	size_t blob_count;
	struct frames out;
	struct frames whole;          /* test_read_cut_in_headers: read whole */
	struct mjpeg_reader reader;
	int reader_open;
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
	frames_free(&held.whole);
	if (held.reader_open)
		mjpeg_reader_destroy(&held.reader);
	memset(&held, 0, sizeof(held));
	return 0;
}

static struct blob *held_blob(void)
{
	assert_true(held.blob_count < HELD_BLOBS);
	return &held.blobs[held.blob_count++];
}

/* A fresh reader, in place of the test's last one. */
static struct mjpeg_reader *held_reader(size_t frame_bytes_max)
{
	if (held.reader_open)
		mjpeg_reader_destroy(&held.reader);
	mjpeg_reader_init(&held.reader, frame_bytes_max);
	held.reader_open = 1;
	frames_free(&held.out);
	return &held.reader;
}

static void add_text(struct blob *b, const char *text)
{
	blob_add(b, text, strlen(text));
}

/* printf into b. */
__attribute__((format(printf, 2, 3))) static void add_format(struct blob *b, const char *format,
							     ...)
{
	char text[512];
	va_list args;
	int n;

	va_start(args, format);
	n = vsnprintf(text, sizeof(text), format, args);
	va_end(args);
	assert_true(n >= 0 && (size_t)n < sizeof(text));
	blob_add(b, text, (size_t)n);
}

static void add_blob(struct blob *b, const struct blob *more)
{
	blob_add(b, more->data, more->len);
}

/* Feeds in to r in chunks of chunk bytes (0: whole), as the header says a
 * caller must, collecting every frame into out. */
static void read_all(struct mjpeg_reader *r, const struct blob *in, size_t chunk,
		     struct frames *out)
{
	size_t pos = 0;

	while (pos < in->len) {
		size_t n = chunk == 0 || chunk > in->len - pos ? in->len - pos : chunk;
		const unsigned char *p = in->data + pos;
		size_t left = n;

		for (;;) {
			struct mjpeg_reader_frame frame = { (const unsigned char *)"x", 99, 99 };
			size_t used = mjpeg_reader_feed(r, p, left, &frame);

			assert_true(used <= left);
			p += used;
			left -= used;
			if (!frame.jpeg) {
				assert_int_equal(frame.jpeg_bytes, 0);
				assert_int_equal(frame.timestamp_usec, 0);
				assert_int_equal(left, 0);
				break;
			}
			assert_true(out->count < OUT_MAX);
			assert_true(frame.jpeg_bytes >= 4);
			assert_true(frame.jpeg_bytes <= r->splitter.frame_bytes_max);
			assert_int_equal(frame.jpeg[0], 0xFF);
			assert_int_equal(frame.jpeg[1], 0xD8);
			assert_int_equal(frame.jpeg[frame.jpeg_bytes - 2], 0xFF);
			assert_int_equal(frame.jpeg[frame.jpeg_bytes - 1], 0xD9);
			out->items[out->count] = (struct blob){ 0 };
			blob_add(&out->items[out->count], frame.jpeg, frame.jpeg_bytes);
			out->stamps[out->count++] = frame.timestamp_usec;
		}
		pos += n;
	}
}

static void assert_blob_equal(const struct blob *got, const struct blob *want)
{
	assert_int_equal(got->len, want->len);
	assert_memory_equal(got->data, want->data, want->len);
}

/* Every count a reader keeps, to compare two feedings. */
static void assert_same_counts(const struct mjpeg_reader *a, const struct mjpeg_reader *b)
{
	assert_int_equal(a->frames, b->frames);
	assert_int_equal(a->parts_skipped, b->parts_skipped);
	assert_int_equal(a->bytes_stray, b->bytes_stray);
	assert_int_equal(a->lengths_mismatched, b->lengths_mismatched);
	assert_int_equal(a->timestamps_bad, b->timestamps_bad);
	assert_int_equal(a->splitter.frames_cut, b->splitter.frames_cut);
	assert_int_equal(a->splitter.frames_oversized, b->splitter.frames_oversized);
	assert_int_equal(a->splitter.bytes_skipped, b->splitter.bytes_skipped);
}

/* in read whole, byte by byte and 7 bytes at a time gives exactly want,
 * with the same counts each time.  Returns the reader fed whole, for its
 * counts. */
static struct mjpeg_reader *assert_reads_to(const struct blob *in, size_t frame_bytes_max,
					    const struct want *want, size_t want_count)
{
	static const size_t chunks[] = { 1, 7, 0 };
	struct mjpeg_reader previous;
	size_t c, i;

	for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct mjpeg_reader *r = held_reader(frame_bytes_max);

		read_all(r, in, chunks[c], &held.out);
		if (held.out.count != want_count)
			fail_msg("%zu frames out, %zu expected (chunks of %zu)", held.out.count,
				 want_count, chunks[c]);
		for (i = 0; i < want_count; i++) {
			assert_blob_equal(&held.out.items[i], want[i].jpeg);
			if (held.out.stamps[i] != want[i].stamp)
				fail_msg("frame %zu: timestamp %lld, %lld expected (chunks of %zu)",
					 i, (long long)held.out.stamps[i], (long long)want[i].stamp,
					 chunks[c]);
		}
		assert_int_equal(r->frames, want_count);
		if (c > 0)
			assert_same_counts(r, &previous);
		previous = *r; /* the counts only: its buffer is not used */
	}
	return &held.reader;
}

/* Three distinct JPEGs, and one larger than the others. */
static struct blob f1, f2, f3, big;

/* Timestamps as mjpeg-fcgi sends them, to the microsecond. */
#define T1 1733300000123456LL
#define T2 1733300000000001LL
#define T3 1733300001999999LL

static int setup_jpegs(void **state)
{
	(void)state;
	f1 = tu_noisy_jpeg(64, 48, 1);
	f2 = tu_noisy_jpeg(40, 32, 2);
	f3 = tu_noisy_jpeg(48, 40, 3);
	big = tu_noisy_jpeg(256, 256, 4);
	return 0;
}

static int teardown_jpegs(void **state)
{
	(void)state;
	blob_free(&f1);
	blob_free(&f2);
	blob_free(&f3);
	blob_free(&big);
	return 0;
}

/* Into out: f with a segment (marker, payload) inserted after its SOI. */
static void with_segment(struct blob *out, const struct blob *f, unsigned char marker,
			 const void *payload, size_t payload_len)
{
	size_t length = 2 + payload_len;
	unsigned char head[4] = { 0xFF, marker, (unsigned char)(length >> 8),
				  (unsigned char)length };

	assert_true(length <= 0xFFFF);
	blob_add(out, f->data, 2);
	blob_add(out, head, sizeof(head));
	blob_add(out, payload, payload_len);
	blob_add(out, f->data + 2, f->len - 2);
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

/* ffmpeg's mpjpeg muxer (-f mpjpeg, also behind -listen 1): a delimiter
 * first, lower-case names, a CRLF after each JPEG, no X-Timestamp. */
static void add_ffmpeg_part(struct blob *b, const struct blob *jpeg)
{
	add_format(b, "--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: %zu\r\n\r\n",
		   jpeg->len);
	add_blob(b, jpeg);
	add_text(b, "\r\n");
}

static void test_read_ffmpeg(void **state)
{
	const struct want want[] = { { &f1, 0 }, { &f2, 0 }, { &f3, 0 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;

	(void)state;
	add_ffmpeg_part(in, &f1);
	add_ffmpeg_part(in, &f2);
	add_ffmpeg_part(in, &f3);
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 3);
	assert_int_equal(r->bytes_stray, 0);
	assert_int_equal(r->lengths_mismatched, 0);
	assert_int_equal(r->splitter.bytes_skipped, 0);
}

/* Our own wire format (multipart.c), closed by the last boundary: the
 * X-Timestamps come out to the microsecond. */
static void test_read_ours(void **state)
{
	const struct want want[] = { { &f1, T1 }, { &f2, T2 }, { &f3, T3 } };
	const struct blob *jpegs[] = { &f1, &f2, &f3 };
	const int64_t stamps[] = { T1, T2, T3 };
	char boundary[MULTIPART_BOUNDARY_LEN + 1], text[MULTIPART_HEAD_MAX];
	struct blob *in = held_blob();
	struct mjpeg_reader *r;
	size_t i;
	int n;

	(void)state;
	multipart_make_boundary(boundary);
	add_format(in, "--%s\r\n", boundary); /* what multipart_response_head ends with */
	for (i = 0; i < 3; i++) {
		n = multipart_part_head(text, sizeof(text), jpegs[i]->len, stamps[i]);
		assert_true(n > 0);
		blob_add(in, text, (size_t)n);
		add_blob(in, jpegs[i]);
		n = multipart_part_tail(text, sizeof(text), boundary, i == 2);
		assert_true(n > 0);
		blob_add(in, text, (size_t)n);
	}
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 3);
	assert_int_equal(r->bytes_stray, 0);
	assert_int_equal(r->lengths_mismatched, 0);
	assert_int_equal(r->timestamps_bad, 0);
}

/* A quoted boundary written with its quotes, and one declared with its
 * own leading "--" (so lines of "----b"): neither is ever looked at. */
static void test_read_odd_boundaries(void **state)
{
	const struct want want[] = { { &f1, T1 }, { &f2, T2 }, { &f3, 0 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;

	(void)state;
	add_format(in, "--\"a quoted; boundary\"\r\nContent-Type: image/jpeg\r\n"
		       "X-Timestamp: 1733300000.123456\r\n\r\n");
	add_blob(in, &f1);
	add_format(in, "\r\n----b\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n"
		       "X-Timestamp: 1733300000.000001\r\n\r\n", f2.len);
	add_blob(in, &f2);
	add_text(in, "\r\n--\"a quoted; boundary\"\r\nContent-Type: image/jpeg\r\n\r\n");
	add_blob(in, &f3);
	add_text(in, "\r\n----b--\r\n");
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 3);
	assert_int_equal(r->bytes_stray, 0);
}

/* Delimiter lines without "--" (some cameras write "myboundary"), parts
 * without Content-Length: the lines act as delimiters, none is stray. */
static void test_read_no_dashes_no_length(void **state)
{
	const struct want want[] = { { &f1, T1 }, { &f2, 0 }, { &f3, T3 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;

	(void)state;
	add_text(in, "myboundary\r\nContent-Type: image/jpeg\r\n"
		     "X-Timestamp: 1733300000.123456\r\n\r\n");
	add_blob(in, &f1);
	add_text(in, "\r\nmyboundary\r\nContent-Type: image/jpeg\r\n\r\n");
	add_blob(in, &f2);
	add_text(in, "\r\nmyboundary\r\nContent-Type: image/jpeg\r\n"
		     "X-Timestamp: 1733300001.999999\r\n\r\n");
	add_blob(in, &f3);
	add_text(in, "\r\nmyboundary\r\n");
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 3);
	assert_int_equal(r->bytes_stray, 0);
}

/* The headers of the first part first, no delimiter before them. */
static void test_read_headers_first(void **state)
{
	const struct want want[] = { { &f1, T1 }, { &f2, T2 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;

	(void)state;
	add_format(in, "Content-Type: image/jpeg\r\nContent-Length: %zu\r\n"
		       "X-Timestamp: 1733300000.123456\r\n\r\n", f1.len);
	add_blob(in, &f1);
	add_format(in, "\r\n--b\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n"
		       "X-Timestamp: 1733300000.000001\r\n\r\n", f2.len);
	add_blob(in, &f2);
	add_text(in, "\r\n--b\r\n");
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 2);
	assert_int_equal(r->bytes_stray, 0);
}

/* Bare concatenated JPEGs (ffmpeg -f mjpeg), and a bare JPEG before
 * multipart parts. */
static void test_read_bare(void **state)
{
	const struct want want[] = { { &f1, 0 }, { &f2, 0 }, { &f3, 0 } };
	const struct want mixed[] = { { &f1, 0 }, { &f2, T2 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;

	(void)state;
	add_blob(in, &f1);
	add_blob(in, &f2);
	add_blob(in, &f3);
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 3);
	assert_int_equal(r->bytes_stray, 0);
	assert_int_equal(r->splitter.bytes_skipped, 0);

	blob_free(in);
	add_blob(in, &f1);
	add_text(in, "\r\n--b\r\nContent-Type: image/jpeg\r\n"
		     "X-Timestamp: 1733300000.000001\r\n\r\n");
	add_blob(in, &f2);
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, mixed, 2);
	assert_int_equal(r->bytes_stray, 0);
}

/* A Content-Length 2 bytes over (the CRLF counted): padding skipped, no
 * mismatch.  10 over, padded with zeros: skipped, one mismatch.  10 under:
 * one mismatch, the frame kept whole. */
static void test_read_wrong_lengths(void **state)
{
	static const unsigned char zeros[10];
	const struct want want[] = { { &f1, T1 }, { &f2, T2 }, { &f3, T3 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;

	(void)state;
	add_format(in, "--b\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n"
		       "X-Timestamp: 1733300000.123456\r\n\r\n", f1.len + 2);
	add_blob(in, &f1);
	add_text(in, "\r\n\r\n--b\r\n");
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 1);
	assert_int_equal(r->bytes_stray, 0);
	assert_int_equal(r->lengths_mismatched, 0);

	add_format(in, "Content-Type: image/jpeg\r\nContent-Length: %zu\r\n"
		       "X-Timestamp: 1733300000.000001\r\n\r\n", f2.len + 10);
	add_blob(in, &f2);
	blob_add(in, zeros, sizeof(zeros));
	add_format(in, "\r\n--b\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n"
		       "X-Timestamp: 1733300001.999999\r\n\r\n", f3.len - 10);
	add_blob(in, &f3);
	add_text(in, "\r\n--b--\r\n");
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 3);
	assert_int_equal(r->bytes_stray, 0);
	assert_int_equal(r->lengths_mismatched, 2);
}

/* A length far too long (past the next part's start): the next JPEG's
 * SOI in the "padding" still starts it. */
static void test_read_length_too_long(void **state)
{
	const struct want want[] = { { &f1, 0 }, { &f2, 0 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;

	(void)state;
	add_format(in, "--b\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n\r\n",
		   f1.len + 1000);
	add_blob(in, &f1);
	add_text(in, "\r\n--b\r\nContent-Type: image/jpeg\r\n"
		     "X-Timestamp: 1733300000.000001\r\n\r\n");
	add_blob(in, &f2);
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 2);
	assert_int_equal(r->lengths_mismatched, 1);
}

/* LF-only line ends, blank lines where there need be none, spaces. */
static void test_read_lf_and_blank_lines(void **state)
{
	const struct want want[] = { { &f1, T1 }, { &f2, T2 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;

	(void)state;
	add_format(in, "\n\n  \n--b\ncontent-type:image/jpeg\nCONTENT-LENGTH:   %zu  \n"
		       "x-timestamp: 1733300000.123456\n\n\n\n", f1.len);
	add_blob(in, &f1);
	add_text(in, "\n\n\n--b\r\nContent-Type: image/jpeg\n"
		     "X-Timestamp:\t1733300000.000001\r\n\n");
	add_blob(in, &f2);
	add_text(in, "\n--b--\n\n");
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 2);
	assert_int_equal(r->bytes_stray, 0);
	assert_int_equal(r->lengths_mismatched, 0);
}

/* A text/plain part with a length, holding a whole JPEG: skipped unread.
 * Without a length, its lines are stray, and an FF D8 in it would start a
 * JPEG (there is no other way to know where it ends). */
static void test_read_other_type_skipped(void **state)
{
	const struct want want[] = { { &f1, T1 }, { &f3, T3 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;

	(void)state;
	add_format(in, "--b\r\nContent-Type: image/jpeg\r\nX-Timestamp: 1733300000.123456\r\n\r\n");
	add_blob(in, &f1);
	add_format(in, "\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
		       "Content-Length: %zu\r\n"
		       "X-Timestamp: 1733300000.000001\r\n\r\n", f2.len + 4);
	add_text(in, "ab\r\n");
	add_blob(in, &f2);
	add_text(in, "\r\n--b\r\nContent-Type: image/jpeg\r\n"
		     "X-Timestamp: 1733300001.999999\r\n\r\n");
	add_blob(in, &f3);
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 2);
	assert_int_equal(r->parts_skipped, 1);
	assert_int_equal(r->bytes_stray, 0);
}

/* Text that looks like part boundaries and headers inside a JPEG's COM
 * segment, and FFD9/FFD8 inside an EXIF APP1: one whole frame each. */
static void test_read_markers_inside_jpeg(void **state)
{
	static const char com[] = "\r\n--ffmpeg\r\nContent-Length: 5\r\n\r\n";
	static const unsigned char exif[] = { 'E', 'x', 'i', 'f', 0, 0, 0xFF, 0xD9,
					      0xFF, 0xD8, 0xFF, 0xD9, '\r', '\n' };
	struct blob *with_com = held_blob(), *with_exif = held_blob(), *in = held_blob();
	const struct want want[] = { { with_com, T1 }, { with_exif, T2 }, { &f3, 0 } };
	struct mjpeg_reader *r;

	(void)state;
	with_segment(with_com, &f1, 0xFE, com, sizeof(com) - 1);
	with_segment(with_exif, &f2, 0xE1, exif, sizeof(exif));
	add_format(in, "--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: %zu\r\n"
		       "X-Timestamp: 1733300000.123456\r\n\r\n", with_com->len);
	add_blob(in, with_com);
	add_format(in, "\r\n--ffmpeg\r\nContent-type: image/jpeg\r\n"
		       "X-Timestamp: 1733300000.000001\r\n\r\n");
	add_blob(in, with_exif);
	add_ffmpeg_part(in, &f3);
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 3);
	assert_int_equal(r->bytes_stray, 0);
	assert_int_equal(r->lengths_mismatched, 0);
	assert_int_equal(r->splitter.frames_cut, 0);
}

/* Junk before the first part: stray, counted to the byte; the parts after
 * it whole. */
static void test_read_junk_first(void **state)
{
	static const char junk[] = "HTTP/1.0 200 OK\r\nwhat is this\r\n";
	const struct want want[] = { { &f1, T1 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;

	(void)state;
	add_text(in, junk);
	add_text(in, "--b\r\nContent-Type: image/jpeg\r\nX-Timestamp: 1733300000.123456\r\n\r\n");
	add_blob(in, &f1);
	add_text(in, "\r\n--b--\r\n");
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 1);
	assert_int_equal(r->bytes_stray, sizeof(junk) - 1);

	/* junk on the JPEG's own line, binary junk with FF bytes */
	blob_free(in);
	add_text(in, "junk\xff\xd9\xff\xff");
	add_blob(in, &f1);
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, (const struct want[]){ { &f1, 0 } }, 1);
	assert_int_equal(r->bytes_stray, 8); /* "junk" and FF D9 FF FF */
}

/* A part cut inside its JPEG's entropy-coded data, then two whole ones: the
 * cut frame swallows the next part's headers, so the next frame comes out
 * without a timestamp; the one after it has its own. */
static void test_read_cut_in_scan(void **state)
{
	const struct want want[] = { { &f2, 0 }, { &f3, T3 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;

	(void)state;
	add_text(in, "--b\r\nContent-Type: image/jpeg\r\nX-Timestamp: 1733300000.123456\r\n\r\n");
	blob_add(in, f1.data, f1.len - 50);
	add_text(in, "\r\n--b\r\nContent-Type: image/jpeg\r\n"
		     "X-Timestamp: 1733300000.000001\r\n\r\n");
	add_blob(in, &f2);
	add_text(in, "\r\n--b\r\nContent-Type: image/jpeg\r\n"
		     "X-Timestamp: 1733300001.999999\r\n\r\n");
	add_blob(in, &f3);
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 2);
	assert_int_equal(r->splitter.frames_cut, 1);
}

/* Cut anywhere in its headers: the splitter parses bytes again to find the
 * next SOI.  A part's frame keeps its timestamp only when the part's
 * headers were read as text, not swallowed by the cut segment's length
 * (which may reach past the next frame: up to 32 kB for a length made of
 * text).  So the next frame comes out (exact, or rarely spliced, see
 * mjpeg_splitter.h), stamped T2 or 0; the one after it exact, stamped T3
 * or 0 (nearly always T3).  Rarely the cut segment's length swallows both
 * and ends right on a marker: one spliced frame.  Whatever comes out, the
 * same whatever the chunking. */
static void test_read_cut_in_headers(void **state)
{
	size_t cut, start = scan_start(&f1), cuts = start - 2, stamped2 = 0, stamped3 = 0;
	size_t spliced = 0;
	struct blob *in = held_blob();
	struct frames *whole = &held.whole;

	(void)state;
	for (cut = 2; cut < start; cut++) {
		static const size_t chunks[] = { 0, 1, 7 };
		size_t c, i;

		blob_free(in);
		add_text(in, "--b\r\nContent-Type: image/jpeg\r\n"
			     "X-Timestamp: 1733300000.123456\r\n\r\n");
		blob_add(in, f1.data, cut);
		add_text(in, "\r\n--b\r\nContent-Type: image/jpeg\r\n"
			     "X-Timestamp: 1733300000.000001\r\n\r\n");
		add_blob(in, &f2);
		add_text(in, "\r\n--b\r\nContent-Type: image/jpeg\r\n"
			     "X-Timestamp: 1733300001.999999\r\n\r\n");
		add_blob(in, &f3);
		for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
			struct mjpeg_reader *r = held_reader(FRAME_BYTES_MAX_DEFAULT);

			read_all(r, in, chunks[c], &held.out);
			if (c == 0) {
				*whole = held.out; /* kept until the next cut */
				held.out = (struct frames){ 0 };
				continue;
			}
			if (held.out.count != whole->count)
				fail_msg("cut at %zu, chunks of %zu: %zu frames, whole %zu", cut,
					 chunks[c], held.out.count, whole->count);
			for (i = 0; i < whole->count; i++) {
				assert_blob_equal(&held.out.items[i], &whole->items[i]);
				if (held.out.stamps[i] != whole->stamps[i])
					fail_msg("cut at %zu, chunks of %zu: frame %zu stamped "
						 "%lld, whole %lld", cut, chunks[c], i,
						 (long long)held.out.stamps[i],
						 (long long)whole->stamps[i]);
			}
			frames_free(&held.out);
		}
		if (whole->count == 2 && whole->items[1].len == f3.len &&
		    memcmp(whole->items[1].data, f3.data, f3.len) == 0) {
			assert_true(whole->stamps[0] == 0 || whole->stamps[0] == T2);
			assert_true(whole->stamps[1] == 0 || whole->stamps[1] == T3);
			stamped2 += whole->stamps[0] == T2;
			stamped3 += whole->stamps[1] == T3;
		} else {
			assert_int_equal(whole->count, 1);
			spliced++;
		}
		frames_free(whole);
	}
	print_message("%zu cuts: %zu spliced; the next part stamped after %zu, the one after "
		      "it after %zu\n", cuts, spliced, stamped2, stamped3);
	assert_true(spliced * 50 < cuts);
	assert_true(stamped3 * 10 >= (cuts - spliced) * 9);
}

/* X-Timestamps the reader does not take: counted, the frame without one. */
static void test_read_bad_timestamps(void **state)
{
	static const char *const bad[] = { "12.3456789", "abc", "1.", ".5", "-5", "1e9", "1,5",
					   "99999999999999999999", "1.2.3", "" };
	struct want want[sizeof(bad) / sizeof(bad[0]) + 1];
	struct blob *in = held_blob();
	struct mjpeg_reader *r;
	size_t i, n = sizeof(bad) / sizeof(bad[0]);

	(void)state;
	for (i = 0; i < n; i++) {
		add_format(in, "--b\r\nContent-Type: image/jpeg\r\n"
			       "X-Timestamp: %s\r\n\r\n", bad[i]);
		add_blob(in, &f1);
		add_text(in, "\r\n");
		want[i] = (struct want){ &f1, 0 };
	}
	add_text(in, "--b\r\nX-Timestamp: 7\r\n\r\n"); /* whole seconds are fine */
	add_blob(in, &f2);
	want[n] = (struct want){ &f2, 7000000 };
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, n + 1);
	assert_int_equal(r->timestamps_bad, n);
}

/* Lines over MJPEG_READER_LINE_MAX: stray, not kept (a long header is no
 * header), still scanned for FF D8. */
static void test_read_long_lines(void **state)
{
	const struct want want[] = { { &f1, 0 }, { &f2, T2 }, { &f3, 0 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;
	size_t i, stray;

	(void)state;
	add_text(in, "--b\r\nContent-Type: image/jpeg\r\nX-Timestamp: 1733300000.123456");
	for (i = 0; i < 2048; i++)
		add_text(in, "0");
	add_text(in, "\r\n\r\n");
	stray = in->len - strlen("--b\r\nContent-Type: image/jpeg\r\n") - 2;
	add_blob(in, &f1);
	/* exactly the longest line kept, CR included: a header */
	add_text(in, "\r\n--b\r\nX-Timestamp: 1733300000.000001");
	for (i = strlen("X-Timestamp: 1733300000.000001"); i < MJPEG_READER_LINE_MAX - 1; i++)
		add_text(in, " ");
	add_text(in, "\r\n\r\n");
	add_blob(in, &f2);
	/* a 2 KiB line with a JPEG in its middle */
	add_text(in, "\r\n--b\r\n");
	for (i = 0; i < 2048; i++)
		add_text(in, "x");
	stray += 2048;
	add_blob(in, &f3);
	r = assert_reads_to(in, FRAME_BYTES_MAX_DEFAULT, want, 3);
	assert_int_equal(r->bytes_stray, stray);
}

/* Frames over frame_bytes_max are dropped and counted, never kept whole;
 * the frames around them keep their timestamps. */
static void test_read_oversized(void **state)
{
	size_t max = f1.len > f3.len ? f1.len : f3.len;
	const struct want want[] = { { &f1, T1 }, { &f3, T3 } };
	struct blob *in = held_blob();
	struct mjpeg_reader *r;

	(void)state;
	assert_true(big.len > max);
	add_format(in, "--b\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n"
		       "X-Timestamp: 1733300000.123456\r\n\r\n", f1.len);
	add_blob(in, &f1);
	add_format(in, "\r\n--b\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n"
		       "X-Timestamp: 1733300000.000001\r\n\r\n", big.len);
	add_blob(in, &big);
	add_format(in, "\r\n--b\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n"
		       "X-Timestamp: 1733300001.999999\r\n\r\n", f3.len);
	add_blob(in, &f3);
	add_text(in, "\r\n--b--\r\n");
	r = assert_reads_to(in, max, want, 2);
	assert_int_equal(r->splitter.frames_oversized, 1);
	assert_int_equal(r->bytes_stray, 0);
	assert_true(r->splitter.capacity <= max);
}

/* A body that ends mid-part: nothing of the cut part comes out; reset
 * counts what it drops, and the next body starts afresh. */
static void test_read_truncated_then_reset(void **state)
{
	struct mjpeg_reader *r = held_reader(FRAME_BYTES_MAX_DEFAULT);
	struct mjpeg_reader_frame frame;
	struct blob *in = held_blob();
	size_t before;

	(void)state;
	add_text(in, "--b\r\nContent-Type: image/jpeg\r\nX-Timestamp: 1733300000.123456\r\n\r\n");
	add_blob(in, &f1);
	add_text(in, "\r\n--b\r\nContent-Type: image/jpeg\r\n"
		     "X-Timestamp: 1733300000.000001\r\n\r\n");
	before = in->len;
	blob_add(in, f2.data, f2.len / 2);
	read_all(r, in, 7, &held.out);
	assert_int_equal(held.out.count, 1);
	assert_blob_equal(&held.out.items[0], &f1);
	assert_int_equal(held.out.stamps[0], T1);
	frames_free(&held.out);
	/* nothing more, mid-JPEG (as after a frame: NULL data and no bytes) */
	assert_int_equal(mjpeg_reader_feed(r, NULL, 0, &frame), 0);
	assert_null(frame.jpeg);
	assert_int_equal(mjpeg_reader_reset(r), in->len - before);
	assert_int_equal(mjpeg_reader_reset(r), 0);

	/* a partial header line is dropped too; then a new body */
	blob_free(in);
	add_text(in, "Content-Ty");
	read_all(r, in, 0, &held.out);
	assert_int_equal(mjpeg_reader_reset(r), strlen("Content-Ty"));
	blob_free(in);
	add_text(in, "--c\r\nX-Timestamp: 1733300001.999999\r\n\r\n");
	add_blob(in, &f3);
	read_all(r, in, 0, &held.out);
	assert_int_equal(held.out.count, 1);
	assert_blob_equal(&held.out.items[0], &f3);
	assert_int_equal(held.out.stamps[0], T3);
}

/* Every test holds what it makes in held; teardown_held frees it. */
#define HELD_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_held, teardown_held)

int main(void)
{
	const struct CMUnitTest reader_tests[] = {
		HELD_TEST(test_read_ffmpeg),
		HELD_TEST(test_read_ours),
		HELD_TEST(test_read_odd_boundaries),
		HELD_TEST(test_read_no_dashes_no_length),
		HELD_TEST(test_read_headers_first),
		HELD_TEST(test_read_bare),
		HELD_TEST(test_read_wrong_lengths),
		HELD_TEST(test_read_length_too_long),
		HELD_TEST(test_read_lf_and_blank_lines),
		HELD_TEST(test_read_other_type_skipped),
		HELD_TEST(test_read_markers_inside_jpeg),
		HELD_TEST(test_read_junk_first),
		HELD_TEST(test_read_cut_in_scan),
		HELD_TEST(test_read_cut_in_headers),
		HELD_TEST(test_read_bad_timestamps),
		HELD_TEST(test_read_long_lines),
		HELD_TEST(test_read_oversized),
		HELD_TEST(test_read_truncated_then_reset),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("mjpeg_reader", reader_tests, setup_jpegs,
					      teardown_jpegs);
	return failed ? 1 : 0;
}
