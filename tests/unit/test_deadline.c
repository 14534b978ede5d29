/* deadline: a read blocked past its deadline ends (returns 0) because the
 * watchdog shut the socket for reading; one disarmed in time never fires;
 * writes still work after it fired; many deadlines at once fire in order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "clock.h"
#include "deadline.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* How far past its deadline a read may end.  The watchdog wakes at the
 * deadline; this is room for a loaded machine or a sanitized build, and
 * still far below the EXPECT_NEVER_USEC bound a missing wake-up would
 * take (the read would then block until the test's socket time-out). */
#define LATE_MARGIN_USEC (2 * USEC_PER_SEC)
#define DEADLINE_USEC (100 * USEC_PER_MSEC)

struct fixture {
	struct deadlines *w;
	int pair[2];
};

static int setup(void **state)
{
	struct fixture *f = tu_alloc(sizeof(*f));

	f->w = deadlines_start();
	assert_non_null(f->w);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->pair), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->pair[0]);
	close(f->pair[1]);
	deadlines_stop(f->w);
	return tu_release(state);
}

/* A read with nothing to read blocks until the deadline, then ends with
 * 0 (end of input), not a time-out of its own; the deadline says it fired,
 * and the other end can still be written to. */
static void test_blocked_read_ends_at_the_deadline(void **state)
{
	struct fixture *f = *state;
	struct deadline d;
	int64_t start = clock_mono_usec(), took;
	char c;

	assert_int_equal(deadline_arm(f->w, &d, f->pair[0], start + DEADLINE_USEC), 0);
	assert_int_equal(read(f->pair[0], &c, 1), 0);
	took = clock_mono_usec() - start;
	assert_int_equal(deadline_disarm(f->w, &d), 1);
	assert_true(took >= DEADLINE_USEC);
	assert_true(took < DEADLINE_USEC + LATE_MARGIN_USEC);
	/* An answer can still go out. */
	assert_int_equal(write(f->pair[0], "x", 1), 1);
	assert_int_equal(read(f->pair[1], &c, 1), 1);
}

/* A dribbling peer (a byte now and then, each read succeeding) does not
 * stretch the deadline: the sum of the reads is bounded. */
static void test_dribble_does_not_stretch_it(void **state)
{
	struct fixture *f = *state;
	struct deadline d;
	int64_t start = clock_mono_usec();
	char c;
	int reads = 0;

	assert_int_equal(deadline_arm(f->w, &d, f->pair[0], start + DEADLINE_USEC), 0);
	for (;;) {
		ssize_t n;

		/* Fails (EPIPE) once the watchdog shut the other end. */
		if (send(f->pair[1], "y", 1, MSG_NOSIGNAL) != 1)
			break;
		n = read(f->pair[0], &c, 1);
		if (n <= 0)
			break;
		reads++;
		clock_sleep_usec(10 * USEC_PER_MSEC);
		/* A watchdog that never fires would loop here for ever: the
		 * bound below fails the test instead. */
		assert_true(clock_mono_usec() - start < DEADLINE_USEC + LATE_MARGIN_USEC);
	}
	assert_int_equal(deadline_disarm(f->w, &d), 1);
	assert_true(reads > 0);
}

/* Disarmed before it is due: never fires, the socket stays readable, and
 * the descriptor the watchdog held is closed (no leak). */
static void test_disarmed_in_time_never_fires(void **state)
{
	struct fixture *f = *state;
	struct deadline d;
	char c;
	int held;

	assert_int_equal(deadline_arm(f->w, &d, f->pair[0], clock_mono_usec() + DEADLINE_USEC), 0);
	held = d.fd;
	assert_true(held >= 0);
	assert_int_equal(deadline_disarm(f->w, &d), 0);
	assert_int_equal(fcntl(held, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	clock_sleep_usec(2 * DEADLINE_USEC);
	assert_int_equal(write(f->pair[1], "z", 1), 1);
	assert_int_equal(read(f->pair[0], &c, 1), 1);
	assert_int_equal(c, 'z');
}

/* The watchdog shuts the socket it was given even when the caller's own
 * descriptor was closed (and its number perhaps reused) meanwhile. */
static void test_holds_its_own_descriptor(void **state)
{
	struct fixture *f = *state;
	struct deadline d;
	int mine = dup(f->pair[0]), other[2];
	char c;

	assert_true(mine >= 0);
	assert_int_equal(deadline_arm(f->w, &d, mine, clock_mono_usec() + DEADLINE_USEC), 0);
	close(mine);
	/* Likely the same number again, now another socket. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, other), 0);
	assert_int_equal(read(f->pair[0], &c, 1), 0);
	assert_int_equal(deadline_disarm(f->w, &d), 1);
	assert_int_equal(write(other[1], "o", 1), 1);
	assert_int_equal(read(other[0], &c, 1), 1); /* the other socket untouched */
	close(other[0]);
	close(other[1]);
}

/* Several armed at once, the later first: each fires at its own time. */
static void test_several_fire_each_at_its_time(void **state)
{
	struct fixture *f = *state;
	struct deadline early, late;
	int other[2];
	int64_t start = clock_mono_usec();
	char c;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, other), 0);
	assert_int_equal(deadline_arm(f->w, &late, other[0], start + 3 * DEADLINE_USEC), 0);
	assert_int_equal(deadline_arm(f->w, &early, f->pair[0], start + DEADLINE_USEC), 0);
	assert_int_equal(read(f->pair[0], &c, 1), 0);
	/* The late one may not have fired by now unless the machine stalled
	 * for 2 deadlines: it is checked only after its own read ends. */
	assert_int_equal(read(other[0], &c, 1), 0);
	assert_true(clock_mono_usec() - start >= 3 * DEADLINE_USEC);
	assert_int_equal(deadline_disarm(f->w, &early), 1);
	assert_int_equal(deadline_disarm(f->w, &late), 1);
	close(other[0]);
	close(other[1]);
}

/* deadlines_expire (the server stops): a read blocked under a deadline
 * far away ends at once, and a deadline armed afterwards fires at once.
 * Without it both reads would block until their deadline an hour away;
 * the sockets' own 10 s time-out then fails the test (-1, not 0). */
static void test_expire_ends_every_read_at_once(void **state)
{
	struct fixture *f = *state;
	struct deadline d;
	int64_t far = clock_mono_usec() + 3600 * USEC_PER_SEC, start;
	char c;
	struct timeval ten = { .tv_sec = 10 };

	assert_int_equal(setsockopt(f->pair[0], SOL_SOCKET, SO_RCVTIMEO, &ten, sizeof(ten)), 0);
	assert_int_equal(setsockopt(f->pair[1], SOL_SOCKET, SO_RCVTIMEO, &ten, sizeof(ten)), 0);
	assert_int_equal(deadline_arm(f->w, &d, f->pair[0], far), 0);
	deadlines_expire(f->w);
	start = clock_mono_usec();
	assert_int_equal(read(f->pair[0], &c, 1), 0);
	assert_int_equal(deadline_disarm(f->w, &d), 1);

	assert_int_equal(deadline_arm(f->w, &d, f->pair[1], far), 0);
	assert_int_equal(read(f->pair[1], &c, 1), 0);
	assert_int_equal(deadline_disarm(f->w, &d), 1);
	assert_true(clock_mono_usec() - start < LATE_MARGIN_USEC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_blocked_read_ends_at_the_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dribble_does_not_stretch_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disarmed_in_time_never_fires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holds_its_own_descriptor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_fire_each_at_its_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_ends_every_read_at_once, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
