#include "config.h"

#include "clock.h"
#include "cmdline.h"
#include "option.h"
#include "parse.h"
#include "supervisor.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int config_stream_name_valid(const char *name)
{
	size_t n;

	for (n = 0; name[n]; n++) {
		char c = name[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return n >= 1 && n <= STREAM_NAME_MAX;
}

int config_mount_valid(const char *mount)
{
	size_t n = mount ? strlen(mount) : 0;
	const char *seg, *p;

	if (n == 0 || n > MOUNT_MAX || mount[0] != '/' || mount[n - 1] != '/')
		return 0;
	/* Every segment between two slashes: unreserved URL characters, not
	 * empty ("//"), not "." or ".." (web servers resolve those before the
	 * responder sees a path, so such a prefix could never match). */
	for (seg = mount + 1; *seg; seg = p + 1) {
		p = strchr(seg, '/');
		if (p == seg || (p - seg == 1 && seg[0] == '.') ||
		    (p - seg == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0;
		for (; seg < p; seg++)
			if (!((*seg >= 'a' && *seg <= 'z') || (*seg >= 'A' && *seg <= 'Z') ||
			      (*seg >= '0' && *seg <= '9') || *seg == '-' || *seg == '_' ||
			      *seg == '.' || *seg == '~'))
				return 0;
	}
	return 1;
}

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define SETTING(field) OPTION_FIELD(struct settings, field)

/* The log level is read as an int index into log_level_names. */
_Static_assert(sizeof(enum log_level) == sizeof(int), "log_level is read as an int");

/* Every server-wide option: the command line, the [server] keys, the
 * defaults and --help all come from these rows.  README.md's table of
 * options is checked against --help by tests/check_options.py. */
static const struct option_row server_options[] = {
	{ .name = "listen", .key = "listen", .arg = "ADDR", .kind = OPTION_TEXT,
	  SETTING(listen), .shown = "fd 0",
	  .help = "unix:/path/to.sock or HOST:PORT to listen on; without it, the FastCGI "
		  "socket on fd 0 (spawn-fcgi, lighttpd bin-path). A stale unix socket "
		  "file of a dead process is replaced, a live one refused" },
	{ .name = "config", .arg = "FILE", .kind = OPTION_COMMAND, .shown = "none",
	  .help = "INI file with [server] and [stream NAME] sections, as below" },
	{ .name = "bus-dir", .key = "bus_dir", .arg = "DIR", .kind = OPTION_TEXT,
	  SETTING(bus_dir), .min = 1, .def = BUS_DIR_DEFAULT,
	  .help = "directory of the shared-memory stream files" },
	{ .name = "pid-file", .key = "pid_file", .arg = "FILE", .kind = OPTION_TEXT,
	  SETTING(pid_file), .shown = "none",
	  .help = "write the process id here (removed at a clean exit)" },
	{ .name = "mount", .key = "mount", .arg = "PATH", .kind = OPTION_CHECKED,
	  SETTING(mount), .def = "/", .check = config_mount_valid,
	  .why = "must be a URL path that begins and ends with '/', without '//', '.' or "
		 "'..' segments, of at most " STRINGIFY(MOUNT_MAX) " bytes of "
		 "[A-Za-z0-9._~-] and '/' (e.g. / or /cams/)",
	  .help = "FastCGI: the URL path the responder answers below (e.g. /cams/ for "
		  "/cams/stream/NAME); plain CGI answers below the script's own URL" },
	{ .name = "max-viewers", .key = "max_viewers", .arg = "N", .kind = OPTION_COUNT,
	  SETTING(max_viewers), .min = 1, .max = MAX_VIEWERS_LIMIT,
	  .def = STRINGIFY(MAX_VIEWERS_DEFAULT),
	  .help = "stream viewers per process over all streams; above it 503 with "
		  "Retry-After" },
	{ .name = "repeat-ms", .key = "repeat_ms", .arg = "N", .kind = OPTION_MSEC,
	  SETTING(repeat_usec), .min = 20, .max = 10000, .def = STRINGIFY(REPEAT_MS_DEFAULT),
	  .help = "resend a frame that no newer one followed within N ms, so browsers "
		  "show it at once" },
	{ .name = "keepalive-ms", .key = "keepalive_ms", .arg = "N", .kind = OPTION_MSEC,
	  SETTING(keepalive_usec), .min = 100, .max = 60000,
	  .def = STRINGIFY(KEEPALIVE_MS_DEFAULT),
	  .help = "resend the newest frame at least every N ms" },
	{ .name = "idle-pause-s", .key = "idle_pause_s", .arg = "N", .kind = OPTION_SEC,
	  SETTING(idle_usec), .min = 1, .max = 86400, .def = STRINGIFY(IDLE_SEC_DEFAULT),
	  .help = "pause a producer after N s without viewers" },
	{ .name = "first-frame-ms", .key = "first_frame_ms", .arg = "N", .kind = OPTION_MSEC,
	  SETTING(first_frame_usec), .min = 0, .max = 60000,
	  .def = STRINGIFY(FIRST_FRAME_MS_DEFAULT),
	  .help = "how long a snapshot waits for a stream's first frame" },
	{ .name = "workers", .key = "workers", .arg = "N", .kind = OPTION_COUNT,
	  SETTING(workers), .min = 1, .max = WORKERS_MAX, .def = "1",
	  .help = "responder processes sharing the socket and every stream's producer, "
		  "started and restarted by a supervisor" },
	{ .name = "stall-ms", .key = "stall_ms", .arg = "N", .kind = OPTION_MSEC,
	  SETTING(stall_usec), .min = 100, .max = 3600000, .def = STRINGIFY(STALL_MS_DEFAULT),
	  .help = "drop a viewer whose connection takes no bytes for N ms" },
	{ .name = "ingest-ms", .key = "ingest_ms", .arg = "N", .kind = OPTION_MSEC,
	  SETTING(ingest_usec), .min = 100, .max = 3600000, .def = STRINGIFY(INGEST_MS_DEFAULT),
	  .help = "a request body (a push: each of its frames) must arrive whole within N "
		  "ms, else an ingest gets 408 and a stream request ends" },
	{ .name = "request-ms", .key = "request_ms", .arg = "N", .kind = OPTION_MSEC,
	  SETTING(request_usec), .min = 100, .max = 600000,
	  .def = STRINGIFY(REQUEST_MS_DEFAULT),
	  .help = "FastCGI: a request's head (its params) must arrive within N ms, and an "
		  "idle kept connection is closed after N ms" },
	{ .name = "frame-bytes-max", .key = "frame_bytes_max", .arg = "N", .kind = OPTION_BYTES,
	  SETTING(frame_bytes_max), .min = 1024, .max = FRAME_BYTES_MAX_LIMIT,
	  .def = STRINGIFY(FRAME_BYTES_MAX_DEFAULT),
	  .help = "the largest JPEG frame in bytes; the same for every process on a bus "
		  "directory" },
	{ .name = "log-level", .key = "log_level", .arg = "LEVEL", .kind = OPTION_NAME,
	  SETTING(log_level), .names = log_level_names, .def = "info",
	  .help = "what goes to standard error" },
	{ .name = "link-grace-s", .key = "link_grace_s", .arg = "N", .kind = OPTION_SEC,
	  SETTING(link_grace_usec), .min = 0, .max = SIGN_GRACE_S_MAX,
	  .def = STRINGIFY(SIGN_GRACE_S_DEFAULT),
	  .help = "a signed link to a private stream is still taken N s after its exp when "
		  "first presented (clock skew between the minting application and this "
		  "host); an open stream ends at exp all the same" },
	{ .name = "help", .kind = OPTION_COMMAND, .help = "this text" },
	{ .name = "version", .kind = OPTION_COMMAND, .help = "the version" },
};

#define SERVER_OPTIONS (sizeof(server_options) / sizeof(server_options[0]))

static void upstream_defaults(struct upstream_settings *up)
{
	memset(up, 0, sizeof(*up));
	up->tls_verify = 1;
	up->connect_usec = UPSTREAM_CONNECT_MS_DEFAULT * USEC_PER_MSEC;
	up->stall_usec = UPSTREAM_STALL_MS_DEFAULT * USEC_PER_MSEC;
	up->retry_min_usec = UPSTREAM_RETRY_MIN_MS_DEFAULT * USEC_PER_MSEC;
	up->retry_max_usec = UPSTREAM_RETRY_MAX_MS_DEFAULT * USEC_PER_MSEC;
	up->stop_grace_usec = UPSTREAM_STOP_GRACE_MS_DEFAULT * USEC_PER_MSEC;
}

void config_defaults(struct settings *settings)
{
	memset(settings, 0, sizeof(*settings));
	option_defaults(server_options, SERVER_OPTIONS, settings);
	upstream_defaults(&settings->relay.upstream);
	settings->relay.refresh_usec = (int64_t)RELAY_REFRESH_S_DEFAULT * USEC_PER_SEC;
}

void config_url_shown(const char *url, char *shown, size_t size)
{
	const char *host = strstr(url, "://"), *at, *end;

	if (host) {
		host += 3;
		end = host + strcspn(host, "/?#");
		at = memchr(host, '@', (size_t)(end - host));
		/* the last '@' before the path ends the user information */
		while (at) {
			const char *next = memchr(at + 1, '@', (size_t)(end - at - 1));

			if (!next)
				break;
			at = next;
		}
		if (at) {
			snprintf(shown, size, "%.*s***%s", (int)(host - url), url, at);
			return;
		}
	}
	snprintf(shown, size, "%s", url);
}

/* NULL when libcurl takes url as an http(s) URL, else why not. */
static const char *url_refusal(const char *url)
{
	static char why[160];
	CURLU *h = curl_url();
	CURLUcode rc;

	if (!h)
		return "out of memory";
	rc = curl_url_set(h, CURLUPART_URL, url, 0);
	curl_url_cleanup(h);
	if (rc == CURLUE_OK)
		return NULL;
	snprintf(why, sizeof(why), "not a URL libcurl takes: %s", curl_url_strerror(rc));
	return why;
}

/* Sets kind and path from a source key.  -1 for an unknown source. */
static int stream_set_source(struct stream_settings *st, const char *source)
{
	/* takes_path: 1, the rest after the prefix is the path; 2, the whole
	 * source is (a URL keeps its scheme). */
	static const struct {
		const char *prefix;
		enum source_kind kind;
		int takes_path;
	} kinds[] = {
		{ "pattern:redblue", SOURCE_PATTERN_REDBLUE, 0 },
		{ "pattern:bars", SOURCE_PATTERN_BARS, 0 },
		{ "dir:", SOURCE_DIR, 1 },
		{ "raw:", SOURCE_RAW, 1 },
		{ "mjpeg:", SOURCE_MJPEG, 1 },
		{ "ingest", SOURCE_INGEST, 0 },
		{ "http://", SOURCE_HTTP, 2 },
		{ "https://", SOURCE_HTTP, 2 },
		{ "exec:", SOURCE_EXEC, 1 },
		{ "scale:", SOURCE_SCALE, 1 },
		{ "mosaic:", SOURCE_MOSAIC, 1 },
	};
	size_t i, n;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		n = strlen(kinds[i].prefix);
		/* a URL's scheme is case-insensitive (RFC 3986, 3.1) */
		int differs = kinds[i].takes_path == 2 ? strncasecmp(source, kinds[i].prefix, n)
						       : strncmp(source, kinds[i].prefix, n);

		if (kinds[i].takes_path ? differs != 0 || !source[n]
					: strcmp(source, kinds[i].prefix) != 0)
			continue;
		if (kinds[i].takes_path &&
		    snprintf(st->path, sizeof(st->path), "%s",
			     kinds[i].takes_path == 2 ? source : source + n) >= (int)sizeof(st->path))
			return -1;
		st->kind = kinds[i].kind;
		if (st->kind == SOURCE_HTTP)
			config_url_shown(source, st->source, sizeof(st->source));
		else
			snprintf(st->source, sizeof(st->source), "%s", source);
		return 0;
	}
	return -1;
}

/* NULL when command splits into argv (cmdline.c), else why not, in why. */
static const char *exec_refusal(const char *command, char *why, size_t size)
{
	struct cmdline cl;
	char how[96];

	if (cmdline_split(command, strlen("exec:"), &cl, how, sizeof(how)) < 0) {
		snprintf(why, size, "source: %s", how);
		return why;
	}
	cmdline_free(&cl);
	return NULL;
}

int config_kind_derived(enum source_kind kind)
{
	return kind == SOURCE_SCALE || kind == SOURCE_MOSAIC;
}

/* Splits a derived source's list of input names ("cam" or "a,b,c") into
 * st->inputs.  NULL, or why not. */
static const char *stream_set_inputs(struct stream_settings *st)
{
	const char *p = st->path;

	st->input_count = 0;
	for (;;) {
		size_t n = strcspn(p, ",");
		char name[STREAM_NAME_MAX + 1];

		if (n == 0 || n > STREAM_NAME_MAX)
			return "each input must be a stream name of [A-Za-z0-9_-]{1,64}";
		memcpy(name, p, n);
		name[n] = '\0';
		if (!config_stream_name_valid(name))
			return "each input must be a stream name of [A-Za-z0-9_-]{1,64}";
		if (st->input_count >= DERIVED_INPUTS_MAX)
			return "a mosaic takes at most 16 inputs";
		memcpy(st->inputs[st->input_count++], name, n + 1);
		if (!p[n])
			break;
		p += n + 1;
	}
	if (st->kind == SOURCE_SCALE && st->input_count != 1)
		return "scale: takes one stream (scale:NAME)";
	return NULL;
}

/* Fills what the user left out: the demo's own size and rate for redblue,
 * 640x480 at 30 fps for the rest.  A raw stream must say its size; a
 * derived stream too, and its fps is settled by config_check_derived. */
static void stream_fill_defaults(struct stream_settings *st)
{
	int redblue = st->kind == SOURCE_PATTERN_REDBLUE;

	if (!st->width) {
		st->width = redblue ? 256 : 640;
		st->height = redblue ? 256 : 480;
	}
	if (st->fps <= 0 && !config_kind_derived(st->kind))
		st->fps = redblue ? 1 : 30;
	if (!st->quality)
		st->quality = ENCODE_QUALITY_DEFAULT;
}


static struct stream_settings *stream_add(struct settings *settings, const char *name)
{
	struct stream_settings *st;

	if (settings->stream_count >= STREAMS_MAX)
		return NULL;
	st = &settings->streams[settings->stream_count++];
	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", name);
	upstream_defaults(&st->upstream);
	return st;
}

const struct stream_settings *config_find_stream(const struct settings *settings,
						 const char *name)
{
	size_t i;

	for (i = 0; i < settings->stream_count; i++)
		if (strcmp(settings->streams[i].name, name) == 0)
			return &settings->streams[i];
	return NULL;
}

void config_log_warnings(const struct settings *settings)
{
	size_t i;

	for (i = 0; i < settings->stream_count; i++) {
		const struct stream_settings *st = &settings->streams[i];

		if (st->kind == SOURCE_HTTP && !st->upstream.tls_verify)
			log_warn("stream %s: tls_verify = no: the certificate of %s is not checked; "
				 "anyone on the way can read and replace its frames",
				 st->name, st->source);
	}
}

void config_add_default_streams(struct settings *settings)
{
	struct stream_settings *st;
	size_t i;

	if (!settings->stream_count && !settings->relay.origin[0]) {
		st = stream_add(settings, "demo");
		if (stream_set_source(st, "pattern:redblue") == 0)
			stream_fill_defaults(st);
		st = stream_add(settings, "bars");
		if (stream_set_source(st, "pattern:bars") == 0)
			stream_fill_defaults(st);
	}
	/* Each stream carries the secret it uses, so that a reload that
	 * changes [server]'s retires the streams that used the old one. */
	for (i = 0; i < settings->stream_count; i++) {
		st = &settings->streams[i];
		if (!st->view_secret[0])
			memcpy(st->view_secret, settings->view_secret, sizeof(st->view_secret));
	}
}

/* A [server] or [stream NAME] view_secret into field (SIGN_SECRET_MAX + 1
 * bytes).  NULL, or why not. */
static const char *apply_view_secret(char *field, const char *value)
{
	size_t n = strlen(value);

	if (n < SIGN_SECRET_MIN || n > SIGN_SECRET_MAX)
		return "must be " STRINGIFY(SIGN_SECRET_MIN) " to " STRINGIFY(
			SIGN_SECRET_MAX) " characters";
	memcpy(field, value, n + 1);
	return NULL;
}

const char *config_add_relay_stream(struct settings *settings, const char *name, double fps)
{
	struct stream_settings *st;
	char url[RELAY_ORIGIN_MAX + STREAM_NAME_MAX + 16];

	if (!config_stream_name_valid(name))
		return "not a valid stream name ([A-Za-z0-9_-]{1,64})";
	if (config_find_stream(settings, name))
		return "the config has a stream of that name already";
	if (settings->stream_count >= STREAMS_MAX)
		return "too many streams (at most 64)";
	/* both fit: origin is at most RELAY_ORIGIN_MAX, the name checked */
	snprintf(url, sizeof(url), "%s/stream/%s", settings->relay.origin, name);
	st = stream_add(settings, name);
	if (stream_set_source(st, url) < 0) {
		settings->stream_count--;
		return "the origin's URL does not make a source";
	}
	st->upstream = settings->relay.upstream;
	memcpy(st->view_secret, settings->view_secret, sizeof(st->view_secret));
	if (fps >= 0.01 && fps <= FPS_MAX)
		st->fps = fps;
	stream_fill_defaults(st);
	return NULL;
}

static const char *apply_upstream_key(struct upstream_settings *up, const char *key,
				      const char *value);

/* A [relay] key; NULL or why not. */
static const char *apply_relay_key(struct relay_settings *relay, const char *key,
				   const char *value)
{
	size_t n = strlen(value);
	long secs;

	if (strcmp(key, "origin") == 0) {
		if (n > RELAY_ORIGIN_MAX)
			return "must be at most 1024 characters";
		if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
			return "must be an http:// or https:// URL of an mjpeg-fcgi server";
		if (strpbrk(value, "?#"))
			return "must have no query or fragment (the paths /status and "
			       "/stream/NAME are put after it)";
		while (n > 0 && value[n - 1] == '/')
			n--;
		snprintf(relay->origin, sizeof(relay->origin), "%.*s", (int)n, value);
		return NULL;
	}
	if (strcmp(key, "refresh_s") == 0) {
		if (parse_long(value, 1, RELAY_REFRESH_S_MAX, &secs) < 0)
			return "must be a whole number of seconds from 1 to 3600";
		relay->refresh_usec = (int64_t)secs * USEC_PER_SEC;
		return NULL;
	}
	if (strcmp(key, "upstream_stop_grace_ms") == 0)
		return "is for exec: sources";
	if (strncmp(key, "upstream_", 9) == 0 || strcmp(key, "user") == 0 ||
	    strcmp(key, "password") == 0 || strcmp(key, "header") == 0 ||
	    strcmp(key, "tls_verify") == 0)
		return apply_upstream_key(&relay->upstream, key, value);
	return "unknown key";
}

/* "Name: value" with a header name of visible characters but ':'. */
static int header_line_valid(const char *line)
{
	const char *p = line;

	while (*p > ' ' && *p < 127 && *p != ':')
		p++;
	return p > line && *p == ':';
}

/* The upstream keys of a [stream NAME] section (http:, exec:).  Times are
 * upstream_NAME_ms. */
static const char *apply_upstream_key(struct upstream_settings *up, const char *key,
				      const char *value)
{
	static const struct {
		const char *key;
		size_t offset;
	} times[] = {
		{ "upstream_connect_ms", offsetof(struct upstream_settings, connect_usec) },
		{ "upstream_stall_ms", offsetof(struct upstream_settings, stall_usec) },
		{ "upstream_retry_min_ms", offsetof(struct upstream_settings, retry_min_usec) },
		{ "upstream_retry_max_ms", offsetof(struct upstream_settings, retry_max_usec) },
		{ "upstream_stop_grace_ms", offsetof(struct upstream_settings, stop_grace_usec) },
	};
	size_t i;
	long n;

	if (strcmp(key, "user") == 0) {
		if (strlen(value) > UPSTREAM_USER_MAX || strchr(value, ':'))
			return "must be at most 128 characters, without ':'";
		snprintf(up->user, sizeof(up->user), "%s", value);
		return NULL;
	}
	if (strcmp(key, "password") == 0) {
		if (strlen(value) > UPSTREAM_PASSWORD_MAX)
			return "must be at most 256 characters";
		snprintf(up->password, sizeof(up->password), "%s", value);
		return NULL;
	}
	if (strcmp(key, "header") == 0) {
		if (strlen(value) > UPSTREAM_HEADER_MAX || !header_line_valid(value))
			return "must be \"Name: value\", at most 1024 characters";
		if (up->header_count >= UPSTREAM_HEADERS_MAX)
			return "at most 8 header lines per stream";
		snprintf(up->headers[up->header_count], sizeof(up->headers[0]), "%s", value);
		up->header_count++;
		return NULL;
	}
	if (strcmp(key, "tls_verify") == 0) {
		if (strcmp(value, "yes") == 0)
			up->tls_verify = 1;
		else if (strcmp(value, "no") == 0)
			up->tls_verify = 0;
		else
			return "must be yes or no";
		return NULL;
	}
	for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		if (strcmp(key, times[i].key) != 0)
			continue;
		if (parse_long(value, UPSTREAM_MS_MIN, UPSTREAM_MS_MAX, &n) < 0)
			return "must be a whole number of milliseconds from 10 to 3600000";
		*(int64_t *)(void *)((char *)up + times[i].offset) = (int64_t)n * USEC_PER_MSEC;
		return NULL;
	}
	return "unknown key";
}

static const char *apply_stream_key(struct stream_settings *st, const char *key, const char *value)
{
	long n;

	if (strcmp(key, "source") == 0) {
		if (stream_set_source(st, value) < 0)
			return "unknown source (pattern:redblue, pattern:bars, dir:PATH, "
			       "raw:PATH, raw:-, mjpeg:PATH, mjpeg:-, ingest, http://URL, "
			       "https://URL, exec:COMMAND, scale:NAME or mosaic:A,B,...)";
		st->input_count = 0;
		if (config_kind_derived(st->kind))
			return stream_set_inputs(st);
	} else if (strcmp(key, "layout") == 0) {
		if (parse_size(value, DERIVED_INPUTS_MAX, &st->layout_cols, &st->layout_rows) < 0)
			return "must be COLUMNSxROWS, each 1 to 16";
	} else if (strncmp(key, "upstream_", 9) == 0 || strcmp(key, "user") == 0 ||
		   strcmp(key, "password") == 0 || strcmp(key, "header") == 0 ||
		   strcmp(key, "tls_verify") == 0) {
		return apply_upstream_key(&st->upstream, key, value);
	} else if (strcmp(key, "size") == 0) {
		/* JPEG's 4:2:0 blocks want even sides; any size up to the
		 * limit encodes, but odd ones waste a column. */
		if (parse_size(value, FRAME_SIDE_MAX, &st->width, &st->height) < 0)
			return "must be WIDTHxHEIGHT, each 1 to 8192";
	} else if (strcmp(key, "format") == 0) {
		if (encode_parse_format(value, &st->format) < 0)
			return "must be rgb24, bgr24, rgba, gray or yuyv";
		st->format_set = 1;
	} else if (strcmp(key, "token") == 0) {
		if (strlen(value) < TOKEN_MIN || strlen(value) > TOKEN_MAX)
			return "must be 16 to 128 characters";
		snprintf(st->token, sizeof(st->token), "%s", value);
	} else if (strcmp(key, "fps") == 0) {
		if (parse_decimal(value, 0.01, FPS_MAX, &st->fps) < 0)
			return "must be a number from 0.01 to 240";
	} else if (strcmp(key, "quality") == 0) {
		if (parse_long(value, 1, 100, &n) < 0)
			return "must be a whole number from 1 to 100";
		st->quality = (int)n;
	} else if (strcmp(key, "max_viewers") == 0) {
		if (parse_long(value, 1, MAX_VIEWERS_LIMIT, &n) < 0)
			return "must be a whole number from 1 to 100000";
		st->max_viewers = (int)n;
	} else if (strcmp(key, "view_secret") == 0) {
		return apply_view_secret(st->view_secret, value);
	} else {
		return "unknown key";
	}
	return NULL;
}

/* Debian's libinih keeps a section name in 50 bytes and silently cuts a
 * longer one to 49 characters.  A 49-character "stream NAME" may have been
 * cut, so names in a file stop at 41 characters; two longer names could
 * otherwise merge into one stream. */
#define CONFIG_SECTION_MAX 50

struct ini_context {
	struct settings *settings;
	const char *path;
	char error[512];  /* the first error, "FILE:LINE: ..." less the line */
	int error_line;   /* the line to name instead of inih's, 0: inih's */
	/* The file in memory, read by ini_reader_buffer one line at a time. */
	const char *text, *text_end, *next;
	int line;                   /* lines handed to inih so far */
	int section_line;           /* line of the last section header seen */
	int stream_line[STREAMS_MAX]; /* line of each stream's section header */
};

/* fgets() over the file in memory, for ini_parse_stream: at most size - 1
 * bytes, up to and including a newline.  Also notes the line of every
 * section header, which inih does not tell its handler. */
static char *ini_reader_buffer(char *str, int size, void *stream)
{
	struct ini_context *ctx = stream;
	const char *p = ctx->next, *first;
	int n = 0;

	if (p >= ctx->text_end || size < 2)
		return NULL;
	while (p < ctx->text_end && n < size - 1) {
		str[n++] = *p;
		if (*p++ == '\n')
			break;
	}
	str[n] = '\0';
	ctx->next = p;
	ctx->line++;
	for (first = str; *first == ' ' || *first == '\t'; first++)
		;
	if (*first == '[')
		ctx->section_line = ctx->line;
	return str;
}

static int on_ini_key(void *user, const char *section, const char *key, const char *value)
{
	struct ini_context *ctx = user;
	const struct option_row *row;
	const char *why = NULL;
	char what[STREAM_NAME_MAX + 64], dup[96], reason[256];

	snprintf(what, sizeof(what), "[%s] %s", section, key);
	if (strcmp(section, "server") == 0) {
		row = option_find_key(server_options, SERVER_OPTIONS, key);
		if (strcmp(key, "view_secret") == 0)
			why = apply_view_secret(ctx->settings->view_secret, value);
		else if (strcmp(key, "status_token") == 0 &&
			 (strlen(value) < TOKEN_MIN || strlen(value) > TOKEN_MAX))
			why = "must be 16 to 128 characters";
		else if (strcmp(key, "status_token") == 0)
			snprintf(ctx->settings->status_token, sizeof(ctx->settings->status_token),
				 "%s", value);
		else if (!row)
			why = "unknown key";
		else if (option_apply(row, ctx->settings, value, reason, sizeof(reason)) < 0)
			why = reason;
	} else if (strncmp(section, "stream ", 7) == 0) {
		const char *name = section + 7;
		struct stream_settings *st =
			(struct stream_settings *)config_find_stream(ctx->settings, name);
		int first_line = st ? ctx->stream_line[st - ctx->settings->streams] : 0;

		if (strlen(section) >= CONFIG_SECTION_MAX - 1) {
			why = "stream names in a config file are at most 41 characters "
			      "(longer ones would be cut by the INI reader)";
		} else if (!config_stream_name_valid(name)) {
			why = "stream name must match [A-Za-z0-9_-]{1,64}";
		} else if (st && first_line != ctx->section_line) {
			/* a second section of the same name would merge into the
			 * first one, key by key, without a word */
			snprintf(what, sizeof(what), "[%s]", section);
			snprintf(dup, sizeof(dup), "duplicate section (the first [%s] is at line %d)",
				 section, first_line);
			why = dup;
			if (!ctx->error[0])
				ctx->error_line = ctx->section_line;
		} else if (!st && !(st = stream_add(ctx->settings, name))) {
			why = "too many streams (at most 64)";
		} else {
			if (first_line == 0)
				ctx->stream_line[st - ctx->settings->streams] = ctx->section_line;
			why = apply_stream_key(st, key, value);
		}
	} else if (strcmp(section, "relay") == 0) {
		why = apply_relay_key(&ctx->settings->relay, key, value);
	} else {
		why = "unknown section (expected [server], [relay] or [stream NAME])";
	}
	if (why && !ctx->error[0])
		snprintf(ctx->error, sizeof(ctx->error), "%s: %s", what, why);
	return why == NULL;
}

/* The first read of a config file, in bytes; the buffer doubles from there. */
#define CONFIG_READ_FIRST 4096

/* Reads a whole config file into a new buffer (NUL-terminated; *len
 * without the NUL).  Only a regular file of at most CONFIG_FILE_MAX bytes:
 * a device (/dev/zero), a FIFO or a file that fails to read
 * (/proc/self/mem) is refused, never taken as empty or read forever.
 * NULL after printing why. */
static char *config_read_file(const char *path, size_t *len)
{
	char *text = NULL;
	size_t used = 0, room = 0;
	struct stat sb;
	ssize_t got;
	int fd;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "mjpeg-fcgi: %s: cannot open: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) < 0) {
		fprintf(stderr, "mjpeg-fcgi: %s: cannot stat: %s\n", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		fprintf(stderr, "mjpeg-fcgi: %s: not a regular file\n", path);
		goto fail;
	}
	/* Room grows with what arrives (the size fstat gives is only a hint:
	 * /proc files say 0); one byte more than the limit tells a file
	 * that is too large. */
	for (;;) {
		if (used == room) {
			char *bigger;

			if (room > CONFIG_FILE_MAX)
				break;
			room = room ? room * 2 : CONFIG_READ_FIRST;
			if (room > CONFIG_FILE_MAX + 1)
				room = CONFIG_FILE_MAX + 1;
			bigger = realloc(text, room + 1);
			if (!bigger) {
				fprintf(stderr, "mjpeg-fcgi: %s: out of memory\n", path);
				goto fail;
			}
			text = bigger;
		}
		got = read(fd, text + used, room - used);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			fprintf(stderr, "mjpeg-fcgi: %s: cannot read: %s\n", path, strerror(errno));
			goto fail;
		}
		if (got == 0)
			break;
		used += (size_t)got;
	}
	if (used > CONFIG_FILE_MAX) {
		fprintf(stderr, "mjpeg-fcgi: %s: larger than %d bytes, the limit of a config file\n",
			path, CONFIG_FILE_MAX);
		goto fail;
	}
	close(fd);
	text[used] = '\0';
	*len = used;
	return text;
fail:
	free(text);
	close(fd);
	return NULL;
}

/* What is wrong with a stream's derived keys on their own (NULL: nothing);
 * fills a mosaic's default layout: the smallest near-square grid, columns
 * first (3 inputs: 2x2, 5: 3x2). */
static const char *derived_refusal(struct stream_settings *st)
{
	uint32_t n = (uint32_t)st->input_count;

	if (!config_kind_derived(st->kind))
		return st->layout_cols ? "layout is for mosaic: sources" : NULL;
	if (!st->width)
		return "a scale: or mosaic: source needs size = WIDTHxHEIGHT";
	if (st->width > DERIVED_SIDE_MAX || st->height > DERIVED_SIDE_MAX)
		return "a derived stream's size is at most 4096x4096";
	if (st->kind == SOURCE_SCALE)
		return st->layout_cols ? "layout is for mosaic: sources" : NULL;
	if (!st->layout_cols) {
		st->layout_cols = 1;
		while (st->layout_cols * st->layout_cols < n)
			st->layout_cols++;
		st->layout_rows = (n + st->layout_cols - 1) / st->layout_cols;
	}
	if (st->layout_cols * st->layout_rows < n)
		return "layout has fewer tiles than the mosaic has inputs";
	if (st->width / st->layout_cols < MOSAIC_TILE_MIN ||
	    st->height / st->layout_rows < MOSAIC_TILE_MIN)
		return "size is too small for the layout: tiles must be at least 16x16";
	return NULL;
}

/* Colours of the depth-first search for cycles among derived streams. */
enum { DERIVED_UNSEEN, DERIVED_ON_PATH, DERIVED_DONE };

/* Follows the inputs of stream i; on a cycle prints it ("a -> b -> a")
 * and returns -1.  path holds the indexes from the search's root to i. */
static int derived_walk(const struct settings *settings, size_t i, unsigned char *colour,
			size_t *path, size_t depth, const char *file)
{
	const struct stream_settings *st = &settings->streams[i];
	int k;

	colour[i] = DERIVED_ON_PATH;
	path[depth] = i;
	for (k = 0; k < st->input_count; k++) {
		const struct stream_settings *in = config_find_stream(settings, st->inputs[k]);
		size_t j = (size_t)(in - settings->streams), d;

		if (colour[j] == DERIVED_ON_PATH) {
			char cycle[STREAMS_MAX * (STREAM_NAME_MAX + 4) + 1];
			size_t used = 0;

			for (d = 0; d <= depth && path[d] != j; d++)
				;
			for (; d <= depth; d++)
				used += (size_t)snprintf(cycle + used, sizeof(cycle) - used, "%s -> ",
							 settings->streams[path[d]].name);
			snprintf(cycle + used, sizeof(cycle) - used, "%s", in->name);
			fprintf(stderr, "mjpeg-fcgi: %s: [stream %s]: derived streams in a cycle: %s\n",
				file, st->name, cycle);
			return -1;
		}
		if (colour[j] == DERIVED_UNSEEN &&
		    derived_walk(settings, j, colour, path, depth + 1, file) < 0)
			return -1;
	}
	colour[i] = DERIVED_DONE;
	return 0;
}

/* Every input of a derived stream must be another configured stream, and
 * no stream may be made, through any chain, from itself.  Then the fps
 * of a scale: stream without one is its input's (settled along chains).
 * -1 after printing what is wrong. */
static int config_check_derived(struct settings *settings, const char *file)
{
	unsigned char colour[STREAMS_MAX] = { 0 };
	size_t path[STREAMS_MAX], i, pass;
	int k;

	for (i = 0; i < settings->stream_count; i++) {
		const struct stream_settings *st = &settings->streams[i];

		for (k = 0; k < st->input_count; k++) {
			const char *why = NULL;

			const struct stream_settings *in = config_find_stream(settings, st->inputs[k]);

			if (strcmp(st->inputs[k], st->name) == 0)
				why = "is made from itself";
			else if (!in)
				why = "has an unknown input";
			/* a public copy would show a private stream to anyone */
			else if (in->view_secret[0] && !st->view_secret[0] &&
				 !settings->view_secret[0])
				why = "is public but made from a private stream (give it a "
				      "view_secret)";
			if (why) {
				fprintf(stderr, "mjpeg-fcgi: %s: [stream %s]: %s: %s\n", file,
					st->name, why, st->inputs[k]);
				return -1;
			}
		}
	}
	for (i = 0; i < settings->stream_count; i++)
		if (colour[i] == DERIVED_UNSEEN &&
		    derived_walk(settings, i, colour, path, 0, file) < 0)
			return -1;
	/* A chain of n scale: streams settles in n passes. */
	for (pass = 0; pass < settings->stream_count; pass++) {
		for (i = 0; i < settings->stream_count; i++) {
			struct stream_settings *st = &settings->streams[i];
			const struct stream_settings *in;

			if (st->fps > 0 || !config_kind_derived(st->kind))
				continue;
			if (st->kind == SOURCE_MOSAIC) {
				st->fps = MOSAIC_FPS_DEFAULT;
				continue;
			}
			in = config_find_stream(settings, st->inputs[0]);
			if (in->fps > 0)
				st->fps = in->fps;
		}
	}
	return 0;
}

int config_load_file(struct settings *settings, const char *path)
{
	struct ini_context *ctx;
	size_t i, len;
	int line, rc = -1;
	char *text = config_read_file(path, &len);

	if (!text)
		return -1;
	/* a few KiB of line numbers and messages: not on a worker's stack */
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		fprintf(stderr, "mjpeg-fcgi: %s: out of memory\n", path);
		goto out;
	}
	ctx->settings = settings;
	ctx->path = path;
	ctx->text = ctx->next = text;
	ctx->text_end = text + len;
	line = ini_parse_stream(ini_reader_buffer, ctx, on_ini_key, ctx);
	if (line != 0) {
		fprintf(stderr, "mjpeg-fcgi: %s:%d: %s\n", path,
			ctx->error_line ? ctx->error_line : line,
			ctx->error[0] ? ctx->error : "syntax error");
		goto out;
	}
	for (i = 0; i < settings->stream_count; i++) {
		struct stream_settings *st = &settings->streams[i];

		char exec_why[160];
		const char *why = NULL;

		if (!st->source[0])
			why = "no source";
		else if (st->kind == SOURCE_RAW && !st->width)
			why = "a raw source needs size = WIDTHxHEIGHT";
		else if (st->kind == SOURCE_EXEC && st->format_set && !st->width)
			why = "an exec: source with a format reads raw frames: it needs size = WIDTHxHEIGHT";
		else if (st->kind == SOURCE_EXEC && (why = exec_refusal(st->path, exec_why,
									sizeof(exec_why))) != NULL)
			;
		else if ((st->kind == SOURCE_RAW || (st->kind == SOURCE_EXEC && st->format_set)) &&
			 st->format == PIXEL_YUYV && st->width % 2)
			why = "yuyv needs an even width";
		else if (st->kind == SOURCE_INGEST && !st->token[0])
			why = "an ingest stream needs a token (16 to 128 characters)";
		else if (st->kind == SOURCE_HTTP && (why = url_refusal(st->path)) != NULL)
			;
		else if (st->kind != SOURCE_HTTP &&
			 (st->upstream.user[0] || st->upstream.password[0] ||
			  st->upstream.header_count || !st->upstream.tls_verify))
			why = "user, password, header and tls_verify are for http: and https: sources";
		else if (st->upstream.password[0] && !st->upstream.user[0])
			why = "a password needs a user";
		else if (st->upstream.retry_min_usec > st->upstream.retry_max_usec)
			why = "upstream_retry_min_ms is above upstream_retry_max_ms";
		else
			why = derived_refusal(st);
		if (why) {
			fprintf(stderr, "mjpeg-fcgi: %s: [stream %s]: %s\n", path, st->name, why);
			goto out;
		}
		stream_fill_defaults(st);
	}
	if (config_check_derived(settings, path) < 0)
		goto out;
	if (settings->relay.origin[0]) {
		const struct upstream_settings *up = &settings->relay.upstream;
		const char *why = url_refusal(settings->relay.origin);

		if (!why && up->password[0] && !up->user[0])
			why = "a password needs a user";
		else if (!why && up->retry_min_usec > up->retry_max_usec)
			why = "upstream_retry_min_ms is above upstream_retry_max_ms";
		if (why) {
			fprintf(stderr, "mjpeg-fcgi: %s: [relay]: %s\n", path, why);
			goto out;
		}
	} else if (settings->relay.upstream.user[0] || settings->relay.upstream.header_count) {
		fprintf(stderr, "mjpeg-fcgi: %s: [relay]: the section needs origin = URL\n", path);
		goto out;
	}
	snprintf(settings->config_path, sizeof(settings->config_path), "%s", path);
	rc = 0;
out:
	free(ctx);
	free(text);
	return rc;
}

void config_usage(const char *argv0)
{
	printf("Usage: %s [OPTION]...\n"
	       "Serve live JPEG frames as multipart/x-mixed-replace (MJPEG) streams over FastCGI\n"
	       "(or as a plain CGI program).\n\n",
	       argv0);
	option_print_help(stdout, server_options, SERVER_OPTIONS);
	printf("\n"
	       "Every option but --config, --help and --version is also a key of the config\n"
	       "file's [server] section, with '_' for '-' (max_viewers = 100); the command\n"
	       "line wins over the file.  Two [server] keys are the file's only (secrets\n"
	       "do not belong on a command line): view_secret = S (%d to %d characters),\n"
	       "the viewing secret of every stream without its own, and status_token = T\n"
	       "(%d to %d characters), which /status and /metrics need (Authorization:\n"
	       "Bearer T) to show private streams.  A [stream NAME] section (NAME of\n"
	       "[A-Za-z0-9_-], at most 41 characters) takes:\n"
	       "  source = SOURCE        where frames come from (required):\n"
	       "    pattern:redblue      solid red and solid blue, alternating every second\n"
	       "    pattern:bars         moving colour bars; every frame differs\n"
	       "    dir:PATH             the .jpg/.jpeg files of a directory, looped at fps\n"
	       "    raw:PATH, raw:-      raw frames of size and format from a FIFO, a file,\n"
	       "                         a device or standard input, encoded here\n"
	       "    mjpeg:PATH, mjpeg:-  concatenated JPEGs from the same inputs, passed on\n"
	       "    ingest               frames POSTed to ingest/NAME\n"
	       "    http://URL, https://URL  a camera or server relayed while watched: MJPEG\n"
	       "                         in any multipart layout, or a JPEG URL polled at fps\n"
	       "    exec:COMMAND ARGS    a command's standard output (MJPEG, or raw frames\n"
	       "                         with format and size), run while watched\n"
	       "    scale:NAME           stream NAME's frames at size (required); fps\n"
	       "                         defaults to NAME's\n"
	       "    mosaic:A,B,...       up to %d streams in a grid of tiles, at size\n"
	       "                         (required) and fps (default %d)\n"
	       "  size = WxH             picture size, 1 to %d each (default 640x480;\n"
	       "                         pattern:redblue 256x256)\n"
	       "  fps = N                frames per second, 0.01 to %g (default 30;\n"
	       "                         pattern:redblue 1)\n"
	       "  quality = N            JPEG quality, 1 to 100 (default %d)\n"
	       "  format = F             raw pixels: rgb24, bgr24, rgba, gray or yuyv\n"
	       "  token = T              an ingest stream's secret, %d to %d characters\n"
	       "  max_viewers = N        viewers of this stream over all processes\n"
	       "  view_secret = S        a private stream: only signed links open it (see\n"
	       "                         mjpeg-fcgi sign), %d to %d characters\n"
	       "  user = U               http: Basic or Digest user name\n"
	       "  password = P           http: its password (never shown)\n"
	       "  header = Name: value   http: a request header, up to %d (never shown)\n"
	       "  tls_verify = yes|no    https: check the certificate (default yes)\n"
	       "  upstream_connect_ms = N     http: connect time-out (default %d)\n"
	       "  upstream_stall_ms = N       no byte for this long: reconnect or restart\n"
	       "                              (default %d)\n"
	       "  upstream_retry_min_ms = N   first wait after a failure (default %d) ...\n"
	       "  upstream_retry_max_ms = N   ... doubling up to this (default %d)\n"
	       "  upstream_stop_grace_ms = N  exec: SIGTERM to SIGKILL (default %d)\n"
	       "  (each upstream_*_ms from %d to %d)\n"
	       "  layout = CxR           mosaic: columns and rows, 1 to %d each (default:\n"
	       "                         the smallest near-square grid)\n"
	       "A [relay] section makes this server an edge of another mjpeg-fcgi, the\n"
	       "origin: every stream the origin's status lists is relayed under its own name.\n"
	       "  origin = URL           http(s)://HOST[:PORT][/MOUNT] of the origin\n"
	       "  refresh_s = N          read the origin's stream list every N s, 1 to %d\n"
	       "                         (default %d); a change reloads as SIGHUP does\n"
	       "  user, password, header, tls_verify, upstream_connect_ms, upstream_stall_ms,\n"
	       "  upstream_retry_min_ms, upstream_retry_max_ms: as above, for every stream\n"
	       "With no [stream] or [relay] section two streams exist: demo (pattern:redblue,\n"
	       "256x256, 1 fps) and bars (pattern:bars, 640x480, 30 fps).\n"
	       "\n"
	       "Endpoints, below the mount point, exactly these paths (any other is 404):\n"
	       "  GET stream/NAME        the live stream; ?fps=N: at most N new frames a\n"
	       "                         second (0.01 to %g); ?frames=N: end after N parts\n"
	       "                         a private stream also needs ?exp=E&sig=S[&ip=A]\n"
	       "  GET snapshot/NAME      the newest frame, image/jpeg (the same query)\n"
	       "  POST ingest/NAME       publish one frame to an ingest stream (Authorization:\n"
	       "                         Bearer TOKEN): a JPEG, or raw pixels with\n"
	       "                         ?format=F&width=W&height=H\n"
	       "  GET status             JSON: version, uptime, limits, every stream's counters\n"
	       "  GET metrics            the same counters in Prometheus text format\n"
	       "\n"
	       "Signals: SIGTERM or SIGINT ends every stream with its closing boundary and\n"
	       "exits; SIGHUP reads the config again.\n"
	       "\n"
	       "%s sign --config FILE NAME [--ttl SECONDS] [--ip ADDR] prints a signed\n"
	       "link to stream NAME: stream/NAME?exp=E&sig=S, valid for SECONDS (default\n"
	       "%d, at most %lld), from address ADDR only when given.\n",
	       SIGN_SECRET_MIN, SIGN_SECRET_MAX, TOKEN_MIN, TOKEN_MAX, DERIVED_INPUTS_MAX,
	       MOSAIC_FPS_DEFAULT, FRAME_SIDE_MAX, FPS_MAX, ENCODE_QUALITY_DEFAULT, TOKEN_MIN,
	       TOKEN_MAX, SIGN_SECRET_MIN, SIGN_SECRET_MAX, UPSTREAM_HEADERS_MAX,
	       UPSTREAM_CONNECT_MS_DEFAULT, UPSTREAM_STALL_MS_DEFAULT, UPSTREAM_RETRY_MIN_MS_DEFAULT,
	       UPSTREAM_RETRY_MAX_MS_DEFAULT, UPSTREAM_STOP_GRACE_MS_DEFAULT, UPSTREAM_MS_MIN,
	       UPSTREAM_MS_MAX, DERIVED_INPUTS_MAX, RELAY_REFRESH_S_MAX, RELAY_REFRESH_S_DEFAULT,
	       FPS_MAX, argv0, SIGN_TTL_DEFAULT, (long long)SIGN_TTL_MAX);
}

/* The row of an option getopt_long answered, or NULL for '?' (an unknown
 * option or a missing argument, reported by getopt). */
static const struct option_row *answered_row(int opt)
{
	if (opt < OPTION_GETOPT_BASE || opt >= OPTION_GETOPT_BASE + (int)SERVER_OPTIONS)
		return NULL;
	return &server_options[opt - OPTION_GETOPT_BASE];
}

int config_from_args(struct settings *settings, int argc, char **argv)
{
	struct option long_options[SERVER_OPTIONS + 1];
	const struct option_row *row;
	const char *config_file = NULL;
	char why[256];
	int opt;

	config_defaults(settings);
	option_getopt_table(server_options, SERVER_OPTIONS, long_options);

	/* First pass: only --config, --help and --version, so that the file
	 * loads before the options that override it. */
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		row = answered_row(opt);
		if (!row || row->kind != OPTION_COMMAND)
			continue;
		if (strcmp(row->name, "config") == 0) {
			config_file = optarg;
		} else if (strcmp(row->name, "help") == 0) {
			config_usage(argv[0]);
			return 1;
		} else if (strcmp(row->name, "version") == 0) {
			printf("mjpeg-fcgi %s\n", MJPEG_FCGI_VERSION);
			return 1;
		}
	}
	if (config_file && config_load_file(settings, config_file) < 0)
		return -1;

	opterr = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		row = answered_row(opt);
		if (!row) {
			fprintf(stderr, "Try '%s --help'.\n", argv[0]);
			return -1;
		}
		if (row->kind == OPTION_COMMAND)
			continue;
		if (option_apply(row, settings, optarg, why, sizeof(why)) < 0) {
			fprintf(stderr, "mjpeg-fcgi: --%s %s: %s\n", row->name, optarg, why);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mjpeg-fcgi: unexpected argument '%s'; try '%s --help'.\n",
			argv[optind], argv[0]);
		return -1;
	}
	config_add_default_streams(settings);
	return 0;
}
