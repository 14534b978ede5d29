/* Unit tests for fcgi/config.c: defaults, the INI file, the command line,
 * and how they override each other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "testutil.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A temp directory holding the INI file under test and the captured
 * stderr; struct settings is large (PATH_MAX buffers per stream), so it
 * lives on the heap too. */
struct fixture {
	char dir[64];
	char ini[128];
	char err[128];
	struct settings settings;
};

/* stderr's own descriptor while capture_stderr has it; -1 otherwise. */
static int stderr_saved = -1;

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (tu_dir_make(f->dir, sizeof(f->dir), "config") < 0) {
		free(f);
		return -1;
	}
	snprintf(f->ini, sizeof(f->ini), "%s/test.ini", f->dir);
	snprintf(f->err, sizeof(f->err), "%s/stderr", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (stderr_saved >= 0) { /* a test failed while stderr was captured */
		fflush(stderr);
		dup2(stderr_saved, STDERR_FILENO);
		close(stderr_saved);
		stderr_saved = -1;
	}
	tu_dir_remove(f->dir);
	free(f);
	return 0;
}

static void write_ini(const struct fixture *f, const char *text)
{
	FILE *file = fopen(f->ini, "w");

	assert_non_null(file);
	assert_int_equal(fputs(text, file) >= 0, 1);
	assert_int_equal(fclose(file), 0);
}

/* Runs config_from_args on a NULL-terminated list of arguments (after the
 * program name). */
static int from_args(struct settings *settings, const char *const *args)
{
	char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)"mjpeg-fcgi";
	while (*args && argc < 31)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	return config_from_args(settings, argc, argv);
}

/* stderr into a file while a call runs, to check what it reports. */

static void capture_stderr(const struct fixture *f)
{
	int fd = open(f->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	fflush(stderr);
	stderr_saved = dup(STDERR_FILENO);
	assert_true(stderr_saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	close(fd);
}

/* Restores stderr and returns what was written (static buffer). */
static const char *captured_stderr(const struct fixture *f)
{
	static char text[4096];
	FILE *file;
	size_t n;

	fflush(stderr);
	assert_true(dup2(stderr_saved, STDERR_FILENO) >= 0);
	close(stderr_saved);
	stderr_saved = -1;
	file = fopen(f->err, "r");
	assert_non_null(file);
	n = fread(text, 1, sizeof(text) - 1, file);
	text[n] = '\0';
	fclose(file);
	return text;
}

/* Loads ini_text and expects -1 with a message naming FILE:line and
 * needle. */
static void assert_file_refused(struct fixture *f, const char *ini_text, int line,
				const char *needle)
{
	char where[256];
	const char *err;
	int rc;

	write_ini(f, ini_text);
	config_defaults(&f->settings);
	capture_stderr(f);
	rc = config_load_file(&f->settings, f->ini);
	err = captured_stderr(f);
	if (rc != -1)
		fail_msg("config_load_file accepted:\n%s", ini_text);
	if (line > 0) {
		snprintf(where, sizeof(where), "%s:%d:", f->ini, line);
		if (!strstr(err, where))
			fail_msg("message \"%s\" does not name %s", err, where);
	} else if (!strstr(err, f->ini)) {
		fail_msg("message \"%s\" does not name %s", err, f->ini);
	}
	if (!strstr(err, needle))
		fail_msg("message \"%s\" does not name %s", err, needle);
}

/* ---- names -------------------------------------------------------------- */

static void test_stream_name_valid(void **state)
{
	char name[80];

	(void)state;
	assert_true(config_stream_name_valid("demo"));
	assert_true(config_stream_name_valid("a"));
	assert_true(config_stream_name_valid("Cam_01-front"));
	assert_true(config_stream_name_valid("0"));
	assert_true(config_stream_name_valid("-"));
	assert_false(config_stream_name_valid(""));
	assert_false(config_stream_name_valid("."));
	assert_false(config_stream_name_valid(".."));
	assert_false(config_stream_name_valid("a/b"));
	assert_false(config_stream_name_valid("a.b"));
	assert_false(config_stream_name_valid("a b"));
	assert_false(config_stream_name_valid("caf\xc3\xa9"));
	assert_false(config_stream_name_valid("demo\n"));
	assert_false(config_stream_name_valid("a%2f"));
	memset(name, 'x', 64);
	name[64] = '\0';
	assert_true(config_stream_name_valid(name));
	name[64] = 'x';
	name[65] = '\0';
	assert_false(config_stream_name_valid(name));
}

/* ---- config_mount_valid -------------------------------------------------- */

static void test_mount_valid(void **state)
{
	char mount[MOUNT_MAX + 2];

	(void)state;
	assert_true(config_mount_valid("/"));
	assert_true(config_mount_valid("/cams/"));
	assert_true(config_mount_valid("/site/cams/"));
	assert_true(config_mount_valid("/a.b/~u/_-9/"));
	assert_true(config_mount_valid("/...x/"));
	assert_false(config_mount_valid(NULL));
	assert_false(config_mount_valid(""));
	assert_false(config_mount_valid("cams/"));
	assert_false(config_mount_valid("/cams"));
	assert_false(config_mount_valid("//"));
	assert_false(config_mount_valid("/a//b/"));
	assert_false(config_mount_valid("/./"));
	assert_false(config_mount_valid("/../"));
	assert_false(config_mount_valid("/a/../"));
	assert_false(config_mount_valid("/a/./b/"));
	assert_false(config_mount_valid("/a b/"));
	assert_false(config_mount_valid("/a%2F/"));
	assert_false(config_mount_valid("/a?b/"));
	assert_false(config_mount_valid("/a\\b/"));
	assert_false(config_mount_valid("/a\n/"));
	/* MOUNT_MAX bytes is the longest */
	memset(mount, 'a', MOUNT_MAX);
	mount[0] = mount[MOUNT_MAX - 1] = '/';
	mount[MOUNT_MAX] = '\0';
	assert_true(config_mount_valid(mount));
	mount[MOUNT_MAX] = '/';
	mount[MOUNT_MAX + 1] = '\0';
	assert_false(config_mount_valid(mount));
}

/* ---- the command line --------------------------------------------------- */

static void test_no_args_gives_default_streams(void **state)
{
	struct fixture *f = *state;
	static const char *const args[] = { NULL };
	const struct stream_settings *demo, *bars;

	assert_int_equal(from_args(&f->settings, args), 0);
	assert_int_equal(f->settings.stream_count, 2);
	demo = config_find_stream(&f->settings, "demo");
	bars = config_find_stream(&f->settings, "bars");
	assert_non_null(demo);
	assert_non_null(bars);
	assert_null(config_find_stream(&f->settings, "cam"));

	assert_string_equal(demo->source, "pattern:redblue");
	assert_int_equal(demo->kind, SOURCE_PATTERN_REDBLUE);
	assert_int_equal(demo->width, 256);
	assert_int_equal(demo->height, 256);
	assert_true(demo->fps == 1.0);
	assert_int_equal(demo->quality, ENCODE_QUALITY_DEFAULT);

	assert_string_equal(bars->source, "pattern:bars");
	assert_int_equal(bars->kind, SOURCE_PATTERN_BARS);
	assert_int_equal(bars->width, 640);
	assert_int_equal(bars->height, 480);
	assert_true(bars->fps == 30.0);

	assert_int_equal(f->settings.max_viewers, MAX_VIEWERS_DEFAULT);
	assert_int_equal(f->settings.workers, 1);
	assert_string_equal(f->settings.bus_dir, BUS_DIR_DEFAULT);
	assert_int_equal(f->settings.frame_bytes_max, FRAME_BYTES_MAX_DEFAULT);
	assert_int_equal(f->settings.repeat_usec, REPEAT_MS_DEFAULT * 1000LL);
	assert_int_equal(f->settings.request_usec, REQUEST_MS_DEFAULT * 1000LL);
	assert_string_equal(f->settings.listen, "");
	assert_string_equal(f->settings.config_path, "");
}

static void test_args_applied(void **state)
{
	struct fixture *f = *state;
	static const char *const args[] = { "--max-viewers", "7",
					    "--bus-dir=/tmp/elsewhere",
					    "--repeat-ms", "300",
					    "--frame-bytes-max", "1048576",
					    "--log-level", "debug",
					    "--request-ms", "250",
					    NULL };

	assert_int_equal(from_args(&f->settings, args), 0);
	assert_int_equal(f->settings.max_viewers, 7);
	assert_string_equal(f->settings.bus_dir, "/tmp/elsewhere");
	assert_int_equal(f->settings.repeat_usec, 300000);
	assert_int_equal(f->settings.frame_bytes_max, 1048576);
	assert_int_equal(f->settings.log_level, 3);
	assert_int_equal(f->settings.request_usec, 250000);
	/* streams still the defaults */
	assert_int_equal(f->settings.stream_count, 2);
}

static void test_bad_args(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[][3] = {
		{ "--max-viewers", "0", NULL },
		{ "--max-viewers", "100001", NULL },
		{ "--max-viewers", "seven", NULL },
		{ "--max-viewers", " 7", NULL },
		{ "--max-viewers", "7x", NULL },
		{ "--workers", "65", NULL },
		{ "--repeat-ms", "5", NULL },
		{ "--request-ms", "99", NULL },
		{ "--request-ms", "600001", NULL },
		{ "--frame-bytes-max", "1023", NULL },
		{ "--log-level", "loud", NULL },
		{ "--bus-dir", "", NULL },
		{ "--no-such-option", NULL, NULL },
		{ "stray-argument", NULL, NULL },
		{ "--max-viewers", NULL, NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;

		capture_stderr(f);
		rc = from_args(&f->settings, bad[i]);
		captured_stderr(f);
		if (rc != -1)
			fail_msg("config_from_args(%s %s) returned %d", bad[i][0],
				 bad[i][1] ? bad[i][1] : "", rc);
	}
}

/* Every bad value is refused with a message made from its option's row:
 * the range, and the unit numbers are written in. */
static void test_bad_value_messages(void **state)
{
	struct fixture *f = *state;
	static const char *const cases[][3] = {
		{ "--request-ms", "99",
		  "--request-ms 99: must be a whole number of milliseconds from 100 to 600000" },
		{ "--idle-pause-s", "0",
		  "--idle-pause-s 0: must be a whole number of seconds from 1 to 86400" },
		{ "--frame-bytes-max", "1023",
		  "--frame-bytes-max 1023: must be a whole number of bytes from 1024 to 67108864" },
		{ "--workers", "65", "--workers 65: must be a whole number from 1 to 64" },
		{ "--max-viewers", "0", "--max-viewers 0: must be a whole number from 1 to 100000" },
		{ "--log-level", "loud", "--log-level loud: must be error, warn, info or debug" },
		{ "--bus-dir", "", "--bus-dir : empty or too long" },
		{ "--mount", "/a", "--mount /a: must be a URL path that begins and ends with '/'" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const args[] = { cases[i][0], cases[i][1], NULL };
		const char *err;
		int rc;

		capture_stderr(f);
		rc = from_args(&f->settings, args);
		err = captured_stderr(f);
		assert_int_equal(rc, -1);
		if (!strstr(err, cases[i][2]))
			fail_msg("message \"%s\" does not say \"%s\"", err, cases[i][2]);
	}
	assert_file_refused(f, "[server]\nkeepalive_ms = 60001\n", 2,
			    "[server] keepalive_ms: must be a whole number of milliseconds from "
			    "100 to 60000");
	assert_file_refused(f, "[server]\nlog_level = trace\n", 2,
			    "[server] log_level: must be error, warn, info or debug");
	assert_file_refused(f, "[server]\nconfig = x.ini\n", 2, "[server] config: unknown key");
}

/* Every server key's default, as config_defaults sets it from the table. */
static void test_defaults(void **state)
{
	struct fixture *f = *state;

	config_defaults(&f->settings);
	assert_string_equal(f->settings.listen, "");
	assert_string_equal(f->settings.pid_file, "");
	assert_string_equal(f->settings.bus_dir, BUS_DIR_DEFAULT);
	assert_string_equal(f->settings.mount, "/");
	assert_int_equal(f->settings.max_viewers, MAX_VIEWERS_DEFAULT);
	assert_int_equal(f->settings.workers, 1);
	assert_int_equal(f->settings.repeat_usec, REPEAT_MS_DEFAULT * 1000LL);
	assert_int_equal(f->settings.keepalive_usec, KEEPALIVE_MS_DEFAULT * 1000LL);
	assert_int_equal(f->settings.idle_usec, IDLE_SEC_DEFAULT * 1000000LL);
	assert_int_equal(f->settings.first_frame_usec, FIRST_FRAME_MS_DEFAULT * 1000LL);
	assert_int_equal(f->settings.stall_usec, STALL_MS_DEFAULT * 1000LL);
	assert_int_equal(f->settings.ingest_usec, INGEST_MS_DEFAULT * 1000LL);
	assert_int_equal(f->settings.request_usec, REQUEST_MS_DEFAULT * 1000LL);
	assert_int_equal(f->settings.frame_bytes_max, FRAME_BYTES_MAX_DEFAULT);
	assert_int_equal(f->settings.log_level, LOG_LEVEL_INFO);
	assert_int_equal(f->settings.stream_count, 0);
}

static void test_help_and_version(void **state)
{
	struct fixture *f = *state;
	static const char *const help[] = { "--help", NULL };
	static const char *const version[] = { "--version", NULL };
	int saved = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY);
	int rc_help, rc_version;

	assert_true(saved >= 0 && null >= 0);
	fflush(stdout);
	dup2(null, STDOUT_FILENO);
	rc_help = from_args(&f->settings, help);
	rc_version = from_args(&f->settings, version);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(null);
	assert_int_equal(rc_help, 1);
	assert_int_equal(rc_version, 1);
}

/* ---- the INI file ------------------------------------------------------- */

static const char good_ini[] = "; a comment\n"
			       "[server]\n"
			       "max_viewers = 42\n"
			       "repeat_ms = 250\n"
			       "bus_dir = /tmp/mjpeg-test-bus\n"
			       "workers = 3\n"
			       "\n"
			       "[stream cam]\n"
			       "source = pattern:bars\n"
			       "size = 320x240\n"
			       "fps = 12.5\n"
			       "quality = 70\n"
			       "max_viewers = 5\n";

static void test_file_values_applied(void **state)
{
	struct fixture *f = *state;
	const struct stream_settings *cam;

	write_ini(f, good_ini);
	config_defaults(&f->settings);
	assert_int_equal(config_load_file(&f->settings, f->ini), 0);
	assert_int_equal(f->settings.max_viewers, 42);
	assert_int_equal(f->settings.repeat_usec, 250000);
	assert_int_equal(f->settings.workers, 3);
	assert_string_equal(f->settings.bus_dir, "/tmp/mjpeg-test-bus");
	assert_string_equal(f->settings.config_path, f->ini);
	/* untouched keys keep their defaults */
	assert_int_equal(f->settings.keepalive_usec, KEEPALIVE_MS_DEFAULT * 1000LL);

	assert_int_equal(f->settings.stream_count, 1);
	cam = config_find_stream(&f->settings, "cam");
	assert_non_null(cam);
	assert_string_equal(cam->name, "cam");
	assert_string_equal(cam->source, "pattern:bars");
	assert_int_equal(cam->kind, SOURCE_PATTERN_BARS);
	assert_int_equal(cam->width, 320);
	assert_int_equal(cam->height, 240);
	assert_true(cam->fps == 12.5);
	assert_int_equal(cam->quality, 70);
	assert_int_equal(cam->max_viewers, 5);
}

static void test_file_streams_replace_defaults(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--config", f->ini, NULL };

	write_ini(f, good_ini);
	assert_int_equal(from_args(&f->settings, args), 0);
	assert_int_equal(f->settings.stream_count, 1);
	assert_non_null(config_find_stream(&f->settings, "cam"));
	assert_null(config_find_stream(&f->settings, "demo"));
	assert_null(config_find_stream(&f->settings, "bars"));
	assert_int_equal(f->settings.max_viewers, 42);
}

/* A stream given only its source gets the defaults for that source. */
static void test_file_stream_defaults(void **state)
{
	struct fixture *f = *state;
	const struct stream_settings *a, *b;

	write_ini(f, "[stream a]\nsource = pattern:redblue\n"
		     "[stream b]\nsource = pattern:bars\n");
	config_defaults(&f->settings);
	assert_int_equal(config_load_file(&f->settings, f->ini), 0);
	assert_int_equal(f->settings.stream_count, 2);
	a = config_find_stream(&f->settings, "a");
	b = config_find_stream(&f->settings, "b");
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->width, 256);
	assert_int_equal(a->height, 256);
	assert_true(a->fps == 1.0);
	assert_int_equal(b->width, 640);
	assert_int_equal(b->height, 480);
	assert_true(b->fps == 30.0);
	assert_int_equal(b->quality, ENCODE_QUALITY_DEFAULT);
}

static void test_command_line_overrides_file(void **state)
{
	struct fixture *f = *state;
	/* the option before --config wins all the same */
	const char *args[] = { "--max-viewers", "9", "--config", f->ini, "--workers", "2", NULL };

	write_ini(f, good_ini);
	assert_int_equal(from_args(&f->settings, args), 0);
	assert_int_equal(f->settings.max_viewers, 9);
	assert_int_equal(f->settings.workers, 2);
	/* what the command line left alone comes from the file */
	assert_int_equal(f->settings.repeat_usec, 250000);
	assert_string_equal(f->settings.bus_dir, "/tmp/mjpeg-test-bus");
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	const char *err;
	int rc;

	config_defaults(&f->settings);
	capture_stderr(f);
	rc = config_load_file(&f->settings, f->ini); /* not written */
	err = captured_stderr(f);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, f->ini));
}

static void test_file_errors(void **state)
{
	struct fixture *f = *state;

	assert_file_refused(f, "[server]\nmax_viewers = 3\ncolour = blue\n", 3, "colour");
	assert_file_refused(f, "[server]\n\n[camera]\nsource = pattern:bars\n", 4, "camera");
	assert_file_refused(f, "[stream cam]\nsource = pattern:bars\nsize = 10x\n", 3, "size");
	assert_file_refused(f, "[stream cam]\nsource = pattern:bars\nsize = x10\n", 3, "size");
	assert_file_refused(f, "[stream cam]\nsource = pattern:bars\nsize = 8193x10\n", 3,
			    "size");
	assert_file_refused(f, "[stream cam]\nsource = pattern:bars\nfps = 0\n", 3, "fps");
	assert_file_refused(f, "[stream cam]\nsource = pattern:bars\nfps = fast\n", 3, "fps");
	assert_file_refused(f, "[stream cam]\nsource = pattern:bars\nfps = 241\n", 3, "fps");
	assert_file_refused(f, "[stream cam]\nsource = pattern:bars\nfps = 5x\n", 3, "fps");
	assert_file_refused(f, "[stream cam]\nsource = pattern:bars\nquality = 101\n", 3,
			    "quality");
	assert_file_refused(f, "[stream cam]\nsource = pattern:bars\nsparkle = 1\n", 3,
			    "sparkle");
	assert_file_refused(f, "[stream cam]\nsource = webcam\n", 2, "source");
	assert_file_refused(f, "[stream bad.name]\nsource = pattern:bars\n", 2, "bad.name");
	assert_file_refused(f, "[stream ]\nsource = pattern:bars\n", 2, "source");
	assert_file_refused(f, "[server]\nmax_viewers = 0\n", 2, "max_viewers");
	assert_file_refused(f, "[server]\nrequest_ms = soon\n", 2, "request_ms");
}

/* A stream without a source is refused as a whole, naming the stream. */
static void test_file_stream_without_source(void **state)
{
	struct fixture *f = *state;

	assert_file_refused(f, "[stream cam]\nfps = 5\n", 0, "cam");
	assert_file_refused(f, "[stream cam]\nfps = 5\n", 0, "source");
}

/* ---- upstream keys (http:, exec:) ---------------------------------------- */

static void test_upstream_keys_applied(void **state)
{
	struct fixture *f = *state;
	const struct stream_settings *st;

	write_ini(f, "[stream cam]\n"
		     "source = HTTPS://bob:pw@cam.local:8443/video?x=1\n"
		     "user = alice\npassword = s3cret pass\n"
		     "header = Authorization: Bearer abc\nheader = X-Camera-Key:k\n"
		     "tls_verify = no\n"
		     "upstream_connect_ms = 1500\nupstream_stall_ms = 4000\n"
		     "upstream_retry_min_ms = 100\nupstream_retry_max_ms = 900\n"
		     "[stream cmd]\nsource = exec:ffmpeg -i x -f mjpeg -\n"
		     "upstream_stop_grace_ms = 300\n");
	config_defaults(&f->settings);
	assert_int_equal(config_load_file(&f->settings, f->ini), 0);
	st = config_find_stream(&f->settings, "cam");
	assert_non_null(st);
	assert_int_equal(st->kind, SOURCE_HTTP);
	/* libcurl gets the URL as written; what is shown hides the user part */
	assert_string_equal(st->path, "HTTPS://bob:pw@cam.local:8443/video?x=1");
	assert_string_equal(st->source, "HTTPS://***@cam.local:8443/video?x=1");
	assert_string_equal(st->upstream.user, "alice");
	assert_string_equal(st->upstream.password, "s3cret pass");
	assert_int_equal(st->upstream.header_count, 2);
	assert_string_equal(st->upstream.headers[1], "X-Camera-Key:k");
	assert_int_equal(st->upstream.tls_verify, 0);
	assert_int_equal(st->upstream.connect_usec, 1500000);
	assert_int_equal(st->upstream.stall_usec, 4000000);
	assert_int_equal(st->upstream.retry_min_usec, 100000);
	assert_int_equal(st->upstream.retry_max_usec, 900000);
	st = config_find_stream(&f->settings, "cmd");
	assert_non_null(st);
	assert_int_equal(st->kind, SOURCE_EXEC);
	assert_string_equal(st->path, "ffmpeg -i x -f mjpeg -");
	assert_int_equal(st->upstream.stop_grace_usec, 300000);
	assert_int_equal(st->upstream.tls_verify, 1);
	assert_int_equal(st->upstream.retry_max_usec, UPSTREAM_RETRY_MAX_MS_DEFAULT * 1000);
}

/* exec: the command line is split at load time (a quoting error stops the
 * start, with the column); format (with size) makes it raw frames. */
static void test_exec_source(void **state)
{
	struct fixture *f = *state;
	const struct stream_settings *st;

	write_ini(f, "[stream m]\nsource = exec:sh -c 'printf x' \"a b\" c\\ d\n"
		     "[stream r]\nsource = exec:ffmpeg -f rawvideo -\nformat = gray\nsize = 64x48\n");
	config_defaults(&f->settings);
	assert_int_equal(config_load_file(&f->settings, f->ini), 0);
	st = config_find_stream(&f->settings, "m");
	assert_non_null(st);
	assert_int_equal(st->kind, SOURCE_EXEC);
	assert_string_equal(st->path, "sh -c 'printf x' \"a b\" c\\ d");
	assert_int_equal(st->format_set, 0);
	st = config_find_stream(&f->settings, "r");
	assert_non_null(st);
	assert_int_equal(st->format_set, 1);
	assert_int_equal(st->format, PIXEL_GRAY);
	assert_int_equal(st->width, 64);

	assert_file_refused(f, "[stream c]\nsource = exec:sh -c 'echo\n", 0,
			    "[stream c]: source: unterminated ' quote opened at column 12");
	assert_file_refused(f, "[stream c]\nsource = exec:a \"b\n", 0,
			    "unterminated \" quote opened at column 8");
	assert_file_refused(f, "[stream c]\nsource = exec:a\\\n", 0,
			    "a backslash at column 7 ends the command");
	assert_file_refused(f, "[stream c]\nsource = exec:''x'\n", 0, "unterminated");
	assert_file_refused(f, "[stream c]\nsource = exec:ffmpeg -\nformat = rgb24\n", 0,
			    "it needs size = WIDTHxHEIGHT");
	assert_file_refused(f,
			    "[stream c]\nsource = exec:ffmpeg -\nformat = yuyv\nsize = 63x48\n",
			    0, "yuyv needs an even width");
	assert_file_refused(f, "[stream c]\nsource = exec:ffmpeg\nuser = u\n", 0,
			    "for http: and https: sources");
}

static void test_url_shown(void **state)
{
	static const char *const cases[][2] = {
		{ "http://cam/video", "http://cam/video" },
		{ "http://u:p@cam/video", "http://***@cam/video" },
		{ "http://u:p@w@cam:81/a@b", "http://***@cam:81/a@b" },
		{ "https://u@cam?x=@", "https://***@cam?x=@" },
		{ "http://cam/a?user=x@y", "http://cam/a?user=x@y" },
	};
	char shown[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		config_url_shown(cases[i][0], shown, sizeof(shown));
		assert_string_equal(shown, cases[i][1]);
	}
}

static void test_upstream_key_errors(void **state)
{
	struct fixture *f = *state;

	assert_file_refused(f, "[stream c]\nsource = http://cam/\nheader = NoColon\n", 3,
			    "header");
	assert_file_refused(f, "[stream c]\nsource = http://cam/\nheader = : empty name\n", 3,
			    "header");
	assert_file_refused(f, "[stream c]\nsource = http://cam/\ntls_verify = maybe\n", 3,
			    "yes or no");
	assert_file_refused(f, "[stream c]\nsource = http://cam/\nuser = a:b\n", 3, "user");
	assert_file_refused(f, "[stream c]\nsource = http://cam/\nupstream_stall_ms = 5\n", 3,
			    "10 to 3600000");
	assert_file_refused(f, "[stream c]\nsource = http://cam/\nupstream_sparkle_ms = 5\n",
			    3, "unknown key");
	assert_file_refused(f, "[stream c]\nsource = http:\n", 2, "source");
	assert_file_refused(f, "[stream c]\nsource = http://\n", 2, "source");
	assert_file_refused(f, "[stream c]\nsource = exec:\n", 2, "source");
	assert_file_refused(f, "[stream c]\nsource = http://cam/a b\n", 0, "not a URL");
	assert_file_refused(f, "[stream c]\nsource = http://ca m/\n", 0, "not a URL");
	assert_file_refused(f, "[stream c]\nsource = http://cam/\npassword = p\n", 0,
			    "a password needs a user");
	assert_file_refused(f, "[stream c]\nsource = pattern:bars\nuser = u\n", 0,
			    "for http: and https: sources");
	assert_file_refused(f, "[stream c]\nsource = pattern:bars\ntls_verify = no\n", 0,
			    "for http: and https: sources");
	assert_file_refused(f,
			    "[stream c]\nsource = http://cam/\nupstream_retry_min_ms = 3000\n"
			    "upstream_retry_max_ms = 2000\n",
			    0, "upstream_retry_min_ms is above upstream_retry_max_ms");
	{
		char text[1200] = "[stream c]\nsource = http://cam/\n";
		int i;

		for (i = 0; i < UPSTREAM_HEADERS_MAX + 1; i++)
			strcat(text, "header = X-A: b\n");
		assert_file_refused(f, text, 3 + UPSTREAM_HEADERS_MAX, "at most 8 header lines");
	}
}

/* ---- [relay]: an edge of an origin --------------------------------------- */

static void test_relay_section(void **state)
{
	struct fixture *f = *state;
	const struct stream_settings *st;
	const char *args[] = { "--config", f->ini, NULL };

	write_ini(f, "[relay]\norigin = http://u:pw@origin.example:8080/cams///\n"
		     "refresh_s = 3\nuser = edge\npassword = s3cret\n"
		     "header = X-Edge-Key: k\ntls_verify = no\n"
		     "upstream_retry_min_ms = 100\nupstream_retry_max_ms = 700\n"
		     "[stream local]\nsource = pattern:bars\n");
	assert_int_equal(from_args(&f->settings, args), 0);
	assert_string_equal(f->settings.relay.origin, "http://u:pw@origin.example:8080/cams");
	assert_int_equal(f->settings.relay.refresh_usec, 3000000);
	/* an edge gets no demo streams: only its own and the origin's */
	assert_int_equal(f->settings.stream_count, 1);

	assert_null(config_add_relay_stream(&f->settings, "cam1", 12.5));
	st = config_find_stream(&f->settings, "cam1");
	assert_non_null(st);
	assert_int_equal(st->kind, SOURCE_HTTP);
	assert_string_equal(st->path, "http://u:pw@origin.example:8080/cams/stream/cam1");
	assert_string_equal(st->source, "http://***@origin.example:8080/cams/stream/cam1");
	assert_string_equal(st->upstream.user, "edge");
	assert_string_equal(st->upstream.password, "s3cret");
	assert_int_equal(st->upstream.header_count, 1);
	assert_int_equal(st->upstream.tls_verify, 0);
	assert_int_equal(st->upstream.retry_min_usec, 100000);
	assert_int_equal(st->upstream.retry_max_usec, 700000);
	assert_int_equal(st->upstream.connect_usec, UPSTREAM_CONNECT_MS_DEFAULT * 1000);
	assert_true(st->fps == 12.5);
	assert_int_equal(st->width, 640);

	/* what cannot be added changes nothing */
	assert_non_null(strstr(config_add_relay_stream(&f->settings, "local", 0), "already"));
	assert_non_null(strstr(config_add_relay_stream(&f->settings, "../x", 0), "valid"));
	assert_non_null(strstr(config_add_relay_stream(&f->settings, "", 0), "valid"));
	assert_int_equal(f->settings.stream_count, 2);
	assert_null(config_add_relay_stream(&f->settings, "slow", 1000)); /* fps out of range */
	assert_true(config_find_stream(&f->settings, "slow")->fps == 30);
	while (f->settings.stream_count < STREAMS_MAX) {
		char name[16];

		snprintf(name, sizeof(name), "s%zu", f->settings.stream_count);
		assert_null(config_add_relay_stream(&f->settings, name, 0));
	}
	assert_non_null(strstr(config_add_relay_stream(&f->settings, "one-more", 0), "too many"));
	assert_int_equal(f->settings.stream_count, STREAMS_MAX);
}

static void test_relay_defaults(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--config", f->ini, NULL };

	write_ini(f, "[relay]\norigin = https://origin\n");
	assert_int_equal(from_args(&f->settings, args), 0);
	assert_string_equal(f->settings.relay.origin, "https://origin");
	assert_int_equal(f->settings.relay.refresh_usec, RELAY_REFRESH_S_DEFAULT * 1000000LL);
	assert_int_equal(f->settings.relay.upstream.tls_verify, 1);
	assert_int_equal(f->settings.relay.upstream.retry_max_usec,
			 UPSTREAM_RETRY_MAX_MS_DEFAULT * 1000);
	assert_int_equal(f->settings.stream_count, 0);
	/* no [relay]: no origin, the demo streams */
	assert_int_equal(from_args(&f->settings, (const char *const[]){ NULL }), 0);
	assert_string_equal(f->settings.relay.origin, "");
	assert_int_equal(f->settings.stream_count, 2);
}

static void test_relay_errors(void **state)
{
	struct fixture *f = *state;

	assert_file_refused(f, "[relay]\norigin = ftp://origin/\n", 2, "http:// or https://");
	assert_file_refused(f, "[relay]\norigin = origin:8080\n", 2, "http:// or https://");
	assert_file_refused(f, "[relay]\norigin = http://origin/?a=b\n", 2, "no query");
	assert_file_refused(f, "[relay]\norigin = http://ori gin/\n", 0, "not a URL");
	assert_file_refused(f, "[relay]\norigin = http://o\nrefresh_s = 0\n", 3, "1 to 3600");
	assert_file_refused(f, "[relay]\norigin = http://o\nrefresh_s = 3601\n", 3, "1 to 3600");
	assert_file_refused(f, "[relay]\norigin = http://o\nsource = pattern:bars\n", 3,
			    "unknown key");
	assert_file_refused(f, "[relay]\norigin = http://o\nupstream_stop_grace_ms = 100\n", 3,
			    "exec:");
	assert_file_refused(f, "[relay]\norigin = http://o\nupstream_stall_ms = 1\n", 3,
			    "10 to 3600000");
	assert_file_refused(f, "[relay]\norigin = http://o\npassword = p\n", 0,
			    "a password needs a user");
	assert_file_refused(f,
			    "[relay]\norigin = http://o\nupstream_retry_min_ms = 900\n"
			    "upstream_retry_max_ms = 800\n",
			    0, "upstream_retry_min_ms is above");
	assert_file_refused(f, "[relay]\nuser = u\n", 0, "needs origin");
}

/* ---- the mount point ---------------------------------------------------- */

static void test_mount(void **state)
{
	struct fixture *f = *state;
	static const char *const none[] = { NULL };
	static const char *const cams[] = { "--mount", "/cams/", NULL };
	static const char *const bad[][3] = {
		{ "--mount", "", NULL },       { "--mount", "cams/", NULL },
		{ "--mount", "/cams", NULL },  { "--mount", "//", NULL },
		{ "--mount", "/a//b/", NULL }, { "--mount", "/../", NULL },
		{ "--mount", "/a/./", NULL },  { "--mount", "/a b/", NULL },
		{ "--mount", "/a%2f/", NULL },
	};
	size_t i;

	assert_int_equal(from_args(&f->settings, none), 0);
	assert_string_equal(f->settings.mount, "/");
	assert_int_equal(from_args(&f->settings, cams), 0);
	assert_string_equal(f->settings.mount, "/cams/");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err;
		int rc;

		capture_stderr(f);
		rc = from_args(&f->settings, bad[i]);
		err = captured_stderr(f);
		if (rc != -1)
			fail_msg("--mount '%s' accepted", bad[i][1]);
		assert_non_null(strstr(err, "--mount"));
	}
	write_ini(f, "[server]\nmount = /site/cams/\n");
	config_defaults(&f->settings);
	assert_int_equal(config_load_file(&f->settings, f->ini), 0);
	assert_string_equal(f->settings.mount, "/site/cams/");
	assert_file_refused(f, "[server]\n\nmount = /cams\n", 3, "mount");
	assert_file_refused(f, "[server]\nmount = /a/../\n", 2, "mount");
}

/* ---- sections ----------------------------------------------------------- */

/* A second [stream NAME] of a name already used would merge into the
 * first one key by key; it is refused, naming the second section's line. */
static void test_duplicate_stream_section(void **state)
{
	struct fixture *f = *state;

	assert_file_refused(f,
			    "[stream a]\nsource = pattern:bars\n"
			    "[stream b]\nsource = pattern:bars\n"
			    "\n[stream a]\nfps = 3\n",
			    6, "duplicate section");
	assert_file_refused(f,
			    "[stream a]\nsource = pattern:bars\n"
			    "[stream b]\nsource = pattern:bars\n"
			    "\n[stream a]\nfps = 3\n",
			    6, "line 1");
	assert_file_refused(f,
			    "; cams\n[stream a]\nsource = pattern:bars\n"
			    "  [stream a]  \nsource = pattern:redblue\n",
			    4, "[stream a]");
	assert_file_refused(f,
			    "[stream a]\nsource = pattern:bars\n"
			    "[server]\nmax_viewers = 3\n"
			    "[stream a]\nquality = 50\n",
			    5, "duplicate section");
}

/* [server] may appear twice (a file appended to, as conf/stack.sh does
 * for Apache); the last value of a key wins. */
static void test_server_section_twice(void **state)
{
	struct fixture *f = *state;

	write_ini(f, "[server]\nmax_viewers = 3\n[stream a]\nsource = pattern:bars\n"
		     "[server]\nmax_viewers = 4\nbus_dir = /tmp/x\n");
	config_defaults(&f->settings);
	assert_int_equal(config_load_file(&f->settings, f->ini), 0);
	assert_int_equal(f->settings.max_viewers, 4);
	assert_int_equal(f->settings.stream_count, 1);
}

/* Streams may be called status or metrics: the path's whole shape says
 * what is asked for (stream/status is a stream, status the document). */
static void test_streams_named_status_and_metrics(void **state)
{
	struct fixture *f = *state;

	write_ini(f, "[stream status]\nsource = pattern:bars\n"
		     "[stream metrics]\nsource = pattern:redblue\n");
	config_defaults(&f->settings);
	assert_int_equal(config_load_file(&f->settings, f->ini), 0);
	assert_int_equal(f->settings.stream_count, 2);
	assert_non_null(config_find_stream(&f->settings, "status"));
	assert_non_null(config_find_stream(&f->settings, "metrics"));
}

/* ---- files that are not config files ------------------------------------ */

/* Expects path refused with a message naming it and needle. */
static void assert_path_refused(struct fixture *f, const char *path, const char *needle)
{
	const char *err;
	int rc;

	config_defaults(&f->settings);
	capture_stderr(f);
	rc = config_load_file(&f->settings, path);
	err = captured_stderr(f);
	if (rc != -1)
		fail_msg("config_load_file(%s) accepted", path);
	if (!strstr(err, path) || !strstr(err, needle))
		fail_msg("message \"%s\" does not name %s and %s", err, path, needle);
	assert_int_equal(f->settings.stream_count, 0);
}

static void test_unreadable_files(void **state)
{
	struct fixture *f = *state;
	char fifo[160];

	/* each of these used to hang or load as an empty file: the alarm
	 * turns a hang into a failure (SIGALRM ends the test binary) */
	alarm(20);
	assert_path_refused(f, "/dev/zero", "not a regular file");
	assert_path_refused(f, "/dev/null", "not a regular file");
	assert_path_refused(f, f->dir, "not a regular file");
	snprintf(fifo, sizeof(fifo), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_path_refused(f, fifo, "not a regular file");
	unlink(fifo);
	/* a regular file whose read fails */
	assert_path_refused(f, "/proc/self/mem", "cannot read");
	alarm(0);
}

/* A file over CONFIG_FILE_MAX bytes is refused, one of exactly that size
 * is read. */
static void test_file_size_limit(void **state)
{
	struct fixture *f = *state;
	static char text[CONFIG_FILE_MAX + 2];
	size_t i;

	/* comment lines of 100 bytes, then "[stream a]" and its source */
	for (i = 0; i < CONFIG_FILE_MAX; i++)
		text[i] = i % 100 == 99 ? '\n' : i % 100 == 0 ? ';' : 'x';
	memcpy(text + CONFIG_FILE_MAX - 40, "\n[stream a]\nsource = pattern:bars\n;xxxx\n", 40);
	text[CONFIG_FILE_MAX] = '\0';
	write_ini(f, text);
	config_defaults(&f->settings);
	assert_int_equal(config_load_file(&f->settings, f->ini), 0);
	assert_int_equal(f->settings.stream_count, 1);
	text[CONFIG_FILE_MAX] = '\n';
	text[CONFIG_FILE_MAX + 1] = '\0';
	write_ini(f, text);
	assert_path_refused(f, f->ini, "larger than 1048576 bytes");
}

/* A test given the fixture: its directory, the INI path, stderr captured on demand. */
#define CONFIG_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* ---- private streams ---------------------------------------------------- */

#define SECRET_32 "0123456789abcdef0123456789abcdef"

static void test_view_secret_keys(void **state)
{
	struct fixture *f = *state;
	const char *args[] = { "--config", f->ini, NULL };
	const struct stream_settings *st;

	/* a stream's own secret, [server]'s for the others, wherever [server]
	 * stands in the file */
	write_ini(f, "[stream own]\nsource = pattern:bars\nview_secret = " SECRET_32 "-own\n"
		     "[stream inherits]\nsource = pattern:bars\n"
		     "[server]\nview_secret = " SECRET_32 "\nstatus_token = status-token-0123\n"
		     "link_grace_s = 5\n");
	assert_int_equal(from_args(&f->settings, args), 0);
	st = config_find_stream(&f->settings, "own");
	assert_non_null(st);
	assert_string_equal(st->view_secret, SECRET_32 "-own");
	st = config_find_stream(&f->settings, "inherits");
	assert_non_null(st);
	assert_string_equal(st->view_secret, SECRET_32);
	assert_string_equal(f->settings.status_token, "status-token-0123");
	assert_int_equal(f->settings.link_grace_usec, 5 * USEC_PER_SEC);

	/* the built-in streams take [server]'s too */
	write_ini(f, "[server]\nview_secret = " SECRET_32 "\n");
	assert_int_equal(from_args(&f->settings, args), 0);
	assert_int_equal(f->settings.stream_count, 2);
	assert_string_equal(f->settings.streams[0].view_secret, SECRET_32);
	assert_string_equal(f->settings.streams[1].view_secret, SECRET_32);

	/* without one, streams are public; the grace defaults to 30 s */
	write_ini(f, "[stream pub]\nsource = pattern:bars\n");
	assert_int_equal(from_args(&f->settings, args), 0);
	assert_string_equal(f->settings.streams[0].view_secret, "");
	assert_string_equal(f->settings.status_token, "");
	assert_int_equal(f->settings.link_grace_usec, SIGN_GRACE_S_DEFAULT * USEC_PER_SEC);
}

static void test_view_secret_errors(void **state)
{
	struct fixture *f = *state;
	char text[512];
	const char *secret_arg[] = { "--view-secret", SECRET_32, NULL };
	const char *token_arg[] = { "--status-token", "status-token-0123", NULL };
	const char *grace_arg[] = { "--link-grace-s", "3601", NULL };

	/* too short, naming the stream */
	assert_file_refused(f, "[stream cam]\nsource = pattern:bars\nview_secret = short\n", 3,
			    "[stream cam] view_secret: must be 32 to 128 characters");
	assert_file_refused(f,
			    "[stream cam]\nsource = pattern:bars\nview_secret = "
			    "0123456789abcdef0123456789abcde\n",
			    3, "[stream cam] view_secret: must be 32 to 128 characters");
	snprintf(text, sizeof(text), "[stream cam]\nsource = pattern:bars\nview_secret = %0129d\n",
		 0);
	assert_file_refused(f, text, 3, "must be 32 to 128 characters");
	assert_file_refused(f, "[server]\nview_secret = short\n", 2,
			    "[server] view_secret: must be 32 to 128 characters");
	assert_file_refused(f, "[server]\nstatus_token = short\n", 2,
			    "[server] status_token: must be 16 to 128 characters");
	assert_file_refused(f, "[server]\nlink_grace_s = 3601\n", 2, "0 to 3600");
	/* 128 characters, the longest, fit libinih's line */
	snprintf(text, sizeof(text), "[stream cam]\nsource = pattern:bars\nview_secret = %0128d\n",
		 0);
	write_ini(f, text);
	config_defaults(&f->settings);
	assert_int_equal(config_load_file(&f->settings, f->ini), 0);
	assert_int_equal(strlen(f->settings.streams[0].view_secret), 128);
	/* secrets are the file's only: no command-line option takes them */
	capture_stderr(f);
	assert_int_equal(from_args(&f->settings, secret_arg), -1);
	assert_int_equal(from_args(&f->settings, token_arg), -1);
	(void)captured_stderr(f);
	capture_stderr(f);
	assert_int_equal(from_args(&f->settings, grace_arg), -1);
	assert_non_null(strstr(captured_stderr(f), "0 to 3600"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_name_valid),
		cmocka_unit_test(test_mount_valid),
		cmocka_unit_test(test_url_shown),
		CONFIG_TEST(test_upstream_keys_applied),
		CONFIG_TEST(test_upstream_key_errors),
		CONFIG_TEST(test_relay_section),
		CONFIG_TEST(test_relay_defaults),
		CONFIG_TEST(test_relay_errors),
		CONFIG_TEST(test_exec_source),
		CONFIG_TEST(test_no_args_gives_default_streams),
		CONFIG_TEST(test_args_applied),
		CONFIG_TEST(test_bad_args),
		CONFIG_TEST(test_bad_value_messages),
		CONFIG_TEST(test_defaults),
		CONFIG_TEST(test_help_and_version),
		CONFIG_TEST(test_file_values_applied),
		CONFIG_TEST(test_file_streams_replace_defaults),
		CONFIG_TEST(test_file_stream_defaults),
		CONFIG_TEST(test_command_line_overrides_file),
		CONFIG_TEST(test_missing_file),
		CONFIG_TEST(test_file_errors),
		CONFIG_TEST(test_file_stream_without_source),
		CONFIG_TEST(test_mount),
		CONFIG_TEST(test_duplicate_stream_section),
		CONFIG_TEST(test_server_section_twice),
		CONFIG_TEST(test_streams_named_status_and_metrics),
		CONFIG_TEST(test_unreadable_files),
		CONFIG_TEST(test_file_size_limit),
		CONFIG_TEST(test_view_secret_keys),
		CONFIG_TEST(test_view_secret_errors),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
