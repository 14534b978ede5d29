/* testutil: what several unit tests need and nothing in fcgi/ provides: a
 * byte buffer that grows geometrically, memory that a test's teardown
 * frees, noisy test JPEGs and planar pictures as RGB, a fresh directory under /tmp, the parse of one FastCGI record as
 * the web server's end reads it, and how long a thread was runnable.  Linked into every tests/unit/test_* binary
 * (and into their sanitizer builds) by the Makefile.
 *
 * Failures here are failures of the test's own set-up (out of memory, no
 * schedstat): they abort with a message, whether or not a cmocka test
 * runs; tu_dir_make returns -1 for a setup function to report. */
#ifndef MJPEG_TESTUTIL_H
#define MJPEG_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* ---- growing buffers ---------------------------------------------------- */

/* Makes *buf (of *cap items of item bytes) hold at least need items,
 * doubling the capacity: n appends cost O(n) copying, not O(n^2). */
void tu_grow(void **buf, size_t *cap, size_t need, size_t item);

/* Bytes, with one spare byte after len (so data can end in '\0').  Start
 * from { 0 }; blob_free makes it empty again. */
struct blob {
	unsigned char *data;
	size_t len;
	size_t cap;             /* bytes allocated at data */
};

void blob_add(struct blob *b, const void *p, size_t n);
void blob_free(struct blob *b);

/* ---- test JPEGs ----------------------------------------------------------- */

/* A small deterministic generator, so failures repeat. */
uint32_t tu_rng_next(uint32_t *state);

/* A JPEG (quality 90, encode.c's encoder) of width x height noisy pixels
 * from seed: noise makes entropy-coded data with stuffed FF00 bytes.
 * Aborts if the encoder fails. */
struct blob tu_noisy_jpeg(uint32_t width, uint32_t height, uint32_t seed);

/* A PIXEL_I420 picture (encode.h) as RGB24, converted by TurboJPEG, in
 * memory from tu_alloc.  Aborts if the conversion fails. */
unsigned char *tu_i420_rgb(const unsigned char *yuv, uint32_t width, uint32_t height);

/* ---- memory a test holds ------------------------------------------------ */

/* bytes of memory (uninitialised) that tu_release frees: for a test that
 * may fail between its allocation and its end.  Aborts when out of memory.
 * One test at a time: not for threads the test starts. */
void *tu_alloc(size_t bytes);

/* Frees what tu_alloc gave since the last call; 0.  A cmocka teardown
 * (cmocka_unit_test_teardown(test, tu_release)), so it runs after a
 * failed assertion too, and one failure is not reported again as leaks. */
int tu_release(void **state);

/* ---- temporary directories ---------------------------------------------- */

/* Creates /tmp/mjpeg-fcgi-test-NAME-XXXXXX (mode 0700) into dir (size
 * bytes).  0, or -1 with the reason printed. */
int tu_dir_make(char *dir, size_t size, const char *name) __attribute__((warn_unused_result));

/* Removes dir and everything under it (links are removed, not followed).
 * Nothing if dir is "" (never made). */
void tu_dir_remove(const char *dir);

/* ---- FastCGI records ---------------------------------------------------- */

struct tu_record {
	int version;
	int type;
	int request_id;
	const unsigned char *content; /* points into the bytes parsed */
	size_t content_len;
	size_t padding_len;
};

/* One record at the start of p[0, len): its header, and where its content
 * is.  Returns the bytes of the whole record (header, content, padding),
 * or 0 when len does not hold all of it yet. */
size_t tu_record_parse(const unsigned char *p, size_t len, struct tu_record *rec);

/* ---- scheduling --------------------------------------------------------- */

/* What the kernel counted for the calling thread, since it started. */
struct tu_thread_sched {
	int64_t runnable_usec;  /* on a CPU, or ready and waiting for one */
	int64_t wakeups;        /* voluntary context switches: it blocked */
};

/* From /proc/thread-self/schedstat and getrusage(RUSAGE_THREAD); aborts
 * when the kernel does not provide them. */
struct tu_thread_sched tu_thread_sched(void);

#endif
