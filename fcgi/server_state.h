/* server_state: the state of a responder process's FastCGI side, shared by
 * the two halves of the server: server.c (the request threads, the
 * listening socket and kept connections) and request.c (answering one
 * request).  Private to them: nothing else includes it. */
#ifndef MJPEG_SERVER_STATE_H
#define MJPEG_SERVER_STATE_H

#include "server.h"

#include "deadline.h"
#include "fanout.h"

#include <fcgiapp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct server {
	int listen_fd;
	const struct settings *settings;
	struct stream_set *streams;  /* swapped by server_reload: hold streams_lock */
	pthread_rwlock_t streams_lock;
	int64_t started_mono_usec;
	_Atomic int stopping_own;   /* the flag server_stop sets */
	_Atomic int *stopping;      /* &stopping_own, or the CGI's own flag */
	int wake_pipe[2];           /* written by server_stop to end the accept wait */
	_Atomic int viewers;        /* stream requests being served */
	_Atomic int snapshots_waiting; /* snapshots waiting for a frame (snapshot_serve) */
	struct fanout *fanout;      /* writer threads: stream viewers once their head is out */
	struct deadlines *deadlines; /* ends reads past request_ms / ingest_ms */
	const char *web_server_addrs; /* FCGI_WEB_SERVER_ADDRS: the peers allowed, or NULL */

	/* The listening socket, the wake pipe and the idle kept connections,
	 * waited on by the one thread that holds accept_lock. */
	int epoll_fd;
	pthread_mutex_t accept_lock; /* one thread waits for connections at a time */
	pthread_mutex_t kept_lock;   /* guards kept and kept_count */
	struct kept_connection {
		int fd;
		int64_t since_usec;  /* monotonic: idle since */
	} kept[SERVER_KEPT_MAX];
	int kept_count;

	pthread_mutex_t pool_lock;   /* guards the three fields below */
	pthread_cond_t pool_empty;   /* signalled when threads drops to 0 */
	int threads;                 /* request threads alive */
	int idle;                    /* request threads not serving a request */
	int threads_max;
};

/* Answers one request that was read whole (request.c), in the request
 * thread that read it. */
void request_handle(struct server *srv, FCGX_Request *req);

#endif
