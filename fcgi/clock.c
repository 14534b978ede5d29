#include "clock.h"

#include <errno.h>

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

struct timespec clock_timespec(int64_t usec)
{
	struct timespec ts = {
		.tv_sec = usec / USEC_PER_SEC,
		.tv_nsec = (long)(usec % USEC_PER_SEC) * 1000,
	};

	return ts;
}

void clock_sleep_usec(int64_t usec)
{
	struct timespec ts;

	if (usec <= 0)
		return;
	ts = clock_timespec(usec);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int clock_sleep_unless(int64_t usec, const _Atomic int *stop, int64_t step_usec)
{
	int64_t end = clock_mono_usec() + usec, now;

	/* relaxed: a plain flag, nothing else is published with it */
	while ((now = clock_mono_usec()) < end) {
		if (atomic_load_explicit(stop, memory_order_relaxed))
			return -1;
		clock_sleep_usec(end - now < step_usec ? end - now : step_usec);
	}
	return atomic_load_explicit(stop, memory_order_relaxed) ? -1 : 0;
}

void clock_pace_init(struct clock_pace *pace, int64_t interval_usec)
{
	pace->due_usec = clock_mono_usec();
	pace->interval_usec = interval_usec;
}

int clock_pace_wait(struct clock_pace *pace, const _Atomic int *stop, int64_t step_usec)
{
	int64_t now = clock_mono_usec();

	if (pace->due_usec > now && clock_sleep_unless(pace->due_usec - now, stop, step_usec) < 0)
		return -1;
	now = clock_mono_usec();
	pace->due_usec += pace->interval_usec;
	if (pace->due_usec < now)
		pace->due_usec = now + pace->interval_usec;
	return 0;
}
