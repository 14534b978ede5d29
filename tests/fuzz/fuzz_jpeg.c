/* Fuzzes what an ingest POST reaches before anything is published:
 * encode_validate on the body, and ingest_token_matches on the
 * Authorization header.  A broken invariant traps (__builtin_trap), which
 * libFuzzer reports as a crash. */
#include "config.h"
#include "encode.h"
#include "fuzz.h"
#include "ingest.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BEARER "Bearer "

/* TurboJPEG is not instrumented, so libFuzzer cannot see which parts of a
 * JPEG it reached.  Walking the marker segments here gives each kind of
 * marker (and each order of them) coverage of its own, so mutated JPEGs
 * with new structure stay in the corpus.  Returns the markers seen; no
 * invariant is checked. */
static unsigned walk_markers(const uint8_t *data, size_t size)
{
	size_t i = 2, len;
	unsigned seen = 0;

	if (size < 2 || data[0] != 0xFF || data[1] != 0xD8)
		return 0;
	while (i + 1 < size && seen < 64) {
		uint8_t code;

		if (data[i] != 0xFF)
			return seen | 0x8000; /* junk where a marker is due */
		while (i + 1 < size && data[i + 1] == 0xFF)
			i++; /* fill */
		if (i + 1 >= size)
			break;
		code = data[i + 1];
		i += 2;
		seen++;
		switch (code) {
		case 0xD9:
			return seen; /* EOI */
		case 0x01:
		case 0xD0: case 0xD1: case 0xD2: case 0xD3:
		case 0xD4: case 0xD5: case 0xD6: case 0xD7:
			continue; /* TEM, RSTn: no length */
		case 0xC0: case 0xC1: case 0xC2: case 0xC3:
		case 0xC5: case 0xC6: case 0xC7:
		case 0xC9: case 0xCA: case 0xCB:
		case 0xCD: case 0xCE: case 0xCF:
			seen |= 0x100u << (code & 0x0F) % 8; /* SOFn, by kind */
			break;
		case 0xC4: case 0xCC: case 0xDB: case 0xDD: case 0xFE:
			break; /* DHT, DAC, DQT, DRI, COM */
		case 0xDA:
			seen |= 0x1000; /* SOS */
			break;
		default:
			if (code >= 0xE0 && code <= 0xEF)
				break; /* APPn */
			return seen | 0x4000; /* SOI, FF00 or reserved here */
		}
		if (i + 2 > size)
			break;
		len = (size_t)data[i] << 8 | data[i + 1];
		if (len < 2)
			return seen | 0x2000;
		i += len;
		if (code == 0xDA) { /* entropy-coded data: up to a real marker */
			while (i + 1 < size && !(data[i] == 0xFF && data[i + 1] != 0x00 &&
						 (data[i + 1] < 0xD0 || data[i + 1] > 0xD7)))
				i++;
		}
	}
	return seen;
}

/* Never crashes; a JPEG it accepts has a size within the limit and
 * SOI/EOI at its ends. */
static void check_validate(const uint8_t *data, size_t size)
{
	uint32_t width = 0, height = 0;
	const char *why = NULL;

	if (encode_validate(data, size, &width, &height, &why) == 0) {
		CHECK(width > 0 && height > 0);
		CHECK(width <= FRAME_SIDE_MAX && height <= FRAME_SIDE_MAX);
		CHECK(size >= 4 && data[0] == 0xFF && data[1] == 0xD8);
		CHECK(data[size - 2] == 0xFF && data[size - 1] == 0xD9);
	} else {
		CHECK(why != NULL && why[0] != '\0');
	}
}

/* The reference: "Bearer " (the scheme in any case) + token, compared
 * plainly.  An empty token refuses every POST (config.h: token ""
 * refuses), so it matches nothing. */
static int reference_matches(const char *authorization, const char *token)
{
	size_t prefix = strlen(BEARER);

	return token[0] != '\0' && strncasecmp(authorization, BEARER, prefix) == 0 &&
	       strcmp(authorization + prefix, token) == 0;
}

/* The input split at its first NUL into a header value and a token (no
 * NUL: the whole input is both).  Checked as presented, and again with
 * "Bearer " and "bEARER " put in front, so the comparison loop itself is
 * reached. */
static void check_token(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t first = nul ? (size_t)(nul - data) : size;
	size_t second = nul ? size - first - 1 : size;
	char *authorization = fuzz_string("", data, first);
	char *bearer = fuzz_string(BEARER, data, first);
	char *odd_case = fuzz_string("bEARER ", data, first);
	char *token = fuzz_string("", nul ? nul + 1 : data, second);

	if (!authorization || !bearer || !odd_case || !token)
		goto out;
	/* later NULs shorten the strings: the reference sees the same ones */
	CHECK(ingest_token_matches(authorization, token) ==
	      reference_matches(authorization, token));
	CHECK(ingest_token_matches(bearer, token) == reference_matches(bearer, token));
	CHECK(ingest_token_matches(odd_case, token) == ingest_token_matches(bearer, token));
out:
	free(authorization);
	free(bearer);
	free(odd_case);
	free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* volatile: kept for its coverage, though the result is not used */
	volatile unsigned markers = walk_markers(data, size);

	(void)markers;
	check_validate(data, size);
	check_token(data, size);
	return 0;
}
