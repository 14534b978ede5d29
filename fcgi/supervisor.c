#include "supervisor.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* A worker that dies sooner than this after its start is restarted only
 * after the same delay, so a worker that cannot start does not spin. */
#define RESTART_DELAY_USEC (1000 * USEC_PER_MSEC)
/* How long workers get to end their streams after SIGTERM. */
#define STOP_GRACE_USEC (2000 * USEC_PER_MSEC)
#define REAP_POLL_MSEC 100

struct worker {
	pid_t pid;              /* 0: not running */
	int64_t started_usec;   /* monotonic */
};

static pid_t start_worker(int (*serve)(void *), void *ctx, volatile sig_atomic_t *stop_flag)
{
	sigset_t all, old;
	pid_t parent = getpid(), pid;

	/* No signal may run our handlers between fork and the worker's own
	 * set-up: it would report to the supervisor's pipe. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		*stop_flag = 0;
		/* A supervisor killed with SIGKILL takes its workers along. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(EXIT_FAILURE);
		sigprocmask(SIG_SETMASK, &old, NULL);
		_exit(serve(ctx));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		log_error("supervisor: fork: %s", strerror(errno));
	return pid;
}

static void describe_exit(int status, char *buf, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
}

/* Reaps every worker that ended; returns how many still run. */
static int reap(struct worker *w, int workers, int stopping)
{
	int i, running = 0, status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < workers; i++) {
			char how[64];

			if (w[i].pid != pid)
				continue;
			w[i].pid = 0;
			describe_exit(status, how, sizeof(how));
			if (!stopping)
				log_warn("supervisor: worker %ld %s; starting another", (long)pid, how);
			else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				log_warn("supervisor: worker %ld %s while stopping", (long)pid, how);
		}
	}
	for (i = 0; i < workers; i++)
		running += w[i].pid != 0;
	return running;
}

int supervisor_run(int workers, int (*serve)(void *ctx), void *ctx, int stop_fd,
		   volatile sig_atomic_t *stop_flag, volatile sig_atomic_t *reload_flag)
{
	struct worker w[WORKERS_MAX] = { 0 };
	int64_t deadline;
	int i;

	if (workers > WORKERS_MAX)
		workers = WORKERS_MAX;
	log_info("supervisor: starting %d workers", workers);
	while (!*stop_flag) {
		struct pollfd pfd = { .fd = stop_fd, .events = POLLIN };
		int64_t now = clock_mono_usec();

		reap(w, workers, 0);
		for (i = 0; i < workers; i++) {
			if (w[i].pid || now - w[i].started_usec < RESTART_DELAY_USEC)
				continue;
			w[i].started_usec = now;
			w[i].pid = start_worker(serve, ctx, stop_flag);
			if (w[i].pid < 0)
				w[i].pid = 0;
		}
		if (poll(&pfd, 1, REAP_POLL_MSEC) < 0 && errno != EINTR)
			FATAL("poll: %s", strerror(errno));
		if (pfd.revents & POLLIN) {
			char drain[64];

			while (read(stop_fd, drain, sizeof(drain)) > 0)
				;
		}
		if (*reload_flag && !*stop_flag) {
			*reload_flag = 0;
			log_info("supervisor: SIGHUP: passing it to every worker");
			for (i = 0; i < workers; i++)
				if (w[i].pid)
					kill(w[i].pid, SIGHUP);
		}
	}

	log_info("supervisor: signal %d: stopping %d workers", (int)*stop_flag, reap(w, workers, 1));
	for (i = 0; i < workers; i++)
		if (w[i].pid)
			kill(w[i].pid, SIGTERM);
	deadline = clock_mono_usec() + STOP_GRACE_USEC;
	while (reap(w, workers, 1) > 0 && clock_mono_usec() < deadline)
		clock_sleep_usec(REAP_POLL_MSEC * USEC_PER_MSEC / 5);
	for (i = 0; i < workers; i++) {
		if (!w[i].pid)
			continue;
		log_warn("supervisor: worker %ld did not stop in time; killing it", (long)w[i].pid);
		kill(w[i].pid, SIGKILL);
		waitpid(w[i].pid, NULL, 0);
	}
	return EXIT_SUCCESS;
}
