/* Fuzzes the INI config loader (fcgi/config.c, through inih): the input is
 * written to a memfd and loaded with config_load_file over fresh defaults.
 * What loads must be within the documented ranges.  A broken invariant traps
 * (__builtin_trap), which libFuzzer reports as a crash.
 *
 * config_load_file prints every error to stderr; the harness points stdio's
 * stderr at /dev/null (file descriptor 2 stays, so sanitizer and libFuzzer
 * reports still show).  FUZZ_CONFIG_STDERR=1 keeps the messages. */
#include "cmdline.h"
#include "config.h"
#include "fuzz.h"
#include "supervisor.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#define TOKEN_MIN 16

static int config_fd = -1;
static char config_path[64];
/* Big (64 streams of paths): static, not on the stack. */
static struct settings settings;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *keep = getenv("FUZZ_CONFIG_STDERR");
	FILE *devnull;

	(void)argc;
	(void)argv;
	config_fd = memfd_create("fuzz_config.ini", MFD_CLOEXEC);
	if (config_fd < 0) {
		perror("fuzz_config: memfd_create");
		abort();
	}
	snprintf(config_path, sizeof(config_path), "/proc/self/fd/%d", config_fd);
	if (!(keep && *keep == '1') && (devnull = fopen("/dev/null", "w")))
		stderr = devnull;
	return 0;
}

static int terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static void check_stream(const struct stream_settings *st)
{
	size_t token_bytes, secret_bytes;

	CHECK(terminated(st->name, sizeof(st->name)));
	CHECK(config_stream_name_valid(st->name));
	CHECK(terminated(st->source, sizeof(st->source)) && st->source[0]);
	CHECK(terminated(st->path, sizeof(st->path)));
	CHECK(terminated(st->token, sizeof(st->token)));
	CHECK(terminated(st->view_secret, sizeof(st->view_secret)));
	CHECK((unsigned)st->kind <= SOURCE_EXEC);
	CHECK((unsigned)st->format <= PIXEL_YUYV);
	CHECK(st->width >= 1 && st->width <= FRAME_SIDE_MAX);
	CHECK(st->height >= 1 && st->height <= FRAME_SIDE_MAX);
	CHECK(st->fps >= 0.01 && st->fps <= FPS_MAX);
	CHECK(st->quality >= 1 && st->quality <= 100);
	CHECK(st->max_viewers >= 0 && st->max_viewers <= MAX_VIEWERS_LIMIT);
	token_bytes = strlen(st->token);
	CHECK(token_bytes == 0 || (token_bytes >= TOKEN_MIN && token_bytes <= TOKEN_MAX));
	secret_bytes = strlen(st->view_secret);
	CHECK(secret_bytes == 0 ||
	      (secret_bytes >= SIGN_SECRET_MIN && secret_bytes <= SIGN_SECRET_MAX));
	switch (st->kind) {
	case SOURCE_PATTERN_REDBLUE:
		CHECK(strcmp(st->source, "pattern:redblue") == 0);
		break;
	case SOURCE_PATTERN_BARS:
		CHECK(strcmp(st->source, "pattern:bars") == 0);
		break;
	case SOURCE_HTTP:
		/* the whole URL, scheme and all */
		CHECK(strcmp(st->source, st->path) == 0);
		CHECK(strncmp(st->path, "http://", 7) == 0 || strncmp(st->path, "https://", 8) == 0);
		break;
	case SOURCE_DIR:
	case SOURCE_RAW:
	case SOURCE_MJPEG:
	case SOURCE_EXEC:
		/* "dir:", "raw:", "mjpeg:" or "exec:" and then the path, not empty */
		CHECK(st->path[0]);
		CHECK(strlen(st->source) > strlen(st->path));
		CHECK(strcmp(st->source + strlen(st->source) - strlen(st->path), st->path) == 0);
		if (st->kind == SOURCE_RAW && st->format == PIXEL_YUYV)
			CHECK(st->width % 2 == 0);
		break;
	case SOURCE_INGEST:
		CHECK(strcmp(st->source, "ingest") == 0);
		CHECK(token_bytes >= TOKEN_MIN);
		break;
	case SOURCE_HTTP:
		/* the URL as written; what is shown may hide its user part */
		CHECK(strncasecmp(st->path, "http", 4) == 0);
		CHECK(strncasecmp(st->source, "http", 4) == 0);
		break;
	case SOURCE_EXEC: {
		/* accepted: the command line splits into at least one word */
		struct cmdline cl;
		char why[128];

		CHECK(strncmp(st->source, "exec:", 5) == 0);
		CHECK(strcmp(st->source + 5, st->path) == 0);
		CHECK(cmdline_split(st->path, 0, &cl, why, sizeof(why)) == 0 && cl.argc >= 1);
		cmdline_free(&cl);
		if (st->format_set)
			CHECK(st->format != PIXEL_YUYV || st->width % 2 == 0);
		break;
	}
	}
}

/* A stream's name is its section's, as written: "[stream NAME]" is in the
 * file (inih takes the text between the brackets verbatim). */
static int section_in_input(const char *name, const uint8_t *data, size_t size)
{
	char section[STREAM_NAME_MAX + 16];
	int n = snprintf(section, sizeof(section), "[stream %s]", name);

	return n > 0 && (size_t)n < sizeof(section) && memmem(data, size, section, (size_t)n);
}

static void check_settings(const struct settings *s, const uint8_t *data, size_t size)
{
	size_t i, j;

	CHECK(s->stream_count <= STREAMS_MAX);
	CHECK(terminated(s->listen, sizeof(s->listen)));
	CHECK(terminated(s->bus_dir, sizeof(s->bus_dir)) && s->bus_dir[0]);
	CHECK(terminated(s->pid_file, sizeof(s->pid_file)));
	CHECK(strcmp(s->config_path, config_path) == 0);
	CHECK(s->max_viewers >= 1 && s->max_viewers <= MAX_VIEWERS_LIMIT);
	CHECK(s->workers >= 1 && s->workers <= WORKERS_MAX);
	CHECK(s->repeat_usec >= 20000 && s->repeat_usec <= 10000000);
	CHECK(s->keepalive_usec >= 100000 && s->keepalive_usec <= 60000000);
	CHECK(s->idle_usec >= 1000000 && s->idle_usec <= 86400000000LL);
	CHECK(s->first_frame_usec >= 0 && s->first_frame_usec <= 60000000);
	CHECK(s->stall_usec >= 100000 && s->stall_usec <= 3600000000LL);
	CHECK(s->ingest_usec >= 100000 && s->ingest_usec <= 3600000000LL);
	CHECK(s->request_usec >= 100000 && s->request_usec <= 600000000LL);
	CHECK(s->frame_bytes_max >= 1024 && s->frame_bytes_max <= FRAME_BYTES_MAX_LIMIT);
	CHECK((int)s->log_level >= LOG_LEVEL_ERROR && (int)s->log_level <= LOG_LEVEL_DEBUG);
	CHECK(s->link_grace_usec >= 0 && s->link_grace_usec <= SIGN_GRACE_S_MAX * 1000000LL);
	CHECK(terminated(s->view_secret, sizeof(s->view_secret)));
	CHECK(terminated(s->status_token, sizeof(s->status_token)));
	CHECK(!s->view_secret[0] || (strlen(s->view_secret) >= SIGN_SECRET_MIN &&
				     strlen(s->view_secret) <= SIGN_SECRET_MAX));
	CHECK(!s->status_token[0] || (strlen(s->status_token) >= TOKEN_MIN &&
				      strlen(s->status_token) <= TOKEN_MAX));
	for (i = 0; i < s->stream_count; i++) {
		check_stream(&s->streams[i]);
		CHECK(section_in_input(s->streams[i].name, data, size));
		for (j = 0; j < i; j++)
			CHECK(strcmp(s->streams[i].name, s->streams[j].name) != 0);
		CHECK(config_find_stream(s, s->streams[i].name) == &s->streams[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ftruncate(config_fd, 0) < 0 || pwrite(config_fd, data, size, 0) != (ssize_t)size)
		abort(); /* the harness, not the code under test */
	config_defaults(&settings);
	if (config_load_file(&settings, config_path) == 0)
		check_settings(&settings, data, size);
	else
		CHECK(settings.stream_count <= STREAMS_MAX);
	return 0;
}
