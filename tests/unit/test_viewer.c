/* Unit tests for fcgi/viewer.c as far as signed links reach it: a viewer
 * opened with a link's expiry (query->expires_sec) ends at exp, as when
 * the server stops (the held frame once more with the closing boundary),
 * is woken for it, and one whose exp already passed (within the clock-skew
 * grace) gets one part only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "http.h"
#include "viewer.h"

#include <string.h>

#define BOUNDARY "0123456789abcdefABCDEF01"

static void init(struct viewer *v, int64_t expires_sec)
{
	struct settings settings;
	struct query query;

	config_defaults(&settings);
	memset(&query, 0, sizeof(query));
	query.expires_sec = expires_sec;
	viewer_init(v, &settings, &query, BOUNDARY);
}

static struct bus_frame frame(uint64_t seq)
{
	struct bus_frame f;

	memset(&f, 0, sizeof(f));
	f.seq = seq;
	f.width = 64;
	f.height = 48;
	f.bytes = 100;
	return f;
}

static void test_no_link_never_ends(void **state)
{
	struct viewer v;

	(void)state;
	init(&v, 0);
	assert_int_equal(v.ends_usec, 0);
	assert_false(viewer_ending(&v, 0, INT64_MAX - 1));
	assert_true(viewer_ending(&v, 1, 0));
}

static void test_ends_at_exp(void **state)
{
	struct viewer v;
	struct bus_frame held = frame(1);
	int64_t now = clock_mono_usec(), wake = 0, exp_sec = clock_wall_usec() / USEC_PER_SEC + 60;
	int64_t ends;
	enum viewer_step step;

	(void)state;
	init(&v, exp_sec);
	ends = v.ends_usec;
	/* the wall clock's exp on the monotonic clock: 59 to 60 s from now
	 * (the wall clock's fraction of a second is below exp) */
	assert_true(ends > now + 59 * USEC_PER_SEC - USEC_PER_SEC / 10);
	assert_true(ends <= clock_mono_usec() + 60 * USEC_PER_SEC);

	/* first frame at once, then waiting: woken at ends at the latest */
	step = viewer_next(&v, 1, viewer_ending(&v, 0, now), now, &wake);
	assert_int_equal(step, VIEWER_NEWEST);
	assert_int_equal(viewer_begin(&v, step, 0, NULL, &held), VIEWER_NEWEST);
	assert_false(v.last);
	viewer_sent(&v, now);
	step = viewer_next(&v, 1, viewer_ending(&v, 0, now + 1000), now + 1000, &wake);
	assert_int_equal(step, VIEWER_WAIT);
	assert_true(wake > now && wake <= ends);

	/* at exp: the held frame once more, as the last part */
	assert_true(viewer_ending(&v, 0, ends));
	step = viewer_next(&v, 1, viewer_ending(&v, 0, ends), ends, &wake);
	assert_int_equal(step, VIEWER_HELD);
	assert_int_equal(viewer_begin(&v, step, viewer_ending(&v, 0, ends), &held, NULL),
			 VIEWER_HELD);
	assert_true(v.last);
	viewer_sent(&v, ends);
	assert_true(v.done);
	assert_int_equal(viewer_next(&v, 2, 0, ends + 1, &wake), VIEWER_END);
}

static void test_wait_for_first_frame_wakes_at_exp(void **state)
{
	struct viewer v;
	int64_t wake = 0;

	(void)state;
	/* exp one second away, keepalive (1 s) later than that */
	init(&v, clock_wall_usec() / USEC_PER_SEC + 1);
	assert_int_equal(viewer_next(&v, 0, 0, v.ends_usec - 1, &wake), VIEWER_WAIT);
	assert_int_equal(wake, v.ends_usec);
	/* no frame by exp: the request ends without a part */
	assert_int_equal(viewer_next(&v, 0, 0, v.ends_usec, &wake), VIEWER_END);
}

static void test_already_expired_sends_one_part(void **state)
{
	struct viewer v;
	struct bus_frame newest = frame(7);
	int64_t now, wake = 0;
	enum viewer_step step;

	(void)state;
	/* accepted within the grace, exp already past */
	init(&v, clock_wall_usec() / USEC_PER_SEC - 5);
	now = clock_mono_usec();
	assert_true(v.ends_usec > 0 && v.ends_usec <= now);
	step = viewer_next(&v, 7, viewer_ending(&v, 0, now), now, &wake);
	assert_int_equal(step, VIEWER_NEWEST);
	assert_int_equal(viewer_begin(&v, step, viewer_ending(&v, 0, now), NULL, &newest),
			 VIEWER_NEWEST);
	assert_true(v.last);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_link_never_ends),
		cmocka_unit_test(test_ends_at_exp),
		cmocka_unit_test(test_wait_for_first_frame_wakes_at_exp),
		cmocka_unit_test(test_already_expired_sends_one_part),
	};

	return cmocka_run_group_tests_name("viewer", tests, NULL, NULL);
}
