#include "source_exec.h"

#include "clock.h"
#include "cmdline.h"
#include "command.h"
#include "log.h"
#include "source.h"
#include "upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest failure reason kept, bytes. */
#define EXEC_WHY_BYTES 160
/* How long a command whose output ended has to exit by itself before it
 * is stopped (a program closes its output, then exits): so the log says
 * how it ended, not that it was stopped. */
#define EXEC_EXIT_WAIT_USEC (500 * USEC_PER_MSEC)

struct exec_input {
	const struct stream_settings *stream; /* read-only, outlives us */
	struct cmdline cmdline;
	char who[STREAM_NAME_MAX + 8]; /* "exec NAME", for log lines */
	struct command *cmd;	       /* NULL while it does not run */
	size_t unframed_max;	       /* 0: no limit (raw frames) */
	size_t bytes_unframed;	       /* since the last frame or start */
	int64_t last_byte_usec;	       /* monotonic */
	int64_t next_start_usec;       /* monotonic; 0: at once */
	uint64_t frames_this_run;
	char failed[EXEC_WHY_BYTES];	       /* why the running command failed, "" */
	struct command_log_limit stderr_limit; /* over restarts */
	struct upstream_link link;
};

struct exec_input *exec_input_open(const struct stream_settings *stream, size_t frame_bytes_max)
{
	struct exec_input *in = calloc(1, sizeof(*in));
	char why[128];

	if (!in) {
		log_error("exec %s: calloc failed", stream->name);
		return NULL;
	}
	if (cmdline_split(stream->path, 0, &in->cmdline, why, sizeof(why)) < 0) {
		log_error("exec %s: %s: %s", stream->name, stream->source, why);
		free(in);
		return NULL;
	}
	in->stream = stream;
	snprintf(in->who, sizeof(in->who), "exec %s", stream->name);
	/* More than any JPEG holds without a frame: the output is not MJPEG. */
	in->unframed_max = stream->format_set ? 0 : frame_bytes_max;
	upstream_init(&in->link, stream, "exec", "command", "restarting it");
	return in;
}

/* Stops the command; how (may be NULL) says how it ended. */
static void stop(struct exec_input *in, char *how, size_t how_size)
{
	command_stop(in->cmd, how, how_size);
	in->cmd = NULL;
}

void exec_input_close(struct exec_input *in)
{
	if (!in)
		return;
	exec_input_pause(in);
	cmdline_free(&in->cmdline);
	free(in);
}

static void failed(struct exec_input *in, const char *why)
{
	in->next_start_usec = clock_mono_usec() + upstream_failed(&in->link, why);
}

int exec_input_begin(struct exec_input *in, const _Atomic int *stopping, int64_t step_usec)
{
	int64_t now = clock_mono_usec();
	char why[256];

	if (in->cmd)
		return command_stdout(in->cmd);
	if (now < in->next_start_usec) {
		int64_t wait = in->next_start_usec - now;

		(void)clock_sleep_unless(wait < step_usec ? wait : step_usec, stopping, step_usec);
		return -1;
	}
	in->cmd = command_start(in->cmdline.argv, in->who, in->stream->upstream.stop_grace_usec,
				&in->stderr_limit, why, sizeof(why));
	if (!in->cmd) {
		failed(in, why);
		return -1;
	}
	/* An outage is one line, not one per start. */
	if (!upstream_away(&in->link))
		log_info("exec %s: started pid %ld: %s", in->stream->name,
			 (long)command_pid(in->cmd), in->stream->path);
	if (in->link.up.state == BUS_UPSTREAM_IDLE)
		upstream_set_state(&in->link, BUS_UPSTREAM_CONNECTING, NULL);
	in->last_byte_usec = clock_mono_usec();
	in->bytes_unframed = 0;
	in->frames_this_run = 0;
	in->failed[0] = '\0';
	return command_stdout(in->cmd);
}

int exec_input_stderr_fd(const struct exec_input *in)
{
	return in->cmd ? command_stderr(in->cmd) : -1;
}

void exec_input_stderr(struct exec_input *in)
{
	if (in->cmd)
		command_read_stderr(in->cmd);
}

int exec_input_bytes(struct exec_input *in, size_t got)
{
	in->last_byte_usec = clock_mono_usec();
	in->bytes_unframed += got;
	if (!in->unframed_max || in->bytes_unframed <= in->unframed_max)
		return 0;
	snprintf(in->failed, sizeof(in->failed),
		 "%zu bytes of output without a JPEG (frame_bytes_max %zu)", in->bytes_unframed,
		 in->unframed_max);
	return -1;
}

int exec_input_stalled(struct exec_input *in)
{
	int64_t stall = in->stream->upstream.stall_usec;

	if (!in->cmd || clock_mono_usec() - in->last_byte_usec < stall)
		return 0;
	snprintf(in->failed, sizeof(in->failed), "no output for %lld ms (upstream_stall_ms)",
		 (long long)(stall / USEC_PER_MSEC));
	return 1;
}

void exec_input_frame(struct exec_input *in)
{
	in->bytes_unframed = 0;
	if (in->frames_this_run++ == 0)
		upstream_flows(&in->link);
}

void exec_input_ended(struct exec_input *in)
{
	char how[64], why[EXEC_WHY_BYTES + 80];

	if (!in->cmd)
		return;
	if (!in->failed[0])
		(void)command_wait(in->cmd, EXEC_EXIT_WAIT_USEC);
	stop(in, how, sizeof(how));
	if (in->failed[0])
		snprintf(why, sizeof(why), "%s; stopped, %s", in->failed, how);
	else if (in->frames_this_run)
		snprintf(why, sizeof(why), "%s", how);
	else
		snprintf(why, sizeof(why), "%s before its first frame", how);
	failed(in, why);
}

int exec_input_away(const struct exec_input *in)
{
	return upstream_away(&in->link);
}

void exec_input_pause(struct exec_input *in)
{
	char how[64];

	if (in->cmd) {
		pid_t pid = command_pid(in->cmd);

		stop(in, how, sizeof(how));
		log_info("exec %s: stopped pid %ld (%s)", in->stream->name, (long)pid, how);
	}
	in->next_start_usec = 0;
	upstream_idle(&in->link);
}

const struct bus_upstream *exec_input_upstream(const struct exec_input *in, uint64_t *changes)
{
	return upstream_state(&in->link, changes);
}

/* ---- the kind: MJPEG or raw frames from the command ---------------------- */

/* The kind's state: the framing kind's, which holds the exec input. */
struct exec_source {
	const struct source_ops *framing; /* source_mjpeg_ops or source_raw_ops */
	void *state;
};

static void *exec_open(const struct stream_settings *stream, size_t frame_bytes_max)
{
	struct exec_source *src = calloc(1, sizeof(*src));

	if (!src) {
		log_error("exec %s: calloc failed", stream->name);
		return NULL;
	}
	src->framing = stream->format_set ? &source_raw_ops : &source_mjpeg_ops;
	src->state = src->framing->open(stream, frame_bytes_max);
	if (!src->state) {
		free(src);
		return NULL;
	}
	return src;
}

static int exec_next(void *state, struct source_frame *frame, const _Atomic int *stopping)
{
	struct exec_source *src = state;

	return src->framing->next(src->state, frame, stopping);
}

/* Paced: not run while nobody watches. */
static int exec_is_paced(const void *state)
{
	(void)state;
	return 1;
}

static void exec_close(void *state)
{
	struct exec_source *src = state;

	if (!src)
		return;
	src->framing->close(src->state);
	free(src);
}

static void exec_pause(void *state)
{
	struct exec_source *src = state;

	src->framing->pause(src->state);
}

static const struct bus_upstream *exec_upstream(const void *state, uint64_t *changes)
{
	const struct exec_source *src = state;

	return src->framing->upstream(src->state, changes);
}

const struct source_ops source_exec_ops = {
	.pace = SOURCE_PACE_OWN,
	.open = exec_open,
	.next = exec_next,
	.is_paced = exec_is_paced,
	.close = exec_close,
	.pause = exec_pause,
	.upstream = exec_upstream,
};
