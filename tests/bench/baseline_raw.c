/*
 * baseline_raw: the benchmark's floor. The same multipart bytes the
 * responder sends (the same JPEGs, the same part headers with
 * Content-Length and X-Timestamp, the next boundary right after each
 * frame), written to every connected socket at the stream's rate with
 * nothing else: no proxy, no encode, no per-viewer thread, no copy of the
 * frame per viewer. One thread, one epoll loop, one timerfd.
 *
 *   baseline_raw --port P --frames DIR [--fps 30] [--host 127.0.0.1]
 *
 * DIR holds the JPEGs to cycle through, in name order (run.py captures
 * them from the real stack's stream). Each tick builds the part once;
 * every idle connection starts writing it at once; a connection still
 * busy with an older part takes the newest one when it is done (frames
 * are skipped, never queued), as the responder does.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define USEC_PER_SEC 1000000LL
#define FRAMES_MAX 1024
#define JPEG_BYTES_MAX (16 * 1024 * 1024)
#define REQUEST_MAX 4096   /* request bytes read before the headers must end */
#define EVENTS_MAX 512
#define LISTEN_BACKLOG 4096
#define BOUNDARY "BenchRawBoundary0123456789"
#define PART_HEAD_MAX 160

/* One part as it goes on the wire: headers, JPEG, CRLF and the next
 * boundary. Shared by every connection writing it; freed at refs 0. */
struct part {
	int refs;
	size_t len;
	unsigned char bytes[];
};

enum conn_state { CS_REQUEST, CS_STREAMING };

struct conn {
	int fd;
	enum conn_state state;
	size_t request_len;
	char request[REQUEST_MAX];
	/* The head of the response, then parts. */
	const unsigned char *out;  /* what is being written: head or a part */
	size_t out_len, out_off;
	struct part *writing;      /* the part being written, or NULL */
	struct part *next;         /* the newest part, to write after this one */
	int want_out;              /* EPOLLOUT is armed */
	int index;                 /* in the streaming array, or -1 */
};

struct jpeg {
	unsigned char *bytes;
	size_t len;
};

static const char response_head[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: multipart/x-mixed-replace;boundary=" BOUNDARY "\r\n"
	"Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n"
	"Pragma: no-cache\r\n"
	"Connection: close\r\n"
	"\r\n"
	"--" BOUNDARY "\r\n";

static struct jpeg jpegs[FRAMES_MAX];
static int jpegs_n;
static struct part *newest;       /* the newest part; one reference held here */
static struct conn **streaming;   /* connections that are past their request */
static int streaming_n, streaming_cap;
static int epfd;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("baseline_raw: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_frames(const char *dir)
{
	char *names[FRAMES_MAX];
	int n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		die("opendir(%s): %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL && n < FRAMES_MAX) {
		size_t len = strlen(e->d_name);

		if (len > 4 && strcmp(e->d_name + len - 4, ".jpg") == 0) {
			names[n] = strdup(e->d_name);
			if (!names[n])
				die("out of memory");
			n++;
		}
	}
	closedir(d);
	if (n == 0)
		die("no .jpg files in %s", dir);
	qsort(names, (size_t)n, sizeof(names[0]), cmp_names);
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		FILE *f;
		int len = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);

		if (len < 0 || (size_t)len >= sizeof(path))
			die("path too long: %s/%s", dir, names[i]);
		f = fopen(path, "rb");
		if (!f || fstat(fileno(f), &st) != 0 || st.st_size <= 0 || st.st_size > JPEG_BYTES_MAX)
			die("%s: cannot read or bad size", path);
		jpegs[i].len = (size_t)st.st_size;
		jpegs[i].bytes = malloc(jpegs[i].len);
		if (!jpegs[i].bytes || fread(jpegs[i].bytes, 1, jpegs[i].len, f) != jpegs[i].len)
			die("%s: short read", path);
		fclose(f);
		free(names[i]);
	}
	jpegs_n = n;
}

static void part_put(struct part *p)
{
	if (p && --p->refs == 0)
		free(p);
}

static struct part *part_build(const struct jpeg *j)
{
	static const char tail[] = "\r\n--" BOUNDARY "\r\n";
	char head[PART_HEAD_MAX];
	struct timespec now;
	struct part *p;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	n = snprintf(head, sizeof(head),
		     "Content-Type: image/jpeg\r\n"
		     "Content-Length: %zu\r\n"
		     "X-Timestamp: %lld.%06ld\r\n"
		     "\r\n",
		     j->len, (long long)now.tv_sec, now.tv_nsec / 1000);
	if (n < 0 || (size_t)n >= sizeof(head))
		die("part head overflow");
	p = malloc(sizeof(*p) + (size_t)n + j->len + sizeof(tail) - 1);
	if (!p)
		die("out of memory");
	p->refs = 1;
	memcpy(p->bytes, head, (size_t)n);
	memcpy(p->bytes + n, j->bytes, j->len);
	memcpy(p->bytes + n + j->len, tail, sizeof(tail) - 1);
	p->len = (size_t)n + j->len + sizeof(tail) - 1;
	return p;
}

/* Closed connections are freed only after the current batch of events,
 * which may still name them. */
static struct conn **dead;
static int dead_n, dead_cap;

static void conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	if (c->index >= 0) {
		streaming[c->index] = streaming[--streaming_n];
		streaming[c->index]->index = c->index;
		c->index = -1;
	}
	close(c->fd);
	c->fd = -1;
	part_put(c->writing);
	part_put(c->next);
	c->writing = c->next = NULL;
	c->out = NULL;
	if (dead_n == dead_cap) {
		dead_cap = dead_cap ? dead_cap * 2 : 256;
		dead = realloc(dead, (size_t)dead_cap * sizeof(*dead));
		if (!dead)
			die("out of memory");
	}
	dead[dead_n++] = c;
}

static void free_dead(void)
{
	for (int i = 0; i < dead_n; i++)
		free(dead[i]);
	dead_n = 0;
}

static void arm_out(struct conn *c, int on)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0),
				  .data.ptr = c };

	if (c->want_out == on)
		return;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	c->want_out = on;
}

static void start_part(struct conn *c, struct part *p)
{
	p->refs++;
	c->writing = p;
	c->out = p->bytes;
	c->out_len = p->len;
	c->out_off = 0;
}

/* Writes as much as the socket takes. 0, or -1 when the connection is
 * gone (and freed). */
static int conn_flush(struct conn *c)
{
	for (;;) {
		while (c->out_off < c->out_len) {
			ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
					 MSG_NOSIGNAL);

			if (n < 0) {
				if (errno == EAGAIN) {
					arm_out(c, 1);
					return 0;
				}
				if (errno == EINTR)
					continue;
				conn_close(c);
				return -1;
			}
			c->out_off += (size_t)n;
		}
		part_put(c->writing);
		c->writing = NULL;
		c->out = NULL;
		c->out_len = c->out_off = 0;
		if (!c->next)
			break;
		start_part(c, c->next);
		part_put(c->next);
		c->next = NULL;
	}
	arm_out(c, 0);
	return 0;
}

static void conn_offer(struct conn *c, struct part *p)
{
	if (c->out) {
		/* busy: keep only the newest for later */
		part_put(c->next);
		p->refs++;
		c->next = p;
		return;
	}
	start_part(c, p);
	conn_flush(c);
}

static void conn_request(struct conn *c)
{
	ssize_t n = recv(c->fd, c->request + c->request_len, REQUEST_MAX - c->request_len, 0);

	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_close(c);
		return;
	}
	if (c->state == CS_STREAMING)
		return; /* whatever a client sends later is ignored */
	c->request_len += (size_t)n;
	if (!memmem(c->request, c->request_len, "\r\n\r\n", 4)) {
		if (c->request_len == REQUEST_MAX)
			conn_close(c);
		return;
	}
	c->state = CS_STREAMING;
	if (streaming_n == streaming_cap) {
		streaming_cap = streaming_cap ? streaming_cap * 2 : 1024;
		streaming = realloc(streaming, (size_t)streaming_cap * sizeof(*streaming));
		if (!streaming)
			die("out of memory");
	}
	c->index = streaming_n;
	streaming[streaming_n++] = c;
	/* The head, then the newest part at once. */
	c->out = (const unsigned char *)response_head;
	c->out_len = sizeof(response_head) - 1;
	c->out_off = 0;
	if (newest) {
		newest->refs++;
		c->next = newest;
	}
	conn_flush(c);
}

static void accept_all(int listen_fd)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev;
		struct conn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "baseline_raw: accept4: %s\n", strerror(errno));
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c)
			die("out of memory");
		c->fd = fd;
		c->index = -1;
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = c;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
			die("epoll_ctl: %s", strerror(errno));
	}
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *dir = NULL;
	int port = 0, listen_fd, timer_fd, one = 1, frame_index = 0;
	double fps = 30;
	struct sockaddr_in addr;
	struct itimerspec its;
	struct epoll_event ev, events[EVENTS_MAX];
	struct rlimit rl;
	int64_t period_nsec;
	/* Sentinels for the listener and the timer in epoll's data.ptr. */
	static char listen_tag, timer_tag;

	for (int i = 1; i + 1 < argc; i += 2) {
		char *end;

		if (strcmp(argv[i], "--port") == 0) {
			long v = strtol(argv[i + 1], &end, 10);

			if (*end || v < 1 || v > 65535)
				die("--port must be 1 to 65535");
			port = (int)v;
		} else if (strcmp(argv[i], "--frames") == 0) {
			dir = argv[i + 1];
		} else if (strcmp(argv[i], "--fps") == 0) {
			fps = strtod(argv[i + 1], &end);
			if (*end || fps < 0.01 || fps > 1000)
				die("--fps must be 0.01 to 1000");
		} else if (strcmp(argv[i], "--host") == 0) {
			host = argv[i + 1];
		} else {
			die("unknown option %s", argv[i]);
		}
	}
	if (!port || !dir)
		die("usage: baseline_raw --port P --frames DIR [--fps F] [--host H]");
	load_frames(dir);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		die("--host must be an IPv4 address");
	if (bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(listen_fd, LISTEN_BACKLOG) != 0)
		die("bind/listen %s:%d: %s", host, port, strerror(errno));

	timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (timer_fd < 0)
		die("timerfd_create: %s", strerror(errno));
	period_nsec = (int64_t)(1e9 / fps);
	its.it_interval.tv_sec = period_nsec / 1000000000;
	its.it_interval.tv_nsec = period_nsec % 1000000000;
	its.it_value = its.it_interval;
	if (timerfd_settime(timer_fd, 0, &its, NULL) != 0)
		die("timerfd_settime: %s", strerror(errno));

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	ev.events = EPOLLIN;
	ev.data.ptr = &listen_tag;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	ev.data.ptr = &timer_tag;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, timer_fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	newest = part_build(&jpegs[frame_index++ % jpegs_n]);
	fprintf(stderr, "baseline_raw: %d frames, %.2f fps, listening on %s:%d\n", jpegs_n, fps,
		host, port);

	while (!stop_requested) {
		int n = epoll_wait(epfd, events, EVENTS_MAX, 1000);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			void *tag = events[i].data.ptr;

			if (tag == &listen_tag) {
				accept_all(listen_fd);
			} else if (tag == &timer_tag) {
				uint64_t expirations;

				if (read(timer_fd, &expirations, sizeof(expirations)) < 0)
					continue;
				part_put(newest);
				newest = part_build(&jpegs[frame_index++ % jpegs_n]);
				/* conn_offer may close (and unlist) a connection:
				 * walk from the end so that the swap-remove never
				 * skips one. */
				for (int k = streaming_n - 1; k >= 0; k--)
					if (k < streaming_n)
						conn_offer(streaming[k], newest);
			} else {
				struct conn *c = tag;

				if (c->fd < 0)
					continue; /* closed earlier in this batch */
				if (events[i].events & (EPOLLERR | EPOLLHUP)) {
					conn_close(c);
					continue;
				}
				if (events[i].events & EPOLLOUT) {
					if (conn_flush(c) < 0)
						continue;
				}
				if (events[i].events & (EPOLLIN | EPOLLRDHUP))
					conn_request(c);
			}
		}
		free_dead();
	}
	for (int k = streaming_n - 1; k >= 0; k--)
		conn_close(streaming[k]);
	free_dead();
	free(dead);
	free(streaming);
	part_put(newest);
	close(timer_fd);
	close(listen_fd);
	close(epfd);
	return 0;
}
