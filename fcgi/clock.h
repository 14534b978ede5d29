/* clock: the two time bases the responder uses.
 *
 * Wall-clock microseconds go on the wire (X-Timestamp) and in /status.
 * Monotonic microseconds measure intervals; CLOCK_MONOTONIC is system-wide,
 * so values written by one process into the frame bus mean the same in
 * another. */
#ifndef MJPEG_CLOCK_H
#define MJPEG_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define USEC_PER_SEC 1000000LL
#define USEC_PER_MSEC 1000LL

/* microseconds since the epoch */
int64_t clock_wall_usec(void);
/* microseconds since an arbitrary fixed point, never going back */
int64_t clock_mono_usec(void);
/* usec microseconds (an interval, or a time on either clock) as a struct
 * timespec: for nanosleep, futex timeouts and the pthread_*_timed* calls
 * (which take CLOCK_REALTIME times unless told otherwise).  usec >= 0. */
struct timespec clock_timespec(int64_t usec);
/* sleep for usec microseconds, resuming after signals */
void clock_sleep_usec(int64_t usec);

/* Sleeps usec microseconds in steps of at most step_usec, giving up as
 * soon as *stop is set.  0, or -1 when stopped. */
int clock_sleep_unless(int64_t usec, const _Atomic int *stop, int64_t step_usec);

/* A fixed-rate schedule (frames of a paced source).  The next tick is due
 * one interval after the last one, so the rate holds whatever each frame
 * took; after a stall (a pause for lack of viewers, a suspended machine)
 * it starts afresh instead of bursting to catch up.  Owned by one thread. */
struct clock_pace {
	int64_t due_usec;      /* monotonic time the next tick is due */
	int64_t interval_usec;
};

void clock_pace_init(struct clock_pace *pace, int64_t interval_usec);
/* Sleeps until the next tick (as clock_sleep_unless).  0, or -1 when
 * stopped. */
int clock_pace_wait(struct clock_pace *pace, const _Atomic int *stop, int64_t step_usec);

#endif
