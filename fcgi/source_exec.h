/* source_exec: exec:COMMAND ARGS, a command's standard output as a
 * stream's frames: MJPEG (ffmpeg -f mjpeg -), or raw frames of the
 * stream's size when its format is given (ffmpeg -f rawvideo -).
 *
 * The kind (source_exec_ops) reads its bytes as mjpeg: or raw: do
 * (source_mjpeg.c, source_raw.c, over source_pipe.c), from an input that
 * is the command: the exec input below, which source_pipe.c calls for
 * PIPE_COMMAND inputs.  It runs the command (command.c) only while the
 * stream is watched: the first read starts it, pause stops it.  A command
 * that ends, writes frame_bytes_max bytes without a frame (mjpeg only:
 * raw bytes always make frames) or nothing for upstream_stall_ms has
 * failed: it is stopped and started again after the back-off (upstream.c:
 * capped and jittered, one log line per outage, its state in /status).
 *
 * Owned by the stream's producer thread (source.h). */
#ifndef MJPEG_SOURCE_EXEC_H
#define MJPEG_SOURCE_EXEC_H

#include "bus.h"
#include "config.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct exec_input;

/* The command line split (config.c checked it).  NULL on failure, logged. */
struct exec_input *exec_input_open(const struct stream_settings *stream, size_t frame_bytes_max)
	__attribute__((warn_unused_result));
/* Stops the command if it runs; NULL is ignored. */
void exec_input_close(struct exec_input *in);

/* Starts the command when it does not run and its turn came: its standard
 * output (non-blocking), or -1 when not now (after a wait of at most
 * step_usec, or when *stopping was set). */
int exec_input_begin(struct exec_input *in, const _Atomic int *stopping, int64_t step_usec);

/* The command's standard error, for poll (-1: none); exec_input_stderr
 * logs what it holds. */
int exec_input_stderr_fd(const struct exec_input *in);
void exec_input_stderr(struct exec_input *in);

/* got bytes were read.  -1 when too many came without a frame: the
 * command has failed (exec_input_ended follows). */
int exec_input_bytes(struct exec_input *in, size_t got);
/* Nothing came for a while: 1 when it is upstream_stall_ms, the command
 * has failed (exec_input_ended follows). */
int exec_input_stalled(struct exec_input *in);
/* A frame was read from the command. */
void exec_input_frame(struct exec_input *in);
/* The command's output ended (or it failed as above): it is stopped and
 * started again after the back-off. */
void exec_input_ended(struct exec_input *in);

/* 1 during an outage: the command failed and has not made a frame since
 * (what it drops meanwhile is not reported again). */
int exec_input_away(const struct exec_input *in);

/* Nobody watches: the command is stopped; the next begin starts it. */
void exec_input_pause(struct exec_input *in);

/* What /status shows (source_upstream). */
const struct bus_upstream *exec_input_upstream(const struct exec_input *in, uint64_t *changes);

#endif
