/* Unit tests for fcgi/option.c: reading values of every kind into their
 * fields, the messages made from a row, defaults, getopt's table and the
 * lines of --help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "option.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sample {
	char text[8];
	char checked[8];
	int count;
	size_t bytes;
	int64_t msec_usec;
	int64_t sec_usec;
	int name;
};

static const char *const colours[] = { "red", "green", "blue", NULL };

static int starts_with_slash(const char *value)
{
	return value[0] == '/';
}

#define FIELD(f) OPTION_FIELD(struct sample, f)

static const struct option_row rows[] = {
	{ .name = "text", .key = "text", .arg = "T", .kind = OPTION_TEXT, FIELD(text),
	  .min = 1, .def = "abc", .help = "a text" },
	{ .name = "checked", .key = "checked", .arg = "P", .kind = OPTION_CHECKED,
	  FIELD(checked), .def = "/", .check = starts_with_slash,
	  .why = "must begin with '/'", .help = "a path" },
	{ .name = "count", .key = "count", .arg = "N", .kind = OPTION_COUNT, FIELD(count),
	  .min = 1, .max = 10, .def = "5", .help = "a count" },
	{ .name = "bytes", .key = "bytes", .arg = "N", .kind = OPTION_BYTES, FIELD(bytes),
	  .min = 1024, .max = 4096, .def = "2048", .help = "a size" },
	{ .name = "wait-ms", .key = "wait_ms", .arg = "N", .kind = OPTION_MSEC, FIELD(msec_usec),
	  .min = 0, .max = 60000, .def = "250", .help = "a wait" },
	{ .name = "pause-s", .key = "pause_s", .arg = "N", .kind = OPTION_SEC, FIELD(sec_usec),
	  .min = 1, .max = 86400, .def = "3", .help = "a pause" },
	{ .name = "colour", .key = "colour", .arg = "C", .kind = OPTION_NAME, FIELD(name),
	  .names = colours, .def = "green", .help = "a colour" },
	{ .name = "file", .arg = "FILE", .kind = OPTION_COMMAND, .shown = "none",
	  .help = "a long help text that must wrap over more than one line of --help, "
		  "because it goes on and on past the seventy-ninth column" },
	{ .name = "help", .kind = OPTION_COMMAND, .help = "this text" },
};

#define ROWS (sizeof(rows) / sizeof(rows[0]))

static void test_defaults(void **state)
{
	struct sample s;

	(void)state;
	memset(&s, 0, sizeof(s));
	option_defaults(rows, ROWS, &s);
	assert_string_equal(s.text, "abc");
	assert_string_equal(s.checked, "/");
	assert_int_equal(s.count, 5);
	assert_int_equal(s.bytes, 2048);
	assert_int_equal(s.msec_usec, 250000);
	assert_int_equal(s.sec_usec, 3000000);
	assert_int_equal(s.name, 1);
	assert_ptr_equal(option_find_key(rows, ROWS, "wait_ms"), &rows[4]);
	assert_null(option_find_key(rows, ROWS, "wait-ms"));
	assert_null(option_find_key(rows, ROWS, "file"));
}

/* Applies value to row i and expects the message, the field unchanged. */
static void assert_refused(struct sample *s, size_t i, const char *value, const char *message)
{
	struct sample before = *s;
	char why[256] = "";

	assert_int_equal(option_apply(&rows[i], s, value, why, sizeof(why)), -1);
	assert_string_equal(why, message);
	assert_memory_equal(&before, s, sizeof(before));
}

static void test_apply(void **state)
{
	struct sample s;
	char why[256];

	(void)state;
	memset(&s, 0, sizeof(s));
	option_defaults(rows, ROWS, &s);
	assert_int_equal(option_apply(&rows[0], &s, "1234567", why, sizeof(why)), 0);
	assert_string_equal(s.text, "1234567");
	assert_refused(&s, 0, "12345678", "empty or too long");
	assert_refused(&s, 0, "", "empty or too long");
	assert_int_equal(option_apply(&rows[1], &s, "/x/", why, sizeof(why)), 0);
	assert_string_equal(s.checked, "/x/");
	assert_refused(&s, 1, "x/", "must begin with '/'");
	assert_refused(&s, 1, "/2345678", "must begin with '/'");
	assert_int_equal(option_apply(&rows[2], &s, "10", why, sizeof(why)), 0);
	assert_int_equal(s.count, 10);
	assert_refused(&s, 2, "11", "must be a whole number from 1 to 10");
	assert_refused(&s, 2, " 7", "must be a whole number from 1 to 10");
	assert_int_equal(option_apply(&rows[3], &s, "4096", why, sizeof(why)), 0);
	assert_int_equal(s.bytes, 4096);
	assert_refused(&s, 3, "1023", "must be a whole number of bytes from 1024 to 4096");
	assert_int_equal(option_apply(&rows[4], &s, "0", why, sizeof(why)), 0);
	assert_int_equal(s.msec_usec, 0);
	assert_refused(&s, 4, "60001", "must be a whole number of milliseconds from 0 to 60000");
	assert_int_equal(option_apply(&rows[5], &s, "86400", why, sizeof(why)), 0);
	assert_int_equal(s.sec_usec, 86400000000LL);
	assert_refused(&s, 5, "1.5", "must be a whole number of seconds from 1 to 86400");
	assert_int_equal(option_apply(&rows[6], &s, "blue", why, sizeof(why)), 0);
	assert_int_equal(s.name, 2);
	assert_refused(&s, 6, "Blue", "must be red, green or blue");
}

static void test_getopt_table(void **state)
{
	struct option table[ROWS + 1];
	size_t i;

	(void)state;
	memset(table, 0x5a, sizeof(table));
	option_getopt_table(rows, ROWS, table);
	for (i = 0; i < ROWS; i++) {
		assert_string_equal(table[i].name, rows[i].name);
		assert_int_equal(table[i].has_arg, rows[i].arg ? required_argument : no_argument);
		assert_null(table[i].flag);
		assert_int_equal(table[i].val, OPTION_GETOPT_BASE + (int)i);
	}
	assert_null(table[ROWS].name);
	assert_int_equal(table[ROWS].val, 0);
}

static void test_help(void **state)
{
	char text[4096], *line, *save = NULL;
	FILE *out = fmemopen(text, sizeof(text), "w");
	size_t n;

	(void)state;
	assert_non_null(out);
	option_print_help(out, rows, ROWS);
	n = (size_t)ftell(out);
	fclose(out);
	text[n < sizeof(text) ? n : sizeof(text) - 1] = '\0';
	assert_non_null(strstr(text, "  --count N              a count (1 to 10; default 5)\n"));
	assert_non_null(strstr(text, "  --colour C             a colour (red, green or blue; default "
				     "green)\n"));
	assert_non_null(strstr(text, "  --text T               a text (default abc)\n"));
	assert_non_null(strstr(text, "  --help                 this text\n"));
	assert_non_null(strstr(text, "  --file FILE            a long help text"));
	assert_non_null(strstr(text, "(default none)\n"));
	/* wrapped at 79 columns, continuation lines indented to the help */
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strlen(line) > 79)
			fail_msg("line of %zu columns: %s", strlen(line), line);
		if (strncmp(line, "  --", 4) != 0 && strncmp(line, "                         ", 25))
			fail_msg("continuation not indented: %s", line);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_getopt_table),
		cmocka_unit_test(test_help),
	};

	return cmocka_run_group_tests_name("option", tests, NULL, NULL);
}
