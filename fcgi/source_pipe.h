/* source_pipe: the byte input under raw: and mjpeg: (source_raw.c,
 * source_mjpeg.c): a FIFO, a regular file, or stdin ("-"); and under
 * exec:, a command's standard output (source_exec.c runs the command).
 *
 * FIFOs (and stdin when it is a pipe or a socket) are paced by their
 * writer.  A regular file or a device (/dev/zero, a serial port) has no
 * pace of its own: it is played at the stream's fps, looped from the start
 * at its end, and not read at all while nobody watches.
 * When a FIFO's writer goes away the FIFO is reopened for the next writer;
 * stdin cannot be reopened, so its end ends the source.  A command's end
 * (or its failure) starts it again after a back-off; pause stops it.
 *
 * What a kind drops (partial frames, bad JPEGs, stray bytes) is counted in
 * the input's problems and logged as one line at most every second, with
 * counts; a file's problems are counted on its first pass only, so a file
 * played in a loop is not reported again every round.
 *
 * An input is owned by the one thread that calls its kind's next (the
 * stream's producer); nothing in it is shared. */
#ifndef MJPEG_SOURCE_PIPE_H
#define MJPEG_SOURCE_PIPE_H

#include "clock.h"
#include "config.h"
#include "drops.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Longest wait in poll() or a sleep before *stopping is looked at again. */
#define PIPE_POLL_MSEC 200
#define PIPE_POLL_USEC (PIPE_POLL_MSEC * USEC_PER_MSEC)

enum pipe_input_type {
	PIPE_STDIN, /* fd 0: never closed, never reopened */
	PIPE_FIFO,  /* a FIFO: paced by its writer, reopened when the writer goes */
	PIPE_FILE,  /* a regular file or a device: played at fps, reopened at its end */
	PIPE_COMMAND, /* exec: a command's stdout, run while watched, restarted at its end */
};

enum pipe_read { PIPE_DATA, PIPE_EOF, PIPE_STOP, PIPE_ERROR };


struct pipe_input {
	const struct stream_settings *stream; /* settings: read-only, outlive us */
	size_t frame_bytes_max;  /* named in report lines */
	enum pipe_input_type type;
	int fd;                  /* -1 after a reopen failed */
	int paced;               /* not a FIFO or socket (stdin included): played at fps */
	int ended;               /* stdin reached its end: every call returns -1 */
	int open_failed;         /* the last open failed, logged: the next failure is not */
	size_t bytes_since_open; /* an EOF with none pauses (no busy loop) */
	uint64_t frames_since_open;
	uint64_t passes;         /* a file's ends reached; problems reported in pass 0 only */
	struct clock_pace pace;  /* a file's frames, at the stream's fps */
	struct drop_log drops;   /* what the kind dropped, for the report lines */
	int64_t writer_log_usec; /* the same for "writer went away" lines */
	struct exec_input *exec; /* PIPE_COMMAND: the command (fd is its stdout) */
};

struct exec_input;

/* Opens stream->path, or stdin for "-"; for exec: only prepares the
 * command (pipe_input_begin runs it).  A path missing at start (the FIFO
 * is made by the writer, later) is one log line and not a failure:
 * pipe_input_begin keeps trying.  -1 (logged) when stdin cannot be read
 * from. */
int pipe_input_open(struct pipe_input *in, const struct stream_settings *stream,
		    size_t frame_bytes_max) __attribute__((warn_unused_result));
/* Logs what is still unreported; closes the input (never stdin). */
void pipe_input_close(struct pipe_input *in);

/* At the start of every next: reports held-back counts and reopens a path
 * that could not be opened (waiting a second after a failure).  1: go on
 * and read; 0: nothing this time; -1: stdin ended. */
int pipe_input_begin(struct pipe_input *in, const _Atomic int *stopping)
	__attribute__((warn_unused_result));

/* Waits for bytes and reads up to want of them into buf.  Never blocks in
 * read(): poll() waits, at most PIPE_POLL_MSEC at a time, so *stopping is
 * noticed (PIPE_STOP).  A command's output also gives PIPE_STOP after one
 * such wait without a byte (the producer then looks at demand again), and
 * PIPE_EOF once the command failed.  PIPE_ERROR is logged. */
enum pipe_read pipe_input_read(struct pipe_input *in, unsigned char *buf, size_t want,
			       size_t *got, const _Atomic int *stopping)
	__attribute__((warn_unused_result));

/* After PIPE_EOF, with the bytes of a partial frame the kind dropped: stdin
 * ends the source (-1), a file is reopened to loop, a FIFO is reopened to
 * wait for its next writer (0: nothing this time). */
int pipe_input_ended(struct pipe_input *in, size_t dropped, const _Atomic int *stopping)
	__attribute__((warn_unused_result));

/* A complete frame was read: counts it and, for a file, waits for its
 * turn at the stream's fps.  -1 when *stopping was set meanwhile. */
int pipe_input_frame(struct pipe_input *in, const _Atomic int *stopping)
	__attribute__((warn_unused_result));

/* Waits for the next tick at the stream's fps (a file's pace).  -1 when
 * *stopping was set meanwhile. */
int pipe_input_tick(struct pipe_input *in, const _Atomic int *stopping)
	__attribute__((warn_unused_result));

/* The kind dropped what *dropped counts (why: the reason for an invalid
 * JPEG, or NULL): added to the problems (on a file's first pass only) and
 * logged when the rate limit allows. */
void pipe_input_dropped(struct pipe_input *in, const struct drops *dropped,
			const char *why);

/* 1 when the input is a regular file or a device, played at the stream's
 * fps, or a command, run only while watched; 0 for FIFOs and sockets
 * (stdin under a pipe), paced by their writer. */
int pipe_input_is_paced(const struct pipe_input *in);

/* Nobody watches: a command is stopped (source_pause); others go on. */
void pipe_input_pause(struct pipe_input *in);

/* A command's state for /status (source_upstream); NULL for the others. */
const struct bus_upstream *pipe_input_upstream(const struct pipe_input *in, uint64_t *changes);

#endif
