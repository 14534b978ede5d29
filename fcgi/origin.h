/* origin: the stream list of the origin an edge relays ([relay] origin =
 * URL).  The origin is another mjpeg-fcgi; its /status names its streams,
 * and each becomes a stream of the same name here, relayed from
 * ORIGIN/stream/NAME (config_add_relay_stream).  A watch thread reads the
 * list again every refresh_s and, when it changed, asks for the reload that
 * SIGHUP does, so streams added or removed at the origin appear and vanish
 * at every edge without a change to the edges' config.
 *
 * While the origin cannot be reached the last list read stays in force: an
 * origin that restarts costs the edges no stream and no viewer. */
#ifndef MJPEG_ORIGIN_H
#define MJPEG_ORIGIN_H

#include "config.h"

#include <stddef.h>

/* The largest /status document read from an origin, in bytes: 64 streams
 * take about 40 KiB. */
#define ORIGIN_STATUS_BYTES_MAX (1024 * 1024)
/* The longest a read of the origin's /status takes, connecting included. */
#define ORIGIN_FETCH_MS 5000

struct origin_list {
	size_t count;
	char names[STREAMS_MAX][STREAM_NAME_MAX + 1];
	double fps[STREAMS_MAX]; /* the origin's "fps", 0 when absent or out of range */
};

/* Parses an origin's /status document (len bytes, need not end in NUL)
 * into list: the "name" (and "fps") of every object of its "streams"
 * array, in order.
 * A stream without a string "name", or with one that is not a valid stream
 * name, is skipped with a log line, and so is every stream past
 * STREAMS_MAX.  -1 with why set (bad JSON, no "streams" array). */
int origin_parse_status(const char *json, size_t len, struct origin_list *list, char *why,
			size_t why_size) __attribute__((warn_unused_result));

/* Reads ORIGIN/status into list.  -1 with why set when the origin cannot
 * be reached or answers something else than a stream list. */
int origin_fetch(const struct relay_settings *relay, struct origin_list *list, char *why,
		 size_t why_size) __attribute__((warn_unused_result));

/* For an edge (settings->relay.origin set): reads the origin's stream list
 * (or, when that fails, keeps the last list this process read, logged) and
 * adds each stream with config_add_relay_stream; a stream that cannot be
 * added is skipped with a log line.  Returns how many were added. */
size_t origin_add_streams(struct settings *settings);

/* Starts the watch thread: the list is read every relay->refresh_usec, and
 * on_change() runs (in that thread) when it differs from the last one
 * read.  relay is copied.  -1 (logged) when the thread cannot start. */
int origin_watch_start(const struct relay_settings *relay, void (*on_change)(void))
	__attribute__((warn_unused_result));

/* Stops and joins the watch thread; harmless when none runs. */
void origin_watch_stop(void);

#endif
