/* deadline: ends a blocking read that runs past its time.
 *
 * libfcgi reads a request (its params, then its body) with blocking reads,
 * and a slow peer can stretch those without end, one byte at a time: a
 * socket's SO_RCVTIMEO bounds each read, not their sum.  A watchdog thread
 * here shuts a socket for reading (shutdown SHUT_RD) when the deadline
 * armed on it passes.  A read blocked in libfcgi then returns 0, as does
 * every later one, so the request fails where it stands; writes still
 * work, so an answer (408) can still be sent.
 *
 * An armed deadline holds a descriptor of its own for the socket (a dup)
 * until it is disarmed, so that the number the watchdog shuts down always
 * names the same socket, whatever libfcgi closes in between.  The socket
 * cannot be kept for another request once a deadline fired on it. */
#ifndef MJPEG_DEADLINE_H
#define MJPEG_DEADLINE_H

#include <stdatomic.h>
#include <stdint.h>

struct deadlines;  /* the watchdog */

/* One armed deadline; owned by the thread that armed it, linked into the
 * watchdog's list (under its lock) from deadline_arm to deadline_disarm. */
struct deadline {
	int fd;                /* the watchdog's dup of the socket */
	int64_t at_usec;       /* monotonic */
	_Atomic int fired;     /* set by the watchdog when it shut the socket */
	struct deadline *next;
};

/* Starts the watchdog thread; NULL (logged) if it could not. */
struct deadlines *deadlines_start(void);
/* Stops the thread; every deadline must be disarmed first. */
void deadlines_stop(struct deadlines *w);
/* Makes every deadline due now, and every one armed from now on due at
 * once: the server is stopping, and no read of a request may hold a
 * thread past that. */
void deadlines_expire(struct deadlines *w);

/* Arms d on socket fd, due at at_usec (clock_mono_usec).  -1 (logged) if
 * the socket could not be duplicated; d is then not armed. */
int deadline_arm(struct deadlines *w, struct deadline *d, int fd, int64_t at_usec)
	__attribute__((warn_unused_result));
/* Disarms d.  1 if it fired (the socket is shut for reading), else 0. */
int deadline_disarm(struct deadlines *w, struct deadline *d);

#endif
