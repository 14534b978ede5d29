/* Fuzzes the request parsing of fcgi/http.c: the input as a path for
 * http_path_below and http_route and as a query string for
 * http_parse_query under every route kind, plus the strict number parsers
 * underneath.  A broken invariant traps
 * (__builtin_trap), which libFuzzer reports as a crash. */
#include "config.h"
#include "fuzz.h"
#include "http.h"
#include "parse.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The size of the buffer the server passes (fcgi/server.c, handle()). */
#define WHY_BYTES 160
/* Poison that must not survive in why after a failure. */
#define WHY_POISON 0xA5

/* What http.h promises, written out independently of http.c: the whole
 * path is "status", "metrics", or one of the three kinds, a slash and a
 * valid name (which holds no slash). */
static enum route_kind expected_route(const char *path, const char **name)
{
	static const struct {
		const char *kind;
		enum route_kind route;
	} named[] = {
		{ "stream", ROUTE_STREAM },
		{ "snapshot", ROUTE_SNAPSHOT },
		{ "ingest", ROUTE_INGEST },
	};
	const char *slash = strchr(path, '/');
	size_t i;

	*name = NULL;
	if (strcmp(path, "status") == 0)
		return ROUTE_STATUS;
	if (strcmp(path, "metrics") == 0)
		return ROUTE_METRICS;
	if (!slash || !config_stream_name_valid(slash + 1))
		return ROUTE_NONE;
	for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		if ((size_t)(slash - path) == strlen(named[i].kind) &&
		    memcmp(path, named[i].kind, (size_t)(slash - path)) == 0) {
			*name = slash + 1;
			return named[i].route;
		}
	}
	return ROUTE_NONE;
}

static void check_route(const char *path)
{
	struct route route;
	const char *name;
	enum route_kind want = expected_route(path, &name);

	http_route(path, &route);
	CHECK(route.kind == want);
	CHECK(memchr(route.name, '\0', sizeof(route.name)) != NULL);
	if (name)
		CHECK(strcmp(route.name, name) == 0 && config_stream_name_valid(route.name));
	else
		CHECK(route.name[0] == '\0');
}

/* http_path_below, with the input split into SCRIPT_NAME and PATH_INFO at
 * every '/' it holds (as servers split paths), under the default mount,
 * a prefix, and plain CGI: a path given back is the input less the mount
 * (CGI: PATH_INFO less its '/'), and one that is not below the mount is
 * refused. */
static void check_path_below(const char *text)
{
	static const char *const mounts[] = { "/", "/cams/", NULL };
	static char script[HTTP_PATH_MAX + 2], below[HTTP_PATH_MAX];
	size_t len = strlen(text), cut, m;

	if (len > HTTP_PATH_MAX)
		return;
	for (cut = 0; cut <= len; cut++) {
		if (cut != 0 && cut != len && text[cut] != '/')
			continue;
		memcpy(script, text, cut);
		script[cut] = '\0';
		for (m = 0; m < sizeof(mounts) / sizeof(mounts[0]); m++) {
			const char *mount = mounts[m];
			const char *whole = mount ? text : text + cut;
			const char *prefix = mount ? mount : "/";
			int ok = strncmp(whole, prefix, strlen(prefix)) == 0;
			int rc = http_path_below(mount, script, text + cut, below, sizeof(below));

			CHECK(rc == (ok ? 0 : -1));
			if (rc == 0)
				CHECK(strcmp(below, whole + strlen(prefix)) == 0);
		}
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

/* parse_long: accepted only as -?[0-9]+, within [min, max]. */
static void check_long(const char *text)
{
	static const long ranges[][2] = {
		{ 1, HTTP_FRAMES_MAX }, { 1, FRAME_SIDE_MAX }, { 0, 60000 }, { -5, 5 },
	};
	size_t r;

	for (r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
		const char *p = text;
		long v = ranges[r][1] + 1;

		if (parse_long(text, ranges[r][0], ranges[r][1], &v) < 0)
			continue;
		CHECK(v >= ranges[r][0] && v <= ranges[r][1]);
		if (*p == '-')
			p++;
		CHECK(*p);
		for (; *p; p++)
			CHECK(*p >= '0' && *p <= '9');
	}
}

/* parse_decimal: digits with at most one point, at most 32 bytes. */
static void check_decimal(const char *text)
{
	const char *p;
	double v = -1;
	int digits = 0, points = 0;

	if (parse_decimal(text, 0.01, FPS_MAX, &v) < 0)
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
	check_path_below(text);
	(void)config_mount_valid(text);
	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		check_query(text, kinds[k]);
	check_long(text);
	check_decimal(text);
	free(text);
	return 0;
}
