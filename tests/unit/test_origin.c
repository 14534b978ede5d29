/* Unit tests for fcgi/origin.c: the origin's /status parsed into a stream
 * list (bad JSON, missing fields, names that are no stream names, too many
 * streams), read over HTTP from a one-shot server on loopback, and the
 * last list kept when the origin cannot be read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "origin.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- stderr, where the log lines go -------------------------------------- */

static int stderr_saved = -1;
static FILE *captured;

static void capture_stderr(void)
{
	captured = tmpfile();
	assert_non_null(captured);
	fflush(stderr);
	stderr_saved = dup(STDERR_FILENO);
	assert_true(stderr_saved >= 0);
	assert_true(dup2(fileno(captured), STDERR_FILENO) >= 0);
}

/* Restores stderr; what was written (static buffer). */
static const char *captured_stderr(void)
{
	static char text[8192];
	size_t n;

	fflush(stderr);
	assert_true(dup2(stderr_saved, STDERR_FILENO) >= 0);
	close(stderr_saved);
	stderr_saved = -1;
	rewind(captured);
	n = fread(text, 1, sizeof(text) - 1, captured);
	text[n] = '\0';
	fclose(captured);
	return text;
}

static int parse(const char *json, struct origin_list *list, char *why, size_t size)
{
	return origin_parse_status(json, strlen(json), list, why, size);
}

/* ---- parsing ----------------------------------------------------------- */

static void test_parse_status(void **state)
{
	static struct origin_list list;
	char why[256] = "";

	(void)state;
	assert_int_equal(parse("{\"version\":\"0.1.0\",\"pid\":1,\"streams\":["
			       "{\"name\":\"demo\",\"fps\":1,\"width\":256},"
			       "{\"name\":\"bars\",\"fps\":30},{\"name\":\"cam-2_x\"}]}",
			       &list, why, sizeof(why)),
			 0);
	assert_int_equal(list.count, 3);
	assert_string_equal(list.names[0], "demo");
	assert_string_equal(list.names[1], "bars");
	assert_string_equal(list.names[2], "cam-2_x");
	assert_true(list.fps[0] == 1 && list.fps[1] == 30 && list.fps[2] == 0);

	assert_int_equal(parse("{\"streams\":[]}", &list, why, sizeof(why)), 0);
	assert_int_equal(list.count, 0);
	/* an fps out of range is left to the default */
	assert_int_equal(parse("{\"streams\":[{\"name\":\"a\",\"fps\":1e9},"
			       "{\"name\":\"b\",\"fps\":\"30\"}]}",
			       &list, why, sizeof(why)),
			 0);
	assert_true(list.count == 2 && list.fps[0] == 0 && list.fps[1] == 0);
}

static void test_parse_refuses_what_is_no_status(void **state)
{
	static struct origin_list list;
	static const char *const bad[][2] = {
		{ "", "not JSON" },
		{ "{\"streams\":[", "not JSON" },
		{ "<html>502 Bad Gateway</html>", "not JSON" },
		{ "{\"streams\":[],\"streams\":[]}", "not JSON" },
		{ "[]", "no \"streams\" array" },
		{ "{}", "no \"streams\" array" },
		{ "{\"streams\":{\"name\":\"a\"}}", "no \"streams\" array" },
		{ "{\"streams\":null}", "no \"streams\" array" },
		{ "\"streams\"", "not JSON" },
	};
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		list.count = 7;
		if (parse(bad[i][0], &list, why, sizeof(why)) != -1)
			fail_msg("accepted: %s", bad[i][0]);
		assert_int_equal(list.count, 0);
		if (!strstr(why, bad[i][1]))
			fail_msg("%s: \"%s\" does not say %s", bad[i][0], why, bad[i][1]);
	}
	/* bytes after the length given are not read */
	assert_int_equal(
		origin_parse_status("{\"streams\":[]}garbage", 14, &list, why, sizeof(why)), 0);
}

static void test_parse_skips_bad_streams(void **state)
{
	static struct origin_list list;
	char why[256];
	const char *log;
	int rc;

	(void)state;
	capture_stderr();
	rc = parse("{\"streams\":[{\"name\":\"ok\"},{\"fps\":5},{\"name\":7},"
		   "{\"name\":\"../../etc\"},{\"name\":\"\"},{\"name\":\"a b\"},"
		   "{\"name\":\"x12345678901234567890123456789012345678901234567890123456789"
		   "01234\"},42,{\"name\":\"last\"}]}",
		   &list, why, sizeof(why));
	log = captured_stderr();
	assert_int_equal(rc, 0);
	assert_int_equal(list.count, 2);
	assert_string_equal(list.names[0], "ok");
	assert_string_equal(list.names[1], "last");
	assert_non_null(strstr(log, "stream 1 of the list has no name; skipped"));
	assert_non_null(strstr(log, "stream 2 of the list has no name; skipped"));
	assert_non_null(strstr(log, "stream 7 of the list has no name; skipped"));
	assert_non_null(strstr(log, "\"../../etc\" is not [A-Za-z0-9_-]{1,64}; skipped"));
	assert_non_null(strstr(log, "\"a b\" is not"));
	assert_non_null(strstr(log, "\"\" is not"));
	assert_non_null(strstr(log, "\"x1234567890"));
}

static void test_parse_too_many_streams(void **state)
{
	static struct origin_list list;
	char *json = malloc(64 * (STREAMS_MAX + 10) + 32), why[256];
	const char *log;
	size_t used;
	int i, rc;

	(void)state;
	assert_non_null(json);
	used = (size_t)sprintf(json, "{\"streams\":[");
	for (i = 0; i < STREAMS_MAX + 10; i++)
		used += (size_t)sprintf(json + used, "%s{\"name\":\"s%d\"}", i ? "," : "", i);
	strcpy(json + used, "]}");
	capture_stderr();
	rc = parse(json, &list, why, sizeof(why));
	log = captured_stderr();
	free(json);
	assert_int_equal(rc, 0);
	assert_int_equal(list.count, STREAMS_MAX);
	assert_string_equal(list.names[STREAMS_MAX - 1], "s63");
	assert_non_null(strstr(log, "10 streams past the first 64 skipped"));
}

/* ---- over HTTP ------------------------------------------------------------
 */

/* A server on 127.0.0.1 that answers one request with a canned response,
 * then closes. */
struct one_shot {
	int listen_fd;
	int port;
	const char *response;
	size_t response_bytes;
	pthread_t thread;
};

static void *one_shot_main(void *arg)
{
	struct one_shot *s = arg;
	char request[4096];
	size_t got = 0, sent = 0;
	int fd = accept(s->listen_fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	while (got < sizeof(request) - 1) {
		ssize_t n = read(fd, request + got, sizeof(request) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		request[got] = '\0';
		if (strstr(request, "\r\n\r\n"))
			break;
	}
	while (sent < s->response_bytes) {
		ssize_t n = write(fd, s->response + sent, s->response_bytes - sent);

		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	close(fd);
	return NULL;
}

static void one_shot_start(struct one_shot *s, const char *response, size_t bytes)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->listen_fd >= 0);
	assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->listen_fd, 4), 0);
	assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&sa, &len), 0);
	s->port = ntohs(sa.sin_port);
	s->response = response;
	s->response_bytes = bytes;
	assert_int_equal(pthread_create(&s->thread, NULL, one_shot_main, s), 0);
}

static void one_shot_end(struct one_shot *s)
{
	assert_int_equal(pthread_join(s->thread, NULL), 0);
	close(s->listen_fd);
}

/* A port nobody listens on: bound, then closed. */
static int closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void relay_at(struct settings *settings, int port)
{
	config_defaults(settings);
	settings->stream_count = 0;
	snprintf(settings->relay.origin, sizeof(settings->relay.origin), "http://127.0.0.1:%d",
		 port);
	settings->relay.upstream.connect_usec = 2000 * 1000;
}

static const char STATUS_TWO[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				 "Connection: close\r\n\r\n"
				 "{\"streams\":[{\"name\":\"one\",\"fps\":5},{\"name\":\"two\"}]}";

/* Runs before any read succeeded in this process: nothing to fall back on. */
static void test_no_list_yet(void **state)
{
	struct settings *settings = malloc(sizeof(*settings));
	const char *log;

	(void)state;
	assert_non_null(settings);
	relay_at(settings, closed_port());
	capture_stderr();
	assert_int_equal(origin_add_streams(settings), 0);
	log = captured_stderr();
	assert_int_equal(settings->stream_count, 0);
	assert_non_null(strstr(log, "no stream to relay until its list can be read"));
	free(settings);
}

static void test_fetch_and_keep_last_list(void **state)
{
	static const char status_500[] = "HTTP/1.1 500 Internal Server Error\r\n"
					 "Content-Length: 5\r\nConnection: close\r\n\r\nnope\n";
	static const char not_status[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
					 "<html>hello</html>";
	struct settings *settings = malloc(sizeof(*settings));
	static struct origin_list list;
	struct one_shot s;
	char why[256];
	const char *log;

	(void)state;
	assert_non_null(settings);
	one_shot_start(&s, STATUS_TWO, strlen(STATUS_TWO));
	relay_at(settings, s.port);
	assert_int_equal(origin_fetch(&settings->relay, &list, why, sizeof(why)), 0);
	one_shot_end(&s);
	assert_int_equal(list.count, 2);
	assert_string_equal(list.names[1], "two");

	/* read again for the streams: both added, relayed from the origin */
	one_shot_start(&s, STATUS_TWO, strlen(STATUS_TWO));
	relay_at(settings, s.port);
	assert_int_equal(origin_add_streams(settings), 2);
	one_shot_end(&s);
	assert_int_equal(settings->stream_count, 2);
	assert_true(settings->streams[0].fps == 5);
	assert_non_null(strstr(settings->streams[1].path, "/stream/two"));

	/* the origin away: the last list stays in force, said once */
	relay_at(settings, closed_port());
	assert_int_equal(origin_fetch(&settings->relay, &list, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "onnect"));
	capture_stderr();
	assert_int_equal(origin_add_streams(settings), 2);
	log = captured_stderr();
	assert_non_null(strstr(log, "relaying the 2 streams of the last list read"));

	/* an HTTP error, and a page that is not a status: the same */
	one_shot_start(&s, status_500, strlen(status_500));
	relay_at(settings, s.port);
	assert_int_equal(origin_fetch(&settings->relay, &list, why, sizeof(why)), -1);
	one_shot_end(&s);
	assert_non_null(strstr(why, "500"));
	one_shot_start(&s, not_status, strlen(not_status));
	relay_at(settings, s.port);
	capture_stderr();
	assert_int_equal(origin_add_streams(settings), 2);
	log = captured_stderr();
	one_shot_end(&s);
	assert_non_null(strstr(log, "not JSON"));
	free(settings);
}

static void test_fetch_refuses_a_huge_document(void **state)
{
	size_t head, bytes = ORIGIN_STATUS_BYTES_MAX + 4096;
	char *response = malloc(bytes);
	static struct origin_list list;
	struct settings *settings = malloc(sizeof(*settings));
	struct one_shot s;
	char why[256];

	(void)state;
	assert_non_null(response);
	assert_non_null(settings);
	head = (size_t)snprintf(response, bytes,
				"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
				"{\"streams\":[");
	memset(response + head, ' ', bytes - head);
	one_shot_start(&s, response, bytes);
	relay_at(settings, s.port);
	assert_int_equal(origin_fetch(&settings->relay, &list, why, sizeof(why)), -1);
	one_shot_end(&s);
	assert_non_null(strstr(why, "over 1048576 bytes"));
	free(response);
	free(settings);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_status),
		cmocka_unit_test(test_parse_refuses_what_is_no_status),
		cmocka_unit_test(test_parse_skips_bad_streams),
		cmocka_unit_test(test_parse_too_many_streams),
		cmocka_unit_test(test_no_list_yet),
		cmocka_unit_test(test_fetch_and_keep_last_list),
		cmocka_unit_test(test_fetch_refuses_a_huge_document),
	};
	int rc;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	rc = cmocka_run_group_tests_name("origin", tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
