/* source_dir: dir:PATH, the JPEG files of a directory (.jpg, .jpeg), in
 * name order, looped at the stream's fps and passed through without
 * re-encoding.  The directory is listed again at the start of every round,
 * so files added or removed while it plays are picked up.  A file that
 * cannot be played is skipped with one log line per file and problem.
 *
 * Owned by the stream's producer thread (source.h). */
#include "source.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files a dir: source plays in one round; more are ignored, with a log line. */
#define DIR_FILES_MAX 10000

/* What can be wrong with a file of a dir: source.  Each is logged once per
 * file while the file stays in the directory, however many rounds meet it. */
enum dir_problem {
	DIR_PROBLEM_STAT = 1 << 0,    /* stat() failed: dangling or looping symlink, ... */
	DIR_PROBLEM_KIND = 1 << 1,    /* not a regular file (nor a symlink to one) */
	DIR_PROBLEM_SIZE = 1 << 2,    /* over frame_bytes_max */
	DIR_PROBLEM_OPEN = 1 << 3,    /* open() failed: permissions, ... */
	DIR_PROBLEM_READ = 1 << 4,    /* read() failed or the file shrank */
	DIR_PROBLEM_INVALID = 1 << 5, /* encode_validate refused it */
};

/* A file found bad, kept while it is in the directory. */
struct dir_bad {
	char *name;
	unsigned problems;     /* enum dir_problem bits already logged */
	/* The file as it was when its content was found bad (too large or
	 * invalid): while stat() shows the same file, it is skipped without
	 * being read and decoded again every round. */
	int content_bad;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct dir_source {
	const struct stream_settings *stream;
	size_t frame_bytes_max;
	char **files;          /* this round's file names, sorted */
	size_t file_count, file_next;
	unsigned char *jpeg;   /* the current file's bytes, frame_bytes_max */
	struct dir_bad *bad;   /* files found bad, sorted by name */
	size_t bad_count;
	int dir_empty_logged;
	int dir_open_failed;   /* opendir failed, logged; logged again once it works */
};

static void free_files(struct dir_source *src)
{
	size_t i;

	for (i = 0; i < src->file_count; i++)
		free(src->files[i]);
	free(src->files);
	src->files = NULL;
	src->file_count = src->file_next = 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int compare_bad(const void *key, const void *entry)
{
	return strcmp(key, ((const struct dir_bad *)entry)->name);
}

/* The bad-file entry of name, or NULL. */
static struct dir_bad *find_bad(struct dir_source *src, const char *name)
{
	return src->bad_count ? bsearch(name, src->bad, src->bad_count, sizeof(*src->bad),
					compare_bad)
			      : NULL;
}

/* The entry of name, made when missing (kept sorted); NULL when out of
 * memory. */
static struct dir_bad *add_bad(struct dir_source *src, const char *name)
{
	struct dir_bad *entry = find_bad(src, name), *grown;
	size_t at = 0;
	char *copy;

	if (entry)
		return entry;
	while (at < src->bad_count && strcmp(src->bad[at].name, name) < 0)
		at++;
	copy = strdup(name);
	grown = copy ? realloc(src->bad, (src->bad_count + 1) * sizeof(*grown)) : NULL;
	if (!grown) {
		free(copy);
		return NULL;
	}
	src->bad = grown;
	memmove(&src->bad[at + 1], &src->bad[at], (src->bad_count - at) * sizeof(*grown));
	memset(&src->bad[at], 0, sizeof(*grown));
	src->bad[at].name = copy;
	src->bad_count++;
	return &src->bad[at];
}

/* 1 the first time name shows this problem, so that each file's problem
 * is one log line. */
static int first_time_bad(struct dir_source *src, const char *name, enum dir_problem problem)
{
	struct dir_bad *entry = add_bad(src, name);

	if (!entry)
		return 1; /* out of memory: a line too many rather than none */
	if (entry->problems & problem)
		return 0;
	entry->problems |= problem;
	return 1;
}

static int same_file(const struct dir_bad *entry, const struct stat *st)
{
	return entry->dev == st->st_dev && entry->ino == st->st_ino &&
	       entry->size == st->st_size && entry->mtime.tv_sec == st->st_mtim.tv_sec &&
	       entry->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       entry->ctime.tv_sec == st->st_ctim.tv_sec &&
	       entry->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* Remembers that the file st (of name) holds no valid frame, as it is. */
static void note_content_bad(struct dir_source *src, const char *name, const struct stat *st)
{
	struct dir_bad *entry = add_bad(src, name);

	if (!entry)
		return;
	entry->content_bad = 1;
	entry->dev = st->st_dev;
	entry->ino = st->st_ino;
	entry->size = st->st_size;
	entry->mtime = st->st_mtim;
	entry->ctime = st->st_ctim;
}

/* Forgets the bad files that left the directory (src->files is this
 * round's sorted listing): a new file of the same name is new. */
static void prune_bad(struct dir_source *src)
{
	size_t i, kept = 0;

	for (i = 0; i < src->bad_count; i++) {
		const char *name = src->bad[i].name;

		if (src->file_count && bsearch(&name, src->files, src->file_count,
					       sizeof(*src->files), compare_names)) {
			src->bad[kept++] = src->bad[i];
		} else {
			free(src->bad[i].name);
		}
	}
	src->bad_count = kept;
}

static void skip_file(struct dir_source *src, const char *path, const char *name,
		      enum dir_problem problem, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Logs "PATH skipped: why" the first time the file shows this problem. */
static void skip_file(struct dir_source *src, const char *path, const char *name,
		      enum dir_problem problem, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	int n;

	if (!first_time_bad(src, name, problem))
		return;
	va_start(ap, fmt);
	n = vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (n < 0)
		why[0] = '\0';
	log_warn("source %s: %s skipped: %s", src->stream->name, path, why);
}

static int has_jpeg_suffix(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
}

/* Lists the directory afresh at the start of every round, so files added
 * or removed while it runs are picked up. */
static int scan_dir(struct dir_source *src)
{
	DIR *dir = opendir(src->stream->path);
	struct dirent *entry;
	size_t capacity = 0;

	free_files(src);
	if (!dir) {
		if (!src->dir_open_failed)
			log_error("source %s: opendir(%s): %s", src->stream->name,
				  src->stream->path, strerror(errno));
		src->dir_open_failed = 1;
		return -1;
	}
	if (src->dir_open_failed)
		log_info("source %s: %s can be read again", src->stream->name, src->stream->path);
	src->dir_open_failed = 0;
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
	prune_bad(src);
	return 0;
}

/* Reads one file whole into src->jpeg; *st gets what stat() says of it.
 * Symlinks are followed: a link to a regular file is played like one.
 * Returns its size, or -1 when it cannot be played (logged once per file
 * and problem), also silently for a file whose content was found bad
 * before and has not changed since. */
static ssize_t read_file(struct dir_source *src, const char *name, struct stat *st)
{
	const struct dir_bad *known;
	char path[PATH_MAX];
	struct stat opened;
	ssize_t got = -1;
	size_t used = 0;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", src->stream->path, name) >= (int)sizeof(path))
		return -1;
	/* stat before open: opening a FIFO would wait for a writer, and a
	 * device may act on being opened. */
	if (stat(path, st) < 0) {
		skip_file(src, path, name, DIR_PROBLEM_STAT, "stat: %s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		skip_file(src, path, name, DIR_PROBLEM_KIND, "not a regular file");
		return -1;
	}
	known = find_bad(src, name);
	if (known && known->content_bad && same_file(known, st))
		return -1;
	if ((size_t)st->st_size > src->frame_bytes_max) {
		skip_file(src, path, name, DIR_PROBLEM_SIZE, "%lld bytes, over frame_bytes_max %zu",
			  (long long)st->st_size, src->frame_bytes_max);
		note_content_bad(src, name, st);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		skip_file(src, path, name, DIR_PROBLEM_OPEN, "open: %s", strerror(errno));
		return -1;
	}
	/* Replaced between stat and open by something else: next round. */
	if (fstat(fd, &opened) < 0 || !S_ISREG(opened.st_mode) || opened.st_dev != st->st_dev ||
	    opened.st_ino != st->st_ino || opened.st_size != st->st_size)
		goto out;
	while (used < (size_t)st->st_size) {
		ssize_t n = read(fd, src->jpeg + used, (size_t)st->st_size - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			skip_file(src, path, name, DIR_PROBLEM_READ, "read: %s",
				  n < 0 ? strerror(errno) : "the file shrank");
			goto out;
		}
		used += (size_t)n;
	}
	got = (ssize_t)used;
out:
	close(fd);
	return got;
}

/* The next valid JPEG of the round, passed through as it is.  Called at
 * the stream's fps (SOURCE_PACE_CLOCK). */
static int dir_next(void *state, struct source_frame *frame, const _Atomic int *stopping)
{
	struct dir_source *src = state;
	size_t tries;

	(void)stopping; /* nothing here waits */
	for (tries = 0; tries <= src->file_count; tries++) {
		const char *why, *name;
		struct stat st;
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
		name = src->files[src->file_next++];
		bytes = read_file(src, name, &st);
		if (bytes < 0)
			continue;
		if (encode_validate(src->jpeg, (size_t)bytes, &frame->width, &frame->height,
				    &why) < 0) {
			if (first_time_bad(src, name, DIR_PROBLEM_INVALID))
				log_warn("source %s: %s/%s skipped: %s", src->stream->name,
					 src->stream->path, name, why);
			note_content_bad(src, name, &st);
			continue;
		}
		frame->jpeg = src->jpeg;
		frame->jpeg_bytes = (size_t)bytes;
		return 1;
	}
	return 0;
}

static void dir_close(void *state)
{
	struct dir_source *src = state;
	size_t i;

	if (!src)
		return;
	for (i = 0; i < src->bad_count; i++)
		free(src->bad[i].name);
	free(src->bad);
	free_files(src);
	free(src->jpeg);
	free(src);
}

static void *dir_open(const struct stream_settings *stream, size_t frame_bytes_max)
{
	struct dir_source *src = calloc(1, sizeof(*src));

	if (!src) {
		log_error("source %s: calloc failed", stream->name);
		return NULL;
	}
	src->stream = stream;
	src->frame_bytes_max = frame_bytes_max;
	src->jpeg = malloc(frame_bytes_max);
	if (!src->jpeg) {
		log_error("source %s: malloc(%zu) failed", stream->name, frame_bytes_max);
		dir_close(src);
		return NULL;
	}
	return src;
}

const struct source_ops source_dir_ops = {
	.pace = SOURCE_PACE_CLOCK,
	.open = dir_open,
	.next = dir_next,
	.close = dir_close,
};
