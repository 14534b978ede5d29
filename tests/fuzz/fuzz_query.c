/* Fuzzes the request parsing of fcgi/http.c: the input as a path for
 * http_route and as a query string for http_parse_query under every route
 * kind, plus the strict number parsers underneath.  A broken invariant traps
 * (__builtin_trap), which libFuzzer reports as a crash. */
#include "config.h"
#include "fuzz.h"
#include "http.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The size of the buffer the server passes (fcgi/server.c, handle()). */
#define WHY_BYTES 160
/* Poison that must not survive in why after a failure. */
#define WHY_POISON 0xA5

/* The n-th '/'-separated segment from the end (0: the last) as a pointer
 * and length; -1 if the path has fewer segments. */
static int segment(const char *path, int n, const char **start, size_t *len)
{
	const char *end = path + strlen(path), *p;

	for (;;) {
		p = end;
		while (p > path && p[-1] != '/')
			p--;
		if (n-- == 0)
			break;
		if (p == path)
			return -1;
		end = p - 1;
	}
	*start = p;
	*len = (size_t)(end - p);
	return 0;
}

static int segment_is(const char *start, size_t len, const char *word)
{
	return len == strlen(word) && memcmp(start, word, len) == 0;
}

/* What http.h promises, written out independently of http.c. */
static enum route_kind expected_route(const char *path)
{
	const char *last, *prev;
	size_t last_len, prev_len;
	char name[STREAM_NAME_MAX + 2];

	if (segment(path, 0, &last, &last_len) < 0)
		return ROUTE_NONE;
	if (segment_is(last, last_len, "status"))
		return ROUTE_STATUS;
	if (segment_is(last, last_len, "metrics"))
		return ROUTE_METRICS;
	if (last_len > STREAM_NAME_MAX || segment(path, 1, &prev, &prev_len) < 0)
		return ROUTE_NONE;
	memcpy(name, last, last_len);
	name[last_len] = '\0';
	if (!config_stream_name_valid(name))
		return ROUTE_NONE;
	if (segment_is(prev, prev_len, "stream"))
		return ROUTE_STREAM;
	if (segment_is(prev, prev_len, "snapshot"))
		return ROUTE_SNAPSHOT;
	if (segment_is(prev, prev_len, "ingest"))
		return ROUTE_INGEST;
	return ROUTE_NONE;
}

static void check_route(const char *path)
{
	struct route route;
	enum route_kind want = expected_route(path);
	const char *last;
	size_t last_len;

	http_route(path, &route);
	CHECK(route.kind == want);
	CHECK(memchr(route.name, '\0', sizeof(route.name)) != NULL);
	if (route.kind == ROUTE_STREAM || route.kind == ROUTE_SNAPSHOT ||
	    route.kind == ROUTE_INGEST) {
		CHECK(config_stream_name_valid(route.name));
		CHECK(segment(path, 0, &last, &last_len) == 0);
		CHECK(strlen(route.name) == last_len && memcmp(route.name, last, last_len) == 0);
	} else {
		CHECK(route.name[0] == '\0');
	}
}

static void check_query(const char *text, enum route_kind kind)
{
	struct query query;
	char why[WHY_BYTES];
	size_t i, len;

	memset(why, WHY_POISON, sizeof(why));
	if (http_parse_query(text, kind, &query, why, sizeof(why)) == 0) {
		CHECK(query.fps == 0 || (query.fps >= 0.01 && query.fps <= FPS_MAX));
		CHECK(query.frames >= 0 && query.frames <= HTTP_FRAMES_MAX);
		CHECK(query.width >= 0 && query.width <= FRAME_SIDE_MAX);
		CHECK(query.height >= 0 && query.height <= FRAME_SIDE_MAX);
		CHECK(query.raw == 0 || query.raw == 1);
		CHECK((unsigned)query.format <= PIXEL_YUYV);
		if (kind != ROUTE_STREAM)
			CHECK(query.fps == 0 && query.frames == 0);
		if (kind != ROUTE_INGEST)
			CHECK(!query.raw && !query.width && !query.height);
		/* raw ingest needs all three, and yuyv an even width */
		if (query.raw || query.width || query.height)
			CHECK(query.raw && query.width > 0 && query.height > 0);
		if (query.raw && query.format == PIXEL_YUYV)
			CHECK(query.width % 2 == 0);
		return;
	}
	len = strnlen(why, sizeof(why));
	CHECK(len > 0 && len < sizeof(why));
	for (i = 0; i < len; i++)
		CHECK(why[i] >= 0x20 && why[i] < 0x7f);
	/* An empty query string always passes. */
	CHECK(text[0] != '\0');
}

/* http_parse_long: accepted only as -?[0-9]+, within [min, max]. */
static void check_long(const char *text)
{
	static const long ranges[][2] = {
		{ 1, HTTP_FRAMES_MAX }, { 1, FRAME_SIDE_MAX }, { 0, 60000 }, { -5, 5 },
	};
	size_t r;

	for (r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
		const char *p = text;
		long v = ranges[r][1] + 1;

		if (http_parse_long(text, ranges[r][0], ranges[r][1], &v) < 0)
			continue;
		CHECK(v >= ranges[r][0] && v <= ranges[r][1]);
		if (*p == '-')
			p++;
		CHECK(*p);
		for (; *p; p++)
			CHECK(*p >= '0' && *p <= '9');
	}
}

/* http_parse_decimal: digits with at most one point, at most 32 bytes. */
static void check_decimal(const char *text)
{
	const char *p;
	double v = -1;
	int digits = 0, points = 0;

	if (http_parse_decimal(text, 0.01, FPS_MAX, &v) < 0)
		return;
	CHECK(v >= 0.01 && v <= FPS_MAX);
	CHECK(strlen(text) <= 32);
	for (p = text; *p; p++) {
		if (*p == '.')
			points++;
		else if (*p >= '0' && *p <= '9')
			digits++;
		else
			CHECK(0);
	}
	CHECK(digits > 0 && points <= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum route_kind kinds[] = {
		ROUTE_NONE,   ROUTE_STREAM,  ROUTE_SNAPSHOT,
		ROUTE_STATUS, ROUTE_INGEST, ROUTE_METRICS,
	};
	char *text = fuzz_string("", data, size);
	size_t k;

	if (!text)
		return 0;
	check_route(text);
	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		check_query(text, kinds[k]);
	check_long(text);
	check_decimal(text);
	free(text);
	return 0;
}
