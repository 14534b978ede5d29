#include "config.h"

#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void config_defaults(struct settings *settings)
{
	memset(settings, 0, sizeof(*settings));
	snprintf(settings->bus_dir, sizeof(settings->bus_dir), "%s", BUS_DIR_DEFAULT);
	snprintf(settings->mount, sizeof(settings->mount), "/");
	settings->max_viewers = MAX_VIEWERS_DEFAULT;
	settings->workers = 1;
	settings->repeat_usec = REPEAT_MS_DEFAULT * 1000LL;
	settings->keepalive_usec = KEEPALIVE_MS_DEFAULT * 1000LL;
	settings->idle_usec = IDLE_SEC_DEFAULT * 1000000LL;
	settings->first_frame_usec = FIRST_FRAME_MS_DEFAULT * 1000LL;
	settings->stall_usec = STALL_MS_DEFAULT * 1000LL;
	settings->ingest_usec = INGEST_MS_DEFAULT * 1000LL;
	settings->request_usec = REQUEST_MS_DEFAULT * 1000LL;
	settings->frame_bytes_max = FRAME_BYTES_MAX_DEFAULT;
	settings->log_level = 2;
}

static int parse_size(const char *text, uint32_t *width, uint32_t *height)
{
	char w[16], *x = strchr(text, 'x');
	long wv, hv;

	if (!x || (size_t)(x - text) >= sizeof(w))
		return -1;
	memcpy(w, text, (size_t)(x - text));
	w[x - text] = '\0';
	/* JPEG's 4:2:0 blocks want even sides; any size up to the limit
	 * encodes, but odd ones waste a column. */
	if (http_parse_long(w, 1, FRAME_SIDE_MAX, &wv) < 0 ||
	    http_parse_long(x + 1, 1, FRAME_SIDE_MAX, &hv) < 0)
		return -1;
	*width = (uint32_t)wv;
	*height = (uint32_t)hv;
	return 0;
}

/* Sets kind and path from a source key.  -1 for an unknown source. */
static int stream_set_source(struct stream_settings *st, const char *source)
{
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
	};
	size_t i, n;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		n = strlen(kinds[i].prefix);
		if (kinds[i].takes_path ? strncmp(source, kinds[i].prefix, n) != 0 || !source[n]
					: strcmp(source, kinds[i].prefix) != 0)
			continue;
		if (kinds[i].takes_path &&
		    snprintf(st->path, sizeof(st->path), "%s", source + n) >= (int)sizeof(st->path))
			return -1;
		st->kind = kinds[i].kind;
		snprintf(st->source, sizeof(st->source), "%s", source);
		return 0;
	}
	return -1;
}

/* Fills what the user left out: the demo's own size and rate for redblue,
 * 640x480 at 30 fps for the rest.  A raw stream must say its size. */
static void stream_fill_defaults(struct stream_settings *st)
{
	int redblue = st->kind == SOURCE_PATTERN_REDBLUE;

	if (!st->width) {
		st->width = redblue ? 256 : 640;
		st->height = redblue ? 256 : 480;
	}
	if (st->fps <= 0)
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

void config_add_default_streams(struct settings *settings)
{
	struct stream_settings *st;

	if (settings->stream_count)
		return;
	st = stream_add(settings, "demo");
	if (stream_set_source(st, "pattern:redblue") == 0)
		stream_fill_defaults(st);
	st = stream_add(settings, "bars");
	if (stream_set_source(st, "pattern:bars") == 0)
		stream_fill_defaults(st);
}

/* Server-wide keys, shared by the [server] section and the command line:
 * returns NULL when applied, else the reason. */
static const char *apply_server_key(struct settings *s, const char *key, const char *value)
{
	long n;

	if (strcmp(key, "listen") == 0) {
		if (snprintf(s->listen, sizeof(s->listen), "%s", value) >= (int)sizeof(s->listen))
			return "too long";
	} else if (strcmp(key, "bus_dir") == 0) {
		if (!*value || snprintf(s->bus_dir, sizeof(s->bus_dir), "%s", value) >=
				       (int)sizeof(s->bus_dir))
			return "empty or too long";
	} else if (strcmp(key, "mount") == 0) {
		if (!http_mount_valid(value))
			return "must be a URL path that begins and ends with '/', without "
			       "'//', '.' or '..' segments, of at most 255 bytes of "
			       "[A-Za-z0-9._~-] and '/' (e.g. / or /cams/)";
		snprintf(s->mount, sizeof(s->mount), "%s", value);
	} else if (strcmp(key, "pid_file") == 0) {
		if (snprintf(s->pid_file, sizeof(s->pid_file), "%s", value) >=
		    (int)sizeof(s->pid_file))
			return "too long";
	} else if (strcmp(key, "max_viewers") == 0) {
		if (http_parse_long(value, 1, MAX_VIEWERS_LIMIT, &n) < 0)
			return "must be a whole number from 1 to 100000";
		s->max_viewers = (int)n;
	} else if (strcmp(key, "workers") == 0) {
		if (http_parse_long(value, 1, 64, &n) < 0)
			return "must be a whole number from 1 to 64";
		s->workers = (int)n;
	} else if (strcmp(key, "repeat_ms") == 0) {
		if (http_parse_long(value, 20, 10000, &n) < 0)
			return "must be a whole number of milliseconds from 20 to 10000";
		s->repeat_usec = n * 1000;
	} else if (strcmp(key, "keepalive_ms") == 0) {
		if (http_parse_long(value, 100, 60000, &n) < 0)
			return "must be a whole number of milliseconds from 100 to 60000";
		s->keepalive_usec = n * 1000;
	} else if (strcmp(key, "idle_pause_s") == 0) {
		if (http_parse_long(value, 1, 86400, &n) < 0)
			return "must be a whole number of seconds from 1 to 86400";
		s->idle_usec = n * 1000000;
	} else if (strcmp(key, "first_frame_ms") == 0) {
		if (http_parse_long(value, 0, 60000, &n) < 0)
			return "must be a whole number of milliseconds from 0 to 60000";
		s->first_frame_usec = n * 1000;
	} else if (strcmp(key, "stall_ms") == 0) {
		if (http_parse_long(value, 100, 3600000, &n) < 0)
			return "must be a whole number of milliseconds from 100 to 3600000";
		s->stall_usec = n * 1000;
	} else if (strcmp(key, "ingest_ms") == 0) {
		if (http_parse_long(value, 100, 3600000, &n) < 0)
			return "must be a whole number of milliseconds from 100 to 3600000";
		s->ingest_usec = n * 1000;
	} else if (strcmp(key, "request_ms") == 0) {
		if (http_parse_long(value, 100, 600000, &n) < 0)
			return "must be a whole number of milliseconds from 100 to 600000";
		s->request_usec = n * 1000;
	} else if (strcmp(key, "frame_bytes_max") == 0) {
		if (http_parse_long(value, 1024, FRAME_BYTES_MAX_LIMIT, &n) < 0)
			return "must be a whole number of bytes from 1024 to 67108864";
		s->frame_bytes_max = (size_t)n;
	} else if (strcmp(key, "log_level") == 0) {
		if (strcmp(value, "error") == 0)
			s->log_level = 0;
		else if (strcmp(value, "warn") == 0)
			s->log_level = 1;
		else if (strcmp(value, "info") == 0)
			s->log_level = 2;
		else if (strcmp(value, "debug") == 0)
			s->log_level = 3;
		else
			return "must be error, warn, info or debug";
	} else {
		return "unknown key";
	}
	return NULL;
}

static const char *apply_stream_key(struct stream_settings *st, const char *key, const char *value)
{
	long n;

	if (strcmp(key, "source") == 0) {
		if (stream_set_source(st, value) < 0)
			return "unknown source (pattern:redblue, pattern:bars, dir:PATH, "
			       "raw:PATH, raw:-, mjpeg:PATH, mjpeg:- or ingest)";
	} else if (strcmp(key, "size") == 0) {
		if (parse_size(value, &st->width, &st->height) < 0)
			return "must be WIDTHxHEIGHT, each 1 to 8192";
	} else if (strcmp(key, "format") == 0) {
		if (encode_parse_format(value, &st->format) < 0)
			return "must be rgb24, bgr24, rgba, gray or yuyv";
	} else if (strcmp(key, "token") == 0) {
		if (strlen(value) < 16 || strlen(value) > TOKEN_MAX)
			return "must be 16 to 128 characters";
		snprintf(st->token, sizeof(st->token), "%s", value);
	} else if (strcmp(key, "fps") == 0) {
		if (http_parse_decimal(value, 0.01, FPS_MAX, &st->fps) < 0)
			return "must be a number from 0.01 to 240";
	} else if (strcmp(key, "quality") == 0) {
		if (http_parse_long(value, 1, 100, &n) < 0)
			return "must be a whole number from 1 to 100";
		st->quality = (int)n;
	} else if (strcmp(key, "max_viewers") == 0) {
		if (http_parse_long(value, 1, MAX_VIEWERS_LIMIT, &n) < 0)
			return "must be a whole number from 1 to 100000";
		st->max_viewers = (int)n;
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
	const char *why = NULL;
	char what[STREAM_NAME_MAX + 64], dup[96];

	snprintf(what, sizeof(what), "[%s] %s", section, key);
	if (strcmp(section, "server") == 0) {
		why = apply_server_key(ctx->settings, key, value);
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
	} else {
		why = "unknown section (expected [server] or [stream NAME])";
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

		const char *why = NULL;

		if (!st->source[0])
			why = "no source";
		else if (st->kind == SOURCE_RAW && !st->width)
			why = "a raw source needs size = WIDTHxHEIGHT";
		else if (st->kind == SOURCE_RAW && st->format == PIXEL_YUYV && st->width % 2)
			why = "yuyv needs an even width";
		else if (st->kind == SOURCE_INGEST && !st->token[0])
			why = "an ingest stream needs a token (16 to 128 characters)";
		if (why) {
			fprintf(stderr, "mjpeg-fcgi: %s: [stream %s]: %s\n", path, st->name, why);
			goto out;
		}
		stream_fill_defaults(st);
	}
	snprintf(settings->config_path, sizeof(settings->config_path), "%s", path);
	rc = 0;
out:
	free(ctx);
	free(text);
	return rc;
}

static const struct option long_options[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "bus-dir", required_argument, NULL, 'b' },
	{ "config", required_argument, NULL, 'c' },
	{ "pid-file", required_argument, NULL, 'p' },
	{ "mount", required_argument, NULL, 'M' },
	{ "max-viewers", required_argument, NULL, 'm' },
	{ "workers", required_argument, NULL, 'w' },
	{ "repeat-ms", required_argument, NULL, 'r' },
	{ "keepalive-ms", required_argument, NULL, 'k' },
	{ "idle-pause-s", required_argument, NULL, 'i' },
	{ "first-frame-ms", required_argument, NULL, 'f' },
	{ "frame-bytes-max", required_argument, NULL, 'F' },
	{ "stall-ms", required_argument, NULL, 's' },
	{ "ingest-ms", required_argument, NULL, 'I' },
	{ "request-ms", required_argument, NULL, 'R' },
	{ "log-level", required_argument, NULL, 'L' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

void config_usage(const char *argv0)
{
	printf("Usage: %s [OPTION]...\n"
	       "Serve live JPEG frames as multipart/x-mixed-replace (MJPEG) streams over FastCGI.\n"
	       "\n"
	       "  --listen ADDR          unix:/path/to.sock or HOST:PORT to listen on; default: the\n"
	       "                         FastCGI socket on fd 0 (spawn-fcgi, lighttpd bin-path)\n"
	       "  --config FILE          INI file with [server] and [stream NAME] sections\n"
	       "  --bus-dir DIR          directory of the shared-memory stream files\n"
	       "                         (default %s)\n"
	       "  --pid-file FILE        write the process id here\n"
	       "  --mount PATH           FastCGI: the URL path the responder answers below\n"
	       "                         (default /; e.g. /cams/ for /cams/stream/NAME);\n"
	       "                         plain CGI answers below the script's own URL\n"
	       "  --max-viewers N        viewers per process over all streams (default %d);\n"
	       "                         above it a viewer gets 503 with Retry-After\n"
	       "  --workers N            responder processes sharing the socket and every\n"
	       "                         stream's producer (default 1, at most 64)\n"
	       "  --repeat-ms N          resend a frame no newer one followed within N ms,\n"
	       "                         so browsers show it at once (default %d)\n"
	       "  --keepalive-ms N       resend the newest frame at least every N ms (default %d)\n"
	       "  --idle-pause-s N       pause a producer after N s without viewers (default %d)\n"
	       "  --first-frame-ms N     how long a snapshot waits for a first frame (default %d)\n"
	       "  --frame-bytes-max N    largest JPEG frame in bytes (default %u)\n"
	       "  --stall-ms N           drop a viewer that takes no bytes for N ms (default %d)\n"
	       "  --ingest-ms N          a request body must arrive whole within N ms, else\n"
	       "                         408 (default %d)\n"
	       "  --request-ms N         a request's head (FastCGI params) must arrive within\n"
	       "                         N ms, and an idle kept connection is closed after\n"
	       "                         N ms (default %d)\n"
	       "  --log-level LEVEL      error, warn, info or debug (default info)\n"
	       "  --help                 this text\n"
	       "  --version              the version\n"
	       "\n"
	       "Every option is also a key of the config file's [server] section, with '_'\n"
	       "for '-' (max_viewers = 100); the command line wins.  With no [stream] section\n"
	       "two streams exist: demo (pattern:redblue, 256x256, 1 fps) and bars\n"
	       "(pattern:bars, 640x480, 30 fps).  A [stream NAME] section takes source\n"
	       "(pattern:redblue, pattern:bars), size (WxH), fps, quality and max_viewers.\n"
	       "\n"
	       "Endpoints, below the mount point, exactly these paths: GET stream/NAME\n"
	       "[?fps=N&frames=N], GET snapshot/NAME, POST ingest/NAME, GET status,\n"
	       "GET metrics; any other path is 404.\n",
	       argv0, BUS_DIR_DEFAULT, MAX_VIEWERS_DEFAULT, REPEAT_MS_DEFAULT,
	       KEEPALIVE_MS_DEFAULT, IDLE_SEC_DEFAULT, FIRST_FRAME_MS_DEFAULT,
	       FRAME_BYTES_MAX_DEFAULT, STALL_MS_DEFAULT, INGEST_MS_DEFAULT, REQUEST_MS_DEFAULT);
}

int config_from_args(struct settings *settings, int argc, char **argv)
{
	const char *config_file = NULL;
	int opt, i;

	config_defaults(settings);

	/* First pass: only --config, --help and --version, so that the file
	 * loads before the options that override it. */
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		if (opt == 'c') {
			config_file = optarg;
		} else if (opt == 'h') {
			config_usage(argv[0]);
			return 1;
		} else if (opt == 'V') {
			printf("mjpeg-fcgi %s\n", MJPEG_FCGI_VERSION);
			return 1;
		}
	}
	if (config_file && config_load_file(settings, config_file) < 0)
		return -1;

	opterr = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", long_options, &i)) != -1) {
		char key[32];
		const char *why;
		size_t k;

		if (opt == '?') {
			fprintf(stderr, "Try '%s --help'.\n", argv[0]);
			return -1;
		}
		if (opt == 'c' || opt == 'h' || opt == 'V')
			continue;
		/* --max-viewers is the [server] key max_viewers, and so on */
		for (i = 0; long_options[i].val != opt; i++)
			;
		snprintf(key, sizeof(key), "%s", long_options[i].name);
		for (k = 0; key[k]; k++)
			if (key[k] == '-')
				key[k] = '_';
		why = apply_server_key(settings, key, optarg);
		if (why) {
			fprintf(stderr, "mjpeg-fcgi: --%s %s: %s\n", long_options[i].name, optarg,
				why);
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
