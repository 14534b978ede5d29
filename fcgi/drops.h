/* drops: what a source dropped on the way in (bad JPEGs, broken or
 * oversized frames, bytes outside any frame), counted and logged as one
 * line at most every DROPS_LOG_INTERVAL_USEC, with counts, so a stream of
 * garbage costs a line a second, not a line a frame.
 *
 * A drop log is owned by the one thread that feeds it (a producer, a
 * request); nothing in it is shared. */
#ifndef MJPEG_DROPS_H
#define MJPEG_DROPS_H

#include "clock.h"

#include <stddef.h>
#include <stdint.h>

/* Lines are logged at most this often. */
#define DROPS_LOG_INTERVAL_USEC USEC_PER_SEC
/* Longest reason kept for a line, bytes. */
#define DROPS_WHY_BYTES 160

struct drops {
	uint64_t invalid;       /* JPEGs encode_validate refused */
	char invalid_why[DROPS_WHY_BYTES]; /* the last one's reason */
	uint64_t oversized;     /* JPEGs over frame_bytes_max */
	uint64_t cut;           /* JPEGs cut short or broken */
	uint64_t partial;       /* partial frames at the end of the input */
	uint64_t bytes_skipped; /* bytes outside any JPEG */
};

struct drop_log {
	struct drops pending;   /* since the last line */
	int64_t next_usec;      /* monotonic time the next line may be logged */
	size_t frame_bytes_max; /* named in lines */
	/* mjpeg_splitter counts already taken (drop_log_splitter) */
	uint64_t seen_oversized, seen_cut, seen_skipped;
};

void drop_log_init(struct drop_log *log, size_t frame_bytes_max);

/* Adds dropped (why: the reason of an invalid JPEG, or NULL). */
void drop_log_add(struct drop_log *log, const struct drops *dropped, const char *why);

/* The drops a splitter counted since the last call, as a struct drops. */
struct mjpeg_splitter;
void drop_log_splitter(struct drop_log *log, const struct mjpeg_splitter *s,
		       struct drops *dropped);

/* Logs "who: dropped ..." when anything is pending and the rate limit
 * allows, or now_anyway (closing); otherwise the counts wait for a later
 * call. */
void drop_log_flush(struct drop_log *log, const char *who, int now_anyway);

#endif
