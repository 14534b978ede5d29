/* http: what a request asks for (route and query) and the plain answers
 * (status lines, one-line errors).  Pure parsing and formatting: no I/O. */
#ifndef MJPEG_HTTP_H
#define MJPEG_HTTP_H

#include "config.h"
#include "sign.h"

#include <stddef.h>
#include <stdint.h>

/* The longest query string accepted; longer ones get 400. */
#define HTTP_QUERY_MAX 1024
/* The longest request path routed; longer ones get 404. */
#define HTTP_PATH_MAX 2048
#define HTTP_FRAMES_MAX 1000000000L

enum route_kind {
	ROUTE_NONE,     /* no such path: 404 */
	ROUTE_STREAM,   /* stream/NAME */
	ROUTE_SNAPSHOT, /* snapshot/NAME */
	ROUTE_STATUS,   /* status */
	ROUTE_INGEST,   /* ingest/NAME */
	ROUTE_METRICS,  /* metrics */
};

struct route {
	enum route_kind kind;
	char name[STREAM_NAME_MAX + 1]; /* stream name, valid when kind needs one */
};

struct query {
	double fps;   /* stream: at most this many frames per second; 0: as published */
	long frames;  /* stream: end after this many parts; 0: never */
	int raw;      /* ingest: the body is raw pixels, not a JPEG */
	enum pixel_format format; /* ingest, raw: pixel layout */
	long width, height;       /* ingest, raw: picture size */
	struct sign_link link;    /* stream, snapshot: exp, sig and ip as sent */
	int64_t expires_sec;      /* stream: a signed link's exp, once checked; 0: none */
};

/* The path a request asks for below the responder's mount point, copied
 * into buf (size bytes) without the mount:
 *  - plain CGI (mount NULL): the script is the mount point, so it is
 *    PATH_INFO less its leading '/' (script_name is not looked at);
 *  - FastCGI: SCRIPT_NAME followed by PATH_INFO (servers split the path
 *    between them differently), which must begin with mount.
 * NULL script_name or path_info count as empty.  The path is taken as the
 * web server passes it, already decoded and normalised: nothing is decoded
 * here.  -1 when the path is not below the mount point, or is longer than
 * HTTP_PATH_MAX or buf. */
int http_path_below(const char *mount, const char *script_name, const char *path_info,
		    char *buf, size_t size) __attribute__((warn_unused_result));

/* Routes the path below the mount point (from http_path_below).  Only a
 * whole path of one of these shapes routes: "stream/NAME",
 * "snapshot/NAME", "ingest/NAME" (NAME a valid stream name), "status" and
 * "metrics".  Anything else, however much of it looks like a route
 * ("ingest/stream/NAME", "stream/NAME/", "x/status", "/status",
 * "stream//NAME"), is ROUTE_NONE: what the responder serves is always what
 * the web server's location for that path says it is. */
void http_route(const char *below, struct route *route);

/* Parses QUERY_STRING for a route.  A stream or snapshot takes a signed
 * link's exp, sig and ip into query->link (sign_take_param: a bad value
 * there is the signature's business, not a 400).  On error returns -1 with a one-line
 * message for the client in why, naming the parameter. */
int http_parse_query(const char *query_string, enum route_kind kind, struct query *query,
		     char *why, size_t why_size) __attribute__((warn_unused_result));

/* "Not Found" for 404, etc.; "Error" for codes it does not know. */
const char *http_reason(int status);

/* Formats a complete CGI error response (Status line, text/plain headers,
 * one line of body) into buf.  Returns its length, or -1 if it does not fit.
 * extra_headers, when not NULL, is inserted verbatim (each line ending
 * CRLF). */
int http_error_response(char *buf, size_t size, int status, const char *extra_headers,
			const char *message);

#endif
