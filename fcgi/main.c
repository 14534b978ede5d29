/* mjpeg-fcgi: serves live JPEG frames as multipart/x-mixed-replace streams
 * over FastCGI.  This file only wires the modules together: options,
 * signals, the listening socket, and the shutdown sequence. */
#include "cgi.h"
#include "config.h"
#include "log.h"
#include "origin.h"
#include "mint.h"
#include "producer.h"
#include "server.h"
#include "stream.h"
#include "supervisor.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* How long SIGTERM waits for viewers to get their closing boundary. */
#define SHUTDOWN_USEC (1500 * 1000LL)
/* Exit status when a frame-bus file went away under the process. */
#define EXIT_BUS_ERROR 75 /* EX_TEMPFAIL: a restart may succeed */
/* How often each process checks that its frame-bus files are still the
 * ones at their paths. */
#define BUS_CHECK_MSEC 1000
#define LISTEN_BACKLOG 4096 /* the kernel caps it at net.core.somaxconn */
/* Bits always taken off a unix socket's mode: others may not connect. */
#define SOCKET_UMASK_MIN 0117

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t reload_signal; /* SIGHUP: re-read the config */
/* The command line, kept to read the config again on SIGHUP. */
static int saved_argc;
static char **saved_argv;
static int signal_pipe[2] = { -1, -1 };

static void on_stop_signal(int sig)
{
	int saved = errno;

	if (sig == SIGHUP)
		reload_signal = 1;
	else
		stop_signal = sig;
	if (write(signal_pipe[1], "s", 1) < 0) {
		/* the pipe is full: a wake-up is already pending */
	}
	errno = saved;
}

/* A mapped frame-bus file that shrank under us (truncated, or /dev/shm
 * full when a page is first touched) faults with SIGBUS.  Nothing can be
 * recovered in this process; say why, and leave the restart to the
 * supervisor or the service manager. */
static void on_bus_error(int sig)
{
	static const char message[] =
		"mjpeg-fcgi: SIGBUS: a frame-bus file was truncated, or its file system "
		"(/dev/shm) is full; exiting\n";

	(void)sig;
	if (write(STDERR_FILENO, message, sizeof(message) - 1) < 0) {
		/* nothing more to try */
	}
	_exit(EXIT_BUS_ERROR);
}

/* The origin's stream list changed (the watch thread): the reload SIGHUP
 * asks for. */
static void on_origin_change(void)
{
	on_stop_signal(SIGHUP);
}

static void on_wake_signal(int sig)
{
	(void)sig; /* only interrupts a blocking call */
}

static void set_handler(int sig, void (*handler)(int))
{
	struct sigaction sa;

	/* No SA_RESTART: the wake signal must interrupt flock() in a
	 * producer, and a stop must interrupt poll(). */
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = handler;
	sigaction(sig, &sa, NULL);
}

/* What every mode needs: writes to a departed client fail instead of
 * killing us, a vanished bus file is reported, producers can be woken. */
static void install_fault_signals(void)
{
	set_handler(SIGPIPE, SIG_IGN);
	set_handler(SIGBUS, on_bus_error);
	set_handler(PRODUCER_WAKE_SIGNAL, on_wake_signal);
}

static void install_signals(void)
{
	set_handler(SIGTERM, on_stop_signal);
	set_handler(SIGINT, on_stop_signal);
	set_handler(SIGHUP, on_stop_signal);
	install_fault_signals();
}

/* A unix socket left by a process that died: remove it, but never one that
 * a live process still answers on, and never anything that is not a
 * socket (a mistyped path must not cost a file). */
static int remove_stale_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "mjpeg-fcgi: socket path %s too long (at most %zu bytes)\n", path,
			sizeof(sa.sun_path) - 1);
		return -1;
	}
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "mjpeg-fcgi: lstat(%s): %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "mjpeg-fcgi: %s exists and is %s, not a socket; not removing it "
			"(choose another --listen path)\n", path,
			S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a directory"
				: S_ISREG(st.st_mode) ? "a regular file" : "another kind of file");
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "mjpeg-fcgi: socket: %s\n", strerror(errno));
		return -1;
	}
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0) {
		fprintf(stderr, "mjpeg-fcgi: %s: another process is listening there\n", path);
		return -1;
	}
	if (unlink(path) < 0) {
		fprintf(stderr, "mjpeg-fcgi: unlink(%s): %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The socket file bound at start-up (st_dev, st_ino), so that exit removes
 * that socket and nothing that may have taken its place. */
static struct stat bound_socket;

/* The listening socket: fd 0 as spawn-fcgi and web servers hand it over,
 * or our own from --listen.  -1 with a message when there is none. */
static int open_listener(const struct settings *settings)
{
	const char *where = settings->listen;
	int fd, is_unix = 0;
	mode_t umask_was = 0;

	if (!*where) {
		if (FCGX_IsCGI()) {
			fprintf(stderr,
				"mjpeg-fcgi: standard input is not a FastCGI socket; use "
				"--listen unix:/path or --listen HOST:PORT, or start it under "
				"spawn-fcgi or a web server (see --help)\n");
			return -1;
		}
		return 0;
	}
	if (strncmp(where, "unix:", 5) == 0) {
		where += 5;
		is_unix = 1;
		if (remove_stale_socket(where) < 0)
			return -1;
		/* Connecting takes write access to the socket file: the
		 * user and its group (the web server's) may, others never,
		 * whatever the umask lets through. */
		umask_was = umask(SOCKET_UMASK_MIN);
		umask(umask_was | SOCKET_UMASK_MIN);
	}
	fd = FCGX_OpenSocket(where, LISTEN_BACKLOG);
	if (is_unix)
		umask(umask_was);
	if (fd < 0) {
		fprintf(stderr, "mjpeg-fcgi: cannot listen on %s: %s\n", settings->listen,
			errno ? strerror(errno) : "bad address");
		return -1;
	}
	if (is_unix && lstat(where, &bound_socket) < 0)
		memset(&bound_socket, 0, sizeof(bound_socket));
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

/* At exit: removes the socket file if it is still the one we bound. */
static void remove_own_socket(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == bound_socket.st_ino &&
	    st.st_dev == bound_socket.st_dev)
		unlink(path);
}

/* Writes our pid.  A file already there is rewritten only if it is a
 * regular file of our user with no other name: a symbolic or hard link
 * planted at the path must not make us overwrite another file. */
static int write_pid_file(const char *path)
{
	char text[32];
	struct stat st;
	int fd, n, rc = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
	if (fd < 0) {
		int saved = errno;

		/* ELOOP (O_NOFOLLOW), or EACCES where the kernel protects
		 * links and files in sticky directories (fs.protected_*) */
		if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
			fprintf(stderr, "mjpeg-fcgi: pid file %s is a symbolic link; not writing "
				"through it (remove it)\n", path);
		else
			fprintf(stderr, "mjpeg-fcgi: pid file %s: %s\n", path, strerror(saved));
		return -1;
	}
	if (fstat(fd, &st) < 0)
		FATAL("fstat(pid file %s): %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
		fprintf(stderr, "mjpeg-fcgi: pid file %s is not a regular file of uid %lu with "
			"one link (uid %lu, %lu links); not writing to it (remove it)\n", path,
			(unsigned long)geteuid(), (unsigned long)st.st_uid,
			(unsigned long)st.st_nlink);
		goto out;
	}
	n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(text))
		FATAL("pid of %d characters", n);
	if (ftruncate(fd, 0) < 0 || write(fd, text, (size_t)n) != n) {
		fprintf(stderr, "mjpeg-fcgi: pid file %s: %s\n", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/* SIGHUP: reads the command line and config file again and swaps the
 * streams; a config with errors changes nothing. */
static void reload(struct server *server)
{
	struct settings *next = malloc(sizeof(*next));

	if (!next) {
		log_error("reload: out of memory; keeping the running config");
		return;
	}
	if (config_from_args(next, saved_argc, saved_argv) != 0) {
		log_error("reload: the config has errors (above); keeping the running config");
		goto out;
	}
	/* an edge's streams: the origin's list, read again */
	if (next->relay.origin[0])
		origin_add_streams(next);
	if (server_reload(server, next) < 0)
		log_error("reload: keeping the running config");
	else
		config_log_warnings(next);
out:
	free(next);
}

/* Waits for a stop signal, reloading on SIGHUP and checking every
 * BUS_CHECK_MSEC that the frame-bus files are still in place.  0 on a stop
 * signal, -1 when a file went away. */
static int wait_for_stop_signal(struct server *server, const struct stream_set *streams)
{
	struct pollfd pfd = { .fd = signal_pipe[0], .events = POLLIN };
	char drain[64];
	size_t i;

	while (!stop_signal) {
		if (poll(&pfd, 1, BUS_CHECK_MSEC) < 0 && errno != EINTR)
			FATAL("poll: %s", strerror(errno));
		while (read(signal_pipe[0], drain, sizeof(drain)) > 0)
			;
		if (reload_signal && !stop_signal) {
			reload_signal = 0;
			log_info("SIGHUP: reading the config again");
			reload(server);
		}
		/* Only this thread swaps the set (reload, above), so it
		 * reads it here without the server's lock. */
		for (i = 0; i < streams->count; i++)
			if (bus_check_file(streams->streams[i]->bus) < 0)
				return -1;
	}
	return 0;
}

/* One responder process: its streams, its thread pool, until a stop
 * signal.  Runs in main's process, or in each worker under --workers. */
struct serve_context {
	const struct settings *settings;
	int listen_fd;
};

/* The streams of a process whose stop timed out: threads still running
 * use them until exit, so they are kept, not dropped with serve's frame
 * (volatile: a store the program never reads back must still be made). */
static struct stream **volatile streams_at_exit;

static int serve(void *arg)
{
	const struct serve_context *ctx = arg;
	const struct settings *settings = ctx->settings;
	struct stream_set streams = { 0 };
	struct server *server = NULL;
	int left = 0, exit_code = EXIT_FAILURE;

	if (streams_open(&streams, settings) < 0)
		return EXIT_FAILURE;
	server = server_start(ctx->listen_fd, settings, &streams);
	if (!server)
		goto out;
	log_info("serving %zu stream%s on %s, bus %s, max_viewers %d", streams.count,
		 streams.count == 1 ? "" : "s", settings->listen[0] ? settings->listen : "fd 0",
		 settings->bus_dir, settings->max_viewers);

	if (wait_for_stop_signal(server, &streams) < 0) {
		log_error("restarting is needed: ending every stream and exiting");
		exit_code = EXIT_BUS_ERROR;
	} else {
		log_info("signal %d: ending every stream", (int)stop_signal);
		exit_code = EXIT_SUCCESS;
	}
	left = server_stop(server, SHUTDOWN_USEC);
	if (left > 0)
		log_warn("%d request%s still running at exit", left, left == 1 ? "" : "s");
	server_free(server);
out:
	/* Producers hold frame-bus locks; closing hands them over.  With
	 * requests still running the streams stay open until exit. */
	if (left == 0)
		streams_close(&streams);
	else
		streams_at_exit = streams.streams;
	return exit_code;
}

/* Each worker gets a signal pipe of its own: the one inherited from the
 * supervisor would wake the supervisor instead. */
static int serve_worker(void *arg)
{
	reload_signal = 0;
	close(signal_pipe[0]);
	close(signal_pipe[1]);
	if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("worker: pipe2: %s", strerror(errno));
		return EXIT_FAILURE;
	}
	return serve(arg);
}

/* Plain CGI: one request, then exit.  Without --config, the config file
 * beside the script is read, so a hosting account needs no arguments. */
static int serve_cgi(struct settings *settings, int argc)
{
	char path[PATH_MAX];

	if (argc <= 1 && cgi_default_config(path, sizeof(path))) {
		config_defaults(settings);
		settings->stream_count = 0;
		if (config_load_file(settings, path) < 0) {
			printf("Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\n"
			       "mjpeg-fcgi: error in %s; see the server's error log\n", path);
			return EXIT_FAILURE;
		}
		config_add_default_streams(settings);
		if (settings->relay.origin[0])
			origin_add_streams(settings);
	}
	/* SIGTERM is cgi_serve's own: it ends the one stream. */
	install_fault_signals();
	return cgi_serve(settings);
}

int main(int argc, char **argv)
{
	static struct settings settings; /* large: not on the stack */
	struct serve_context ctx = { .settings = &settings };
	struct stream_set check;
	int rc, exit_code;

	if (argc > 1 && strcmp(argv[1], "sign") == 0)
		return mint_main(argc - 1, argv + 1);
	saved_argc = argc;
	saved_argv = argv;
	rc = config_from_args(&settings, argc, argv);
	if (rc != 0)
		return rc > 0 ? EXIT_SUCCESS : 2;
	log_set_level(settings.log_level);
	/* Before any thread: libcurl's global set-up is not thread-safe with
	 * every TLS back-end. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "mjpeg-fcgi: curl_global_init failed\n");
		return EXIT_FAILURE;
	}
	if (settings.relay.origin[0])
		origin_add_streams(&settings);
	if (!settings.listen[0] && cgi_detect())
		return serve_cgi(&settings, argc);

	/* Before FCGX_Init, which installs handlers of its own where none
	 * are set. */
	if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		fprintf(stderr, "mjpeg-fcgi: pipe2: %s\n", strerror(errno));
		return EXIT_FAILURE;
	}
	install_signals();
	config_log_warnings(&settings);
	if (FCGX_Init() != 0) {
		fprintf(stderr, "mjpeg-fcgi: FCGX_Init failed\n");
		return EXIT_FAILURE;
	}
	/* A bus directory or stream file that is not ours is refused here,
	 * once, before any socket or pid file exists, rather than by every
	 * worker again. */
	if (streams_open(&check, &settings) < 0) {
		fprintf(stderr, "mjpeg-fcgi: cannot use the frame bus in %s (see above); exiting\n",
			settings.bus_dir);
		return EXIT_FAILURE;
	}
	streams_close(&check);
	ctx.listen_fd = open_listener(&settings);
	if (ctx.listen_fd < 0)
		return EXIT_FAILURE;
	if (settings.pid_file[0] && write_pid_file(settings.pid_file) < 0) {
		if (strncmp(settings.listen, "unix:", 5) == 0)
			remove_own_socket(settings.listen + 5);
		return EXIT_FAILURE;
	}
	/* An edge watches its origin's stream list in the process that
	 * reloads on SIGHUP: this one, or the supervisor, which passes the
	 * reload on to every worker. */
	if (settings.relay.origin[0] && origin_watch_start(&settings.relay, on_origin_change) < 0)
		return EXIT_FAILURE;
	if (settings.workers > 1)
		exit_code = supervisor_run(settings.workers, serve_worker, &ctx, signal_pipe[0],
					   &stop_signal, &reload_signal);
	else
		exit_code = serve(&ctx);
	origin_watch_stop();
	if (settings.pid_file[0] && exit_code == EXIT_SUCCESS)
		unlink(settings.pid_file);
	if (strncmp(settings.listen, "unix:", 5) == 0)
		remove_own_socket(settings.listen + 5);
	return exit_code;
}
