/* config: what the user sets, from defaults, the INI file and the command
 * line, in that order of precedence (last wins).
 *
 * Settings are read at start-up by the main thread and read-only after;
 * runtime state lives elsewhere. */
#ifndef MJPEG_CONFIG_H
#define MJPEG_CONFIG_H

#include "encode.h"
#include "log.h"
#include "sign.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define STREAM_NAME_MAX 64
#define STREAMS_MAX 64
#define TOKEN_MIN 16
#define TOKEN_MAX 128
/* The longest mount prefix, in bytes ("/cams/"). */
#define MOUNT_MAX 255
/* The largest config file read, in bytes: 64 streams of a dozen 199-byte
 * lines each fit many times over. */
#define CONFIG_FILE_MAX (1024 * 1024)

enum source_kind {
	SOURCE_PATTERN_REDBLUE, /* pattern:redblue */
	SOURCE_PATTERN_BARS,    /* pattern:bars */
	SOURCE_DIR,             /* dir:PATH */
	SOURCE_RAW,             /* raw:PATH or raw:- (stdin) */
	SOURCE_MJPEG,           /* mjpeg:PATH or mjpeg:- (stdin) */
	SOURCE_INGEST,          /* ingest: frames POSTed to ingest/NAME */
	SOURCE_HTTP,            /* http://URL or https://URL: a camera or server, relayed */
	SOURCE_EXEC,            /* exec:COMMAND ARGS: a command's standard output */
};

/* Limits of the upstream keys, bytes (the NUL not counted). */
#define UPSTREAM_USER_MAX 128
#define UPSTREAM_PASSWORD_MAX 256
#define UPSTREAM_HEADER_MAX 1024
#define UPSTREAM_HEADERS_MAX 8

/* How a stream reaches its upstream (http:, exec:) and how it retries.
 * Secrets here are never shown: not in /status, /metrics or the log. */
struct upstream_settings {
	char user[UPSTREAM_USER_MAX + 1];         /* http: Basic/Digest, "" none */
	char password[UPSTREAM_PASSWORD_MAX + 1];
	/* http: extra request headers, "Name: value" each */
	char headers[UPSTREAM_HEADERS_MAX][UPSTREAM_HEADER_MAX + 1];
	int header_count;
	int tls_verify;          /* https: check the certificate and host (default 1) */
	int64_t connect_usec;    /* http: a connection must be made within this */
	int64_t stall_usec;      /* no byte from the upstream this long: it is gone */
	int64_t retry_min_usec;  /* the first wait after a failure ... */
	int64_t retry_max_usec;  /* ... doubling up to this, each jittered */
	int64_t stop_grace_usec; /* exec: from SIGTERM to SIGKILL */
};

#define UPSTREAM_CONNECT_MS_DEFAULT 5000
#define UPSTREAM_STALL_MS_DEFAULT 10000
#define UPSTREAM_RETRY_MIN_MS_DEFAULT 500
#define UPSTREAM_RETRY_MAX_MS_DEFAULT 2000
#define UPSTREAM_STOP_GRACE_MS_DEFAULT 2000
/* The range of every upstream _ms key. */
#define UPSTREAM_MS_MIN 10
#define UPSTREAM_MS_MAX 3600000

struct stream_settings {
	char name[STREAM_NAME_MAX + 1];
	char source[PATH_MAX + 16]; /* as written, e.g. "pattern:bars" */
	enum source_kind kind;
	char path[PATH_MAX];        /* dir:, raw:, mjpeg: argument ("-" is stdin);
				     * http: the URL; exec: the command line */
	enum pixel_format format;   /* raw: pixel layout */
	int format_set;             /* the format key was given: exec: reads raw frames */
	char token[TOKEN_MAX + 1];  /* ingest: bearer token; "" refuses every POST */
	uint32_t width, height;
	double fps;                 /* frames the producer publishes per second */
	int quality;                /* JPEG quality, 1-100 */
	int max_viewers;            /* 0: only the server-wide limit applies */
	struct upstream_settings upstream; /* http:, exec: */
	/* A private stream's viewing secret (its own, or [server]'s); "":
	 * public.  Never shown: not in /status, /metrics or the log. */
	char view_secret[SIGN_SECRET_MAX + 1];
};

/* The longest [relay] origin URL, in bytes: room is left for
 * "/stream/NAME" after it. */
#define RELAY_ORIGIN_MAX 1024
#define RELAY_REFRESH_S_DEFAULT 10
#define RELAY_REFRESH_S_MAX 3600

/* [relay]: an edge that relays every stream of an origin mjpeg-fcgi.  Each
 * stream the origin's /status lists becomes a stream of the same name with
 * source ORIGIN/stream/NAME and these upstream settings. */
struct relay_settings {
	char origin[RELAY_ORIGIN_MAX + 1]; /* "" no relay; http(s)://HOST[:PORT][/mount],
					    * kept without a trailing '/' */
	int64_t refresh_usec;              /* how often the stream list is read again */
	struct upstream_settings upstream; /* applied to every relayed stream */
};

struct settings {
	char listen[PATH_MAX];      /* "" (fd 0), "unix:/path" or "HOST:PORT" */
	char bus_dir[PATH_MAX];
	char pid_file[PATH_MAX];
	char config_path[PATH_MAX];
	char mount[MOUNT_MAX + 1];  /* FastCGI: the URL path the responder answers below */
	int max_viewers;            /* viewers per process, all streams */
	int workers;                /* responder processes on the socket (1: no supervisor) */
	int64_t repeat_usec;        /* resend a frame no newer one followed within this */
	int64_t keepalive_usec;     /* resend the newest frame at least this often */
	int64_t idle_usec;          /* producer pauses after this long with no viewer */
	int64_t first_frame_usec;   /* how long a snapshot waits for a first frame */
	int64_t stall_usec;         /* a viewer that takes no bytes this long is dropped */
	int64_t ingest_usec;        /* an ingest body must arrive within this */
	int64_t request_usec;       /* a request's params must arrive within this */
	size_t frame_bytes_max;     /* largest JPEG a stream carries */
	enum log_level log_level;   /* lines above it are dropped */
	struct relay_settings relay; /* [relay]: origin "" when not an edge */
	int64_t link_grace_usec;    /* a signed link is taken this long after its exp */
	/* Config file only (never a command-line option, never shown):
	 * [server] view_secret, inherited by every stream without its own,
	 * and status_token, which shows private streams in /status and
	 * /metrics.  "": none. */
	char view_secret[SIGN_SECRET_MAX + 1];
	char status_token[TOKEN_MAX + 1];
	size_t stream_count;
	struct stream_settings streams[STREAMS_MAX];
};

#define MAX_VIEWERS_DEFAULT 500
#define MAX_VIEWERS_LIMIT 100000
#define REPEAT_MS_DEFAULT 200
#define KEEPALIVE_MS_DEFAULT 1000
#define IDLE_SEC_DEFAULT 5
#define FIRST_FRAME_MS_DEFAULT 2000
#define STALL_MS_DEFAULT 10000
#define INGEST_MS_DEFAULT 10000
#define REQUEST_MS_DEFAULT 5000
#define FRAME_BYTES_MAX_DEFAULT 4194304 /* 4 MiB */
#define FRAME_BYTES_MAX_LIMIT (64u << 20)
#define FPS_MAX 240.0
#define BUS_DIR_DEFAULT "/dev/shm/mjpeg-fcgi"

/* 1 if name matches [A-Za-z0-9_-]{1,64}: safe as a file name under bus_dir. */
int config_stream_name_valid(const char *name);

/* 1 if mount is a valid mount prefix for FastCGI: it begins and ends with
 * '/', has no empty segment ("//"), no "." or ".." segment, only unreserved
 * URL characters [A-Za-z0-9._~-] in between, and is at most MOUNT_MAX bytes:
 * "/", "/cams/", "/site/cams/". */
int config_mount_valid(const char *mount);

void config_defaults(struct settings *settings);

/* Reads an INI file; on error prints "FILE:LINE: key: reason" (or
 * "FILE: reason" when the file cannot be read: not a regular file, a read
 * error, over CONFIG_FILE_MAX bytes) to stderr and returns -1.  A second
 * [stream NAME] section of the same name is an error. */
int config_load_file(struct settings *settings, const char *path)
	__attribute__((warn_unused_result));

/* Parses the command line (which may name --config, loaded first).
 * Returns 0 to run, 1 when --help or --version was answered, -1 on a usage
 * error (printed). */
int config_from_args(struct settings *settings, int argc, char **argv)
	__attribute__((warn_unused_result));

/* Logs what is allowed but unsafe (tls_verify = no), once per start or
 * reload. */
void config_log_warnings(const struct settings *settings);

/* The built-in streams, used when the config defines none and relays no
 * origin; then every stream without a view_secret of its own takes
 * [server]'s. */
void config_add_default_streams(struct settings *settings);

/* Adds the stream NAME relayed from the [relay] origin: source
 * ORIGIN/stream/NAME with the [relay] upstream settings, and fps (what the
 * origin says; 0 for the default) as the rate /status shows and a
 * snapshot-only upstream would be polled at.  NULL on success,
 * else why not (a name that is not a valid stream name, one the config
 * already has, STREAMS_MAX reached); nothing is changed then. */
const char *config_add_relay_stream(struct settings *settings, const char *name, double fps);

/* url as /status and the log may show it: user information (user:password@)
 * replaced by "***". */
void config_url_shown(const char *url, char *shown, size_t size);

const struct stream_settings *config_find_stream(const struct settings *settings,
						 const char *name);

/* --help: every option (from the option table), the stream keys, the
 * source kinds and the endpoints, on stdout. */
void config_usage(const char *argv0);

#define MJPEG_FCGI_VERSION "0.1.0"

#endif
