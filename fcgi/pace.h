/* pace: when a stream viewer's next part is due.  A pure function of the
 * viewer's pace, "a newer frame exists" and the time, used by the viewer
 * engine (viewer.c) whichever thread serves the viewer. */
#ifndef MJPEG_PACE_H
#define MJPEG_PACE_H

#include <stdint.h>

struct pace {
	int64_t min_gap_usec;   /* ?fps=N: least time between two new frames; 0: none */
	int64_t repeat_usec;    /* resend the held frame once after this ... */
	int64_t keepalive_usec; /* ... then every this long */
	int64_t last_sent_usec; /* monotonic: when the last part went out */
	int64_t last_new_usec;  /* monotonic: when the held frame went out first */
	int repeated;           /* the frame held was already sent again */
};

enum pace_step {
	PACE_WAIT,       /* nothing yet: ask again at *wake_usec, or on a new frame */
	PACE_SEND_NEWER, /* send the newest frame */
	PACE_RESEND,     /* send the held frame again */
};

/* newer: a frame newer than the one held was published.  Browsers show a
 * part only when the next one begins, so with no newer frame the held one
 * goes again after repeat_usec, then every keepalive_usec.  A newer frame
 * goes min_gap_usec (?fps) after the held one first went out; until then
 * the held one goes again every keepalive_usec (no repeat_usec: the viewer
 * asked for fewer parts, and the newer frame comes within the gap).
 * Repeats do not count against ?fps, so no gap is ever longer than
 * keepalive_usec.  Frames published meanwhile are skipped. */
enum pace_step pace_next(const struct pace *pace, int newer, int64_t now_usec,
			 int64_t *wake_usec);

/* Notes that a part went out (all of it) at now_usec: a frame new to this
 * viewer (fresh), or the held one again. */
void pace_sent(struct pace *pace, int fresh, int64_t now_usec);

#endif
