/* Unit tests for fcgi/http.c: routing by path, query parsing, reason phrases and CGI error responses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* ---- http_route --------------------------------------------------------- */

static void assert_route(const char *path, enum route_kind kind, const char *name)
{
	struct route route;

	memset(&route, 0x5a, sizeof(route));
	http_route(path, &route);
	if (route.kind != kind)
		fail_msg("http_route(\"%s\"): kind %d, expected %d", path ? path : "(null)",
			 (int)route.kind, (int)kind);
	if (name)
		assert_string_equal(route.name, name);
	if (kind == ROUTE_NONE || kind == ROUTE_STATUS || kind == ROUTE_METRICS)
		assert_string_equal(route.name, "");
}

static void test_route_every_shape(void **state)
{
	(void)state;
	assert_route("stream/demo", ROUTE_STREAM, "demo");
	assert_route("snapshot/demo", ROUTE_SNAPSHOT, "demo");
	assert_route("stream/Cam_1-b", ROUTE_STREAM, "Cam_1-b");
	assert_route("ingest/cam", ROUTE_INGEST, "cam");
	assert_route("status", ROUTE_STATUS, "");
	assert_route("metrics", ROUTE_METRICS, "");
}

/* Streams called status or metrics are streams like any other: the kind
 * comes from the whole path, so there is nothing to confuse. */
static void test_route_streams_named_like_documents(void **state)
{
	(void)state;
	assert_route("stream/status", ROUTE_STREAM, "status");
	assert_route("stream/metrics", ROUTE_STREAM, "metrics");
	assert_route("snapshot/status", ROUTE_SNAPSHOT, "status");
	assert_route("snapshot/metrics", ROUTE_SNAPSHOT, "metrics");
	assert_route("ingest/status", ROUTE_INGEST, "status");
	assert_route("ingest/metrics", ROUTE_INGEST, "metrics");
	assert_route("stream/stream", ROUTE_STREAM, "stream");
	assert_route("ingest/snapshot", ROUTE_INGEST, "snapshot");
}

/* Every path of every kind behind every other kind's path (and behind
 * other prefixes) routes as nothing, or as the outer kind when the inner
 * path is a single segment that is a valid name: never as the inner kind.
 * This is what keeps a web server's access control per location true. */
static void test_route_crossings(void **state)
{
	static const struct {
		const char *path;
		enum route_kind kind;
	} inner[] = {
		{ "stream/bars", ROUTE_STREAM },     { "snapshot/bars", ROUTE_SNAPSHOT },
		{ "ingest/bars", ROUTE_INGEST },     { "status", ROUTE_STATUS },
		{ "metrics", ROUTE_METRICS },
	};
	static const struct {
		const char *prefix;
		enum route_kind kind; /* what prefix + one name routes as */
	} outer[] = {
		{ "stream/", ROUTE_STREAM },     { "snapshot/", ROUTE_SNAPSHOT },
		{ "ingest/", ROUTE_INGEST },     { "stream/x/", ROUTE_NONE },
		{ "snapshot/x/", ROUTE_NONE },   { "ingest/x/", ROUTE_NONE },
		{ "status/", ROUTE_NONE },       { "metrics/", ROUTE_NONE },
		{ "x/", ROUTE_NONE },            { "cams/", ROUTE_NONE },
		{ "/", ROUTE_NONE },             { "mjpeg.cgi/", ROUTE_NONE },
		{ "./", ROUTE_NONE },            { "../", ROUTE_NONE },
		{ "stream//", ROUTE_NONE },      { "ingest/x/y/", ROUTE_NONE },
	};
	char path[256];
	size_t i, o;

	(void)state;
	for (o = 0; o < sizeof(outer) / sizeof(outer[0]); o++) {
		for (i = 0; i < sizeof(inner) / sizeof(inner[0]); i++) {
			int one_segment = strchr(inner[i].path, '/') == NULL;
			enum route_kind want = one_segment ? outer[o].kind : ROUTE_NONE;
			struct route route;

			snprintf(path, sizeof(path), "%s%s", outer[o].prefix, inner[i].path);
			assert_route(path, want, want == ROUTE_NONE ? NULL : inner[i].path);
			http_route(path, &route);
			if (route.kind == inner[i].kind && inner[i].kind != outer[o].kind)
				fail_msg("\"%s\" routes as the inner kind", path);
			/* and with anything after it */
			snprintf(path, sizeof(path), "%s%s/", outer[o].prefix, inner[i].path);
			assert_route(path, ROUTE_NONE, NULL);
			snprintf(path, sizeof(path), "%s%s/extra", outer[o].prefix, inner[i].path);
			assert_route(path, ROUTE_NONE, NULL);
		}
	}
	/* each kind followed by more segments */
	for (i = 0; i < sizeof(inner) / sizeof(inner[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", inner[i].path, "stream/bars");
		assert_route(path, ROUTE_NONE, NULL);
		snprintf(path, sizeof(path), "%s/", inner[i].path);
		assert_route(path, ROUTE_NONE, NULL);
		snprintf(path, sizeof(path), "/%s", inner[i].path);
		assert_route(path, ROUTE_NONE, NULL);
	}
}

static void test_route_empty_name(void **state)
{
	(void)state;
	assert_route("stream/", ROUTE_NONE, NULL);
	assert_route("snapshot/", ROUTE_NONE, NULL);
	assert_route("ingest/", ROUTE_NONE, NULL);
	assert_route("stream//", ROUTE_NONE, NULL);
	assert_route("stream//demo", ROUTE_NONE, NULL);
	assert_route("stream/demo/", ROUTE_NONE, NULL);
}

/* Paths reach the responder decoded and normalised by the web server; what
 * is left of encodings, dot segments or odd characters never routes. */
static void test_route_invalid_names(void **state)
{
	char name[80], path[128];

	(void)state;
	assert_route("stream/de.mo", ROUTE_NONE, NULL);
	assert_route("stream/..", ROUTE_NONE, NULL);
	assert_route("stream/.", ROUTE_NONE, NULL);
	assert_route("stream/./demo", ROUTE_NONE, NULL);
	assert_route("stream/../status", ROUTE_NONE, NULL);
	assert_route("./status", ROUTE_NONE, NULL);
	assert_route("stream/a b", ROUTE_NONE, NULL);
	assert_route("stream/a%2Fb", ROUTE_NONE, NULL);
	assert_route("stream%2Fdemo", ROUTE_NONE, NULL);
	assert_route("%73tatus", ROUTE_NONE, NULL);
	assert_route("stream/%64emo", ROUTE_NONE, NULL);
	assert_route("snapshot/x?y", ROUTE_NONE, NULL);
	assert_route("stream/demo\n", ROUTE_NONE, NULL);
	assert_route("status\n", ROUTE_NONE, NULL);
	assert_route("stream\\demo", ROUTE_NONE, NULL);

	/* 64 characters is the longest valid name, 65 is one too many */
	memset(name, 'a', 64);
	name[64] = '\0';
	snprintf(path, sizeof(path), "stream/%s", name);
	assert_route(path, ROUTE_STREAM, name);
	memset(name, 'a', 65);
	name[65] = '\0';
	snprintf(path, sizeof(path), "stream/%s", name);
	assert_route(path, ROUTE_NONE, NULL);
	snprintf(path, sizeof(path), "snapshot/%s", name);
	assert_route(path, ROUTE_NONE, NULL);
	memset(name, 'b', 79);
	name[79] = '\0';
	snprintf(path, sizeof(path), "stream/%s", name);
	assert_route(path, ROUTE_NONE, NULL);
}

static void test_route_unknown(void **state)
{
	(void)state;
	assert_route(NULL, ROUTE_NONE, NULL);
	assert_route("", ROUTE_NONE, NULL);
	assert_route("/", ROUTE_NONE, NULL);
	assert_route("demo", ROUTE_NONE, NULL);
	assert_route("stream", ROUTE_NONE, NULL);
	assert_route("snapshot", ROUTE_NONE, NULL);
	assert_route("ingest", ROUTE_NONE, NULL);
	assert_route("streams/demo", ROUTE_NONE, NULL);
	assert_route("STREAM/demo", ROUTE_NONE, NULL);
	assert_route("Status", ROUTE_NONE, NULL);
	assert_route("status/demo", ROUTE_NONE, NULL);
	assert_route("statusx", ROUTE_NONE, NULL);
	assert_route("xstatus", ROUTE_NONE, NULL);
	assert_route("index.html", ROUTE_NONE, NULL);
	/* the old way of routing, by the last segments, is gone */
	assert_route("cam/status", ROUTE_NONE, NULL);
	assert_route("cam/stream/demo", ROUTE_NONE, NULL);
	assert_route("a/b/c/snapshot/bars", ROUTE_NONE, NULL);
	assert_route("mjpeg.fcgi/stream/demo", ROUTE_NONE, NULL);
}

/* ---- http_path_below --------------------------------------------------- */

/* mount NULL is plain CGI.  Expects the path below, or -1 for NULL. */
static void assert_below(const char *mount, const char *script_name, const char *path_info,
			 const char *expected)
{
	char buf[HTTP_PATH_MAX];
	int rc;

	memset(buf, 0x5a, sizeof(buf));
	rc = http_path_below(mount, script_name, path_info, buf, sizeof(buf));
	if (!expected) {
		if (rc != -1)
			fail_msg("http_path_below(%s, \"%s\", \"%s\") gave \"%s\"",
				 mount ? mount : "CGI", script_name ? script_name : "(null)",
				 path_info ? path_info : "(null)", buf);
		return;
	}
	if (rc != 0)
		fail_msg("http_path_below(%s, \"%s\", \"%s\") refused", mount ? mount : "CGI",
			 script_name ? script_name : "(null)", path_info ? path_info : "(null)");
	assert_string_equal(buf, expected);
}

static void test_path_below_fastcgi(void **state)
{
	(void)state;
	/* nginx: the whole path in SCRIPT_NAME */
	assert_below("/", "/stream/demo", NULL, "stream/demo");
	assert_below("/", "/stream/demo", "", "stream/demo");
	/* lighttpd fix-root-scriptname, mod_fcgid's virtual wrapper */
	assert_below("/", "", "/stream/demo", "stream/demo");
	assert_below("/", NULL, "/status", "status");
	/* split anywhere */
	assert_below("/", "/stream", "/demo", "stream/demo");
	assert_below("/", "/", "", "");
	/* under a prefix: it must be there, as a whole segment */
	assert_below("/cams/", "/cams/stream/demo", "", "stream/demo");
	assert_below("/cams/", "/cams", "/stream/demo", "stream/demo");
	assert_below("/cams/", "/cams/status", NULL, "status");
	assert_below("/cams/", "/stream/demo", NULL, NULL);
	assert_below("/cams/", "/camsx/stream/demo", NULL, NULL);
	assert_below("/cams/", "/cams", NULL, NULL);
	assert_below("/cams/", "/other/cams/stream/demo", NULL, NULL);
	assert_below("/a/b/", "/a/b/metrics", NULL, "metrics");
	assert_below("/a/b/", "/a/metrics", NULL, NULL);
	/* no path at all, or one without its leading slash */
	assert_below("/", "", "", NULL);
	assert_below("/", NULL, NULL, NULL);
	assert_below("/", "stream/demo", NULL, NULL);
}

static void test_path_below_cgi(void **state)
{
	(void)state;
	/* the script is the mount point, wherever it is */
	assert_below(NULL, "/mjpeg.cgi", "/stream/demo", "stream/demo");
	assert_below(NULL, "/cams/mjpeg.cgi", "/status", "status");
	assert_below(NULL, NULL, "/snapshot/demo", "snapshot/demo");
	/* and SCRIPT_NAME never routes by itself */
	assert_below(NULL, "/stream/demo", "", NULL);
	assert_below(NULL, "/stream/demo", NULL, NULL);
	assert_below(NULL, "/mjpeg.cgi", "stream/demo", NULL);
	assert_below(NULL, "/mjpeg.cgi", "/ingest/x/stream/bars", "ingest/x/stream/bars");
}

static void test_path_below_too_long(void **state)
{
	static char long_path[HTTP_PATH_MAX + 16], big[HTTP_PATH_MAX + 16];
	char small[8];

	(void)state;
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	assert_below("/", long_path, NULL, NULL);
	assert_below(NULL, "/mjpeg.cgi", long_path, NULL);
	/* exactly HTTP_PATH_MAX bytes is the longest path taken */
	long_path[HTTP_PATH_MAX] = '\0';
	assert_int_equal(http_path_below("/", long_path, NULL, big, sizeof(big)), 0);
	assert_int_equal(strlen(big), HTTP_PATH_MAX - 1);
	long_path[HTTP_PATH_MAX] = 'a';
	long_path[HTTP_PATH_MAX + 1] = '\0';
	assert_int_equal(http_path_below("/", long_path, NULL, big, sizeof(big)), -1);
	/* and the caller's buffer must take it */
	assert_int_equal(http_path_below("/", "/stream/demo", NULL, small, sizeof(small)), -1);
	assert_int_equal(http_path_below("/", "/status", NULL, small, sizeof(small)), 0);
	assert_string_equal(small, "status");
}

/* The whole chain, as server.c runs it, for the paths of the issue that
 * reached another kind's answer through a location of their own. */
static void assert_request(const char *mount, const char *script_name, const char *path_info,
			   enum route_kind kind)
{
	char buf[HTTP_PATH_MAX];
	struct route route;

	if (http_path_below(mount, script_name, path_info, buf, sizeof(buf)) < 0)
		buf[0] = '\0';
	http_route(buf, &route);
	if (route.kind != kind)
		fail_msg("%s \"%s\" + \"%s\": kind %d, expected %d", mount ? mount : "CGI",
			 script_name, path_info, (int)route.kind, (int)kind);
}

static void test_request_routes(void **state)
{
	(void)state;
	assert_request("/", "/stream/bars", "", ROUTE_STREAM);
	assert_request("/", "/ingest/stream/bars", "", ROUTE_NONE);
	assert_request("/", "/ingest/snapshot/bars", "", ROUTE_NONE);
	assert_request("/", "/ingest/x/status", "", ROUTE_NONE);
	assert_request("/", "/ingest/x/metrics", "", ROUTE_NONE);
	assert_request("/", "/snapshot/x/metrics", "", ROUTE_NONE);
	assert_request("/", "/cams/stream/bars", "", ROUTE_NONE);
	assert_request("/cams/", "/cams/stream/bars", "", ROUTE_STREAM);
	assert_request("/cams/", "/cams/ingest/stream/bars", "", ROUTE_NONE);
	assert_request("/cams/", "/status", "", ROUTE_NONE);
	assert_request(NULL, "/mjpeg.cgi", "/ingest/x/stream/bars", ROUTE_NONE);
	assert_request(NULL, "/mjpeg.cgi", "/stream/bars", ROUTE_STREAM);
	assert_request(NULL, "/cams/mjpeg.cgi", "/status", ROUTE_STATUS);
	assert_request(NULL, "/status", "", ROUTE_NONE);
}

/* ---- http_parse_query --------------------------------------------------- */

static void assert_query_ok(const char *qs, enum route_kind kind, double fps, long frames)
{
	struct query q;
	char why[256] = "";

	memset(&q, 0x5a, sizeof(q));
	if (http_parse_query(qs, kind, &q, why, sizeof(why)) != 0)
		fail_msg("http_parse_query(\"%s\", %d) failed: %s", qs ? qs : "(null)", (int)kind,
			 why);
	assert_true(q.fps == fps);
	assert_int_equal(q.frames, frames);
}

/* Expects -1 and a message naming needle. */
static void assert_query_bad(const char *qs, enum route_kind kind, const char *needle)
{
	struct query q;
	char why[256] = "";

	if (http_parse_query(qs, kind, &q, why, sizeof(why)) != -1)
		fail_msg("http_parse_query(\"%s\", %d) accepted", qs, (int)kind);
	if (!strstr(why, needle))
		fail_msg("http_parse_query(\"%s\"): message \"%s\" does not name %s", qs, why,
			 needle);
	assert_null(strchr(why, '\n'));
}

static void test_query_empty(void **state)
{
	(void)state;
	assert_query_ok(NULL, ROUTE_STREAM, 0, 0);
	assert_query_ok("", ROUTE_STREAM, 0, 0);
	assert_query_ok("", ROUTE_SNAPSHOT, 0, 0);
	assert_query_ok(NULL, ROUTE_STATUS, 0, 0);
}

static void test_query_fps_valid(void **state)
{
	(void)state;
	assert_query_ok("fps=5", ROUTE_STREAM, 5.0, 0);
	assert_query_ok("fps=0.5", ROUTE_STREAM, 0.5, 0);
	assert_query_ok("fps=0.01", ROUTE_STREAM, 0.01, 0);
	assert_query_ok("fps=240", ROUTE_STREAM, 240.0, 0);
}

static void test_query_fps_invalid(void **state)
{
	(void)state;
	assert_query_bad("fps=0", ROUTE_STREAM, "'fps'");
	assert_query_bad("fps=0.001", ROUTE_STREAM, "'fps'");
	assert_query_bad("fps=241", ROUTE_STREAM, "'fps'");
	assert_query_bad("fps=-1", ROUTE_STREAM, "'fps'");
	assert_query_bad("fps=abc", ROUTE_STREAM, "'fps'");
	assert_query_bad("fps=5x", ROUTE_STREAM, "'fps'");
	assert_query_bad("fps=", ROUTE_STREAM, "'fps'");
	assert_query_bad("fps", ROUTE_STREAM, "'fps'");
	assert_query_bad("fps=nan", ROUTE_STREAM, "'fps'");
	assert_query_bad("fps=inf", ROUTE_STREAM, "'fps'");
	assert_query_bad("fps=1e400", ROUTE_STREAM, "'fps'");
}

static void test_query_frames_valid(void **state)
{
	(void)state;
	assert_query_ok("frames=1", ROUTE_STREAM, 0, 1);
	assert_query_ok("frames=30", ROUTE_STREAM, 0, 30);
	assert_query_ok("frames=1000000000", ROUTE_STREAM, 0, HTTP_FRAMES_MAX);
	assert_query_ok("fps=2&frames=10", ROUTE_STREAM, 2.0, 10);
	assert_query_ok("frames=10&fps=2", ROUTE_STREAM, 2.0, 10);
}

static void test_query_frames_invalid(void **state)
{
	(void)state;
	assert_query_bad("frames=0", ROUTE_STREAM, "'frames'");
	assert_query_bad("frames=-1", ROUTE_STREAM, "'frames'");
	assert_query_bad("frames=1000000001", ROUTE_STREAM, "'frames'");
	assert_query_bad("frames=1.5", ROUTE_STREAM, "'frames'");
	assert_query_bad("frames=+3", ROUTE_STREAM, "'frames'");
	assert_query_bad("frames= 3", ROUTE_STREAM, "'frames'");
	assert_query_bad("frames=3x", ROUTE_STREAM, "'frames'");
	assert_query_bad("frames=", ROUTE_STREAM, "'frames'");
	assert_query_bad("frames", ROUTE_STREAM, "'frames'");
	assert_query_bad("frames=99999999999999999999", ROUTE_STREAM, "'frames'");
	/* the bad one is named even after a good one */
	assert_query_bad("fps=5&frames=x", ROUTE_STREAM, "'frames'");
}

static void test_query_cache_buster_ignored(void **state)
{
	(void)state;
	assert_query_ok("_=1767225600123", ROUTE_STREAM, 0, 0);
	assert_query_ok("_", ROUTE_STREAM, 0, 0);
	assert_query_ok("_=x&fps=3&_=y", ROUTE_STREAM, 3.0, 0);
	assert_query_ok("_=1767225600123", ROUTE_SNAPSHOT, 0, 0);
	assert_query_ok("_=1", ROUTE_STATUS, 0, 0);
}

static void test_query_unknown_parameter(void **state)
{
	struct query q;
	char why[256] = "";

	(void)state;
	assert_query_bad("foo=1", ROUTE_STREAM, "'foo'");
	assert_query_bad("fps=5&size=big", ROUTE_STREAM, "'size'");
	assert_query_bad("FPS=5", ROUTE_STREAM, "'FPS'");
	assert_query_bad("__=1", ROUTE_STREAM, "'__'");

	assert_int_equal(http_parse_query("foo=1", ROUTE_STREAM, &q, why, sizeof(why)), -1);
	assert_string_equal(why, "unknown parameter 'foo'");
}

static void test_query_stream_params_only_on_stream(void **state)
{
	(void)state;
	assert_query_bad("fps=5", ROUTE_SNAPSHOT, "'fps'");
	assert_query_bad("frames=5", ROUTE_SNAPSHOT, "'frames'");
	assert_query_bad("fps=5", ROUTE_STATUS, "'fps'");
	assert_query_bad("frames=5", ROUTE_STATUS, "'frames'");
}

static void test_query_too_long(void **state)
{
	static char qs[HTTP_QUERY_MAX + 2];
	struct query q;
	char why[256] = "";

	(void)state;
	/* exactly HTTP_QUERY_MAX bytes: "_=" and padding, accepted */
	memset(qs, 'x', HTTP_QUERY_MAX);
	qs[0] = '_';
	qs[1] = '=';
	qs[HTTP_QUERY_MAX] = '\0';
	assert_int_equal(http_parse_query(qs, ROUTE_STREAM, &q, why, sizeof(why)), 0);

	/* one more byte: refused, whatever the content */
	qs[HTTP_QUERY_MAX] = 'x';
	qs[HTTP_QUERY_MAX + 1] = '\0';
	assert_int_equal(http_parse_query(qs, ROUTE_STREAM, &q, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "1024"));
	assert_non_null(strstr(why, "query"));
}

/* ---- http_reason and http_error_response ------------------------------- */

static void test_reason(void **state)
{
	(void)state;
	assert_string_equal(http_reason(200), "OK");
	assert_string_equal(http_reason(400), "Bad Request");
	assert_string_equal(http_reason(404), "Not Found");
	assert_string_equal(http_reason(405), "Method Not Allowed");
	assert_string_equal(http_reason(500), "Internal Server Error");
	assert_string_equal(http_reason(503), "Service Unavailable");
	assert_string_equal(http_reason(299), "Error");
	assert_string_equal(http_reason(0), "Error");
	assert_string_equal(http_reason(-1), "Error");
}

#define HEAD_404                                                                            \
	"Status: 404 Not Found\r\n"                                                         \
	"Content-Type: text/plain; charset=utf-8\r\n"                                       \
	"Cache-Control: no-store\r\n"

static void test_error_response_404(void **state)
{
	static const char expected[] = HEAD_404 "\r\n"
				       "no stream 'x'\n";
	char buf[512];
	int n;

	(void)state;
	memset(buf, 0x5a, sizeof(buf));
	n = http_error_response(buf, sizeof(buf), 404, NULL, "no stream 'x'");
	assert_int_equal(n, sizeof(expected) - 1);
	assert_memory_equal(buf, expected, sizeof(expected)); /* with the NUL */
}

static void test_error_response_extra_headers(void **state)
{
	static const char expected[] = "Status: 503 Service Unavailable\r\n"
				       "Content-Type: text/plain; charset=utf-8\r\n"
				       "Cache-Control: no-store\r\n"
				       "Retry-After: 5\r\n"
				       "X-Test: 1\r\n"
				       "\r\n"
				       "too many viewers\n";
	char buf[512];
	int n;

	(void)state;
	n = http_error_response(buf, sizeof(buf), 503, "Retry-After: 5\r\nX-Test: 1\r\n",
				"too many viewers");
	assert_int_equal(n, sizeof(expected) - 1);
	assert_string_equal(buf, expected);
}

static void test_error_response_too_small(void **state)
{
	static const char expected[] = HEAD_404 "\r\n"
				       "gone\n";
	const size_t len = sizeof(expected) - 1;
	char buf[512];

	(void)state;
	assert_int_equal(http_error_response(buf, 0, 404, NULL, "gone"), -1);
	assert_int_equal(http_error_response(buf, 10, 404, NULL, "gone"), -1);
	/* no room for the NUL: does not fit */
	assert_int_equal(http_error_response(buf, len, 404, NULL, "gone"), -1);
	/* exactly enough */
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(http_error_response(buf, len + 1, 404, NULL, "gone"), (int)len);
	assert_string_equal(buf, expected);
	assert_int_equal((unsigned char)buf[len + 1], 0x5a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_every_shape),
		cmocka_unit_test(test_route_streams_named_like_documents),
		cmocka_unit_test(test_route_crossings),
		cmocka_unit_test(test_route_empty_name),
		cmocka_unit_test(test_route_invalid_names),
		cmocka_unit_test(test_route_unknown),
		cmocka_unit_test(test_path_below_fastcgi),
		cmocka_unit_test(test_path_below_cgi),
		cmocka_unit_test(test_path_below_too_long),
		cmocka_unit_test(test_request_routes),
		cmocka_unit_test(test_query_empty),
		cmocka_unit_test(test_query_fps_valid),
		cmocka_unit_test(test_query_fps_invalid),
		cmocka_unit_test(test_query_frames_valid),
		cmocka_unit_test(test_query_frames_invalid),
		cmocka_unit_test(test_query_cache_buster_ignored),
		cmocka_unit_test(test_query_unknown_parameter),
		cmocka_unit_test(test_query_stream_params_only_on_stream),
		cmocka_unit_test(test_query_too_long),
		cmocka_unit_test(test_reason),
		cmocka_unit_test(test_error_response_404),
		cmocka_unit_test(test_error_response_extra_headers),
		cmocka_unit_test(test_error_response_too_small),
	};

	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
