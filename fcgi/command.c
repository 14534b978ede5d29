#include "command.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* How long command_start waits for the guard to say the command's pid. */
#define COMMAND_GUARD_ANSWER_USEC (5 * USEC_PER_SEC)
/* How much longer than the grace period command_stop waits for the
 * guard's report before it kills the guard and the group itself. */
#define COMMAND_GUARD_MARGIN_USEC USEC_PER_SEC
/* How long the guard keeps reaping what is left after the group's
 * SIGKILL (processes that left the group are not waited for). */
#define GUARD_REAP_USEC (500 * USEC_PER_MSEC)
/* Without pidfd_open (Linux before 5.3) the guard looks this often. */
#define GUARD_POLL_MSEC 100
/* The guard's descriptors, fixed before it forks the command. */
#define GUARD_FD_LINK 3
#define GUARD_FD_FIRST_FREE 4
/* Above these the guard parks descriptors while it moves them. */
#define GUARD_FD_PARK 10
#define COMMAND_READ_BYTES 4096

/* What the guard tells the responder, over the socket pair. */
enum guard_msg_kind { GUARD_MSG_PID = 1, GUARD_MSG_EXIT };
struct guard_msg {
	int32_t kind;  /* enum guard_msg_kind */
	int32_t value; /* the command's pid; its wait status */
};

struct command {
	pid_t guard, pid;
	int out_fd, err_fd, link_fd; /* ours; -1 when closed */
	char who[96];		     /* log prefix */
	int64_t grace_usec;
	struct command_log_limit *limit; /* the caller's */
	char line[COMMAND_LOG_LINE_MAX + 1];
	size_t line_used;
	int line_cut; /* the line was longer than COMMAND_LOG_LINE_MAX */
	int exited;   /* the guard reported the command's end ... */
	int status;   /* ... and its wait status */
};

/* ---- the guard and the command (after fork: async-signal-safe calls only) --
 */

/* Everything the children need, prepared before fork (no malloc after). */
struct spawn {
	const char *path;
	char *const *argv;
	char *const *envp;
	int null_fd, out_fd, err_fd, link_fd;
	int64_t grace_usec;
};

static int64_t mono_usec_raw(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* write(2) of a NUL-terminated text, for the command's last words. */
static void write_text(int fd, const char *text)
{
	size_t len = 0;

	while (text[len])
		len++;
	if (write(fd, text, len) < 0) {
		/* nowhere to report it */
	}
}

static void write_number(int fd, long n)
{
	char digits[24];
	size_t i = sizeof(digits) - 1;
	int negative = n < 0;
	unsigned long u = negative ? 0UL - (unsigned long)n : (unsigned long)n;

	digits[i] = '\0';
	do {
		digits[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u && i > 1);
	if (negative)
		digits[--i] = '-';
	write_text(fd, digits + i);
}

static _Noreturn void exec_command(const struct spawn *s, pid_t guard)
{
	struct sigaction dfl;
	sigset_t none;
	int sig;

	(void)setpgid(0, 0);
	/* Should the guard itself be killed, the command goes with it (the
	 * guard has one thread: this is its death, not a thread's). */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != guard)
		_exit(126);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	execve(s->path, s->argv, s->envp);
	write_text(STDERR_FILENO, "cannot execute ");
	write_text(STDERR_FILENO, s->path);
	write_text(STDERR_FILENO, ": errno ");
	write_number(STDERR_FILENO, errno);
	write_text(STDERR_FILENO, "\n");
	_exit(127);
}

static void guard_send(int kind, int value)
{
	struct guard_msg msg = { .kind = kind, .value = value };

	if (write(GUARD_FD_LINK, &msg, sizeof(msg)) < 0) {
		/* the responder is gone: nobody to tell */
	}
}

/* Waits until the command exits (1, *status set) or, when watch_link, the
 * responder's end of the link closes (0), or until deadline_usec
 * (monotonic; -1: none) passes (-1). */
static int guard_wait(pid_t pid, int pidfd, int watch_link, int64_t deadline_usec, int *status)
{
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = pidfd, .events = POLLIN },
			{ .fd = watch_link ? GUARD_FD_LINK : -1, .events = POLLIN },
		};
		int timeout = pidfd < 0 ? GUARD_POLL_MSEC : -1;
		int64_t left;

		if (waitpid(pid, status, WNOHANG) == pid)
			return 1;
		if (deadline_usec >= 0) {
			left = deadline_usec - mono_usec_raw();
			if (left <= 0)
				return -1;
			if (timeout < 0 || left / 1000 + 1 < timeout)
				timeout = (int)(left / 1000 + 1);
		}
		if (poll(pfd, 2, timeout) > 0 && pfd[1].revents) {
			char byte;
			ssize_t n = read(GUARD_FD_LINK, &byte, 1);

			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				return 0;
		}
	}
}

static _Noreturn void guard_run(const struct spawn *s)
{
	struct sigaction ign;
	sigset_t stop_signals;
	int status = 0, pidfd, fds[4], i;
	pid_t pid, guard = getpid();

	/* A group of its own: a SIGKILL to the responder's process group
	 * (a service manager's stop) leaves the guard to clean up. */
	(void)setpgid(0, 0);
	/* Blocked, not ignored: a SIGTERM sent to the group before the
	 * command unblocks it (in exec_command) is kept pending for it, not
	 * lost. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGHUP);
	(void)sigprocmask(SIG_BLOCK, &stop_signals, NULL);
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &ign, NULL);
	/* Orphans of the command become ours, and are reaped here. */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* 0 /dev/null, 1 and 2 the pipes, 3 the link; nothing else. */
	fds[0] = fcntl(s->null_fd, F_DUPFD, GUARD_FD_PARK);
	fds[1] = fcntl(s->out_fd, F_DUPFD, GUARD_FD_PARK);
	fds[2] = fcntl(s->err_fd, F_DUPFD, GUARD_FD_PARK);
	fds[3] = fcntl(s->link_fd, F_DUPFD_CLOEXEC, GUARD_FD_PARK);
	for (i = 0; i < 4; i++)
		if (fds[i] < 0 || dup3(fds[i], i, i == GUARD_FD_LINK ? O_CLOEXEC : 0) < 0)
			_exit(126);
	if (close_range(GUARD_FD_FIRST_FREE, ~0U, 0) < 0)
		for (i = GUARD_FD_FIRST_FREE; i < GUARD_FD_PARK + 4; i++)
			(void)close(i);
	pid = fork();
	if (pid < 0)
		_exit(126);
	if (pid == 0)
		exec_command(s, guard);
	(void)setpgid(pid, pid);		 /* also here: no race with the kill below */
	(void)dup2(STDIN_FILENO, STDOUT_FILENO); /* the pipes are the command's alone */
	(void)dup2(STDIN_FILENO, STDERR_FILENO);
	guard_send(GUARD_MSG_PID, pid);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (guard_wait(pid, pidfd, 1, -1, &status) == 0) {
		/* Stop: asked for, or the responder is gone. */
		(void)kill(-pid, SIGTERM);
		if (guard_wait(pid, pidfd, 0, mono_usec_raw() + s->grace_usec, &status) < 0) {
			(void)kill(-pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
		}
	}
	/* What is left of the group goes with the command. */
	(void)kill(-pid, SIGKILL);
	{
		int64_t deadline = mono_usec_raw() + GUARD_REAP_USEC;

		while (waitpid(-1, NULL, WNOHANG) >= 0 && mono_usec_raw() < deadline) {
			struct timespec pause = { 0, 10 * 1000 * 1000 };

			(void)nanosleep(&pause, NULL);
		}
	}
	guard_send(GUARD_MSG_EXIT, status);
	_exit(0);
}

/* ---- the responder's side ------------------------------------------------ */

/* 1 for the variables of a CGI request (RFC 3875 and what servers add):
 * under plain CGI they are the responder's environment, and they belong
 * to the viewer whose request happened to start the command (its
 * cookies, its Authorization header), not to the command. */
static int cgi_variable(const char *entry)
{
	static const char *const prefixes[] = {
		"HTTP_", "REMOTE_", "REQUEST_", "SERVER_", "SCRIPT_", "CONTENT_", "REDIRECT_",
		"CONTEXT_", "UNIQUE_ID=", "HTTPS=", "AUTH_TYPE=", "QUERY_STRING=", "PATH_INFO=",
		"PATH_TRANSLATED=", "DOCUMENT_ROOT=", "DOCUMENT_URI=", "GATEWAY_INTERFACE=",
		"FCGI_ROLE=",
	};
	size_t i;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(entry, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

/* The command's environment: the responder's less a CGI request's
 * variables.  A malloc'd array of environ's strings, NULL when out of
 * memory. */
static char **command_environment(void)
{
	size_t n = 0, kept = 0, i;
	char **envp;

	while (environ && environ[n])
		n++;
	envp = malloc((n + 1) * sizeof(*envp));
	if (!envp)
		return NULL;
	for (i = 0; i < n; i++)
		if (!cgi_variable(environ[i]))
			envp[kept++] = environ[i];
	envp[kept] = NULL;
	return envp;
}

/* Finds name as execvp would (PATH, or as is with a '/').  0, or -1 with
 * why set. */
static int resolve(const char *name, char *path, size_t size, char *why, size_t why_size)
{
	const char *dirs = getenv("PATH"), *p;
	struct stat st;

	if (strchr(name, '/')) {
		if (snprintf(path, size, "%s", name) >= (int)size)
			goto too_long;
		if (stat(path, &st) < 0) {
			snprintf(why, why_size, "%s: %s", name, strerror(errno));
			return -1;
		}
		if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0) {
			snprintf(why, why_size, "%s: not an executable file", name);
			return -1;
		}
		return 0;
	}
	if (!dirs || !*dirs)
		dirs = "/usr/local/bin:/usr/bin:/bin";
	for (p = dirs;; p = strchr(p, ':') + 1) {
		size_t len = strcspn(p, ":");

		if (snprintf(path, size, "%.*s/%s", (int)len, len ? p : ".", name) >= (int)size)
			goto too_long;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0)
			return 0;
		if (!p[len])
			break;
	}
	snprintf(why, why_size, "%s: command not found in PATH", name);
	return -1;
too_long:
	snprintf(why, why_size, "%s: path too long", name);
	return -1;
}

/* Reads one message from the guard, waiting until deadline_usec
 * (monotonic).  1, 0 at its end, -1 at the deadline or an error.
 * Standard error is logged meanwhile; stopping, output is read and
 * dropped too, so that a command that says much on its way out never
 * blocks on a full pipe. */
static int read_msg(struct command *cmd, struct guard_msg *msg, int64_t deadline_usec, int stopping)
{
	size_t got = 0;

	while (got < sizeof(*msg)) {
		int64_t left = deadline_usec - clock_mono_usec();
		struct pollfd pfd[3] = {
			{ .fd = cmd->link_fd, .events = POLLIN },
			{ .fd = cmd->err_fd, .events = POLLIN },
			{ .fd = stopping ? cmd->out_fd : -1, .events = POLLIN },
		};
		ssize_t n;

		if (left <= 0)
			return -1;
		if (poll(pfd, 3, (int)(left / USEC_PER_MSEC + 1)) < 0 && errno != EINTR)
			return -1;
		if (pfd[1].revents)
			command_read_stderr(cmd);
		if (pfd[2].revents) {
			char sink[COMMAND_READ_BYTES];

			if (read(cmd->out_fd, sink, sizeof(sink)) == 0) {
				close(cmd->out_fd);
				cmd->out_fd = -1;
			}
		}
		if (!pfd[0].revents)
			continue;
		n = read(cmd->link_fd, (char *)msg + got, sizeof(*msg) - got);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	return 1;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void reap_guard(struct command *cmd)
{
	while (waitpid(cmd->guard, NULL, 0) < 0 && errno == EINTR)
		;
}

static void free_command(struct command *cmd)
{
	close_fd(&cmd->out_fd);
	close_fd(&cmd->err_fd);
	close_fd(&cmd->link_fd);
	free(cmd);
}

struct command *command_start(char *const argv[], const char *who, int64_t grace_usec,
			      struct command_log_limit *limit, char *why, size_t why_size)
{
	struct command *cmd = calloc(1, sizeof(*cmd));
	char path[PATH_MAX];
	char **envp = NULL;
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, link[2] = { -1, -1 }, null_fd = -1;
	struct guard_msg msg;
	struct spawn s;

	if (!cmd) {
		snprintf(why, why_size, "out of memory");
		return NULL;
	}
	cmd->out_fd = cmd->err_fd = cmd->link_fd = -1;
	snprintf(cmd->who, sizeof(cmd->who), "%s", who);
	cmd->grace_usec = grace_usec;
	cmd->limit = limit;
	if (resolve(argv[0], path, sizeof(path), why, why_size) < 0)
		goto fail;
	envp = command_environment();
	if (!envp) {
		snprintf(why, why_size, "out of memory");
		goto fail;
	}
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, link) < 0) {
		snprintf(why, why_size, "pipe: %s", strerror(errno));
		goto fail;
	}
	s = (struct spawn){ .path = path,
			    .argv = argv,
			    .envp = envp,
			    .null_fd = null_fd,
			    .out_fd = out[1],
			    .err_fd = err[1],
			    .link_fd = link[1],
			    .grace_usec = grace_usec };
	cmd->guard = fork();
	if (cmd->guard < 0) {
		snprintf(why, why_size, "fork: %s", strerror(errno));
		goto fail;
	}
	if (cmd->guard == 0)
		guard_run(&s);
	free(envp);
	envp = NULL;
	cmd->out_fd = out[0];
	cmd->err_fd = err[0];
	cmd->link_fd = link[0];
	out[0] = err[0] = link[0] = -1;
	close_fd(&out[1]);
	close_fd(&err[1]);
	close_fd(&link[1]);
	close_fd(&null_fd);
	if (fcntl(cmd->out_fd, F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(cmd->err_fd, F_SETFL, O_NONBLOCK) < 0 ||
	    read_msg(cmd, &msg, clock_mono_usec() + COMMAND_GUARD_ANSWER_USEC, 0) != 1 ||
	    msg.kind != GUARD_MSG_PID) {
		snprintf(why, why_size, "the guard process did not start the command");
		(void)kill(cmd->guard, SIGKILL);
		reap_guard(cmd);
		free_command(cmd);
		return NULL;
	}
	cmd->pid = msg.value;
	return cmd;
fail:
	free(envp);
	close_fd(&null_fd);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&err[0]);
	close_fd(&err[1]);
	close_fd(&link[0]);
	close_fd(&link[1]);
	free(cmd);
	return NULL;
}

int command_stdout(const struct command *cmd)
{
	return cmd->out_fd;
}

int command_stderr(const struct command *cmd)
{
	return cmd->err_fd;
}

pid_t command_pid(const struct command *cmd)
{
	return cmd->pid;
}

pid_t command_guard_pid(const struct command *cmd)
{
	return cmd->guard;
}

/* Logs the line collected, within the rate limit. */
static void log_line(struct command *cmd)
{
	struct command_log_limit *limit = cmd->limit;
	int64_t now = clock_mono_usec();

	cmd->line[cmd->line_used] = '\0';
	if (cmd->line_used == 0)
		return;
	if (now >= limit->window_end_usec) {
		if (limit->suppressed)
			log_info("%s: %llu more lines of standard error were not logged "
				 "(at most %d every %lld s)",
				 cmd->who, (unsigned long long)limit->suppressed,
				 COMMAND_LOG_LINES_MAX,
				 (long long)(COMMAND_LOG_WINDOW_USEC / USEC_PER_SEC));
		limit->window_end_usec = now + COMMAND_LOG_WINDOW_USEC;
		limit->lines = 0;
		limit->suppressed = 0;
	}
	if (limit->lines < COMMAND_LOG_LINES_MAX) {
		limit->lines++;
		log_info("%s: %s%s", cmd->who, cmd->line, cmd->line_cut ? " [...]" : "");
	} else {
		limit->suppressed++;
	}
	cmd->line_used = 0;
	cmd->line_cut = 0;
}

void command_read_stderr(struct command *cmd)
{
	char buf[COMMAND_READ_BYTES];

	while (cmd->err_fd >= 0) {
		ssize_t n = read(cmd->err_fd, buf, sizeof(buf)), i;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			log_line(cmd); /* a last line without its newline */
			close_fd(&cmd->err_fd);
			return;
		}
		for (i = 0; i < n; i++) {
			/* ffmpeg ends progress lines with \r alone */
			if (buf[i] == '\n' || buf[i] == '\r')
				log_line(cmd);
			else if (cmd->line_used < COMMAND_LOG_LINE_MAX)
				cmd->line[cmd->line_used++] = buf[i];
			else
				cmd->line_cut = 1;
		}
	}
}

int command_wait(struct command *cmd, int64_t usec)
{
	int64_t deadline = clock_mono_usec() + usec;
	struct guard_msg msg;

	while (!cmd->exited && read_msg(cmd, &msg, deadline, 0) == 1) {
		if (msg.kind == GUARD_MSG_EXIT) {
			cmd->exited = 1;
			cmd->status = msg.value;
		}
	}
	return cmd->exited;
}

void command_stop(struct command *cmd, char *how, size_t how_size)
{
	struct guard_msg msg = { 0 };
	int64_t deadline;
	int rc, status, known;

	if (!cmd)
		return;
	status = cmd->status;
	known = cmd->exited;
	deadline = clock_mono_usec() + cmd->grace_usec + COMMAND_GUARD_MARGIN_USEC;
	/* The guard reads the end of the link: it stops the command. */
	(void)shutdown(cmd->link_fd, SHUT_WR);
	while (!known && (rc = read_msg(cmd, &msg, deadline, 1)) == 1) {
		if (msg.kind == GUARD_MSG_EXIT) {
			status = msg.value;
			known = 1;
			break;
		}
	}
	if (!known) {
		log_error("%s: the guard of pid %ld did not answer; killing both", cmd->who,
			  (long)cmd->pid);
		(void)kill(-cmd->pid, SIGKILL);
		(void)kill(cmd->guard, SIGKILL);
	}
	reap_guard(cmd);
	command_read_stderr(cmd);
	if (how) {
		if (!known)
			snprintf(how, how_size, "killed with its guard");
		else if (WIFEXITED(status))
			snprintf(how, how_size, "exited with status %d", WEXITSTATUS(status));
		else if (WIFSIGNALED(status))
			snprintf(how, how_size, "killed by signal %s",
				 sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status))
								: "?");
		else
			snprintf(how, how_size, "ended (wait status %d)", status);
	}
	free_command(cmd);
}
