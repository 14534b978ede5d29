#include "clock.h"

#include <errno.h>
#include <time.h>

static int64_t clock_usec(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

int64_t clock_wall_usec(void)
{
	return clock_usec(CLOCK_REALTIME);
}

int64_t clock_mono_usec(void)
{
	return clock_usec(CLOCK_MONOTONIC);
}

void clock_sleep_usec(int64_t usec)
{
	struct timespec ts;

	if (usec <= 0)
		return;
	ts.tv_sec = usec / USEC_PER_SEC;
	ts.tv_nsec = (long)(usec % USEC_PER_SEC) * 1000;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
