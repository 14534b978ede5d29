/* Unit tests for viewer_next (fcgi/viewer.c): when a stream viewer sends
 * its next part.  A pure function of the pace, "a newer frame exists" and
 * the time, so every branch is checked with plain numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "viewer.h"

#define MSEC USEC_PER_MSEC
/* An arbitrary monotonic time at which the last part went out. */
#define SENT_USEC (5000 * MSEC)
/* What *wake_usec holds before a call: a call that sends leaves it. */
#define UNTOUCHED (-1)

static struct viewer_pace pace(int64_t min_gap_usec, int repeated)
{
	struct viewer_pace p = {
		.min_gap_usec = min_gap_usec,
		.repeat_usec = 200 * MSEC,
		.keepalive_usec = 1000 * MSEC,
		.last_sent_usec = SENT_USEC,
		.repeated = repeated,
	};

	return p;
}

/* Without ?fps a newer frame goes at once, even right after a part. */
static void test_newer_without_gap_goes_at_once(void **state)
{
	struct viewer_pace p = pace(0, 0);
	int64_t wake = UNTOUCHED;

	(void)state;
	assert_int_equal(viewer_next(&p, 1, SENT_USEC, &wake), VIEWER_SEND_NEWER);
	assert_int_equal(wake, UNTOUCHED);
	assert_int_equal(viewer_next(&p, 1, SENT_USEC + 1, &wake), VIEWER_SEND_NEWER);
	/* a held frame already repeated does not change that */
	p.repeated = 1;
	assert_int_equal(viewer_next(&p, 1, SENT_USEC, &wake), VIEWER_SEND_NEWER);
	assert_int_equal(wake, UNTOUCHED);
}

/* With ?fps a newer frame waits for the gap, then goes; the wake time is
 * the end of the gap. */
static void test_newer_waits_for_the_gap(void **state)
{
	struct viewer_pace p = pace(200 * MSEC, 0);
	int64_t wake = UNTOUCHED;

	(void)state;
	assert_int_equal(viewer_next(&p, 1, SENT_USEC, &wake), VIEWER_WAIT);
	assert_int_equal(wake, SENT_USEC + 200 * MSEC);
	wake = UNTOUCHED;
	assert_int_equal(viewer_next(&p, 1, SENT_USEC + 199999, &wake), VIEWER_WAIT);
	assert_int_equal(wake, SENT_USEC + 200 * MSEC);
	wake = UNTOUCHED;
	assert_int_equal(viewer_next(&p, 1, SENT_USEC + 200 * MSEC, &wake), VIEWER_SEND_NEWER);
	assert_int_equal(wake, UNTOUCHED);
	assert_int_equal(viewer_next(&p, 1, SENT_USEC + 5000 * MSEC, &wake), VIEWER_SEND_NEWER);
}

/* A gap longer than the repeat interval: a newer frame waits for the gap,
 * and the held one is not repeated meanwhile. */
static void test_newer_with_long_gap_is_not_a_repeat(void **state)
{
	struct viewer_pace p = pace(500 * MSEC, 0);
	int64_t wake = UNTOUCHED;

	(void)state;
	assert_int_equal(viewer_next(&p, 1, SENT_USEC + 300 * MSEC, &wake), VIEWER_WAIT);
	assert_int_equal(wake, SENT_USEC + 500 * MSEC);
}

/* No newer frame: the held one goes again after repeat_usec. */
static void test_repeat_after_repeat_interval(void **state)
{
	struct viewer_pace p = pace(0, 0);
	int64_t wake = UNTOUCHED;

	(void)state;
	assert_int_equal(viewer_next(&p, 0, SENT_USEC, &wake), VIEWER_WAIT);
	assert_int_equal(wake, SENT_USEC + 200 * MSEC);
	wake = UNTOUCHED;
	assert_int_equal(viewer_next(&p, 0, SENT_USEC + 199 * MSEC, &wake), VIEWER_WAIT);
	assert_int_equal(wake, SENT_USEC + 200 * MSEC);
	wake = UNTOUCHED;
	assert_int_equal(viewer_next(&p, 0, SENT_USEC + 200 * MSEC, &wake), VIEWER_RESEND);
	assert_int_equal(wake, UNTOUCHED);
}

/* Once repeated, the held frame goes every keepalive_usec. */
static void test_keepalive_after_the_repeat(void **state)
{
	struct viewer_pace p = pace(0, 1);
	int64_t wake = UNTOUCHED;

	(void)state;
	assert_int_equal(viewer_next(&p, 0, SENT_USEC + 200 * MSEC, &wake), VIEWER_WAIT);
	assert_int_equal(wake, SENT_USEC + 1000 * MSEC);
	wake = UNTOUCHED;
	assert_int_equal(viewer_next(&p, 0, SENT_USEC + 1000 * MSEC, &wake), VIEWER_RESEND);
	assert_int_equal(wake, UNTOUCHED);
}

/* ?fps does not slow the repeat or the keepalive: those depend on the
 * last part only. */
static void test_gap_does_not_apply_to_repeats(void **state)
{
	struct viewer_pace p = pace(2000 * MSEC, 0);
	int64_t wake = UNTOUCHED;

	(void)state;
	assert_int_equal(viewer_next(&p, 0, SENT_USEC + 200 * MSEC, &wake), VIEWER_RESEND);
	p.repeated = 1;
	assert_int_equal(viewer_next(&p, 0, SENT_USEC + 500 * MSEC, &wake), VIEWER_WAIT);
	assert_int_equal(wake, SENT_USEC + 1000 * MSEC);
}

/* The sequence a writer goes through: part, repeat, keepalives, then a
 * newer frame, with last_sent_usec and repeated kept as the callers do. */
static void test_sequence(void **state)
{
	struct viewer_pace p = pace(0, 0);
	int64_t now = SENT_USEC, wake = UNTOUCHED;

	(void)state;
	assert_int_equal(viewer_next(&p, 0, now, &wake), VIEWER_WAIT);
	now = wake;
	assert_int_equal(now, SENT_USEC + 200 * MSEC);
	assert_int_equal(viewer_next(&p, 0, now, &wake), VIEWER_RESEND);
	p.repeated = 1;
	p.last_sent_usec = now;
	assert_int_equal(viewer_next(&p, 0, now, &wake), VIEWER_WAIT);
	now = wake;
	assert_int_equal(now, SENT_USEC + 1200 * MSEC);
	assert_int_equal(viewer_next(&p, 0, now, &wake), VIEWER_RESEND);
	p.last_sent_usec = now;
	assert_int_equal(viewer_next(&p, 0, now, &wake), VIEWER_WAIT);
	assert_int_equal(wake, SENT_USEC + 2200 * MSEC);
	now += 10 * MSEC;
	assert_int_equal(viewer_next(&p, 1, now, &wake), VIEWER_SEND_NEWER);
	p.repeated = 0;
	p.last_sent_usec = now;
	assert_int_equal(viewer_next(&p, 0, now, &wake), VIEWER_WAIT);
	assert_int_equal(wake, now + 200 * MSEC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_newer_without_gap_goes_at_once),
		cmocka_unit_test(test_newer_waits_for_the_gap),
		cmocka_unit_test(test_newer_with_long_gap_is_not_a_repeat),
		cmocka_unit_test(test_repeat_after_repeat_interval),
		cmocka_unit_test(test_keepalive_after_the_repeat),
		cmocka_unit_test(test_gap_does_not_apply_to_repeats),
		cmocka_unit_test(test_sequence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
