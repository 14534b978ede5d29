#include "source.h"

#include "clock.h"
#include "log.h"
#include "source_pattern.h"
#include "source_pipe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest single sleep while waiting for a frame to be due: bounds how late
 * a stop is noticed. */
#define SOURCE_POLL_USEC (200 * USEC_PER_MSEC)
/* Files a dir: source plays in one round; more are ignored, with a log line. */
#define DIR_FILES_MAX 10000

struct source {
	const struct stream_settings *stream;
	size_t frame_bytes_max;
	int64_t start_usec;    /* monotonic, for redblue's seconds */
	struct clock_pace pace;
	uint64_t frame_number;

	unsigned char *rgb;    /* pattern: the picture, width*height*3 */

	char **files;          /* dir: this round's file names, sorted */
	size_t file_count, file_next;
	unsigned char *jpeg;   /* dir: the current file's bytes */
	char **bad;            /* dir: names already logged as invalid */
	size_t bad_count;
	int dir_empty_logged;

	struct pipe_source *pipe; /* raw:, mjpeg: */
};

int source_is_paced(const struct source *source)
{
	return source->pipe == NULL || pipe_source_is_paced(source->pipe);
}

struct source *source_open(const struct stream_settings *stream, size_t frame_bytes_max)
{
	struct source *src = calloc(1, sizeof(*src));

	if (!src) {
		log_error("source %s: calloc failed", stream->name);
		return NULL;
	}
	src->stream = stream;
	src->frame_bytes_max = frame_bytes_max;
	src->start_usec = clock_mono_usec();
	clock_pace_init(&src->pace, (int64_t)(USEC_PER_SEC / stream->fps));
	switch (stream->kind) {
	case SOURCE_PATTERN_REDBLUE:
	case SOURCE_PATTERN_BARS:
		src->rgb = malloc((size_t)stream->width * stream->height * 3);
		if (!src->rgb) {
			log_error("source %s: malloc for a %ux%u picture failed", stream->name,
				  stream->width, stream->height);
			goto fail;
		}
		break;
	case SOURCE_DIR:
		src->jpeg = malloc(frame_bytes_max);
		if (!src->jpeg) {
			log_error("source %s: malloc(%zu) failed", stream->name, frame_bytes_max);
			goto fail;
		}
		break;
	case SOURCE_RAW:
	case SOURCE_MJPEG:
		src->pipe = pipe_source_open(stream, frame_bytes_max);
		if (!src->pipe)
			goto fail;
		break;
	case SOURCE_INGEST:
		log_error("source %s: ingest streams have no producer", stream->name);
		goto fail;
	}
	return src;
fail:
	source_close(src);
	return NULL;
}

static void free_files(struct source *src)
{
	size_t i;

	for (i = 0; i < src->file_count; i++)
		free(src->files[i]);
	free(src->files);
	src->files = NULL;
	src->file_count = src->file_next = 0;
}

/* 1 the first time a file is found bad, so each is logged once. */
static int first_time_bad(struct source *src, const char *name)
{
	char **grown;
	size_t i;

	for (i = 0; i < src->bad_count; i++)
		if (strcmp(src->bad[i], name) == 0)
			return 0;
	if (src->bad_count >= DIR_FILES_MAX)
		return 0;
	grown = realloc(src->bad, (src->bad_count + 1) * sizeof(*grown));
	if (!grown)
		return 1;
	src->bad = grown;
	src->bad[src->bad_count] = strdup(name);
	if (src->bad[src->bad_count])
		src->bad_count++;
	return 1;
}

void source_close(struct source *src)
{
	size_t i;

	if (!src)
		return;
	for (i = 0; i < src->bad_count; i++)
		free(src->bad[i]);
	free(src->bad);
	free_files(src);
	pipe_source_close(src->pipe);
	free(src->jpeg);
	free(src->rgb);
	free(src);
}

static int has_jpeg_suffix(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the directory afresh at the start of every round, so files added
 * or removed while it runs are picked up. */
static int scan_dir(struct source *src)
{
	DIR *dir = opendir(src->stream->path);
	struct dirent *entry;
	size_t capacity = 0;

	free_files(src);
	if (!dir) {
		log_error("source %s: opendir(%s): %s", src->stream->name, src->stream->path,
			  strerror(errno));
		return -1;
	}
	while ((entry = readdir(dir)) != NULL) {
		if (entry->d_name[0] == '.' || !has_jpeg_suffix(entry->d_name))
			continue;
		if (src->file_count == DIR_FILES_MAX) {
			log_warn("source %s: more than %d JPEG files in %s; the rest are ignored",
				 src->stream->name, DIR_FILES_MAX, src->stream->path);
			break;
		}
		if (src->file_count == capacity) {
			size_t grown_capacity = capacity ? capacity * 2 : 64;
			char **grown = realloc(src->files, grown_capacity * sizeof(*grown));

			if (!grown)
				break;
			src->files = grown;
			capacity = grown_capacity;
		}
		src->files[src->file_count] = strdup(entry->d_name);
		if (src->files[src->file_count])
			src->file_count++;
	}
	closedir(dir);
	qsort(src->files, src->file_count, sizeof(*src->files), compare_names);
	return 0;
}

/* Reads one file whole into src->jpeg.  Returns its size, or -1 (logged:
 * a file that goes bad is worth a line each time it is met). */
static ssize_t read_file(struct source *src, const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	ssize_t got = -1;
	size_t used = 0;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", src->stream->path, name) >= (int)sizeof(path))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		log_warn("source %s: open(%s): %s", src->stream->name, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_warn("source %s: %s is not a regular file, skipped", src->stream->name, path);
		goto out;
	}
	if ((size_t)st.st_size > src->frame_bytes_max) {
		log_warn("source %s: %s has %lld bytes, over frame_bytes_max %zu, skipped",
			 src->stream->name, path, (long long)st.st_size, src->frame_bytes_max);
		goto out;
	}
	while (used < (size_t)st.st_size) {
		ssize_t n = read(fd, src->jpeg + used, (size_t)st.st_size - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("source %s: read(%s): %s", src->stream->name, path,
				 n < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		used += (size_t)n;
	}
	got = (ssize_t)used;
out:
	close(fd);
	return got;
}

/* dir: the next valid JPEG of the round, passed through as it is. */
static int next_dir_frame(struct source *src, struct source_frame *frame)
{
	size_t tries;

	for (tries = 0; tries <= src->file_count; tries++) {
		const char *why;
		ssize_t bytes;

		if (src->file_next >= src->file_count) {
			if (scan_dir(src) < 0)
				return 0;
			if (src->file_count == 0) {
				if (!src->dir_empty_logged)
					log_warn("source %s: no .jpg or .jpeg files in %s yet",
						 src->stream->name, src->stream->path);
				src->dir_empty_logged = 1;
				return 0;
			}
			src->dir_empty_logged = 0;
		}
		bytes = read_file(src, src->files[src->file_next]);
		src->file_next++;
		if (bytes < 0)
			continue;
		if (encode_validate(src->jpeg, (size_t)bytes, &frame->width, &frame->height,
				    &why) < 0) {
			if (first_time_bad(src, src->files[src->file_next - 1]))
				log_warn("source %s: %s/%s skipped: %s", src->stream->name,
					 src->stream->path, src->files[src->file_next - 1], why);
			continue;
		}
		frame->jpeg = src->jpeg;
		frame->jpeg_bytes = (size_t)bytes;
		return 1;
	}
	return 0;
}

int source_next(struct source *src, struct source_frame *frame, const _Atomic int *stopping)
{
	const struct stream_settings *st = src->stream;

	memset(frame, 0, sizeof(*frame));
	if (src->pipe)
		return pipe_source_next(src->pipe, frame, stopping);
	if (clock_pace_wait(&src->pace, stopping, SOURCE_POLL_USEC) < 0)
		return 0;
	switch (st->kind) {
	case SOURCE_PATTERN_REDBLUE:
		pattern_redblue(src->rgb, st->width, st->height,
				clock_mono_usec() - src->start_usec);
		break;
	case SOURCE_PATTERN_BARS:
		pattern_bars(src->rgb, st->width, st->height, src->frame_number,
			     clock_wall_usec());
		break;
	case SOURCE_DIR:
		return next_dir_frame(src, frame);
	default:
		return -1;
	}
	src->frame_number++;
	frame->pixels = src->rgb;
	frame->format = PIXEL_RGB24;
	frame->width = st->width;
	frame->height = st->height;
	return 1;
}
