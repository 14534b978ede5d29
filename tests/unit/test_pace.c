/* Unit tests for pace_next (fcgi/pace.c): when a stream viewer sends
 * its next part.  A pure function of the pace, "a newer frame exists" and
 * the time, so every branch is checked with plain numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "pace.h"

#define MSEC USEC_PER_MSEC
/* An arbitrary monotonic time at which the last part went out. */
#define SENT_USEC (5000 * MSEC)
/* What *wake_usec holds before a call: a call that sends leaves it. */
#define UNTOUCHED (-1)

static struct pace pace(int64_t min_gap_usec, int repeated)
{
	struct pace p = {
		.min_gap_usec = min_gap_usec,
		.repeat_usec = 200 * MSEC,
		.keepalive_usec = 1000 * MSEC,
		.last_sent_usec = SENT_USEC,
		.last_new_usec = SENT_USEC,
		.repeated = repeated,
	};

	return p;
}

/* pace_next(P, NEWER, NOW_USEC) decides STEP, and sets the wake time to
 * WAKE_USEC (UNTOUCHED: a step that sends leaves it as it was). */
static void expect_next(const struct pace *p, int newer, int64_t now_usec,
			enum pace_step step, int64_t wake_usec)
{
	int64_t wake = UNTOUCHED;
	enum pace_step got = pace_next(p, newer, now_usec, &wake);

	if (got != step || wake != wake_usec)
		fail_msg("pace_next(newer %d, at sent%+lld us): step %d, wake %lld; "
			 "expected step %d, wake %lld", newer, (long long)(now_usec - SENT_USEC),
			 got, (long long)wake, step, (long long)wake_usec);
}

/* Without ?fps a newer frame goes at once, even right after a part. */
static void test_newer_without_gap_goes_at_once(void **state)
{
	struct pace p = pace(0, 0);

	(void)state;
	expect_next(&p, 1, SENT_USEC, PACE_SEND_NEWER, UNTOUCHED);
	expect_next(&p, 1, SENT_USEC + 1, PACE_SEND_NEWER, UNTOUCHED);
	/* a held frame already repeated does not change that */
	p.repeated = 1;
	expect_next(&p, 1, SENT_USEC, PACE_SEND_NEWER, UNTOUCHED);
}

/* With ?fps a newer frame waits for the gap, then goes; the wake time is
 * the end of the gap. */
static void test_newer_waits_for_the_gap(void **state)
{
	struct pace p = pace(200 * MSEC, 0);

	(void)state;
	expect_next(&p, 1, SENT_USEC, PACE_WAIT, SENT_USEC + 200 * MSEC);
	expect_next(&p, 1, SENT_USEC + 199999, PACE_WAIT, SENT_USEC + 200 * MSEC);
	expect_next(&p, 1, SENT_USEC + 200 * MSEC, PACE_SEND_NEWER, UNTOUCHED);
	expect_next(&p, 1, SENT_USEC + 5000 * MSEC, PACE_SEND_NEWER, UNTOUCHED);
}

/* A gap longer than the repeat interval: a newer frame waits for the gap,
 * and the held one is not repeated meanwhile. */
static void test_newer_with_long_gap_is_not_a_repeat(void **state)
{
	struct pace p = pace(500 * MSEC, 0);

	(void)state;
	expect_next(&p, 1, SENT_USEC + 300 * MSEC, PACE_WAIT, SENT_USEC + 500 * MSEC);
}

/* No newer frame: the held one goes again after repeat_usec. */
static void test_repeat_after_repeat_interval(void **state)
{
	struct pace p = pace(0, 0);

	(void)state;
	expect_next(&p, 0, SENT_USEC, PACE_WAIT, SENT_USEC + 200 * MSEC);
	expect_next(&p, 0, SENT_USEC + 199 * MSEC, PACE_WAIT, SENT_USEC + 200 * MSEC);
	expect_next(&p, 0, SENT_USEC + 200 * MSEC, PACE_RESEND, UNTOUCHED);
}

/* Once repeated, the held frame goes every keepalive_usec. */
static void test_keepalive_after_the_repeat(void **state)
{
	struct pace p = pace(0, 1);

	(void)state;
	expect_next(&p, 0, SENT_USEC + 200 * MSEC, PACE_WAIT, SENT_USEC + 1000 * MSEC);
	expect_next(&p, 0, SENT_USEC + 1000 * MSEC, PACE_RESEND, UNTOUCHED);
}

/* ?fps does not slow the repeat or the keepalive: those depend on the
 * last part only. */
static void test_gap_does_not_apply_to_repeats(void **state)
{
	struct pace p = pace(2000 * MSEC, 0);

	(void)state;
	expect_next(&p, 0, SENT_USEC + 200 * MSEC, PACE_RESEND, UNTOUCHED);
	p.repeated = 1;
	expect_next(&p, 0, SENT_USEC + 500 * MSEC, PACE_WAIT, SENT_USEC + 1000 * MSEC);
}

/* The sequence a writer goes through: part, repeat, keepalives, then a
 * newer frame, with last_sent_usec and repeated kept as the callers do. */
static void test_sequence(void **state)
{
	struct pace p = pace(0, 0);
	int64_t now = SENT_USEC, wake = UNTOUCHED;

	(void)state;
	assert_int_equal(pace_next(&p, 0, now, &wake), PACE_WAIT);
	now = wake;
	assert_int_equal(now, SENT_USEC + 200 * MSEC);
	assert_int_equal(pace_next(&p, 0, now, &wake), PACE_RESEND);
	p.repeated = 1;
	p.last_sent_usec = now;
	assert_int_equal(pace_next(&p, 0, now, &wake), PACE_WAIT);
	now = wake;
	assert_int_equal(now, SENT_USEC + 1200 * MSEC);
	assert_int_equal(pace_next(&p, 0, now, &wake), PACE_RESEND);
	p.last_sent_usec = now;
	assert_int_equal(pace_next(&p, 0, now, &wake), PACE_WAIT);
	assert_int_equal(wake, SENT_USEC + 2200 * MSEC);
	now += 10 * MSEC;
	assert_int_equal(pace_next(&p, 1, now, &wake), PACE_SEND_NEWER);
	p.repeated = 0;
	p.last_sent_usec = now;
	assert_int_equal(pace_next(&p, 0, now, &wake), PACE_WAIT);
	assert_int_equal(wake, now + 200 * MSEC);
}

/* pace_sent keeps the pace as both engines need it: a fresh frame moves
 * both times and clears repeated; a repeat moves only last_sent_usec. */
static void test_sent_fresh_and_repeat(void **state)
{
	struct pace p = pace(0, 1);

	(void)state;
	pace_sent(&p, 1, SENT_USEC + 10 * MSEC);
	assert_int_equal(p.last_sent_usec, SENT_USEC + 10 * MSEC);
	assert_int_equal(p.last_new_usec, SENT_USEC + 10 * MSEC);
	assert_int_equal(p.repeated, 0);
	pace_sent(&p, 0, SENT_USEC + 20 * MSEC);
	assert_int_equal(p.last_sent_usec, SENT_USEC + 20 * MSEC);
	assert_int_equal(p.last_new_usec, SENT_USEC + 10 * MSEC);
	assert_int_equal(p.repeated, 1);
}

/* While a newer frame waits for a ?fps gap longer than keepalive_usec, the
 * held frame goes again every keepalive_usec (not after repeat_usec: the
 * viewer asked for fewer parts). */
static void test_keepalive_while_newer_waits(void **state)
{
	struct pace p = pace(20000 * MSEC, 0);

	(void)state;
	expect_next(&p, 1, SENT_USEC + 200 * MSEC, PACE_WAIT, SENT_USEC + 1000 * MSEC);
	expect_next(&p, 1, SENT_USEC + 1000 * MSEC, PACE_RESEND, UNTOUCHED);
	pace_sent(&p, 0, SENT_USEC + 1000 * MSEC);
	expect_next(&p, 1, SENT_USEC + 1500 * MSEC, PACE_WAIT, SENT_USEC + 2000 * MSEC);
}

/* The ?fps gap runs from when the held frame first went out, not from its
 * last repeat: repeats do not delay the next new frame. */
static void test_gap_counts_from_the_new_frame(void **state)
{
	struct pace p = pace(2000 * MSEC, 1);

	(void)state;
	p.last_sent_usec = SENT_USEC + 1500 * MSEC; /* a keepalive */
	expect_next(&p, 1, SENT_USEC + 1900 * MSEC, PACE_WAIT, SENT_USEC + 2000 * MSEC);
	expect_next(&p, 1, SENT_USEC + 2000 * MSEC, PACE_SEND_NEWER, UNTOUCHED);
}

/* ?fps=0.05 on a stream that always has a newer frame, for 45 s of
 * simulated time, the callers' bookkeeping done with pace_sent: a part at
 * least every keepalive_usec, and new frames at 0, 20 and 40 s only. */
static void test_low_fps_never_silent(void **state)
{
	const int64_t gap = 20000 * MSEC, end = SENT_USEC + 45000 * MSEC;
	struct pace p = pace(gap, 0);
	int64_t now = SENT_USEC, last_part = SENT_USEC, fresh_at[8];
	int fresh_count = 1, parts = 1;

	(void)state;
	fresh_at[0] = SENT_USEC;
	while (now < end) {
		int64_t wake = UNTOUCHED;
		enum pace_step step = pace_next(&p, 1, now, &wake);

		if (step == PACE_WAIT) {
			assert_true(wake > now);
			now = wake;
			continue;
		}
		assert_true(now - last_part <= p.keepalive_usec);
		if (step == PACE_SEND_NEWER) {
			assert_true(fresh_count < 8);
			fresh_at[fresh_count++] = now;
		}
		pace_sent(&p, step == PACE_SEND_NEWER, now);
		last_part = now;
		parts++;
	}
	assert_int_equal(fresh_count, 3);
	for (int i = 0; i < fresh_count; i++)
		assert_int_equal(fresh_at[i], SENT_USEC + i * gap);
	/* one part a second: the new frames and the keepalives between */
	assert_int_equal(parts, 45); /* 0 to 44 s */
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
		cmocka_unit_test(test_sent_fresh_and_repeat),
		cmocka_unit_test(test_keepalive_while_newer_waits),
		cmocka_unit_test(test_gap_counts_from_the_new_frame),
		cmocka_unit_test(test_low_fps_never_silent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
