/* http: what a request asks for (route and query) and the plain answers
 * (status lines, one-line errors).  Pure parsing and formatting: no I/O. */
#ifndef MJPEG_HTTP_H
#define MJPEG_HTTP_H

#include "config.h"

#include <stddef.h>

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
};

/* Strict base-10 integer in [min, max]: the whole string, no spaces, no
 * sign games.  0 or -1. */
int http_parse_long(const char *text, long min, long max, long *out)
	__attribute__((warn_unused_result));

/* Strict decimal number ("12", "0.5", "29.97") in [min, max]: digits with
 * at most one point, nothing else (no sign, exponent, hex or spaces).
 * 0 or -1. */
int http_parse_decimal(const char *text, double min, double max, double *out)
	__attribute__((warn_unused_result));

/* Routes by the path's last segments, so the responder works wherever the
 * web server mounts it: ".../stream/NAME", ".../snapshot/NAME",
 * ".../status", ".../metrics", ".../ingest/NAME".  A stream path whose name is not valid routes to ROUTE_NONE. */
void http_route(const char *path, struct route *route);

/* Parses QUERY_STRING for a route.  On error returns -1 with a one-line
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
