/* request: answering one request once it is read: the route, the method,
 * the stream, the query, then /status and /metrics, a snapshot, a stream
 * (admitted, then handed to the writer threads or served by this thread),
 * or an ingest.  Runs in the request thread that read the request. */
#include "server_state.h"

#include "clock.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "multipart.h"
#include "record.h"
#include "reply.h"
#include "request_input.h"
#include "sign.h"
#include "snapshot.h"
#include "status.h"
#include "viewer_blocking.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *param(FCGX_Request *req, const char *name)
{
	const char *v = FCGX_GetParam(name, req->envp);

	return v ? v : "";
}

/* A private stream opens only with a valid signed link (sign.c); a public
 * one takes any request.  0 after answering 403. */
static int link_admits(const struct settings *settings, const struct stream *st,
		       FCGX_Request *req, struct query *query)
{
	enum sign_verdict verdict;

	if (!st->cfg->view_secret[0])
		return 1;
	verdict = sign_check(&query->link, st->cfg->name, st->cfg->view_secret,
			     param(req, "REMOTE_ADDR"), clock_wall_usec() / USEC_PER_SEC,
			     settings->link_grace_usec / USEC_PER_SEC, &query->expires_sec);
	if (verdict == SIGN_OK)
		return 1;
	reply_error(req->out, 403, NULL, "%s", sign_reason(verdict));
	return 0;
}

/* 1 if the request carries the server's status_token (Authorization:
 * Bearer T): /status and /metrics then show private streams too. */
static int status_authorized(const struct settings *settings, FCGX_Request *req)
{
	const char *auth = param(req, "HTTP_AUTHORIZATION");
	size_t n = strlen(settings->status_token);

	if (!n || strncmp(auth, "Bearer ", 7) != 0 || strlen(auth + 7) != n)
		return 0;
	return CRYPTO_memcmp(auth + 7, settings->status_token, n) == 0;
}

/* Answers status or metrics: the document is built in memory first, so
 * that it goes out with its Content-Length. */
static void handle_document(struct server *srv, FCGX_Request *req, enum route_kind kind,
			    int head_only)
{
	struct status_process process = {
		.started_mono_usec = srv->started_mono_usec,
		.viewers = atomic_load(&srv->viewers),
		.client_addr = param(req, "REMOTE_ADDR"),
		.server_port = param(req, "SERVER_PORT"),
		.show_private = status_authorized(srv->settings, req),
	};
	char *doc = NULL, head[256];
	size_t doc_bytes = 0;
	FILE *f = open_memstream(&doc, &doc_bytes);
	int n;

	if (!f) {
		log_error("server: open_memstream: %s", strerror(errno));
		reply_error(req->out, 500, NULL, "out of memory");
		return;
	}
	CHECK_ZERO(pthread_rwlock_rdlock(&srv->streams_lock));
	if (kind == ROUTE_STATUS)
		status_write_json(f, srv->streams, srv->settings, &process);
	else
		status_write_metrics(f, srv->streams, &process);
	CHECK_ZERO(pthread_rwlock_unlock(&srv->streams_lock));
	if (fclose(f) != 0) {
		log_error("server: building %s: %s", kind == ROUTE_STATUS ? "status" : "metrics",
			  strerror(errno));
		reply_error(req->out, 500, NULL, "out of memory");
		free(doc);
		return;
	}
	/* libfcgi's own printf knows no %zu: format here. */
	n = snprintf(head, sizeof(head),
		     "Status: 200 OK\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "Cache-Control: no-store\r\n"
		     "\r\n",
		     kind == ROUTE_STATUS ? "application/json"
					  : "text/plain; version=0.0.4; charset=utf-8",
		     doc_bytes);
	if (n < 0 || (size_t)n >= sizeof(head))
		FATAL("document header overflow");
	FCGX_PutStr(head, n, req->out);
	if (!head_only)
		FCGX_PutStr(doc, (int)doc_bytes, req->out);
	free(doc);
}

/* Admits a viewer to the process-wide and per-stream limits, or answers
 * 503.  1: admitted (leave with release_viewer). */
static int admit_viewer(struct server *srv, struct stream *st, FCGX_Request *req)
{
	struct bus_stats stats;

	if (atomic_fetch_add(&srv->viewers, 1) >= srv->settings->max_viewers) {
		atomic_fetch_sub(&srv->viewers, 1);
		reply_error(req->out, 503, "Retry-After: 5\r\n",
			    "too many viewers (max_viewers %d)", srv->settings->max_viewers);
		return 0;
	}
	bus_viewer_enter(st->bus);
	atomic_fetch_add(&st->viewers_here, 1);
	bus_stats(st->bus, &stats);
	if (st->cfg->max_viewers && stats.viewers > (uint32_t)st->cfg->max_viewers) {
		atomic_fetch_sub(&st->viewers_here, 1);
		bus_viewer_leave(st->bus);
		atomic_fetch_sub(&srv->viewers, 1);
		reply_error(req->out, 503, "Retry-After: 5\r\n",
			    "too many viewers of stream '%s' (max_viewers %d)", st->cfg->name,
			    st->cfg->max_viewers);
		return 0;
	}
	return 1;
}

static void release_viewer(struct server *srv, struct stream *st)
{
	atomic_fetch_sub(&st->viewers_here, 1);
	bus_viewer_leave(st->bus);
	atomic_fetch_sub(&srv->viewers, 1);
}

/* Hands an admitted viewer to the writer threads (fanout.c): this thread
 * sends the response head, then libfcgi lets go of the connection (no end
 * records, no close), and the request thread is free for the next request.
 * 1: the viewer, its admission and its reference to st are the fanout's;
 * 0: the response is over here (the client left, or we are stopping). */
static int hand_over(struct server *srv, FCGX_Request *req, struct stream *st,
		     const struct query *query)
{
	char boundary[MULTIPART_BOUNDARY_LEN + 1];
	int fd, request_id = req->requestId;
	size_t sent = 0;

	/* The body read first: the writer reads on from a record boundary. */
	if (reply_stream_head(req->out, boundary) < 0 ||
	    request_skip_body(req, srv->settings->ingest_usec) < 0)
		return 0;
	stream_want(st);
	FCGX_Free(req, 0);
	fd = req->ipcFd;
	req->ipcFd = -1; /* FCGX_Finish_r and FCGX_Accept_r now skip it */
	if (fanout_add(srv->fanout, fd, request_id, st, query, boundary) == 0)
		return 1;
	/* Stopping: end the request (records, then close) ourselves. */
	if (record_send(fd, request_id, NULL, 0, 1, &sent, MSG_DONTWAIT) < 0)
		log_info("server: ending request on fd %d: %s", fd, strerror(errno));
	close(fd);
	return 0;
}

/* A stream response goes to the writer threads when it is FastCGI (a
 * socket of our own) for one request only: a plain CGI response goes to
 * stdout, and a connection the server wants kept (FCGI_KEEP_CONN) must
 * return to libfcgi afterwards; those keep this thread. */
static int can_hand_over(const struct server *srv, const FCGX_Request *req, int head_only)
{
	return srv->fanout && req->ipcFd >= 0 && !req->keepConnection && !head_only;
}

void request_handle(struct server *srv, FCGX_Request *req)
{
	const char *method = param(req, "REQUEST_METHOD");
	int head_only = strcmp(method, "HEAD") == 0;
	struct route route;
	struct query query;
	struct stream *st = NULL;
	char why[160], below[HTTP_PATH_MAX];

	/* Only the whole path below the mount point routes.  Under plain CGI
	 * (server_handle_one: no listening socket) the script is the mount
	 * point and the path is PATH_INFO; under FastCGI it is SCRIPT_NAME +
	 * PATH_INFO, however the server splits it, less the configured mount. */
	if (http_path_below(srv->listen_fd >= 0 ? srv->settings->mount : NULL,
			    param(req, "SCRIPT_NAME"), param(req, "PATH_INFO"), below,
			    sizeof(below)) < 0)
		below[0] = '\0';
	http_route(below, &route);
	if (route.kind == ROUTE_NONE) {
		reply_error(req->out, 404, NULL, "no such path");
		return;
	}
	if (route.kind == ROUTE_INGEST ? strcmp(method, "POST") != 0
				       : strcmp(method, "GET") != 0 && !head_only) {
		reply_error(req->out, 405,
			    route.kind == ROUTE_INGEST ? "Allow: POST\r\n" : "Allow: GET, HEAD\r\n",
			    "method %.16s not allowed here", method);
		return;
	}
	if (route.kind != ROUTE_STATUS && route.kind != ROUTE_METRICS) {
		CHECK_ZERO(pthread_rwlock_rdlock(&srv->streams_lock));
		st = streams_get(srv->streams, route.name);
		CHECK_ZERO(pthread_rwlock_unlock(&srv->streams_lock));
		if (!st) {
			reply_error(req->out, 404, NULL, "unknown stream '%s'", route.name);
			return;
		}
	}
	if (http_parse_query(param(req, "QUERY_STRING"), route.kind, &query, why, sizeof(why)) < 0) {
		reply_error(req->out, 400, NULL, "%s", why);
		goto out;
	}
	if ((route.kind == ROUTE_STREAM || route.kind == ROUTE_SNAPSHOT) &&
	    !link_admits(srv->settings, st, req, &query))
		goto out;
	switch (route.kind) {
	case ROUTE_STATUS:
	case ROUTE_METRICS:
		handle_document(srv, req, route.kind, head_only);
		break;
	case ROUTE_SNAPSHOT:
		snapshot_serve(req->out, st, head_only, &srv->snapshots_waiting);
		break;
	case ROUTE_STREAM:
		if (!admit_viewer(srv, st, req))
			break;
		if (can_hand_over(srv, req, head_only)) {
			if (hand_over(srv, req, st, &query)) {
				st = NULL; /* the fanout's now */
				break;
			}
		} else {
			viewer_blocking_serve(req, st, &query, head_only, srv->stopping);
		}
		release_viewer(srv, st);
		break;
	case ROUTE_INGEST:
		ingest_handle(req, st, &query, srv->deadlines);
		break;
	case ROUTE_NONE:
		break;
	}
out:
	if (st)
		stream_release(st);
}
