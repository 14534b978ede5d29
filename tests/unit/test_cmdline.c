/* Unit tests for fcgi/cmdline.c: an exec: command line split into argv as
 * a POSIX shell splits words (quotes, backslashes), with no expansion; the
 * expected words are what sh itself makes of the same lines (checked
 * against sh in test_cmdline_matches_sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cmdline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Splits line and checks its words: expected ends with NULL. */
static void assert_words(const char *line, const char *const *expected)
{
	struct cmdline cl;
	char why[128];
	int i;

	if (cmdline_split(line, 0, &cl, why, sizeof(why)) != 0)
		fail_msg("cmdline_split(%s) refused: %s", line, why);
	for (i = 0; expected[i]; i++) {
		if (i >= cl.argc)
			fail_msg("%s: %d words, expected more", line, cl.argc);
		assert_string_equal(cl.argv[i], expected[i]);
	}
	assert_int_equal(cl.argc, i);
	assert_null(cl.argv[cl.argc]);
	cmdline_free(&cl);
	assert_null(cl.argv);
	cmdline_free(&cl); /* twice is harmless */
}

static void assert_refused(const char *line, size_t offset, const char *expected_why)
{
	struct cmdline cl;
	char why[128] = "";

	assert_int_equal(cmdline_split(line, offset, &cl, why, sizeof(why)), -1);
	assert_string_equal(why, expected_why);
	assert_null(cl.argv);
	assert_int_equal(cl.argc, 0);
}

#define WORDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_cmdline_blanks_separate_words(void **state)
{
	(void)state;
	assert_words("ffmpeg", WORDS("ffmpeg"));
	assert_words("ffmpeg -i x -f mjpeg -", WORDS("ffmpeg", "-i", "x", "-f", "mjpeg", "-"));
	assert_words("  a \t b\n c  ", WORDS("a", "b", "c"));
}

static void test_cmdline_single_quotes_keep_everything(void **state)
{
	(void)state;
	assert_words("sh -c 'echo \"a  b\" $HOME \\n'",
		     WORDS("sh", "-c", "echo \"a  b\" $HOME \\n"));
	assert_words("a'b c'd", WORDS("ab cd"));
	assert_words("'' x", WORDS("", "x"));
	assert_words("x ''", WORDS("x", ""));
}

static void test_cmdline_double_quotes_escape_few(void **state)
{
	(void)state;
	/* \" \\ \$ \` lose their backslash; \n keeps it */
	assert_words("\"a \\\" \\\\ \\$ \\` \\n b\"", WORDS("a \" \\ $ ` \\n b"));
	assert_words("\"\"", WORDS(""));
	assert_words("\"line\\\nnext\"", WORDS("linenext"));
	assert_words("x\"y z\"'w'", WORDS("xy zw"));
}

static void test_cmdline_backslash_outside_quotes(void **state)
{
	(void)state;
	assert_words("a\\ b c", WORDS("a b", "c"));
	assert_words("\\'x\\\"", WORDS("'x\""));
	assert_words("a\\\nb", WORDS("ab"));
	assert_words("\\\\", WORDS("\\"));
}

static void test_cmdline_no_expansion(void **state)
{
	(void)state;
	assert_words("echo $HOME ~ * `id` $(id) a;b a|b >f",
		     WORDS("echo", "$HOME", "~", "*", "`id`", "$(id)", "a;b", "a|b", ">f"));
}

static void test_cmdline_errors_name_the_column(void **state)
{
	(void)state;
	assert_refused("sh -c 'echo", 0, "unterminated ' quote opened at column 7");
	assert_refused("sh -c 'echo", 5, "unterminated ' quote opened at column 12");
	assert_refused("a \"b", 0, "unterminated \" quote opened at column 3");
	assert_refused("a \"b\\\"", 0, "unterminated \" quote opened at column 3");
	assert_refused("abc\\", 0, "a backslash at column 4 ends the command");
	assert_refused("", 0, "no command");
	assert_refused(" \t\n", 0, "no command");
}

/* The words sh makes of line, by running it with printf '%s\n': the lines
 * here hold no newline inside a word, and nothing sh would expand. */
static void sh_words(const char *line, char *out, size_t size)
{
	char script[512];
	int fds[2];
	pid_t pid;
	size_t used = 0;
	ssize_t n;
	int status;

	snprintf(script, sizeof(script), "printf '%%s\\n' %s", line);
	if (pipe(fds) < 0)
		fail_msg("pipe failed");
	pid = fork();
	if (pid < 0)
		fail_msg("fork failed");
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (used + 1 < size && (n = read(fds[0], out + used, size - used - 1)) > 0)
		used += (size_t)n;
	out[used] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_cmdline_matches_sh(void **state)
{
	static const char *const lines[] = {
		"a 'b c' \"d e\" f\\ g",
		"\"a \\\" \\\\ \\n b\" 'c\\d'",
		"x\"y z\"'w' '' \"\"",
		"-f mjpeg -q:v 5 -",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		char expected[512], got[512];
		struct cmdline cl;
		size_t used = 0;
		int w;

		sh_words(lines[i], expected, sizeof(expected));
		assert_int_equal(cmdline_split(lines[i], 0, &cl, got, sizeof(got)), 0);
		for (w = 0; w < cl.argc; w++)
			used += (size_t)snprintf(got + used, sizeof(got) - used, "%s\n",
						 cl.argv[w]);
		cmdline_free(&cl);
		assert_string_equal(got, expected);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmdline_blanks_separate_words),
		cmocka_unit_test(test_cmdline_single_quotes_keep_everything),
		cmocka_unit_test(test_cmdline_double_quotes_escape_few),
		cmocka_unit_test(test_cmdline_backslash_outside_quotes),
		cmocka_unit_test(test_cmdline_no_expansion),
		cmocka_unit_test(test_cmdline_errors_name_the_column),
		cmocka_unit_test(test_cmdline_matches_sh),
	};

	return cmocka_run_group_tests_name("cmdline", tests, NULL, NULL);
}
