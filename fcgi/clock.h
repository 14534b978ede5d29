/* clock: the two time bases the responder uses.
 *
 * Wall-clock microseconds go on the wire (X-Timestamp) and in /status.
 * Monotonic microseconds measure intervals; CLOCK_MONOTONIC is system-wide,
 * so values written by one process into the frame bus mean the same in
 * another. */
#ifndef MJPEG_CLOCK_H
#define MJPEG_CLOCK_H

#include <stdint.h>

#define USEC_PER_SEC 1000000LL
#define USEC_PER_MSEC 1000LL

/* microseconds since the epoch */
int64_t clock_wall_usec(void);
/* microseconds since an arbitrary fixed point, never going back */
int64_t clock_mono_usec(void);
/* sleep for usec microseconds, resuming after signals */
void clock_sleep_usec(int64_t usec);

#endif
