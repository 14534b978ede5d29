/* supervisor: runs several responder processes on one listening socket
 * (--workers N), restarts any that dies, and passes SIGTERM on.
 *
 * All workers share every stream's frame bus, so they share one producer
 * per stream too: the workers only spread the viewers over processes (and
 * cores), and one of them dying costs only its own viewers. */
#ifndef MJPEG_SUPERVISOR_H
#define MJPEG_SUPERVISOR_H

#include <signal.h>

/* serve(ctx) runs in each worker and returns its exit status.  stop_fd
 * becomes readable when the supervisor should stop; *stop_flag is the
 * signal handler's flag, cleared in each new worker; when *reload_flag is
 * set (SIGHUP), the supervisor clears it and passes SIGHUP to every worker.  Signals handled by
 * the caller are blocked around fork.  Returns the supervisor's exit
 * status. */
int supervisor_run(int workers, int (*serve)(void *ctx), void *ctx, int stop_fd,
		   volatile sig_atomic_t *stop_flag, volatile sig_atomic_t *reload_flag);

#define WORKERS_MAX 64

#endif
