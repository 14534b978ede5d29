/* Unit tests for fcgi/parse.c: the strict number readers behind config
 * keys, options, query parameters and CONTENT_LENGTH. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parse.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* A value parse_long never produces in these tests: proves a
 * rejected input leaves *out alone. */
#define UNTOUCHED 424242L

/* ---- parse_long ---------------------------------------------------- */

static void assert_long_ok(const char *text, long min, long max, long expected)
{
	long out = UNTOUCHED;

	if (parse_long(text, min, max, &out) != 0)
		fail_msg("parse_long(\"%s\", %ld, %ld) rejected", text, min, max);
	assert_int_equal(out, expected);
}

static void assert_long_bad(const char *text, long min, long max)
{
	long out = UNTOUCHED;

	if (parse_long(text, min, max, &out) != -1)
		fail_msg("parse_long(\"%s\", %ld, %ld) accepted as %ld", text ? text : "(null)",
			 min, max, out);
	assert_int_equal(out, UNTOUCHED);
}

static void test_parse_long_valid(void **state)
{
	(void)state;
	assert_long_ok("0", 0, 10, 0);
	assert_long_ok("7", 0, 10, 7);
	assert_long_ok("1000000", 1, 1000000000L, 1000000);
	assert_long_ok("007", 0, 10, 7);
	assert_long_ok("-5", -10, 10, -5);
	assert_long_ok("9223372036854775807", 0, LONG_MAX, LONG_MAX);
	assert_long_ok("-9223372036854775808", LONG_MIN, 0, LONG_MIN);
}

static void test_parse_long_rejects_spaces_and_signs(void **state)
{
	(void)state;
	assert_long_bad(" 5", 0, 10);
	assert_long_bad("\t5", 0, 10);
	assert_long_bad(" -5", -10, 10);
	assert_long_bad("+5", 0, 10);
	assert_long_bad("-+5", -10, 10);
	assert_long_bad("--5", -10, 10);
	assert_long_bad("-", -10, 10);
	assert_long_bad("", 0, 10);
	assert_long_bad(NULL, 0, 10);
}

static void test_parse_long_rejects_trailing_junk(void **state)
{
	(void)state;
	assert_long_bad("5 ", 0, 10);
	assert_long_bad("5\n", 0, 10);
	assert_long_bad("5a", 0, 10);
	assert_long_bad("0x10", 0, 100);
	assert_long_bad("1.0", 0, 10);
	assert_long_bad("1e3", 0, 10000);
}

static void test_parse_long_rejects_overflow(void **state)
{
	(void)state;
	assert_long_bad("9223372036854775808", 0, LONG_MAX);
	assert_long_bad("-9223372036854775809", LONG_MIN, 0);
	assert_long_bad("99999999999999999999999", LONG_MIN, LONG_MAX);
}

static void test_parse_long_bounds_inclusive(void **state)
{
	(void)state;
	assert_long_ok("1", 1, 100, 1);
	assert_long_ok("100", 1, 100, 100);
	assert_long_bad("0", 1, 100);
	assert_long_bad("101", 1, 100);
	assert_long_bad("-1", 0, 100);
	assert_long_ok("-10", -10, -1, -10);
	assert_long_bad("-11", -10, -1);
	assert_long_bad("0", -10, -1);
}

/* ---- parse_decimal ------------------------------------------------------ */

static void test_parse_decimal(void **state)
{
	double out = -1;

	(void)state;
	assert_int_equal(parse_decimal("12", 0.01, 240, &out), 0);
	assert_true(out == 12.0);
	assert_int_equal(parse_decimal("29.97", 0.01, 240, &out), 0);
	assert_true(out == 29.97);
	assert_int_equal(parse_decimal(".5", 0.01, 240, &out), 0);
	assert_true(out == 0.5);
	assert_int_equal(parse_decimal("5.", 0.01, 240, &out), 0);
	assert_true(out == 5.0);
	assert_int_equal(parse_decimal("240", 0.01, 240, &out), 0);
	out = -1;
	assert_int_equal(parse_decimal("240.01", 0.01, 240, &out), -1);
	assert_int_equal(parse_decimal("0", 0.01, 240, &out), -1);
	assert_int_equal(parse_decimal("-1", -5, 240, &out), -1);
	assert_int_equal(parse_decimal("+1", 0.01, 240, &out), -1);
	assert_int_equal(parse_decimal("1e2", 0.01, 240, &out), -1);
	assert_int_equal(parse_decimal("0x10", 0.01, 240, &out), -1);
	assert_int_equal(parse_decimal(" 1", 0.01, 240, &out), -1);
	assert_int_equal(parse_decimal("1 ", 0.01, 240, &out), -1);
	assert_int_equal(parse_decimal("1.2.3", 0.01, 240, &out), -1);
	assert_int_equal(parse_decimal(".", 0.01, 240, &out), -1);
	assert_int_equal(parse_decimal("", 0.01, 240, &out), -1);
	assert_int_equal(parse_decimal(NULL, 0.01, 240, &out), -1);
	assert_int_equal(parse_decimal("nan", 0.01, 240, &out), -1);
	/* at most 32 bytes */
	assert_int_equal(parse_decimal("0000000000000000000000000000001", 0.01, 240, &out), 0);
	assert_int_equal(parse_decimal("00000000000000000000000000000001", 0.01, 240, &out), 0);
	assert_int_equal(parse_decimal("000000000000000000000000000000001", 0.01, 240, &out), -1);
	assert_true(out == 1.0);
}

/* ---- parse_size --------------------------------------------------------- */

static void test_parse_size(void **state)
{
	uint32_t w = 7, h = 7;

	(void)state;
	assert_int_equal(parse_size("640x480", 8192, &w, &h), 0);
	assert_int_equal(w, 640);
	assert_int_equal(h, 480);
	assert_int_equal(parse_size("1x8192", 8192, &w, &h), 0);
	assert_int_equal(w, 1);
	assert_int_equal(h, 8192);
	w = h = 7;
	assert_int_equal(parse_size("8193x10", 8192, &w, &h), -1);
	assert_int_equal(parse_size("0x10", 8192, &w, &h), -1);
	assert_int_equal(parse_size("10x", 8192, &w, &h), -1);
	assert_int_equal(parse_size("x10", 8192, &w, &h), -1);
	assert_int_equal(parse_size("10", 8192, &w, &h), -1);
	assert_int_equal(parse_size("10X10", 8192, &w, &h), -1);
	assert_int_equal(parse_size("10 x10", 8192, &w, &h), -1);
	assert_int_equal(parse_size("10x10x10", 8192, &w, &h), -1);
	assert_int_equal(parse_size("-10x10", 8192, &w, &h), -1);
	assert_int_equal(parse_size("000000000000000010x10", 8192, &w, &h), -1);
	assert_int_equal(parse_size(NULL, 8192, &w, &h), -1);
	assert_int_equal(w, 7);
	assert_int_equal(h, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_long_valid),
		cmocka_unit_test(test_parse_long_rejects_spaces_and_signs),
		cmocka_unit_test(test_parse_long_rejects_trailing_junk),
		cmocka_unit_test(test_parse_long_rejects_overflow),
		cmocka_unit_test(test_parse_long_bounds_inclusive),
		cmocka_unit_test(test_parse_decimal),
		cmocka_unit_test(test_parse_size),
	};

	return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
