/* fuzz: what every libFuzzer harness in tests/fuzz shares: the entry
 * points libFuzzer calls, CHECK for the invariants, and a NUL-terminated
 * copy of input bytes for the parsers that take C strings. */
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

#endif
