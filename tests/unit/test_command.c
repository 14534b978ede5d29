/* Unit tests for fcgi/command.c: a command's output and exit status, its
 * standard error logged and rate-limited, stopping it (SIGTERM, SIGKILL
 * after the grace period, its whole process group), no descriptor leaked
 * into it, and no command left behind when the process that started it
 * is killed with SIGKILL, or when the thread that started it ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "command.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define GRACE_USEC (300 * USEC_PER_MSEC)
/* How long a test waits for something that happens at once on an idle
 * machine: generous, for a loaded one (it only bounds a failing test). */
#define WAIT_USEC (10 * USEC_PER_SEC)

static struct command_log_limit limit;

#define ARGV(...) ((char *const[]){ __VA_ARGS__, NULL })

static struct command *start(char *const argv[])
{
	char why[256] = "";
	struct command *cmd =
		command_start(argv, "exec test", GRACE_USEC, &limit, why, sizeof(why));

	if (!cmd)
		fail_msg("command_start(%s): %s", argv[0], why);
	return cmd;
}

/* Everything the command writes to stdout until its end (at most size-1). */
static size_t read_all(struct command *cmd, char *buf, size_t size)
{
	int64_t deadline = clock_mono_usec() + WAIT_USEC;
	size_t used = 0;

	while (clock_mono_usec() < deadline) {
		struct pollfd pfd = { .fd = command_stdout(cmd), .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(pfd.fd, buf + used, size - 1 - used);
		if (n == 0)
			break;
		if (n > 0)
			used += (size_t)n;
	}
	buf[used] = '\0';
	return used;
}

/* 1 while pid exists and is not a zombie. */
static int alive(pid_t pid)
{
	char path[64], stat[256];
	FILE *f;
	char *close_paren;
	int running = 0;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(stat, sizeof(stat), f) && (close_paren = strrchr(stat, ')')))
		running = close_paren[2] != 'Z' && close_paren[2] != 'X';
	fclose(f);
	return running;
}

/* Processes (not zombies) whose process group is pgid. */
static int group_members(pid_t pgid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int count = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[300], stat[512], state;
		long pid, ppid, group;
		FILE *f;
		char *p;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(stat, sizeof(stat), f) && (p = strrchr(stat, ')')) &&
		    sscanf(p + 2, "%c %ld %ld", &state, &ppid, &group) == 3 && group == pgid &&
		    state != 'Z' && sscanf(e->d_name, "%ld", &pid) == 1)
			count++;
		fclose(f);
	}
	closedir(d);
	return count;
}

static int wait_gone(pid_t pid)
{
	int64_t deadline = clock_mono_usec() + WAIT_USEC;

	while (alive(pid) && clock_mono_usec() < deadline)
		clock_sleep_usec(20 * USEC_PER_MSEC);
	return !alive(pid);
}

static void test_command_output_and_status(void **state)
{
	struct command *cmd;
	char out[64], how[64];

	(void)state;
	cmd = start(ARGV("printf", "abc"));
	assert_int_equal(read_all(cmd, out, sizeof(out)), 3);
	assert_string_equal(out, "abc");
	/* printf closes its output, then exits: wait for that, or the stop
	 * may meet it in between */
	assert_int_equal(command_wait(cmd, WAIT_USEC), 1);
	command_stop(cmd, how, sizeof(how));
	assert_string_equal(how, "exited with status 0");

	cmd = start(ARGV("/bin/sh", "-c", "exit 3"));
	assert_int_equal(read_all(cmd, out, sizeof(out)), 0);
	assert_int_equal(command_wait(cmd, WAIT_USEC), 1);
	command_stop(cmd, how, sizeof(how));
	assert_string_equal(how, "exited with status 3");
	command_stop(NULL, how, sizeof(how)); /* ignored */
}

/* The responder's environment goes to the command, less a CGI request's
 * variables (a viewer's cookies and credentials under plain CGI). */
static void test_command_environment(void **state)
{
	struct command *cmd;
	char out[16384], how[64];

	(void)state;
	setenv("MJPEG_TEST_KEPT", "kept", 1);
	setenv("HTTP_COOKIE", "session=secret", 1);
	setenv("HTTP_AUTHORIZATION", "Bearer secret", 1);
	setenv("REMOTE_ADDR", "192.0.2.1", 1);
	setenv("QUERY_STRING", "x=secret", 1);
	setenv("GATEWAY_INTERFACE", "CGI/1.1", 1);
	cmd = start(ARGV("env"));
	(void)read_all(cmd, out, sizeof(out));
	command_stop(cmd, how, sizeof(how));
	unsetenv("HTTP_COOKIE");
	unsetenv("HTTP_AUTHORIZATION");
	unsetenv("REMOTE_ADDR");
	unsetenv("QUERY_STRING");
	unsetenv("GATEWAY_INTERFACE");
	assert_non_null(strstr(out, "MJPEG_TEST_KEPT=kept\n"));
	assert_non_null(strstr(out, "PATH="));
	assert_null(strstr(out, "secret"));
	assert_null(strstr(out, "REMOTE_ADDR"));
	assert_null(strstr(out, "GATEWAY_INTERFACE"));
}

static void test_command_refused(void **state)
{
	char why[256];

	(void)state;
	assert_null(command_start(ARGV("no-such-command-here"), "exec test", GRACE_USEC, &limit,
				  why, sizeof(why)));
	assert_string_equal(why, "no-such-command-here: command not found in PATH");
	assert_null(command_start(ARGV("/etc/passwd"), "exec test", GRACE_USEC, &limit, why,
				  sizeof(why)));
	assert_string_equal(why, "/etc/passwd: not an executable file");
	assert_null(command_start(ARGV("/no/such/file"), "exec test", GRACE_USEC, &limit, why,
				  sizeof(why)));
	assert_string_equal(why, "/no/such/file: No such file or directory");
}

static void test_command_stop_sends_term(void **state)
{
	struct command *cmd;
	pid_t pid, guard;
	char how[64];

	(void)state;
	cmd = start(ARGV("sleep", "100"));
	pid = command_pid(cmd);
	guard = command_guard_pid(cmd);
	assert_true(alive(pid));
	assert_int_equal(getpgid(pid), pid); /* its own group */
	command_stop(cmd, how, sizeof(how));
	/* TERM ended it, not the KILL after the grace period: even a TERM
	 * sent this early, before the command unblocked it, is kept. */
	assert_string_equal(how, "killed by signal TERM");
	assert_false(alive(pid));
	assert_int_equal(kill(guard, 0), -1); /* reaped, not a zombie */
	assert_int_equal(errno, ESRCH);
}

static void test_command_stop_kills_after_grace(void **state)
{
	struct command *cmd;
	char how[64], out[8];
	pid_t pid;
	int64_t began;

	(void)state;
	/* The shell and its sleep ignore TERM; the ready byte says the trap
	 * is set. */
	cmd = start(ARGV("/bin/sh", "-c", "trap '' TERM; sleep 100 & printf r; wait"));
	pid = command_pid(cmd);
	{
		struct pollfd pfd = { .fd = command_stdout(cmd), .events = POLLIN };

		assert_int_equal(poll(&pfd, 1, (int)(WAIT_USEC / USEC_PER_MSEC)), 1);
		assert_int_equal(read(pfd.fd, out, 1), 1);
	}
	began = clock_mono_usec();
	command_stop(cmd, how, sizeof(how));
	assert_string_equal(how, "killed by signal KILL");
	assert_true(clock_mono_usec() - began >= GRACE_USEC);
	assert_int_equal(group_members(pid), 0);
}

static void test_command_group_goes_with_it(void **state)
{
	struct command *cmd;
	char out[8], how[64];
	pid_t pid;

	(void)state;
	/* Two children in the background (their output elsewhere, so the
	 * shell's end is the output's); the shell exits at once. */
	cmd = start(ARGV("/bin/sh", "-c",
			 "sleep 100 >/dev/null 2>&1 & sleep 100 >/dev/null 2>&1 & printf r"));
	pid = command_pid(cmd);
	assert_int_equal(read_all(cmd, out, sizeof(out)), 1);
	assert_int_equal(command_wait(cmd, WAIT_USEC), 1);
	command_stop(cmd, how, sizeof(how));
	assert_string_equal(how, "exited with status 0");
	assert_int_equal(group_members(pid), 0);
}

static void test_command_no_descriptor_leaks(void **state)
{
	/* A descriptor without close-on-exec, as a careless library leaves. */
	int stray = open("/dev/null", O_RDONLY);
	struct command *cmd;
	char path[64], target[256], how[64];
	DIR *d;
	struct dirent *e;
	int fds = 0;
	ssize_t n;

	(void)state;
	assert_true(stray >= 0);
	cmd = start(ARGV("sleep", "100"));
	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)command_pid(cmd));
	/* The command may still be the guard's fork for a moment: wait for
	 * its exec (its fds are final then). */
	{
		int64_t deadline = clock_mono_usec() + WAIT_USEC;
		char exe[64], link[256];

		snprintf(exe, sizeof(exe), "/proc/%ld/exe", (long)command_pid(cmd));
		while (clock_mono_usec() < deadline) {
			n = readlink(exe, link, sizeof(link) - 1);
			if (n > 0 && (link[n] = '\0', strstr(link, "sleep")))
				break;
			clock_sleep_usec(10 * USEC_PER_MSEC);
		}
	}
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d))) {
		char fd_path[400];

		if (e->d_name[0] == '.')
			continue;
		fds++;
		snprintf(fd_path, sizeof(fd_path), "%s/%s", path, e->d_name);
		n = readlink(fd_path, target, sizeof(target) - 1);
		assert_true(n > 0);
		target[n] = '\0';
		if (strcmp(e->d_name, "0") == 0)
			assert_string_equal(target, "/dev/null");
		else if (strcmp(e->d_name, "1") == 0 || strcmp(e->d_name, "2") == 0)
			assert_non_null(strstr(target, "pipe:"));
		else
			fail_msg("descriptor %s (%s) leaked into the command", e->d_name, target);
	}
	closedir(d);
	assert_int_equal(fds, 3);
	command_stop(cmd, how, sizeof(how));
	close(stray);
}

/* Lines of fd 2 (the log) while fn runs, into out. */
static void capture_log(void (*fn)(void), char *out, size_t size)
{
	char tmpl[] = "/tmp/test_command_log.XXXXXX";
	int fd = mkstemp(tmpl), saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	unlink(tmpl);
	dup2(fd, STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, out, size - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
}

static void run_noisy(void)
{
	struct command *cmd;
	char out[8], how[64];

	/* (before the start: lines are read from then on) */
	memset(&limit, 0, sizeof(limit));
	/* 25 lines, one cut for length, one ended by \r, the last without a
	 * newline */
	cmd = start(ARGV("/bin/sh", "-c",
			 "i=0; while [ $i -lt 22 ]; do echo line$i >&2; i=$((i+1)); done; "
			 "printf 'progress\\r' >&2; printf '%0500d\\n' 0 >&2; printf last >&2"));
	(void)read_all(cmd, out, sizeof(out));
	command_stop(cmd, how, sizeof(how));
	/* The window ends: the next line reports what was not logged. */
	limit.window_end_usec = 0;
	cmd = start(ARGV("/bin/sh", "-c", "echo after >&2"));
	(void)read_all(cmd, out, sizeof(out));
	command_stop(cmd, how, sizeof(how));
}

static void test_command_stderr_logged_and_limited(void **state)
{
	static char log[65536];
	char expect[64];
	int i;

	(void)state;
	capture_log(run_noisy, log, sizeof(log));
	for (i = 0; i < 20; i++) {
		snprintf(expect, sizeof(expect), "exec test: line%d\n", i);
		if (!strstr(log, expect))
			fail_msg("no \"%s\" in the log:\n%s", expect, log);
	}
	/* Lines 21 on were over COMMAND_LOG_LINES_MAX */
	assert_null(strstr(log, "line20"));
	assert_null(strstr(log, "progress"));
	assert_null(strstr(log, "last"));
	assert_non_null(strstr(log, "exec test: 5 more lines of standard error were not logged"));
	assert_non_null(strstr(log, "exec test: after\n"));
	memset(&limit, 0, sizeof(limit));
}

static void run_long_line(void)
{
	struct command *cmd;
	char out[8], how[64];

	memset(&limit, 0, sizeof(limit));
	cmd = start(ARGV("/bin/sh", "-c",
			 "printf 'progress\\r' >&2; printf '%0500d\\n' 0 >&2; printf last >&2"));
	(void)read_all(cmd, out, sizeof(out));
	command_stop(cmd, how, sizeof(how));
}

static void test_command_stderr_line_ends(void **state)
{
	static char log[65536];
	char cut[COMMAND_LOG_LINE_MAX + 32];

	(void)state;
	capture_log(run_long_line, log, sizeof(log));
	assert_non_null(strstr(log, "exec test: progress\n"));
	assert_non_null(strstr(log, "exec test: last\n"));
	memset(cut, '0', COMMAND_LOG_LINE_MAX);
	snprintf(cut + COMMAND_LOG_LINE_MAX, sizeof(cut) - COMMAND_LOG_LINE_MAX, " [...]\n");
	assert_non_null(strstr(log, cut));
	memset(&limit, 0, sizeof(limit));
}

/* The starter process dies by SIGKILL, its whole process group at once (a
 * guard in it would die too): the guard stops the command, which never
 * writes (so no broken pipe would ever reach it). */
static void test_command_gone_after_kill_9(void **state)
{
	int report[2];
	pid_t starter, pids[2];

	(void)state;
	assert_int_equal(pipe(report), 0);
	starter = fork();
	assert_true(starter >= 0);
	if (starter == 0) {
		char why[256];

		setpgid(0, 0);
		struct command *cmd = command_start(ARGV("sleep", "100"), "exec test", GRACE_USEC,
						    &limit, why, sizeof(why));

		if (!cmd)
			_exit(1);
		pids[0] = command_pid(cmd);
		pids[1] = command_guard_pid(cmd);
		if (write(report[1], pids, sizeof(pids)) != sizeof(pids))
			_exit(1);
		for (;;)
			pause();
	}
	close(report[1]);
	assert_int_equal(read(report[0], pids, sizeof(pids)), sizeof(pids));
	close(report[0]);
	assert_true(alive(pids[0]));
	assert_true(getpgid(pids[1]) != starter); /* the guard is out of it */
	kill(-starter, SIGKILL);
	waitpid(starter, NULL, 0);
	assert_true(wait_gone(pids[0]));
	assert_int_equal(group_members(pids[0]), 0);
	assert_true(wait_gone(pids[1]));
}

static void *start_in_thread(void *arg)
{
	*(struct command **)arg = start(ARGV("sleep", "100"));
	return NULL;
}

/* Producers are threads that come and go: the command outlives the thread
 * that started it (PR_SET_PDEATHSIG would kill it here). */
static void test_command_outlives_its_thread(void **state)
{
	struct command *cmd = NULL;
	pthread_t thread;
	char how[64];

	(void)state;
	assert_int_equal(pthread_create(&thread, NULL, start_in_thread, &cmd), 0);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_non_null(cmd);
	clock_sleep_usec(200 * USEC_PER_MSEC);
	assert_true(alive(command_pid(cmd)));
	command_stop(cmd, how, sizeof(how));
	assert_string_equal(how, "killed by signal TERM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_output_and_status),
		cmocka_unit_test(test_command_refused),
		cmocka_unit_test(test_command_environment),
		cmocka_unit_test(test_command_stop_sends_term),
		cmocka_unit_test(test_command_stop_kills_after_grace),
		cmocka_unit_test(test_command_group_goes_with_it),
		cmocka_unit_test(test_command_no_descriptor_leaks),
		cmocka_unit_test(test_command_stderr_logged_and_limited),
		cmocka_unit_test(test_command_stderr_line_ends),
		cmocka_unit_test(test_command_gone_after_kill_9),
		cmocka_unit_test(test_command_outlives_its_thread),
	};

	return cmocka_run_group_tests_name("command", tests, NULL, NULL);
}
