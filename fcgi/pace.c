#include "pace.h"

enum pace_step pace_next(const struct pace *pace, int newer, int64_t now_usec,
			 int64_t *wake_usec)
{
	int64_t newer_due = pace->last_new_usec + pace->min_gap_usec;
	int64_t resend_due = pace->last_sent_usec + (newer || pace->repeated ? pace->keepalive_usec
									      : pace->repeat_usec);

	if (newer && now_usec >= newer_due)
		return PACE_SEND_NEWER;
	if (now_usec >= resend_due)
		return PACE_RESEND;
	*wake_usec = newer && newer_due < resend_due ? newer_due : resend_due;
	return PACE_WAIT;
}

void pace_sent(struct pace *pace, int fresh, int64_t now_usec)
{
	pace->last_sent_usec = now_usec;
	if (fresh)
		pace->last_new_usec = now_usec;
	pace->repeated = !fresh;
}
