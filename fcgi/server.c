#include "server_state.h"

#include "clock.h"
#include "deadline.h"
#include "log.h"

#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void *request_thread_main(void *arg);

/* Blocks the signals the main thread handles (stop, reload) in the
 * calling thread, saving its mask in saved. */
static void block_process_signals(sigset_t *saved)
{
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	CHECK_ZERO(pthread_sigmask(SIG_BLOCK, &block, saved));
}

/* Starts one request thread; call with pool_lock held.  -1 if it could not. */
static int spawn_request_thread_locked(struct server *srv)
{
	pthread_attr_t attr;
	pthread_t thread;
	int rc;

	CHECK_ZERO(pthread_attr_init(&attr));
	CHECK_ZERO(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED));
	CHECK_ZERO(pthread_attr_setstacksize(&attr, SERVER_STACK_BYTES));
	rc = pthread_create(&thread, &attr, request_thread_main, srv);
	CHECK_ZERO(pthread_attr_destroy(&attr));
	if (rc != 0) {
		log_error("server: pthread_create: %s", strerror(rc));
		return -1;
	}
	srv->threads++;
	srv->idle++;
	return 0;
}

/* 1 if the peer at addr may send requests: FCGI_WEB_SERVER_ADDRS, when
 * set, lists the web servers' addresses (comma-separated, as libfcgi reads
 * it) for a TCP socket; a unix socket is guarded by its file mode. */
static int peer_allowed(const struct server *srv, const struct sockaddr_storage *addr)
{
	char text[INET6_ADDRSTRLEN];
	const char *p;
	size_t len;

	if (!srv->web_server_addrs || (addr->ss_family != AF_INET && addr->ss_family != AF_INET6))
		return 1;
	if (!inet_ntop(addr->ss_family,
		       addr->ss_family == AF_INET
			       ? (const void *)&((const struct sockaddr_in *)addr)->sin_addr
			       : (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr,
		       text, sizeof(text)))
		return 0;
	len = strlen(text);
	for (p = srv->web_server_addrs; *p;) {
		size_t n = strcspn(p, ",");

		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == len && strncmp(p, text, n) == 0)
			return 1;
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
	}
	log_warn("server: connection from %s refused: not in FCGI_WEB_SERVER_ADDRS", text);
	return 0;
}

/* Accepts one connection: its descriptor; -1 when there was none to take
 * (another process sharing the socket took it, spawn-fcgi -F N) or it was
 * refused; -2 on an error that accepting again will not mend. */
static int accept_connection(struct server *srv)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);
	int fd = accept4(srv->listen_fd, (struct sockaddr *)&addr, &len, SOCK_CLOEXEC);

	if (fd < 0) {
		switch (errno) {
		case EAGAIN:
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			return -1;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			log_error("server: accept: %s; retrying in %lld ms", strerror(errno),
				  (long long)(SERVER_ACCEPT_RETRY_USEC / USEC_PER_MSEC));
			clock_sleep_usec(SERVER_ACCEPT_RETRY_USEC);
			return -1;
		default:
			log_error("server: accept: %s", strerror(errno));
			return -2;
		}
	}
	if (!peer_allowed(srv, &addr)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Keeps a connection the web server wants kept (FCGI_KEEP_CONN) until its
 * next request starts to arrive; beyond SERVER_KEPT_MAX it is closed. */
static void keep_connection(struct server *srv, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };

	CHECK_ZERO(pthread_mutex_lock(&srv->kept_lock));
	if (srv->kept_count < SERVER_KEPT_MAX) {
		/* In the list before epoll can report it, so that the waiting
		 * thread, which takes kept_lock, finds it. */
		srv->kept[srv->kept_count].fd = fd;
		srv->kept[srv->kept_count].since_usec = clock_mono_usec();
		if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0) {
			srv->kept_count++;
			fd = -1;
		} else {
			log_error("server: epoll_ctl(add kept fd %d): %s", fd, strerror(errno));
		}
	}
	CHECK_ZERO(pthread_mutex_unlock(&srv->kept_lock));
	if (fd >= 0) {
		log_debug("server: more than %d idle kept connections: closing fd %d",
			  SERVER_KEPT_MAX, fd);
		close(fd);
	}
}

/* Takes kept connection i out of the idle list; call with kept_lock held. */
static int unkeep_locked(struct server *srv, int i)
{
	int fd = srv->kept[i].fd;

	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, fd, NULL) < 0)
		FATAL("epoll_ctl(del kept fd %d): %s", fd, strerror(errno));
	srv->kept[i] = srv->kept[--srv->kept_count];
	return fd;
}

/* 1 if fd is an idle kept connection, now taken out of the list. */
static int take_kept(struct server *srv, int fd)
{
	int i, found = 0;

	CHECK_ZERO(pthread_mutex_lock(&srv->kept_lock));
	for (i = 0; i < srv->kept_count && !found; i++) {
		if (srv->kept[i].fd == fd) {
			unkeep_locked(srv, i);
			found = 1;
		}
	}
	CHECK_ZERO(pthread_mutex_unlock(&srv->kept_lock));
	return found;
}

/* Closes the kept connections idle for request_usec (all of them with
 * all set).  Returns the milliseconds until the next is due, or until
 * request_usec from now with none kept. */
static int close_idle_kept(struct server *srv, int all)
{
	int64_t now = clock_mono_usec(), next = now + srv->settings->request_usec;
	int i;

	CHECK_ZERO(pthread_mutex_lock(&srv->kept_lock));
	for (i = 0; i < srv->kept_count;) {
		int64_t due = srv->kept[i].since_usec + srv->settings->request_usec;

		if (all || due <= now) {
			close(unkeep_locked(srv, i));
			continue; /* the last entry moved to i */
		}
		if (due < next)
			next = due;
		i++;
	}
	CHECK_ZERO(pthread_mutex_unlock(&srv->kept_lock));
	return (int)((next - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
}

/* Waits for a new connection, or a kept one whose next request is
 * arriving, or server_stop, closing kept connections idle too long
 * meanwhile.  Only the thread holding accept_lock calls this; the listening
 * socket is non-blocking, because other processes may share it and take a
 * connection first.  The connection, or -1: stopping or a fatal error. */
static int next_connection(struct server *srv)
{
	for (;;) {
		struct epoll_event ev;
		int n, fd;

		if (atomic_load(srv->stopping))
			return -1;
		n = epoll_wait(srv->epoll_fd, &ev, 1, close_idle_kept(srv, 0));
		if (n < 0 && errno != EINTR)
			FATAL("epoll_wait: %s", strerror(errno));
		if (n <= 0 || ev.data.fd == srv->wake_pipe[0])
			continue; /* the loop looks at stopping */
		if (ev.data.fd != srv->listen_fd) {
			if (take_kept(srv, ev.data.fd))
				return ev.data.fd;
			continue;
		}
		fd = accept_connection(srv);
		if (fd >= 0 || fd == -2)
			return fd >= 0 ? fd : -1;
	}
}

static void set_timeout(int fd, int option, int64_t usec)
{
	struct timeval tv = { .tv_sec = usec / USEC_PER_SEC, .tv_usec = usec % USEC_PER_SEC };

	if (setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv)) < 0)
		log_warn("server: setsockopt(fd %d, %s): %s", fd,
			 option == SO_SNDTIMEO ? "SO_SNDTIMEO" : "SO_RCVTIMEO", strerror(errno));
}

/* Bounds what one request can hold a thread for: a viewer whose writes make
 * no progress for stall_usec (the client stopped reading, and the web
 * server stopped taking bytes from us) fails its write and is dropped; no
 * single read of a body waits longer than ingest_usec (the watchdog bounds
 * an ingest body as a whole). */
static void set_timeouts(struct server *srv, int fd)
{
	set_timeout(fd, SO_SNDTIMEO, srv->settings->stall_usec);
	set_timeout(fd, SO_RCVTIMEO, srv->settings->ingest_usec);
}

/* A kept connection waits for its next request only once this request's
 * input is read to its end: the rest (the end of a body the request did
 * not read, which Apache's mod_proxy_fcgi sends in a write of its own)
 * would otherwise be read as the next request, and libfcgi takes it for a
 * protocol error.  It is read before the request's end (FCGI_END_REQUEST)
 * is sent, while the web server cannot have sent its next request yet, so
 * that no read takes in bytes of that one (libfcgi drops what it buffered
 * past a request).  The answer itself goes out first.  The rest must come
 * within request_ms and be at most SERVER_REST_MAX bytes (a body the
 * request refused is not read in full), and the server must not be
 * stopping; otherwise the connection is closed, not kept. */
static void read_rest_of_input(struct server *srv, FCGX_Request *req)
{
	int64_t deadline_usec = clock_mono_usec() + srv->settings->request_usec;
	struct deadline deadline;
	char scrap[4096];
	size_t rest = 0;
	int n, late;

	if (atomic_load(srv->stopping) || FCGX_GetError(req->out) != 0 ||
	    FCGX_FFlush(req->out) < 0 ||
	    deadline_arm(srv->deadlines, &deadline, req->ipcFd, deadline_usec) < 0) {
		req->keepConnection = 0;
		return;
	}
	/* The watchdog ends a read that waits past the deadline; over TCP
	 * bytes still coming keep reads returning, so the time and the
	 * amount are looked at between reads too. */
	while ((n = FCGX_GetStr(scrap, sizeof(scrap), req->in)) > 0) {
		rest += (size_t)n;
		if (rest > SERVER_REST_MAX || clock_mono_usec() > deadline_usec)
			break;
	}
	late = deadline_disarm(srv->deadlines, &deadline);
	if (n > 0 || late || FCGX_GetError(req->in) != 0)
		req->keepConnection = 0;
}

/* Reads one request from connection fd and serves it; the connection is
 * kept for the next request when the web server asked for that. */
static void serve_connection(struct server *srv, FCGX_Request *req, int fd)
{
	struct deadline deadline;
	int rc, late;

	if (deadline_arm(srv->deadlines, &deadline, fd,
			 clock_mono_usec() + srv->settings->request_usec) < 0) {
		close(fd);
		return;
	}
	/* libfcgi reads the request from this connection.  Marked kept, so
	 * that FCGX_Accept_r's finishing of a previous request leaves it open;
	 * the request's listening socket is -1, so libfcgi never accepts one
	 * itself (it closes this one on a bad or late request, then fails). */
	req->ipcFd = fd;
	req->keepConnection = 1;
	rc = FCGX_Accept_r(req);
	late = deadline_disarm(srv->deadlines, &deadline);
	if (late)
		log_info("server: no whole request within request_ms (%lld); connection closed",
			 (long long)(srv->settings->request_usec / USEC_PER_MSEC));
	if (rc != 0)
		return; /* closed by libfcgi: the peer closed it, or late, or not FastCGI */
	if (late) {
		FCGX_Free(req, 1);
		return;
	}
	set_timeouts(srv, req->ipcFd);
	request_handle(srv, req);
	if (req->keepConnection && req->ipcFd >= 0 && !req->in->isClosed)
		read_rest_of_input(srv, req);
	FCGX_Finish_r(req); /* closes the connection unless kept and sound */
	if (req->ipcFd >= 0) {
		keep_connection(srv, req->ipcFd);
		req->ipcFd = -1;
	}
}

static void *request_thread_main(void *arg)
{
	struct server *srv = arg;
	FCGX_Request req;

	if (FCGX_InitRequest(&req, -1, 0) != 0)
		FATAL("FCGX_InitRequest failed");
	for (;;) {
		int fd;

		CHECK_ZERO(pthread_mutex_lock(&srv->accept_lock));
		fd = next_connection(srv);
		CHECK_ZERO(pthread_mutex_unlock(&srv->accept_lock));
		if (fd < 0)
			break;

		CHECK_ZERO(pthread_mutex_lock(&srv->pool_lock));
		srv->idle--;
		if (srv->idle == 0 && srv->threads < srv->threads_max)
			spawn_request_thread_locked(srv);
		CHECK_ZERO(pthread_mutex_unlock(&srv->pool_lock));

		serve_connection(srv, &req, fd);

		CHECK_ZERO(pthread_mutex_lock(&srv->pool_lock));
		srv->idle++;
		fd = srv->idle > SERVER_IDLE_KEEP;
		CHECK_ZERO(pthread_mutex_unlock(&srv->pool_lock));
		if (fd)
			break;
	}
	FCGX_Free(&req, 1);

	CHECK_ZERO(pthread_mutex_lock(&srv->pool_lock));
	srv->idle--;
	srv->threads--;
	if (srv->threads == 0)
		CHECK_ZERO(pthread_cond_broadcast(&srv->pool_empty));
	else if (srv->idle == 0 && !atomic_load(srv->stopping))
		spawn_request_thread_locked(srv); /* an accept error must not leave nobody accepting */
	CHECK_ZERO(pthread_mutex_unlock(&srv->pool_lock));
	return NULL;
}

/* Sets up what waiting for connections takes: the wake pipe, the epoll set
 * and the listening socket made non-blocking.  -1 (logged) if it could not;
 * server_free undoes what was done. */
static int open_waiting(struct server *srv)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int flags = fcntl(srv->listen_fd, F_GETFL);

	if (flags < 0 || fcntl(srv->listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		log_error("server: fcntl(listening socket %d): %s", srv->listen_fd, strerror(errno));
		return -1;
	}
	if (pipe2(srv->wake_pipe, O_CLOEXEC) < 0) {
		log_error("server: pipe2: %s", strerror(errno));
		srv->wake_pipe[0] = srv->wake_pipe[1] = -1;
		return -1;
	}
	srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epoll_fd < 0) {
		log_error("server: epoll_create1: %s", strerror(errno));
		return -1;
	}
	ev.data.fd = srv->listen_fd;
	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->listen_fd, &ev) < 0) {
		log_error("server: epoll_ctl(listening socket %d): %s", srv->listen_fd,
			  strerror(errno));
		return -1;
	}
	ev.data.fd = srv->wake_pipe[0];
	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->wake_pipe[0], &ev) < 0) {
		log_error("server: epoll_ctl(wake pipe): %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct server *server_start(int listen_fd, const struct settings *settings,
			    struct stream_set *streams)
{
	struct server *srv = calloc(1, sizeof(*srv));
	sigset_t saved;
	int rc;

	if (!srv) {
		log_error("server: calloc failed");
		return NULL;
	}
	srv->listen_fd = listen_fd;
	srv->settings = settings;
	srv->streams = streams;
	srv->started_mono_usec = clock_mono_usec();
	srv->stopping = &srv->stopping_own;
	srv->wake_pipe[0] = srv->wake_pipe[1] = srv->epoll_fd = -1;
	srv->web_server_addrs = getenv("FCGI_WEB_SERVER_ADDRS");
	if (srv->web_server_addrs && !*srv->web_server_addrs)
		srv->web_server_addrs = NULL;
	CHECK_ZERO(pthread_rwlock_init(&srv->streams_lock, NULL));
	CHECK_ZERO(pthread_mutex_init(&srv->accept_lock, NULL));
	CHECK_ZERO(pthread_mutex_init(&srv->kept_lock, NULL));
	CHECK_ZERO(pthread_mutex_init(&srv->pool_lock, NULL));
	CHECK_ZERO(pthread_cond_init(&srv->pool_empty, NULL));
	srv->threads_max = settings->max_viewers + SERVER_SPARE_THREADS;
	if (open_waiting(srv) < 0) {
		server_free(srv);
		return NULL;
	}
	/* Threads started here inherit the blocked process signals, which
	 * go to the main thread. */
	block_process_signals(&saved);
	srv->deadlines = deadlines_start();
	srv->fanout = srv->deadlines ? fanout_start(fanout_writers_default(), settings,
						    srv->stopping, &srv->viewers)
				     : NULL;
	CHECK_ZERO(pthread_mutex_lock(&srv->pool_lock));
	rc = srv->fanout ? spawn_request_thread_locked(srv) : -1;
	CHECK_ZERO(pthread_mutex_unlock(&srv->pool_lock));
	CHECK_ZERO(pthread_sigmask(SIG_SETMASK, &saved, NULL));
	if (rc < 0) {
		if (srv->fanout)
			fanout_stop(srv->fanout, USEC_PER_SEC);
		server_free(srv);
		return NULL;
	}
	return srv;
}

int server_stop(struct server *srv, int64_t timeout_usec)
{
	int64_t deadline_usec = clock_wall_usec() + timeout_usec;
	struct timespec deadline = clock_timespec(deadline_usec);
	int left;

	atomic_store(srv->stopping, 1);
	/* Reads of requests and bodies in progress end now, not at their
	 * request_ms or ingest_ms. */
	deadlines_expire(srv->deadlines);
	/* The pipe stays readable: every thread that polls it wakes. */
	if (write(srv->wake_pipe[1], "x", 1) < 0)
		log_error("server: write(wake pipe): %s", strerror(errno));
	CHECK_ZERO(pthread_rwlock_rdlock(&srv->streams_lock));
	streams_wake_all(srv->streams);
	CHECK_ZERO(pthread_rwlock_unlock(&srv->streams_lock));

	CHECK_ZERO(pthread_mutex_lock(&srv->pool_lock));
	while (srv->threads > 0) {
		int rc = pthread_cond_timedwait(&srv->pool_empty, &srv->pool_lock, &deadline);

		if (rc == ETIMEDOUT)
			break;
		if (rc != 0)
			FATAL("pthread_cond_timedwait: %s", strerror(rc));
	}
	left = srv->threads;
	CHECK_ZERO(pthread_mutex_unlock(&srv->pool_lock));
	if (left == 0)
		close_idle_kept(srv, 1);
	/* Request threads hand no more viewers over once they are gone; the
	 * writers end theirs with the closing boundary. */
	left += fanout_stop(srv->fanout, deadline_usec - clock_wall_usec());
	return left;
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	/* Request threads still running (server_stop timed out) use these: leave
	 * them to process exit rather than free them under their feet. */
	if (srv->threads > 0)
		return;
	fanout_free(srv->fanout);
	deadlines_stop(srv->deadlines);
	CHECK_ZERO(pthread_mutex_destroy(&srv->accept_lock));
	CHECK_ZERO(pthread_mutex_destroy(&srv->kept_lock));
	CHECK_ZERO(pthread_mutex_destroy(&srv->pool_lock));
	CHECK_ZERO(pthread_cond_destroy(&srv->pool_empty));
	CHECK_ZERO(pthread_rwlock_destroy(&srv->streams_lock));
	if (srv->epoll_fd >= 0)
		close(srv->epoll_fd);
	if (srv->wake_pipe[0] >= 0) {
		close(srv->wake_pipe[0]);
		close(srv->wake_pipe[1]);
	}
	free(srv);
}

int server_reload(struct server *srv, const struct settings *new_settings)
{
	struct stream_set next;
	int rc;

	/* Requests look streams up under the read lock and then hold a
	 * reference, so swapping the set under the write lock is all it
	 * takes. */
	CHECK_ZERO(pthread_rwlock_wrlock(&srv->streams_lock));
	rc = streams_reload(srv->streams, &next, srv->settings, new_settings);
	if (rc == 0)
		*srv->streams = next;
	CHECK_ZERO(pthread_rwlock_unlock(&srv->streams_lock));
	return rc;
}

int server_handle_one(const struct settings *settings, struct stream_set *streams,
		      FCGX_Request *req, _Atomic int *stopping)
{
	struct server srv = {
		.listen_fd = -1,
		.settings = settings,
		.streams = streams,
		.started_mono_usec = clock_mono_usec(),
		.stopping = stopping,
	};

	CHECK_ZERO(pthread_rwlock_init(&srv.streams_lock, NULL));
	request_handle(&srv, req);
	CHECK_ZERO(pthread_rwlock_destroy(&srv.streams_lock));
	return EXIT_SUCCESS;
}
