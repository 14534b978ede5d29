/*
 * loadclient: the benchmark's viewers.
 *
 *   loadclient --port P --viewers N --duration S [--host 127.0.0.1]
 *              [--path /stream/bars] [--threads T] [--warmup S]
 *              [--connect-rate R] [--fps-target F] [--starve-gap-ms G]
 *              [--per-viewer 0|1]
 *
 * Opens N connections to HOST:PORT, sends one GET for PATH on each, and
 * reads the multipart/x-mixed-replace answer with a strict incremental
 * parser (HTTP/1.1, close-delimited or chunked; every part must carry
 * Content-Length, and should carry X-Timestamp). Bodies are never copied:
 * only part headers are kept per viewer.
 *
 * Timeline: connect (paced at --connect-rate), then wait until every viewer
 * has its first part or --warmup seconds pass, then measure for --duration
 * seconds: the measurement window. Time to first part counts from each
 * viewer's connect() call; everything else counts only inside the window.
 * "WINDOW START" and "WINDOW END" lines on standard error mark the window,
 * so that a driver can sample the server's /proc counters at the same
 * moments. The result goes to standard output as one JSON document.
 *
 * Figures:
 *   frames     parts whose X-Timestamp differs from the viewer's previous
 *              part (new pictures); repeats are counted apart
 *   gap        time between two new pictures of one viewer
 *   delay      CLOCK_REALTIME at the arrival of a part's last byte minus
 *              its X-Timestamp (publish time); new pictures only
 *   cpu        this process's own user+system time over the window
 *              (getrusage), so a saturated client is seen as such
 *
 * One epoll loop per thread; viewers are split evenly between threads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define USEC_PER_SEC 1000000LL
#define HEAD_MAX 4096            /* bytes of one header block we accept */
#define BOUNDARY_MAX 70          /* RFC 2046 */
#define RECV_BYTES (256 * 1024)  /* per-thread scratch: bodies land here and are dropped */
#define EVENTS_MAX 512
#define CHUNK_LINE_MAX 64        /* a chunk-size line with extensions */
#define THREADS_MAX 16
#define LOOP_TICK_MSEC 5         /* epoll timeout: bounds pacing and phase checks */

/* Histogram of microsecond values: exact below HIST_LINEAR, then 1024
 * sub-buckets per power of two (under 0.1 % error) up to 2^51 us. */
#define HIST_LINEAR 2048
#define HIST_SUB 1024
#define HIST_OCTAVES 40
#define HIST_BUCKETS (HIST_LINEAR + HIST_OCTAVES * HIST_SUB)

struct hist {
	uint64_t count[HIST_BUCKETS];
	uint64_t n;
	int64_t min, max;  /* microseconds, exact */
};

enum vstate {
	VS_IDLE,          /* not connected yet */
	VS_CONNECTING,
	VS_RESPONSE_HEAD, /* reading the HTTP status line and headers */
	VS_PART_HEAD,     /* reading the text between two bodies */
	VS_BODY,
	VS_DONE,          /* ended: closed by us, the peer, or an error */
};

enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_END };

/* One viewer; owned by exactly one loop thread. Times are microseconds,
 * mono = CLOCK_MONOTONIC, real = CLOCK_REALTIME. */
struct viewer {
	int fd;
	enum vstate state;
	int http_status;
	const char *error;        /* why it ended early, or NULL */
	int ended_by_server;      /* saw the closing boundary */

	char boundary[BOUNDARY_MAX + 5]; /* "--" + boundary, NUL-terminated */
	size_t boundary_len;
	char head[HEAD_MAX + 1];
	size_t head_len;

	int chunked;
	enum chunk_state chunk;
	char chunk_line[CHUNK_LINE_MAX + 1];
	size_t chunk_line_len;
	uint64_t chunk_left;

	uint64_t body_left, body_len, body_pos;
	unsigned char soi[2], eoi[2]; /* first and last two bytes of the body */
	int64_t part_ts;              /* X-Timestamp of the part being read, or -1 */
	int64_t last_ts;              /* X-Timestamp of the previous part, or -1 */

	int64_t connect_mono, first_mono, last_new_mono;
	uint64_t parts_total;
	uint64_t parts_window, frames_window, repeats_window, bytes_window;
	int64_t gap_max_window;
};

struct options {
	const char *host;
	int port;
	const char *path;
	int viewers;
	double duration_s;
	double warmup_s;
	double connect_rate;  /* connects per second over all threads */
	int threads;
	double fps_target;
	int64_t starve_gap_usec;
	int per_viewer;
};

struct loop {
	pthread_t thread;
	int index;
	int epfd;
	struct viewer *viewers;  /* this loop's slice */
	int count;
	int next_connect;        /* first viewer not yet connected */
	unsigned char *scratch;
	struct hist *gaps, *delays, *ttff;
	uint64_t bad_parts, no_timestamp_parts;
};

static struct options opt = {
	.host = "127.0.0.1",
	.path = "/stream/bars",
	.viewers = 1,
	.duration_s = 10,
	.warmup_s = 10,
	.connect_rate = 2000,
	.threads = 1,
	.fps_target = 30,
	.starve_gap_usec = USEC_PER_SEC,
	.per_viewer = 1,
};

/* Set by the main thread, read by the loops (relaxed: each loop re-reads
 * them every tick, and nothing else is published through them). */
static _Atomic int64_t window_start_mono = INT64_MAX;
static _Atomic int64_t window_end_mono = INT64_MAX;
static _Atomic int stop_loops;
/* Counted by the loops, read by the main thread to end the warm-up. */
static _Atomic int viewers_with_frame;
static _Atomic int viewers_ended;

static struct sockaddr_in server_addr;
static char request[1024];
static size_t request_len;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("loadclient: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static int64_t clock_usec(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0)
		die("clock_gettime: %s", strerror(errno));
	return (int64_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

static int64_t cpu_usec(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		die("getrusage: %s", strerror(errno));
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * USEC_PER_SEC +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* --- histogram ----------------------------------------------------------- */

static struct hist *hist_new(void)
{
	struct hist *h = calloc(1, sizeof(*h));

	if (!h)
		die("out of memory");
	h->min = INT64_MAX;
	h->max = INT64_MIN;
	return h;
}

static int hist_index(int64_t v)
{
	uint64_t u = v < 0 ? 0 : (uint64_t)v;
	int msb, octave;

	if (u < HIST_LINEAR)
		return (int)u;
	msb = 63 - __builtin_clzll(u);  /* >= 11 */
	octave = msb - 11;
	if (octave >= HIST_OCTAVES)
		return HIST_BUCKETS - 1;
	return HIST_LINEAR + octave * HIST_SUB + (int)((u >> (msb - 10)) - HIST_SUB);
}

/* The middle of a bucket, in microseconds. */
static double hist_value(int index)
{
	int octave, sub, shift;

	if (index < HIST_LINEAR)
		return index;
	octave = (index - HIST_LINEAR) / HIST_SUB;
	sub = (index - HIST_LINEAR) % HIST_SUB;
	shift = octave + 1;
	return ((double)(HIST_SUB + sub) + 0.5) * (double)(1ULL << shift);
}

static void hist_add(struct hist *h, int64_t v)
{
	h->count[hist_index(v)]++;
	h->n++;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

static void hist_merge(struct hist *into, const struct hist *from)
{
	for (int i = 0; i < HIST_BUCKETS; i++)
		into->count[i] += from->count[i];
	into->n += from->n;
	if (from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
}

/* Percentile q (0..1) in microseconds; the exact min and max at the ends. */
static double hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->n == 0)
		return 0;
	if (q <= 0)
		return (double)h->min;
	if (q >= 1)
		return (double)h->max;
	/* nearest rank: the smallest value with at least q of all at or below it */
	rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank) {
			double v = hist_value(i);

			if (v < (double)h->min)
				v = (double)h->min;
			if (v > (double)h->max)
				v = (double)h->max;
			return v;
		}
	}
	return (double)h->max;
}

/* --- parsing ------------------------------------------------------------- */

static void viewer_fail(struct viewer *v, const char *why)
{
	if (v->state == VS_DONE)
		return;
	if (!v->error && !v->ended_by_server)
		v->error = why;
	v->state = VS_DONE;
	if (v->fd >= 0) {
		close(v->fd);
		v->fd = -1;
	}
	atomic_fetch_add_explicit(&viewers_ended, 1, memory_order_relaxed);
}

/* Finds NAME: at the start of a line in [text, end) (case-insensitive);
 * returns a pointer to the value with leading blanks skipped, or NULL. */
static const char *header_value(const char *text, const char *end, const char *name)
{
	size_t name_len = strlen(name);
	const char *line = text;

	while (line < end) {
		const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);

		if (!eol)
			eol = end;
		if ((size_t)(eol - line) > name_len && strncasecmp(line, name, name_len) == 0 &&
		    line[name_len] == ':') {
			const char *value = line + name_len + 1;

			while (value < eol && (*value == ' ' || *value == '\t'))
				value++;
			return value;
		}
		line = eol + 2;
	}
	return NULL;
}

/* "1767225600.123456" to microseconds; -1 if malformed. */
static int64_t parse_timestamp(const char *s, const char *end)
{
	int64_t sec = 0, frac = 0;
	int digits = 0;

	if (s >= end || *s < '0' || *s > '9')
		return -1;
	while (s < end && *s >= '0' && *s <= '9') {
		if (sec > INT64_MAX / 10 / USEC_PER_SEC)
			return -1;
		sec = sec * 10 + (*s++ - '0');
	}
	if (s < end && *s == '.') {
		s++;
		while (s < end && *s >= '0' && *s <= '9') {
			if (digits < 6) {
				frac = frac * 10 + (*s - '0');
				digits++;
			}
			s++;
		}
	}
	while (digits++ < 6)
		frac *= 10;
	return sec * USEC_PER_SEC + frac;
}

static int64_t parse_length(const char *s, const char *end)
{
	int64_t n = 0;

	if (s >= end || *s < '0' || *s > '9')
		return -1;
	while (s < end && *s >= '0' && *s <= '9') {
		if (n > (INT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (*s++ - '0');
	}
	return n;
}

static const char *line_end(const char *s, const char *end)
{
	const char *eol = memmem(s, (size_t)(end - s), "\r\n", 2);

	return eol ? eol : end;
}

/* The status line and response headers, head[0..len) without the blank
 * line. 0, or -1 with the viewer failed. */
static int parse_response_head(struct viewer *v, size_t len)
{
	const char *h = v->head, *end = v->head + len, *ct, *b, *te;
	size_t n = 0;

	if (len < 12 || strncmp(h, "HTTP/1.", 7) != 0) {
		viewer_fail(v, "not an HTTP response");
		return -1;
	}
	v->http_status = (int)parse_length(h + 9, end);
	if (v->http_status != 200) {
		viewer_fail(v, "HTTP status not 200");
		return -1;
	}
	ct = header_value(h, end, "Content-Type");
	if (!ct || strncasecmp(ct, "multipart/x-mixed-replace", 25) != 0) {
		viewer_fail(v, "not multipart/x-mixed-replace");
		return -1;
	}
	b = strcasestr(ct, "boundary=");
	if (!b || b > line_end(ct, end)) {
		viewer_fail(v, "no boundary parameter");
		return -1;
	}
	b += 9;
	if (*b == '"')
		b++;
	memcpy(v->boundary, "--", 2);
	while (b < end && *b != '"' && *b != ';' && *b != '\r' && *b != ' ' && n < BOUNDARY_MAX)
		v->boundary[2 + n++] = *b++;
	if (n == 0) {
		viewer_fail(v, "empty boundary");
		return -1;
	}
	v->boundary[2 + n] = '\0';
	v->boundary_len = 2 + n;
	te = header_value(h, end, "Transfer-Encoding");
	v->chunked = te && strncasecmp(te, "chunked", 7) == 0;
	v->chunk = CH_SIZE;
	return 0;
}

static void part_done(struct loop *lp, struct viewer *v, int64_t mono, int64_t real)
{
	int64_t start = atomic_load_explicit(&window_start_mono, memory_order_relaxed);
	int64_t end = atomic_load_explicit(&window_end_mono, memory_order_relaxed);
	int in_window = mono >= start && mono < end;
	int repeat = v->part_ts >= 0 && v->part_ts == v->last_ts;

	if (v->soi[0] != 0xFF || v->soi[1] != 0xD8 || v->eoi[0] != 0xFF || v->eoi[1] != 0xD9)
		lp->bad_parts++;
	if (v->part_ts < 0)
		lp->no_timestamp_parts++;
	if (v->parts_total++ == 0) {
		v->first_mono = mono;
		hist_add(lp->ttff, mono - v->connect_mono);
		atomic_fetch_add_explicit(&viewers_with_frame, 1, memory_order_relaxed);
	}
	if (in_window) {
		v->parts_window++;
		v->bytes_window += v->body_len;
		if (repeat) {
			v->repeats_window++;
		} else {
			v->frames_window++;
			if (v->part_ts >= 0)
				hist_add(lp->delays, real - v->part_ts);
			if (v->last_new_mono) {
				int64_t gap = mono - v->last_new_mono;

				hist_add(lp->gaps, gap);
				if (gap > v->gap_max_window)
					v->gap_max_window = gap;
			}
		}
	}
	if (!repeat)
		v->last_new_mono = mono;
	v->last_ts = v->part_ts;
}

/* Part headers complete in head[0..len): the text after the previous body
 * ("\r\n--B\r\n" or, first, "--B\r\n") and the part's own headers. */
static int parse_part_head(struct loop *lp, struct viewer *v, size_t len)
{
	const char *h = v->head, *end = v->head + len, *cl, *ts, *at;

	(void)lp;
	at = memmem(h, len, v->boundary, v->boundary_len);
	if (!at) {
		viewer_fail(v, "part without boundary line");
		return -1;
	}
	cl = header_value(h, end, "Content-Length");
	if (!cl) {
		viewer_fail(v, "part without Content-Length");
		return -1;
	}
	v->body_len = (uint64_t)parse_length(cl, end);
	if ((int64_t)v->body_len <= 0) {
		viewer_fail(v, "bad Content-Length");
		return -1;
	}
	ts = header_value(h, end, "X-Timestamp");
	v->part_ts = ts ? parse_timestamp(ts, line_end(ts, end)) : -1;
	v->body_left = v->body_len;
	v->body_pos = 0;
	v->soi[0] = v->soi[1] = v->eoi[0] = v->eoi[1] = 0;
	return 0;
}

/* Adds up to n bytes to the header block; returns how many were used, or
 * SIZE_MAX while the block is still open (all n used). On a complete block
 * *complete is set and head_len is the block's length without CRLFCRLF. */
static size_t head_feed(struct viewer *v, const unsigned char *p, size_t n, int *complete)
{
	size_t old = v->head_len, room = HEAD_MAX - old, copy = n < room ? n : room;
	size_t from = old >= 3 ? old - 3 : 0;
	char *hit;

	*complete = 0;
	memcpy(v->head + old, p, copy);
	v->head_len += copy;
	v->head[v->head_len] = '\0';
	hit = memmem(v->head + from, v->head_len - from, "\r\n\r\n", 4);
	if (hit) {
		size_t block = (size_t)(hit - v->head);

		*complete = 1;
		v->head_len = block;
		return block + 4 - old;
	}
	if (v->head_len == HEAD_MAX) {
		viewer_fail(v, "header block too long");
		return 0;
	}
	return copy;
}

/* Multipart body bytes, after any chunked framing is removed. */
static void multipart_feed(struct loop *lp, struct viewer *v, const unsigned char *p, size_t n,
			   int64_t mono, int64_t real)
{
	while (n > 0 && v->state != VS_DONE) {
		if (v->state == VS_BODY) {
			size_t take = n < v->body_left ? n : (size_t)v->body_left;

			for (size_t i = 0; v->body_pos + i < 2 && i < take; i++)
				v->soi[v->body_pos + i] = p[i];
			if (take >= 2) {
				v->eoi[0] = p[take - 2];
				v->eoi[1] = p[take - 1];
			} else {
				v->eoi[0] = v->eoi[1];
				v->eoi[1] = p[0];
			}
			v->body_pos += take;
			v->body_left -= take;
			p += take;
			n -= take;
			if (v->body_left == 0) {
				part_done(lp, v, mono, real);
				v->state = VS_PART_HEAD;
				v->head_len = 0;
			}
		} else {
			int complete;
			size_t used = head_feed(v, p, n, &complete);

			if (v->state == VS_DONE)
				return;
			if (!complete) {
				/* The closing boundary "--B--" ends the stream. */
				if (v->head_len >= v->boundary_len + 2) {
					const char *b = memmem(v->head, v->head_len, v->boundary,
							       v->boundary_len);

					if (b && (size_t)(b - v->head) + v->boundary_len + 2 <= v->head_len &&
					    b[v->boundary_len] == '-' && b[v->boundary_len + 1] == '-') {
						v->ended_by_server = 1;
						viewer_fail(v, NULL);
						return;
					}
				}
				return;
			}
			if (parse_part_head(lp, v, v->head_len) < 0)
				return;
			v->state = VS_BODY;
			p += used;
			n -= used;
		}
	}
}

/* Response body bytes as they come off the wire: undoes chunked framing. */
static void body_feed(struct loop *lp, struct viewer *v, const unsigned char *p, size_t n,
		      int64_t mono, int64_t real)
{
	if (!v->chunked) {
		multipart_feed(lp, v, p, n, mono, real);
		return;
	}
	while (n > 0 && v->state != VS_DONE) {
		switch (v->chunk) {
		case CH_SIZE: {
			unsigned char c = *p++;

			n--;
			if (c == '\n') {
				char *endp;
				unsigned long long size;

				v->chunk_line[v->chunk_line_len] = '\0';
				errno = 0;
				size = strtoull(v->chunk_line, &endp, 16);
				if (errno || endp == v->chunk_line) {
					viewer_fail(v, "bad chunk size");
					return;
				}
				v->chunk_line_len = 0;
				v->chunk_left = size;
				v->chunk = size ? CH_DATA : CH_END;
			} else if (c != '\r') {
				if (v->chunk_line_len == CHUNK_LINE_MAX) {
					viewer_fail(v, "chunk size line too long");
					return;
				}
				v->chunk_line[v->chunk_line_len++] = (char)c;
			}
			break;
		}
		case CH_DATA: {
			size_t take = n < v->chunk_left ? n : (size_t)v->chunk_left;

			multipart_feed(lp, v, p, take, mono, real);
			p += take;
			n -= take;
			v->chunk_left -= take;
			if (v->chunk_left == 0)
				v->chunk = CH_DATA_END;
			break;
		}
		case CH_DATA_END:
			/* the CRLF after a chunk's data */
			if (*p == '\n')
				v->chunk = CH_SIZE;
			p++;
			n--;
			break;
		case CH_END:
			viewer_fail(v, "response ended (last chunk)");
			return;
		}
	}
}

static void viewer_bytes(struct loop *lp, struct viewer *v, const unsigned char *p, size_t n,
			 int64_t mono, int64_t real)
{
	if (v->state == VS_RESPONSE_HEAD) {
		int complete;
		size_t used = head_feed(v, p, n, &complete);

		if (v->state == VS_DONE || !complete)
			return;
		if (parse_response_head(v, v->head_len) < 0)
			return;
		v->state = VS_PART_HEAD;
		v->head_len = 0;
		p += used;
		n -= used;
	}
	if (n > 0)
		body_feed(lp, v, p, n, mono, real);
}

/* --- connections --------------------------------------------------------- */

static void viewer_connect(struct loop *lp, struct viewer *v)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = v };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	v->connect_mono = clock_usec(CLOCK_MONOTONIC);
	v->part_ts = v->last_ts = -1;
	if (fd < 0) {
		v->fd = -1;
		v->state = VS_CONNECTING;
		viewer_fail(v, "socket() failed (descriptor limit?)");
		return;
	}
	v->fd = fd;
	v->state = VS_CONNECTING;
	if (connect(fd, (const struct sockaddr *)&server_addr, sizeof(server_addr)) != 0 &&
	    errno != EINPROGRESS) {
		viewer_fail(v, "connect() failed");
		return;
	}
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
}

static void viewer_connected(struct loop *lp, struct viewer *v)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = v };
	int err = 0;
	socklen_t len = sizeof(err);
	ssize_t sent;

	if (getsockopt(v->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
		viewer_fail(v, "connect failed");
		return;
	}
	/* A request of a few hundred bytes always fits an empty socket buffer. */
	sent = send(v->fd, request, request_len, MSG_NOSIGNAL);
	if (sent != (ssize_t)request_len) {
		viewer_fail(v, "request not sent");
		return;
	}
	v->state = VS_RESPONSE_HEAD;
	v->head_len = 0;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_MOD, v->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
}

static void viewer_readable(struct loop *lp, struct viewer *v)
{
	/* One recv per readiness report: a viewer with a lot pending does not
	 * hold back the others (level-triggered, so the rest comes next). */
	ssize_t got = recv(v->fd, lp->scratch, RECV_BYTES, 0);
	int64_t mono, real;

	if (got == 0) {
		viewer_fail(v, "closed by server");
		return;
	}
	if (got < 0) {
		if (errno != EAGAIN && errno != EINTR)
			viewer_fail(v, "recv failed");
		return;
	}
	mono = clock_usec(CLOCK_MONOTONIC);
	real = clock_usec(CLOCK_REALTIME);
	viewer_bytes(lp, v, lp->scratch, (size_t)got, mono, real);
}

static void *loop_main(void *arg)
{
	struct loop *lp = arg;
	struct epoll_event events[EVENTS_MAX];
	/* Each loop paces its share of the connects. */
	double per_usec = opt.connect_rate / opt.threads / 1e6;
	int64_t t0 = clock_usec(CLOCK_MONOTONIC);

	while (!atomic_load_explicit(&stop_loops, memory_order_relaxed)) {
		int64_t now = clock_usec(CLOCK_MONOTONIC);
		int n;

		if (lp->next_connect < lp->count) {
			int due = (int)((double)(now - t0) * per_usec) + 1;

			if (due > lp->count)
				due = lp->count;
			while (lp->next_connect < due)
				viewer_connect(lp, &lp->viewers[lp->next_connect++]);
		}
		n = epoll_wait(lp->epfd, events, EVENTS_MAX, LOOP_TICK_MSEC);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct viewer *v = events[i].data.ptr;

			if (v->state == VS_CONNECTING) {
				viewer_connected(lp, v);
			} else if (v->state != VS_DONE) {
				if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					viewer_readable(lp, v);
			}
		}
	}
	return NULL;
}

/* --- results ------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double sorted_quantile(const double *v, int n, double q)
{
	double pos, frac;
	int i;

	if (n == 0)
		return 0;
	pos = q * (n - 1);
	i = (int)pos;
	frac = pos - i;
	return i + 1 < n ? v[i] * (1 - frac) + v[i + 1] * frac : v[i];
}

static void print_hist_ms(const char *name, const struct hist *h, int comma)
{
	printf("  \"%s\": {\"n\": %llu, \"min\": %.3f, \"p50\": %.3f, \"p90\": %.3f, "
	       "\"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f}%s\n",
	       name, (unsigned long long)h->n, h->n ? (double)h->min / 1e3 : 0,
	       hist_quantile(h, 0.5) / 1e3, hist_quantile(h, 0.9) / 1e3,
	       hist_quantile(h, 0.99) / 1e3, hist_quantile(h, 0.999) / 1e3,
	       h->n ? (double)h->max / 1e3 : 0, comma ? "," : "");
}

/* Writes s as a JSON string body (our error strings are plain ASCII). */
static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static void report(struct loop *loops, double window_s, int64_t cpu_window_usec,
		   int64_t warmup_usec, int window_started)
{
	struct hist *gaps = hist_new(), *delays = hist_new(), *ttff = hist_new();
	int n = opt.viewers, with_frame = 0, failed = 0, starved = 0, ended = 0, i;
	double *fps = calloc((size_t)n ? (size_t)n : 1, sizeof(*fps));
	double *sorted = calloc((size_t)n ? (size_t)n : 1, sizeof(*sorted));
	uint64_t parts = 0, frames = 0, repeats = 0, bytes = 0, bad = 0, no_ts = 0;
	const char *reasons[32];
	int reason_count[32], reasons_n = 0;
	int64_t end = atomic_load(&window_end_mono);
	int k = 0;

	if (!fps || !sorted)
		die("out of memory");
	for (int t = 0; t < opt.threads; t++) {
		struct loop *lp = &loops[t];

		hist_merge(gaps, lp->gaps);
		hist_merge(delays, lp->delays);
		hist_merge(ttff, lp->ttff);
		bad += lp->bad_parts;
		no_ts += lp->no_timestamp_parts;
		for (i = 0; i < lp->count; i++) {
			struct viewer *v = &lp->viewers[i];
			/* A viewer that got nothing lately has an open gap up to
			 * the window's end: starvation must show even then. */
			int64_t open_gap = v->last_new_mono ? end - v->last_new_mono : end - v->connect_mono;

			if (window_started && open_gap > v->gap_max_window)
				v->gap_max_window = open_gap;
			fps[k] = window_s > 0 ? (double)v->frames_window / window_s : 0;
			sorted[k] = fps[k];
			k++;
			if (v->parts_total)
				with_frame++;
			if (v->error) {
				int r;

				failed++;
				for (r = 0; r < reasons_n && strcmp(reasons[r], v->error) != 0; r++)
					;
				if (r == reasons_n && reasons_n < 32) {
					reasons[reasons_n] = v->error;
					reason_count[reasons_n++] = 0;
				}
				if (r < reasons_n)
					reason_count[r]++;
			}
			if (v->ended_by_server)
				ended++;
			if (!v->parts_total || v->error || fps[k - 1] < opt.fps_target / 2 ||
			    v->gap_max_window > opt.starve_gap_usec)
				starved++;
			parts += v->parts_window;
			frames += v->frames_window;
			repeats += v->repeats_window;
			bytes += v->bytes_window;
		}
	}
	qsort(sorted, (size_t)n, sizeof(*sorted), cmp_double);

	printf("{\n");
	printf("  \"viewers\": %d,\n  \"threads\": %d,\n", n, opt.threads);
	printf("  \"host\": \"%s\",\n  \"port\": %d,\n  \"path\": ", opt.host, opt.port);
	print_json_string(opt.path);
	printf(",\n  \"window_started\": %s,\n", window_started ? "true" : "false");
	printf("  \"warmup_s\": %.3f,\n  \"window_s\": %.3f,\n", (double)warmup_usec / 1e6,
	       window_s);
	printf("  \"viewers_with_frame\": %d,\n  \"viewers_failed\": %d,\n", with_frame, failed);
	printf("  \"viewers_ended_by_server\": %d,\n", ended);
	printf("  \"fail_reasons\": {");
	for (int r = 0; r < reasons_n; r++) {
		printf("%s", r ? ", " : "");
		print_json_string(reasons[r]);
		printf(": %d", reason_count[r]);
	}
	printf("},\n");
	printf("  \"fps_target\": %.3f,\n  \"starve_gap_ms\": %.1f,\n  \"starved\": %d,\n",
	       opt.fps_target, (double)opt.starve_gap_usec / 1e3, starved);
	printf("  \"fps\": {\"min\": %.3f, \"p1\": %.3f, \"p10\": %.3f, \"median\": %.3f, "
	       "\"mean\": %.3f, \"max\": %.3f},\n",
	       n ? sorted[0] : 0, sorted_quantile(sorted, n, 0.01),
	       sorted_quantile(sorted, n, 0.10), sorted_quantile(sorted, n, 0.5),
	       n && window_s > 0 ? (double)frames / n / window_s : 0, n ? sorted[n - 1] : 0);
	printf("  \"viewers_below_target\": ");
	for (i = 0; i < n && sorted[i] < opt.fps_target - 1; i++)
		;
	printf("%d,\n", i);
	printf("  \"parts\": %llu,\n  \"frames\": %llu,\n  \"repeats\": %llu,\n"
	       "  \"bytes\": %llu,\n  \"bad_parts\": %llu,\n  \"parts_without_timestamp\": %llu,\n",
	       (unsigned long long)parts, (unsigned long long)frames,
	       (unsigned long long)repeats, (unsigned long long)bytes, (unsigned long long)bad,
	       (unsigned long long)no_ts);
	printf("  \"mean_part_bytes\": %.1f,\n", parts ? (double)bytes / (double)parts : 0);
	print_hist_ms("gap_ms", gaps, 1);
	print_hist_ms("delay_ms", delays, 1);
	print_hist_ms("ttff_ms", ttff, 1);
	printf("  \"client_cpu_s\": %.4f,\n", (double)cpu_window_usec / 1e6);
	printf("  \"client_cpu_pct\": %.2f,\n",
	       window_s > 0 ? 100.0 * (double)cpu_window_usec / 1e6 / window_s : 0);
	printf("  \"client_saturated\": %s",
	       window_s > 0 && (double)cpu_window_usec / 1e6 / window_s > 0.9 * opt.threads
		       ? "true" : "false");
	if (opt.per_viewer) {
		/* [fps, parts, frames, repeats, ttff_ms, gap_max_ms, failed] */
		printf(",\n  \"per_viewer_fields\": [\"fps\", \"parts\", \"frames\", \"repeats\", "
		       "\"ttff_ms\", \"gap_max_ms\", \"failed\"],\n  \"per_viewer\": [");
		k = 0;
		for (int t = 0; t < opt.threads; t++) {
			for (i = 0; i < loops[t].count; i++, k++) {
				const struct viewer *v = &loops[t].viewers[i];

				printf("%s[%.2f,%llu,%llu,%llu,%.3f,%.3f,%d]", k ? "," : "", fps[k],
				       (unsigned long long)v->parts_window,
				       (unsigned long long)v->frames_window,
				       (unsigned long long)v->repeats_window,
				       v->parts_total ? (double)(v->first_mono - v->connect_mono) / 1e3 : -1.0,
				       (double)v->gap_max_window / 1e3, v->error ? 1 : 0);
			}
		}
		printf("]");
	}
	printf("\n}\n");
	free(fps);
	free(sorted);
	free(gaps);
	free(delays);
	free(ttff);
}

/* --- options and main ---------------------------------------------------- */

static double number_arg(const char *name, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi)
		die("%s must be a number from %g to %g, not '%s'", name, lo, hi, s);
	return v;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: loadclient --port P --viewers N --duration S [--host H] [--path P]\n"
		"                  [--threads T] [--warmup S] [--connect-rate R]\n"
		"                  [--fps-target F] [--starve-gap-ms G] [--per-viewer 0|1]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val;

		if (strcmp(a, "--help") == 0)
			usage();
		if (i + 1 >= argc)
			usage();
		val = argv[++i];
		if (strcmp(a, "--host") == 0)
			opt.host = val;
		else if (strcmp(a, "--port") == 0)
			opt.port = (int)number_arg(a, val, 1, 65535);
		else if (strcmp(a, "--path") == 0)
			opt.path = val;
		else if (strcmp(a, "--viewers") == 0)
			opt.viewers = (int)number_arg(a, val, 1, 1000000);
		else if (strcmp(a, "--duration") == 0)
			opt.duration_s = number_arg(a, val, 0.1, 3600);
		else if (strcmp(a, "--warmup") == 0)
			opt.warmup_s = number_arg(a, val, 0, 3600);
		else if (strcmp(a, "--connect-rate") == 0)
			opt.connect_rate = number_arg(a, val, 1, 1e7);
		else if (strcmp(a, "--threads") == 0)
			opt.threads = (int)number_arg(a, val, 1, THREADS_MAX);
		else if (strcmp(a, "--fps-target") == 0)
			opt.fps_target = number_arg(a, val, 0.01, 1000);
		else if (strcmp(a, "--starve-gap-ms") == 0)
			opt.starve_gap_usec = (int64_t)(number_arg(a, val, 1, 3600000) * 1000);
		else if (strcmp(a, "--per-viewer") == 0)
			opt.per_viewer = (int)number_arg(a, val, 0, 1);
		else
			usage();
	}
	if (!opt.port)
		usage();
	if (opt.threads > opt.viewers)
		opt.threads = opt.viewers;
}

static void sleep_usec(int64_t usec)
{
	struct timespec ts = { .tv_sec = usec / USEC_PER_SEC, .tv_nsec = usec % USEC_PER_SEC * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	struct loop loops[THREADS_MAX];
	struct viewer *viewers;
	struct rlimit rl;
	int64_t t0, now, warmup_end, start, end, cpu0, cpu1;
	int per, rest, at = 0, n;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);

	/* Every viewer is a descriptor: take the hard limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)opt.viewers + 64)
		die("open-file limit %llu is too low for %d viewers",
		    (unsigned long long)rl.rlim_cur, opt.viewers);

	memset(&server_addr, 0, sizeof(server_addr));
	server_addr.sin_family = AF_INET;
	server_addr.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1)
		die("--host must be an IPv4 address, not '%s'", opt.host);
	n = snprintf(request, sizeof(request),
		     "GET %s HTTP/1.1\r\n"
		     "Host: %s:%d\r\n"
		     "User-Agent: mjpeg-fcgi-loadclient\r\n"
		     "Accept: */*\r\n"
		     "\r\n",
		     opt.path, opt.host, opt.port);
	if (n < 0 || (size_t)n >= sizeof(request))
		die("--path too long");
	request_len = (size_t)n;

	viewers = calloc((size_t)opt.viewers, sizeof(*viewers));
	if (!viewers)
		die("out of memory for %d viewers", opt.viewers);
	for (int i = 0; i < opt.viewers; i++)
		viewers[i].fd = -1;

	per = opt.viewers / opt.threads;
	rest = opt.viewers % opt.threads;
	for (int t = 0; t < opt.threads; t++) {
		struct loop *lp = &loops[t];

		memset(lp, 0, sizeof(*lp));
		lp->index = t;
		lp->viewers = viewers + at;
		lp->count = per + (t < rest);
		at += lp->count;
		lp->epfd = epoll_create1(EPOLL_CLOEXEC);
		lp->scratch = malloc(RECV_BYTES);
		lp->gaps = hist_new();
		lp->delays = hist_new();
		lp->ttff = hist_new();
		if (lp->epfd < 0 || !lp->scratch)
			die("epoll_create1 or malloc failed");
	}

	t0 = clock_usec(CLOCK_MONOTONIC);
	for (int t = 0; t < opt.threads; t++) {
		int rc = pthread_create(&loops[t].thread, NULL, loop_main, &loops[t]);

		if (rc != 0)
			die("pthread_create: %s", strerror(rc));
	}

	/* Warm-up: until every viewer has a part (or has ended), or the
	 * deadline. */
	warmup_end = t0 + (int64_t)(opt.warmup_s * USEC_PER_SEC);
	for (;;) {
		now = clock_usec(CLOCK_MONOTONIC);
		if (atomic_load(&viewers_with_frame) + atomic_load(&viewers_ended) >= opt.viewers ||
		    now >= warmup_end)
			break;
		sleep_usec(10000);
	}
	/* A short settle after the last first part: the connection burst's
	 * catch-up is not part of the steady state. */
	sleep_usec(300000);
	start = clock_usec(CLOCK_MONOTONIC);
	end = start + (int64_t)(opt.duration_s * USEC_PER_SEC);
	cpu0 = cpu_usec();
	atomic_store(&window_end_mono, end);
	atomic_store(&window_start_mono, start);
	fprintf(stderr, "WINDOW START %d/%d viewers with a frame\n",
		atomic_load(&viewers_with_frame), opt.viewers);
	fflush(stderr);
	while ((now = clock_usec(CLOCK_MONOTONIC)) < end)
		sleep_usec(end - now < 100000 ? end - now : 100000);
	cpu1 = cpu_usec();
	fprintf(stderr, "WINDOW END\n");
	fflush(stderr);

	atomic_store(&stop_loops, 1);
	for (int t = 0; t < opt.threads; t++)
		pthread_join(loops[t].thread, NULL);
	report(loops, (double)(end - start) / 1e6, cpu1 - cpu0, start - t0, 1);
	fflush(stdout);

	for (int i = 0; i < opt.viewers; i++)
		if (viewers[i].fd >= 0)
			close(viewers[i].fd);
	for (int t = 0; t < opt.threads; t++) {
		close(loops[t].epfd);
		free(loops[t].scratch);
		free(loops[t].gaps);
		free(loops[t].delays);
		free(loops[t].ttff);
	}
	free(viewers);
	return 0;
}
