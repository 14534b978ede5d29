#include "cgi.h"

#include "clock.h"
#include "http.h"
#include "log.h"
#include "parse.h"
#include "server.h"
#include "stream.h"

#include <errno.h>
#include <fcgiapp.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Output is written when the responder flushes (after every frame), or
 * when this much has collected. */
#define CGI_BUFFER_BYTES (64 * 1024)
/* How often a stream viewer looks whether its config file changed: a
 * CGI program gets no SIGHUP, so a revoked view_secret reaches open
 * streams this way. */
#define CGI_CONFIG_CHECK_USEC (1000 * USEC_PER_MSEC)
#define CGI_CONFIG_CHECK_STEP_USEC (100 * USEC_PER_MSEC)

extern char **environ;

/* Set by SIGTERM (the web server ends the request): the stream then ends
 * with its closing boundary.  A lock-free atomic store is safe in a signal
 * handler. */
static _Atomic int cgi_stopping;

static void on_term(int sig)
{
	(void)sig;
	atomic_store(&cgi_stopping, 1);
}

int cgi_detect(void)
{
	return FCGX_IsCGI() && getenv("GATEWAY_INTERFACE") != NULL;
}

int cgi_default_config(char *path, size_t size)
{
	const char *named = getenv("MJPEG_FCGI_CONFIG");
	const char *script = getenv("SCRIPT_FILENAME");
	struct stat st;
	char dir[PATH_MAX];

	if (named && *named) {
		snprintf(path, size, "%s", named);
	} else if (script && *script) {
		snprintf(dir, sizeof(dir), "%s", script);
		if (snprintf(path, size, "%s/mjpeg-fcgi.ini", dirname(dir)) >= (int)size)
			return 0;
	} else {
		return 0;
	}
	return stat(path, &st) == 0;
}

struct cgi_stream {
	FCGX_Stream stream;
	int fd;
	size_t read_total;  /* reader: bytes read from fd so far */
	int64_t deadline_usec; /* reader: monotonic time the whole body is due by (ingest_ms) */
	unsigned char buf[CGI_BUFFER_BYTES];
};

/* libfcgi calls this when the buffer is full and on FCGX_FFlush. */
static void cgi_empty(FCGX_Stream *stream, int do_close)
{
	struct cgi_stream *s = stream->data;
	unsigned char *p = s->buf;

	(void)do_close;
	while (p < stream->wrNext) {
		ssize_t n = write(s->fd, p, (size_t)(stream->wrNext - p));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* the web server closed our stdout: the client left */
			if (!stream->FCGI_errno)
				stream->FCGI_errno = n < 0 ? errno : EPIPE;
			stream->isClosed = 1;
			break;
		}
		p += n;
	}
	stream->wrNext = s->buf;
	stream->stop = s->buf + sizeof(s->buf);
}

/* Waits until fd is readable or the reader's deadline passes: 1 readable,
 * 0 late.  Past the deadline, only input already there counts. */
static int wait_readable(struct cgi_stream *s)
{
	for (;;) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
		int64_t left = s->deadline_usec - clock_mono_usec();
		int rc;

		rc = poll(&pfd, 1, left > 0 ? (int)((left + USEC_PER_MSEC - 1) / USEC_PER_MSEC) : 0);
		if (rc == 0 && left <= 0)
			return 0;
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return 1; /* let the read report it */
	}
}

void cgi_input_deadline(FCGX_Stream *in, int64_t at_usec)
{
	struct cgi_stream *s = in->data;

	s->deadline_usec = at_usec;
}

/* libfcgi calls this when the reader's buffer is used up.  The body is
 * read by the deadline ingest_ms from the start of the request (or from a
 * push's last frame, cgi_input_deadline): past it
 * the stream fails with EAGAIN, as a socket's receive time-out would, and
 * the ingest answers 408. */
static void cgi_fill(FCGX_Stream *stream)
{
	struct cgi_stream *s = stream->data;
	ssize_t n;

	stream->rdNext = stream->stopUnget = s->buf;
	stream->stop = s->buf;
	if (!wait_readable(s)) {
		stream->FCGI_errno = EAGAIN;
		stream->isClosed = 1;
		return;
	}
	do {
		n = read(s->fd, s->buf, sizeof(s->buf));
	} while (n < 0 && errno == EINTR);
	stream->stop = s->buf + (n > 0 ? n : 0);
	if (n > 0)
		s->read_total += (size_t)n;
	if (n <= 0) {
		if (n < 0)
			stream->FCGI_errno = errno;
		stream->isClosed = 1;
	}
}

/* Reads what is left of the request body (CONTENT_LENGTH bytes in all;
 * a POST without one, a push refused or ended early, to its end).  Under
 * mod_cgid stdin and stdout are one socket, and closing it with input
 * unread makes the kernel reset the web server's side, which loses the
 * answer.  Gives up at the reader's deadline. */
static void drain_body(struct cgi_stream *in)
{
	const char *length_text = getenv("CONTENT_LENGTH");
	const char *method = getenv("REQUEST_METHOD");
	long length;
	char sink[4096];

	if (!length_text || !*length_text) {
		/* Only a POST has a body without a length (chunked); other
		 * requests have none, and their stdin may never end. */
		if (!method || strcmp(method, "POST") != 0)
			return;
		length = LONG_MAX;
	} else if (parse_long(length_text, 0, LONG_MAX, &length) < 0) {
		return;
	}
	while ((long)in->read_total < length) {
		size_t want = (size_t)length - in->read_total;
		ssize_t n;

		if (!wait_readable(in))
			return;
		n = read(in->fd, sink, want < sizeof(sink) ? want : sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		in->read_total += (size_t)n;
	}
}

static void cgi_stream_init(struct cgi_stream *s, int fd, int reader)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->stream.data = s;
	s->stream.isReader = reader;
	s->stream.rdNext = s->stream.wrNext = s->stream.stopUnget = s->buf;
	/* a reader starts empty; a writer starts with the whole buffer free */
	s->stream.stop = reader ? s->buf : s->buf + sizeof(s->buf);
	s->stream.fillBuffProc = cgi_fill;
	s->stream.emptyBuffProc = cgi_empty;
}

/* The config watch of a stream viewer: the config file as it was when
 * the request began, and the stream watched.  Its thread only reads the
 * settings (read-only once loaded) and sets cgi_stopping; done is set by
 * the request's thread when the request is over. */
struct config_watch {
	const struct settings *settings;
	char name[STREAM_NAME_MAX + 1];
	struct stat seen;       /* the file when the viewer started */
	_Atomic int done;       /* the request is over: the watch ends */
	pthread_t thread;
};

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* 1 if the config at path now gives stream name another view_secret (or
 * no such stream) than settings did.  A file that does not load changes
 * nothing (its errors go to the error log). */
static int secret_changed(const struct settings *settings, const char *name)
{
	const struct stream_settings *old = config_find_stream(settings, name), *now;
	struct settings *next = malloc(sizeof(*next));
	int changed = 0;

	if (!next) {
		log_error("cgi: malloc(settings) failed");
		return 0;
	}
	config_defaults(next);
	if (config_load_file(next, settings->config_path) == 0) {
		config_add_default_streams(next);
		now = config_find_stream(next, name);
		changed = !old || !now || strcmp(old->view_secret, now->view_secret) != 0;
	}
	free(next);
	return changed;
}

/* Looks at the config file every CGI_CONFIG_CHECK_USEC; when it changed
 * the watched stream's secret, the stream ends (as on SIGTERM: the
 * closing boundary). */
static void *watch_config(void *arg)
{
	struct config_watch *w = arg;
	struct stat now;

	while (clock_sleep_unless(CGI_CONFIG_CHECK_USEC, &w->done, CGI_CONFIG_CHECK_STEP_USEC) == 0) {
		if (stat(w->settings->config_path, &now) < 0 || same_file(&now, &w->seen))
			continue;
		w->seen = now;
		if (secret_changed(w->settings, w->name)) {
			log_info("cgi: view_secret of stream %s changed in %s: ending the stream",
				 w->name, w->settings->config_path);
			atomic_store(&cgi_stopping, 1);
			break;
		}
	}
	return NULL;
}

/* Starts the config watch for a stream request (stream/NAME) served from a
 * config file.  1 if started. */
static int watch_start(struct config_watch *w, const struct settings *settings)
{
	char below[HTTP_PATH_MAX];
	struct route route;
	int err;

	if (!settings->config_path[0] ||
	    http_path_below(NULL, NULL, getenv("PATH_INFO"), below, sizeof(below)) < 0)
		return 0;
	http_route(below, &route);
	if (route.kind != ROUTE_STREAM || stat(settings->config_path, &w->seen) < 0)
		return 0;
	w->settings = settings;
	memcpy(w->name, route.name, sizeof(w->name));
	atomic_store(&w->done, 0);
	err = pthread_create(&w->thread, NULL, watch_config, w);
	if (err) {
		log_error("cgi: pthread_create(config watch): %s", strerror(err));
		return 0;
	}
	return 1;
}

static void watch_stop(struct config_watch *w)
{
	atomic_store(&w->done, 1);
	CHECK_ZERO(pthread_join(w->thread, NULL));
}

int cgi_serve(const struct settings *settings)
{
	static struct config_watch watch;
	int watching;
	static struct cgi_stream in, out; /* 64 KiB each: not on the stack */
	struct stream_set streams = { 0 };
	FCGX_Request req;
	int rc;

	if (streams_open(&streams, settings) < 0) {
		/* Tell the client rather than leave the web server with a
		 * premature end of script headers. */
		printf("Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n"
		       "the stream files cannot be opened; see the server's error log\n");
		return EXIT_FAILURE;
	}
	cgi_stream_init(&in, STDIN_FILENO, 1);
	in.deadline_usec = clock_mono_usec() + settings->ingest_usec;
	cgi_stream_init(&out, STDOUT_FILENO, 0);
	memset(&req, 0, sizeof(req));
	req.in = &in.stream;
	req.out = &out.stream;
	req.envp = environ;
	req.ipcFd = -1;
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sigemptyset(&sa.sa_mask);
		sa.sa_handler = on_term;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
	}
	watching = watch_start(&watch, settings);
	rc = server_handle_one(settings, &streams, &req, &cgi_stopping);
	if (watching)
		watch_stop(&watch);
	FCGX_FFlush(req.out);
	drain_body(&in);
	streams_close(&streams);
	return rc;
}
