/* command: a program run for an exec: source, with its standard output a
 * pipe to read frames from and its standard error a pipe whose lines go to
 * the log, rate-limited and prefixed by the stream's name.
 *
 * Between the responder and the command sits a guard: a process forked
 * from the responder, in a process group of its own, that forks the
 * command into another group of its own, and holds one end of a socket
 * pair whose other end only the responder holds.  When the responder
 * stops the command, or dies in any way (kill -9 included), the guard
 * reads the end of that socket, sends SIGTERM to the command's group,
 * SIGKILL after the grace period, reaps every process of it (the guard is
 * their subreaper) and exits.  So the command never outlives the
 * responder, even when it never writes (a broken pipe would not reach it)
 * and whichever thread started it (unlike PR_SET_PDEATHSIG, which fires
 * when the forking thread ends).  The guard blocks SIGTERM, SIGINT and
 * SIGHUP, and is out of the responder's process group, so a signal sent to
 * that group (SIGKILL included) leaves the clean-up to it; should the
 * guard itself be killed, the command gets SIGKILL (PR_SET_PDEATHSIG: the
 * guard has one thread).  The command gets the default disposition of
 * every signal, an empty signal mask, and the responder's environment
 * less the variables of a CGI request (under plain CGI those are the
 * environment, and they are a viewer's: its cookies, its credentials).
 *
 * Every descriptor is close-on-exec in the responder, and the guard closes
 * all but its own before it forks: the command starts with stdin on
 * /dev/null, stdout and stderr on the pipes, and nothing else.
 *
 * A command is owned by the thread that started it (a stream's producer):
 * nothing in it is shared. */
#ifndef MJPEG_COMMAND_H
#define MJPEG_COMMAND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Standard error lines logged per COMMAND_LOG_WINDOW_USEC; the rest are
 * counted and the count logged when the window ends. */
#define COMMAND_LOG_LINES_MAX 20
#define COMMAND_LOG_WINDOW_USEC (10 * 1000000LL)
/* Longest standard error line logged, bytes; longer ones are cut. */
#define COMMAND_LOG_LINE_MAX 400

/* The rate limit on standard error lines: kept by the caller, so that a
 * command restarted again and again is limited as one. */
struct command_log_limit {
	int64_t window_end_usec; /* monotonic */
	int lines;		 /* logged in this window */
	uint64_t suppressed;	 /* not logged in this window */
};

struct command;

/* Starts argv (argv[0] looked up in PATH when it has no '/').  who
 * prefixes the log lines of its standard error ("exec cam").  grace_usec:
 * from SIGTERM to SIGKILL.  NULL on failure, with why set (a command not
 * found, not executable; fork failed): nothing is left running. */
struct command *command_start(char *const argv[], const char *who, int64_t grace_usec,
			      struct command_log_limit *limit, char *why, size_t why_size)
	__attribute__((warn_unused_result));

/* The read end of the command's standard output, non-blocking. */
int command_stdout(const struct command *cmd);

/* The read end of its standard error, non-blocking; -1 after its end. */
int command_stderr(const struct command *cmd);

/* Reads what the command wrote to standard error and logs its complete
 * lines (a partial line waits for its end).  Never blocks. */
void command_read_stderr(struct command *cmd);

/* The command's process id, which is its process group's too. */
pid_t command_pid(const struct command *cmd);

/* The guard's process id. */
pid_t command_guard_pid(const struct command *cmd);

/* Waits at most usec for the command to exit by itself (its output
 * ended: a program closes it before it exits), so that command_stop
 * reports how it ended rather than stopping it.  1 when it has exited. */
int command_wait(struct command *cmd, int64_t usec);

/* Stops the command if it still runs (SIGTERM to its group, SIGKILL after
 * the grace period), reaps the guard, logs what is left of standard
 * error and frees cmd.  how (may be NULL) says how the command ended:
 * "exited with status 1", "killed by signal KILL".  Blocks for the grace
 * period at most, and a second more if the guard itself does not answer
 * (it is then killed with the group).  NULL is ignored. */
void command_stop(struct command *cmd, char *how, size_t how_size);

#endif
