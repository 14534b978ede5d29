/* testutil: helpers shared by the unit tests; see testutil.h. */
#include "testutil.h"

#include "encode.h"

#include <fastcgi.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <turbojpeg.h>
#include <unistd.h>

/* Capacity a growing buffer starts with, in items. */
#define GROW_FIRST 16
/* Descriptors nftw may hold open while it walks. */
#define WALK_FDS 16

void tu_grow(void **buf, size_t *cap, size_t need, size_t item)
{
	size_t cap_new = *cap ? *cap : GROW_FIRST;
	void *grown;

	if (need <= *cap)
		return;
	while (cap_new < need) {
		if (cap_new > SIZE_MAX / 2 / item)
			abort(); /* no test needs half the address space */
		cap_new *= 2;
	}
	grown = realloc(*buf, cap_new * item);
	if (!grown) {
		fprintf(stderr, "testutil: realloc(%zu): out of memory\n", cap_new * item);
		abort(); /* a test with no memory cannot go on */
	}
	*buf = grown;
	*cap = cap_new;
}

void blob_add(struct blob *b, const void *p, size_t n)
{
	tu_grow((void **)&b->data, &b->cap, b->len + n + 1, 1);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void blob_free(struct blob *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* What tu_alloc handed out: the test thread's only. */
static void **held;
static size_t held_count, held_cap;

void *tu_alloc(size_t bytes)
{
	void *p = malloc(bytes ? bytes : 1);

	if (!p) {
		fprintf(stderr, "testutil: malloc(%zu): out of memory\n", bytes);
		abort();
	}
	tu_grow((void **)&held, &held_cap, held_count + 1, sizeof(*held));
	held[held_count++] = p;
	return p;
}

int tu_release(void **state)
{
	(void)state;
	while (held_count > 0)
		free(held[--held_count]);
	free(held);
	held = NULL;
	held_cap = 0;
	return 0;
}

int tu_dir_make(char *dir, size_t size, const char *name)
{
	int n = snprintf(dir, size, "/tmp/mjpeg-fcgi-test-%s-XXXXXX", name);

	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "testutil: directory name for %s too long\n", name);
		if (size)
			dir[0] = '\0';
		return -1;
	}
	if (!mkdtemp(dir)) {
		perror("testutil: mkdtemp");
		dir[0] = '\0';
		return -1;
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *walk)
{
	(void)st;
	(void)walk;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0)
		perror(path); /* left behind: said, and the walk goes on */
	return 0;
}

void tu_dir_remove(const char *dir)
{
	if (!dir[0])
		return;
	if (nftw(dir, remove_entry, WALK_FDS, FTW_DEPTH | FTW_PHYS) < 0)
		perror(dir);
}

size_t tu_record_parse(const unsigned char *p, size_t len, struct tu_record *rec)
{
	const FCGI_Header *h = (const FCGI_Header *)p;
	size_t whole;

	if (len < FCGI_HEADER_LEN)
		return 0;
	rec->version = h->version;
	rec->type = h->type;
	rec->request_id = h->requestIdB1 << 8 | h->requestIdB0;
	rec->content_len = (size_t)h->contentLengthB1 << 8 | h->contentLengthB0;
	rec->padding_len = h->paddingLength;
	rec->content = p + FCGI_HEADER_LEN;
	whole = FCGI_HEADER_LEN + rec->content_len + rec->padding_len;
	return len < whole ? 0 : whole;
}

struct tu_thread_sched tu_thread_sched(void)
{
	struct tu_thread_sched sched;
	unsigned long long cpu_ns, wait_ns;
	struct rusage usage;
	FILE *file = fopen("/proc/thread-self/schedstat", "r");
	int fields = file ? fscanf(file, "%llu %llu", &cpu_ns, &wait_ns) : 0;

	if (file)
		fclose(file);
	if (fields != 2 || getrusage(RUSAGE_THREAD, &usage) < 0) {
		fprintf(stderr, "testutil: no /proc/thread-self/schedstat or RUSAGE_THREAD "
				"(a kernel without CONFIG_SCHED_INFO?)\n");
		abort();
	}
	sched.runnable_usec = (int64_t)((cpu_ns + wait_ns) / 1000);
	sched.wakeups = usage.ru_nvcsw;
	return sched;
}

uint32_t tu_rng_next(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

struct blob tu_noisy_jpeg(uint32_t width, uint32_t height, uint32_t seed)
{
	struct encoder *enc = encode_open();
	size_t pixels = (size_t)width * height * 3, bytes, i;
	unsigned char *rgb = malloc(pixels);
	struct blob out = { 0 };
	const unsigned char *jpeg;

	if (!enc || !rgb) {
		fprintf(stderr, "testutil: no encoder or no memory for a %ux%u JPEG\n", width, height);
		abort();
	}
	for (i = 0; i < pixels; i++)
		rgb[i] = (unsigned char)tu_rng_next(&seed);
	if (encode_frame(enc, rgb, PIXEL_RGB24, width, height, 90, &jpeg, &bytes) != 0) {
		fprintf(stderr, "testutil: encoding a %ux%u JPEG failed\n", width, height);
		abort();
	}
	blob_add(&out, jpeg, bytes);
	free(rgb);
	encode_close(enc);
	return out;
}

unsigned char *tu_i420_rgb(const unsigned char *yuv, uint32_t width, uint32_t height)
{
	tjhandle tj = tjInitDecompress();
	unsigned char *rgb = tu_alloc((size_t)width * height * 3);

	if (!tj || tjDecodeYUV(tj, yuv, 1, TJSAMP_420, rgb, (int)width, 0, (int)height,
			       TJPF_RGB, 0) != 0) {
		fprintf(stderr, "testutil: tjDecodeYUV(%ux%u): %s\n", width, height,
			tjGetErrorStr2(tj));
		abort();
	}
	tjDestroy(tj);
	return rgb;
}
