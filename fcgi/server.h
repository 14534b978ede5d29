/* server: the FastCGI side.  A pool of threads: one at a time waits for a
 * connection (a new one, or a kept one whose next request is arriving),
 * the others read and serve one request each; the pool grows on demand and
 * shrinks when idle.  Reading a request has a deadline (request_ms, then
 * ingest_ms for a body), kept by a watchdog (deadline.c), and no lock is
 * held meanwhile, so no peer, however slow, holds up the others.  An idle
 * kept connection (FCGI_KEEP_CONN) holds no thread: it waits with the
 * listening socket.  A stream request is handed to the writer threads
 * (fanout.c) once its head is out; only plain CGI and FCGI_KEEP_CONN
 * connections keep their thread for the whole stream, which is why the pool
 * may grow up to max_viewers plus a few threads for short requests.
 *
 * Threads: server_run and server_stop belong to the main thread; the request
 * threads are the pool's own (not the worker processes of supervisor.c, nor
 * the writer threads of fanout.c). */
#ifndef MJPEG_SERVER_H
#define MJPEG_SERVER_H

#include "config.h"
#include "stream.h"

#include <fcgiapp.h>
#include <stdatomic.h>

struct server;

/* listen_fd: a listening FastCGI socket.  NULL on failure, logged. */
struct server *server_start(int listen_fd, const struct settings *settings,
			    struct stream_set *streams) __attribute__((warn_unused_result));

/* Ends every stream (closing boundary), stops accepting, and waits up to
 * timeout_usec for the request threads.  Returns the number still running. */
int server_stop(struct server *server, int64_t timeout_usec);

void server_free(struct server *server);

/* Replaces the server's streams with those of new_settings (SIGHUP):
 * unchanged streams keep their viewers, removed and changed ones end
 * theirs.  The server-wide settings stay as they were.  -1 (logged) leaves
 * everything as it was. */
int server_reload(struct server *server, const struct settings *new_settings)
	__attribute__((warn_unused_result));

/* Serves one request outside the pool (plain CGI); a stream ends with its
 * closing boundary once *stopping is set.  Returns an exit status. */
int server_handle_one(const struct settings *settings, struct stream_set *streams,
		      FCGX_Request *req, _Atomic int *stopping);

/* Threads kept for requests that end quickly (status, snapshot, errors),
 * beyond max_viewers. */
#define SERVER_SPARE_THREADS 16
/* Idle threads kept waiting; more than this exit. */
#define SERVER_IDLE_KEEP 4
/* Idle kept connections per process; one more is closed after its answer
 * (the web server opens another when it needs one). */
#define SERVER_KEPT_MAX 64
/* Most of a request's input left unread after its answer that is read (and
 * dropped) so that its connection can be kept; with more, it is closed. */
#define SERVER_REST_MAX (64 * 1024)
/* How long a thread pauses when accept fails for want of descriptors or
 * memory (the listening socket stays readable meanwhile). */
#define SERVER_ACCEPT_RETRY_USEC (100 * 1000)
/* Stack per request thread: requests need little (buffers are on the heap). */
#define SERVER_STACK_BYTES (256 * 1024)

#endif
