#include "source_pipe.h"

#include "clock.h"
#include "log.h"
#include "source_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Pause after an EOF that brought no byte at all.  Linux never gives one
 * for a FIFO without a writer (see reopen_input); other systems may. */
#define PIPE_EMPTY_EOF_USEC (100 * USEC_PER_MSEC)
/* Pause before reading a file with no complete frame again, or trying a
 * path that could not be opened again. */
#define PIPE_RETRY_USEC USEC_PER_SEC
/* "Writer went away" lines are logged at most this often. */
#define PIPE_LOG_INTERVAL_USEC USEC_PER_SEC

/* The input as log lines name it. */
static const char *input_name(const struct pipe_input *in)
{
	if (in->type == PIPE_COMMAND)
		return "the command's output";
	return in->type == PIPE_STDIN ? "stdin" : in->stream->path;
}

static int stopping_set(const _Atomic int *stopping)
{
	/* A plain flag: nothing else is published with it. */
	return atomic_load_explicit(stopping, memory_order_relaxed);
}

/* 1 when a limited line may be logged now (and takes the slot). */
static int log_slot(int64_t *next_usec)
{
	int64_t now = clock_mono_usec();

	if (now < *next_usec)
		return 0;
	*next_usec = now + PIPE_LOG_INTERVAL_USEC;
	return 1;
}

/* Logs what was dropped since the last line, when the rate limit allows
 * or now_anyway (closing). */
static void report_problems(struct pipe_input *in, int now_anyway)
{
	char who[STREAM_NAME_MAX + PATH_MAX + 16];

	if (snprintf(who, sizeof(who), "source %s: %s", in->stream->name, input_name(in)) < 0)
		who[0] = '\0';
	drop_log_flush(&in->drops, who, now_anyway);
}

/* A file's problems are the same on every pass: only the first counts.
 * A command's, during an outage, are its failure: logged as that, once. */
static int problems_counted(const struct pipe_input *in)
{
	if (in->exec && exec_input_away(in->exec))
		return 0;
	return !(in->type == PIPE_FILE && in->passes > 0);
}

/* 1 for what a writer paces: a FIFO or a socket.  Regular files and
 * devices (/dev/zero gives bytes as fast as they are read) are paced here,
 * at the stream's fps. */
static int writer_paced(const struct stat *st)
{
	return S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode);
}

/* Opens the path.  Logs a failure only when the last open succeeded, so a
 * path that stays missing is one line.  The fd, or -1. */
static int open_path(struct pipe_input *in)
{
	const char *path = in->stream->path;
	struct stat st;
	int fd;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer (nor may
	 * reads: poll() waits, so *stopping is seen). */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (!in->open_failed)
			log_error("source %s: open(%s): %s", in->stream->name, path,
				  strerror(errno));
		in->open_failed = 1;
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		if (!in->open_failed)
			log_error("source %s: fstat(%s): %s", in->stream->name, path,
				  strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		if (!in->open_failed)
			log_error("source %s: %s is a directory (dir: reads those)",
				  in->stream->name, path);
		goto fail;
	}
	if (in->open_failed)
		log_info("source %s: %s opened again", in->stream->name, path);
	in->open_failed = 0;
	in->type = writer_paced(&st) ? PIPE_FIFO : PIPE_FILE;
	in->paced = in->type == PIPE_FILE;
	in->bytes_since_open = 0;
	in->frames_since_open = 0;
	return fd;
fail:
	in->open_failed = 1;
	close(fd);
	return -1;
}

/* The new fd is opened before the old one is closed, so a FIFO always has
 * a reader: a new writer neither blocks in open() nor gets EPIPE meanwhile.
 *
 * Why this does not spin while no writer is there: a FIFO read end opened
 * with O_NONBLOCK makes read() return 0 when there is no writer, but on
 * Linux poll() reports POLLHUP only after a writer has come and gone since
 * the read end was opened.  So a freshly reopened FIFO sleeps in poll()
 * until a writer arrives; CPU stays at 0.  Where a system reports POLLHUP
 * at once, the EOF brings no byte and input_ended pauses
 * PIPE_EMPTY_EOF_USEC before reopening.  (O_RDWR would never see an EOF at
 * all, so a writer change could not be told apart from a slow writer.) */
static int reopen_input(struct pipe_input *in)
{
	int fd = open_path(in);

	if (in->fd >= 0)
		close(in->fd);
	in->fd = fd;
	return fd < 0 ? -1 : 0;
}

enum pipe_read pipe_input_read(struct pipe_input *in, unsigned char *buf, size_t want,
			       size_t *got, const _Atomic int *stopping)
{
	for (;;) {
		/* [1]: a command's standard error, logged as it comes */
		struct pollfd pfd[2] = {
			{ .fd = in->fd, .events = POLLIN },
			{ .fd = in->exec ? exec_input_stderr_fd(in->exec) : -1, .events = POLLIN },
		};
		ssize_t n;
		int ready;

		if (stopping_set(stopping))
			return PIPE_STOP;
		ready = poll(pfd, 2, PIPE_POLL_MSEC);
		if (ready < 0 && errno != EINTR) {
			log_error("source %s: poll(%s): %s", in->stream->name, input_name(in),
				  strerror(errno));
			return PIPE_ERROR;
		}
		if (pfd[1].revents)
			exec_input_stderr(in->exec);
		if (in->exec && !pfd[0].revents) {
			if (exec_input_stalled(in->exec))
				return PIPE_EOF;
			/* Back to the producer, which stops the command when
			 * nobody watches any more: a command that writes
			 * seldom or never must not hold it here. */
			if (ready == 0)
				return PIPE_STOP;
		}
		if (ready <= 0 || !pfd[0].revents)
			continue;
		n = read(in->fd, buf, want);
		if (n > 0) {
			*got = (size_t)n;
			in->bytes_since_open += (size_t)n;
			if (in->exec && exec_input_bytes(in->exec, (size_t)n) < 0)
				return PIPE_EOF; /* not frames: the command failed */
			return PIPE_DATA;
		}
		if (n == 0)
			return PIPE_EOF;
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			continue;
		log_error("source %s: read(%s): %s", in->stream->name, input_name(in),
			  strerror(errno));
		return PIPE_ERROR;
	}
}

int pipe_input_ended(struct pipe_input *in, size_t dropped, const _Atomic int *stopping)
{
	const struct stream_settings *st = in->stream;

	if (dropped > 0 && problems_counted(in))
		in->drops.pending.partial++;
	report_problems(in, 0);
	switch (in->type) {
	case PIPE_COMMAND:
		exec_input_ended(in->exec); /* logged there, restarted after the back-off */
		in->fd = -1;
		return 0;
	case PIPE_STDIN:
		log_warn("source %s: stdin ended; it cannot be reopened", st->name);
		in->ended = 1;
		return -1;
	case PIPE_FIFO:
		if (in->bytes_since_open == 0) {
			if (clock_sleep_unless(PIPE_EMPTY_EOF_USEC, stopping, PIPE_POLL_USEC) < 0)
				return 0;
		} else if (log_slot(&in->writer_log_usec)) {
			log_info("source %s: the writer of %s went away, waiting for a new one",
				 st->name, st->path);
		}
		break;
	case PIPE_FILE:
		if (in->frames_since_open == 0) {
			if (in->passes == 0)
				log_warn("source %s: no complete frame in %s; reading it again "
					 "every second", st->name, st->path);
			in->passes++;
			if (clock_sleep_unless(PIPE_RETRY_USEC, stopping, PIPE_POLL_USEC) < 0)
				return 0;
		} else {
			in->passes++;
		}
		break;
	}
	(void)reopen_input(in); /* a failure is logged; the next call retries */
	return 0;
}

/* stdin as input.  -1 (logged) when it cannot be read from. */
static int open_stdin(struct pipe_input *in)
{
	struct stat st;
	int listening = 0;
	socklen_t len = sizeof(listening);

	if (fstat(STDIN_FILENO, &st) < 0) {
		log_error("source %s: fstat(stdin): %s", in->stream->name, strerror(errno));
		return -1;
	}
	/* Under spawn-fcgi and friends fd 0 is the FastCGI socket: reading
	 * frames from it would steal connections. */
	if (S_ISSOCK(st.st_mode) &&
	    getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 &&
	    listening) {
		log_error("source %s: stdin is a listening socket (the FastCGI socket?), "
			  "not a stream of frames", in->stream->name);
		return -1;
	}
	in->type = PIPE_STDIN;
	in->fd = STDIN_FILENO;
	in->paced = !writer_paced(&st); /* mjpeg-fcgi < file: no writer paces it */
	return 0;
}


int pipe_input_open(struct pipe_input *in, const struct stream_settings *stream,
		    size_t frame_bytes_max)
{
	memset(in, 0, sizeof(*in));
	in->stream = stream;
	in->frame_bytes_max = frame_bytes_max;
	in->fd = -1;
	drop_log_init(&in->drops, frame_bytes_max);
	clock_pace_init(&in->pace, stream->fps > 0 ? (int64_t)(USEC_PER_SEC / stream->fps) : 0);
	if (stream->kind == SOURCE_EXEC) {
		in->type = PIPE_COMMAND;
		in->exec = exec_input_open(stream, frame_bytes_max);
		return in->exec ? 0 : -1;
	}
	if (strcmp(stream->path, "-") == 0)
		return open_stdin(in);
	(void)reopen_input(in); /* a failure is logged; pipe_input_begin retries */
	return 0;
}

void pipe_input_close(struct pipe_input *in)
{
	report_problems(in, 1);
	if (in->fd >= 0 && in->type != PIPE_STDIN && in->type != PIPE_COMMAND)
		close(in->fd);
	in->fd = -1;
	exec_input_close(in->exec); /* the command owns its fd */
	in->exec = NULL;
}

int pipe_input_begin(struct pipe_input *in, const _Atomic int *stopping)
{
	if (in->ended)
		return -1;
	report_problems(in, 0); /* counts held back by the rate limit */
	if (in->type == PIPE_COMMAND) {
		in->fd = exec_input_begin(in->exec, stopping, PIPE_POLL_USEC);
		return in->fd >= 0;
	}
	if (in->fd < 0 && reopen_input(in) < 0) {
		(void)clock_sleep_unless(PIPE_RETRY_USEC, stopping, PIPE_POLL_USEC);
		return 0;
	}
	return 1;
}

int pipe_input_tick(struct pipe_input *in, const _Atomic int *stopping)
{
	return clock_pace_wait(&in->pace, stopping, PIPE_POLL_USEC);
}

int pipe_input_frame(struct pipe_input *in, const _Atomic int *stopping)
{
	in->frames_since_open++;
	if (in->exec)
		exec_input_frame(in->exec);
	return in->paced ? pipe_input_tick(in, stopping) : 0;
}

int pipe_input_is_paced(const struct pipe_input *in)
{
	return in->paced || in->type == PIPE_COMMAND;
}

void pipe_input_pause(struct pipe_input *in)
{
	if (in->type != PIPE_COMMAND)
		return;
	exec_input_pause(in->exec);
	in->fd = -1;
}

const struct bus_upstream *pipe_input_upstream(const struct pipe_input *in, uint64_t *changes)
{
	return in->exec ? exec_input_upstream(in->exec, changes) : NULL;
}

void pipe_input_dropped(struct pipe_input *in, const struct drops *dropped, const char *why)
{
	if (problems_counted(in))
		drop_log_add(&in->drops, dropped, why);
	report_problems(in, 0);
}
