/* viewer: one client's multipart stream response, as a state machine.
 *
 * The engine decides what goes next and when: the first frame at once
 * (or as soon as one is published), a newer frame when ?fps allows, the
 * held one again as repeat and keepalive (pace.c), ?frames, the closing
 * boundary when the server stops or the stream is retired, the end on a
 * new picture size or an aborted request, and the frames skipped.  It
 * does no I/O and holds no frame: the sink that drives it fetches frames
 * and writes parts, and reports back.  Two sinks drive it:
 * viewer_blocking.c (the request's own thread, blocking writes: plain CGI
 * and FCGI_KEEP_CONN connections) and fanout_viewer.c (a writer thread,
 * non-blocking FastCGI records).
 *
 * A sink's loop:
 *     step = viewer_next(v, newest_seq, ending, now, &wake);
 *     VIEWER_WAIT: wait until wake, a newer frame or an event;
 *     else: fetch the newest frame if step is VIEWER_NEWEST, then
 *     step = viewer_begin(v, step, ending, held, newest), and send that:
 *     the newest frame, the held one, or (VIEWER_END) no part, only the
 *     end of the request; v->last says whether the part ends the response.
 *     Once the part is out whole: viewer_sent.
 *
 * Owned by the thread that serves the viewer; no locks. */
#ifndef MJPEG_VIEWER_H
#define MJPEG_VIEWER_H

#include "bus.h"
#include "config.h"
#include "http.h"
#include "multipart.h"
#include "pace.h"

#include <stddef.h>
#include <stdint.h>

struct viewer {
	struct pace pace;
	char boundary[MULTIPART_BOUNDARY_LEN + 1];
	long parts_max;         /* ?frames=N; 0: no end */
	long parts;             /* parts sent whole */
	uint64_t held_seq;      /* the frame last begun (sent or in flight); 0: none yet */
	uint64_t skipped;       /* newer frames passed over for the part begun */
	int fresh;              /* the part begun carries a frame new to this viewer */
	int last;               /* the part begun ends the response */
	int aborted;            /* the web server aborted the request (set by the sink) */
	int done;               /* the response is over: the sink ends it */
	int64_t ends_usec;      /* monotonic: a signed link's exp, when the response
				 * ends as if the server stopped; 0: never */
};

enum viewer_step {
	VIEWER_WAIT,   /* nothing before *wake_usec (or a newer frame, or an event) */
	VIEWER_NEWEST, /* the newest frame goes next */
	VIEWER_HELD,   /* the held frame goes again: a repeat, or the closing part */
	VIEWER_END,    /* no more parts: end the request */
};

/* A new viewer with the query's ?fps and ?frames (and a signed link's
 * expiry, query->expires_sec), the server's repeat and keepalive, and its
 * response's boundary (already sent in the head). */
void viewer_init(struct viewer *v, const struct settings *settings, const struct query *query,
		 const char *boundary);

/* The ending a sink passes to viewer_next and viewer_begin: the server's
 * (it stops, or the stream was retired), or the viewer's link expired at
 * now_usec. */
int viewer_ending(const struct viewer *v, int ending, int64_t now_usec);

/* What goes next.  newest_seq: the newest frame the sink can fetch (0:
 * none yet); ending: viewer_ending's answer.  No frame
 * held yet, VIEWER_WAIT's *wake_usec is a keepalive away: the sink renews
 * its demand for frames then.  Changes nothing: ask as often as needed. */
enum viewer_step viewer_next(const struct viewer *v, uint64_t newest_seq, int ending,
			     int64_t now_usec, int64_t *wake_usec);

/* Begins what step (viewer_next's answer, not VIEWER_WAIT) asks for.
 * held: the frame held (NULL before the first); newest: for VIEWER_NEWEST,
 * the newest frame as fetched (NULL if it could not be read).  Returns
 * what to send: VIEWER_NEWEST (newest), VIEWER_HELD (held: a newest frame
 * of another picture size ends the response with it, as clients fix the
 * size at the first part), VIEWER_END, or VIEWER_WAIT (no frame could be
 * read for a first part).  v->last: the part ends the response. */
enum viewer_step viewer_begin(struct viewer *v, enum viewer_step step, int ending,
			      const struct bus_frame *held, const struct bus_frame *newest);

/* The part begun is out whole, at now_usec (monotonic).  Returns the
 * frames it skipped, for bus_count_delivered. */
uint64_t viewer_sent(struct viewer *v, int64_t now_usec);

/* The tail of the part begun: the next boundary, or the closing one when
 * it is the last.  Its length. */
int viewer_part_tail(const struct viewer *v, char *tail, size_t size);

#endif
