/* fuzz: what every libFuzzer harness in tests/fuzz shares: the entry
 * points libFuzzer calls, CHECK for the invariants, a NUL-terminated copy
 * of input bytes for the parsers that take C strings, and the input layout
 * of the harnesses that feed a byte stream whole and in chunks. */
#ifndef MJPEG_FUZZ_H
#define MJPEG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* libFuzzer's entry points; LLVMFuzzerInitialize is optional. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant traps (__builtin_trap), which libFuzzer reports as a
 * crash with the input that caused it. */
#define CHECK(cond)                      \
	do {                             \
		if (!(cond))             \
			__builtin_trap(); \
	} while (0)

/* prefix (may be "") then size bytes of data, as a C string: the caller
 * frees it.  A NUL inside data shortens the string, as it would for the
 * code under test.  NULL when out of memory (the harness skips the input). */
static inline char *fuzz_string(const char *prefix, const uint8_t *data, size_t size)
{
	size_t prefix_len = strlen(prefix);
	char *text = malloc(prefix_len + size + 1);

	if (!text)
		return NULL;
	memcpy(text, prefix, prefix_len);
	memcpy(text + prefix_len, data, size);
	text[prefix_len + size] = '\0';
	return text;
}

/* The input of the byte-stream harnesses (fuzz_mjpeg.c, fuzz_mjpeg_reader.c):
 * byte 0 picks frame_bytes_max (bits 6-7, from the limits below: 64 KiB, and
 * smaller ones so that inputs of a few kB reach the oversized paths) and
 * how many chunk sizes follow (bits 0-2, plus one); each of those bytes is
 * a chunk size less one, used in turn; the rest is the stream, fed once
 * whole and once in those chunks. */
#define FUZZ_CHUNK_SIZES_MAX 8

struct fuzz_stream {
	size_t frame_bytes_max;
	size_t chunk_sizes[FUZZ_CHUNK_SIZES_MAX];
	size_t chunk_count;
	const uint8_t *bytes;
	size_t len;
};

/* Reads data into *s; 0 when it is too short to hold the header. */
static inline int fuzz_stream_parse(const uint8_t *data, size_t size, struct fuzz_stream *s)
{
	static const size_t frame_limits[] = { 64 * 1024, 4096, 512, 64 };
	size_t k;

	if (size < 1)
		return 0;
	s->frame_bytes_max = frame_limits[data[0] >> 6];
	s->chunk_count = (size_t)(data[0] & 7) + 1;
	if (size < 1 + s->chunk_count)
		return 0;
	for (k = 0; k < s->chunk_count; k++)
		s->chunk_sizes[k] = (size_t)data[1 + k] + 1;
	s->bytes = data + 1 + s->chunk_count;
	s->len = size - 1 - s->chunk_count;
	return 1;
}

/* The length of the next chunk, which starts at pos (< s->len); *turn
 * counts the chunks taken (start it at 0). */
static inline size_t fuzz_stream_chunk(const struct fuzz_stream *s, size_t pos, size_t *turn)
{
	size_t n = s->chunk_sizes[(*turn)++ % s->chunk_count];

	return n < s->len - pos ? n : s->len - pos;
}

#endif
