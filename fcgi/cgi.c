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

int cgi_serve(const struct settings *settings)
{
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
	rc = server_handle_one(settings, &streams, &req, &cgi_stopping);
	FCGX_FFlush(req.out);
	drain_body(&in);
	streams_close(&streams);
	return rc;
}
