#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int http_parse_long(const char *text, long min, long max, long *out)
{
	const char *digits = text;
	char *end;
	long v;

	/* strtol alone would take leading spaces and '+'. */
	if (!text)
		return -1;
	if (*digits == '-')
		digits++;
	if (*digits < '0' || *digits > '9')
		return -1;
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int http_parse_decimal(const char *text, double min, double max, double *out)
{
	const char *p;
	int digits = 0, points = 0;
	double v;

	if (!text)
		return -1;
	for (p = text; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		else if (*p == '.' && !points++)
			continue;
		else
			return -1;
	}
	if (!digits || p - text > 32)
		return -1;
	v = strtod(text, NULL);
	if (!(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

/* Copies the n-th segment from the end of path (0: the last) into out.
 * Returns its length, or -1 if there is no such segment or it is too long. */
static int segment_from_end(const char *path, int n, char *out, size_t size)
{
	const char *end = path + strlen(path), *start;

	for (;;) {
		start = end;
		while (start > path && start[-1] != '/')
			start--;
		if (n-- == 0)
			break;
		if (start == path)
			return -1;
		end = start - 1;
	}
	if ((size_t)(end - start) >= size)
		return -1;
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
	return (int)(end - start);
}

void http_route(const char *path, struct route *route)
{
	char last[STREAM_NAME_MAX + 2], prev[16];

	memset(route, 0, sizeof(*route));
	route->kind = ROUTE_NONE;
	if (!path || segment_from_end(path, 0, last, sizeof(last)) < 0)
		return;
	if (strcmp(last, "status") == 0 || strcmp(last, "metrics") == 0) {
		route->kind = last[0] == 's' ? ROUTE_STATUS : ROUTE_METRICS;
		return;
	}
	if (segment_from_end(path, 1, prev, sizeof(prev)) < 0 || !config_stream_name_valid(last))
		return;
	if (strcmp(prev, "stream") == 0)
		route->kind = ROUTE_STREAM;
	else if (strcmp(prev, "snapshot") == 0)
		route->kind = ROUTE_SNAPSHOT;
	else if (strcmp(prev, "ingest") == 0)
		route->kind = ROUTE_INGEST;
	else
		return;
	/* valid names are at most STREAM_NAME_MAX bytes */
	memcpy(route->name, last, strlen(last) + 1);
}

int http_parse_query(const char *query_string, enum route_kind kind, struct query *query,
		     char *why, size_t why_size)
{
	char buf[HTTP_QUERY_MAX + 1], *pair, *save = NULL;
	size_t len = query_string ? strlen(query_string) : 0;

	memset(query, 0, sizeof(*query));
	if (len == 0)
		return 0;
	if (len > HTTP_QUERY_MAX) {
		snprintf(why, why_size, "query string longer than %d bytes", HTTP_QUERY_MAX);
		return -1;
	}
	memcpy(buf, query_string, len + 1);
	for (pair = strtok_r(buf, "&", &save); pair; pair = strtok_r(NULL, "&", &save)) {
		char *value = strchr(pair, '=');
		long n;

		if (value)
			*value++ = '\0';
		if (strcmp(pair, "_") == 0)
			continue; /* cache buster, as pages add to reconnect */
		if (kind == ROUTE_STREAM && strcmp(pair, "fps") == 0) {
			if (http_parse_decimal(value, 0.01, FPS_MAX, &query->fps) < 0) {
				snprintf(why, why_size,
					 "parameter 'fps' must be a number from 0.01 to 240");
				return -1;
			}
		} else if (kind == ROUTE_STREAM && strcmp(pair, "frames") == 0) {
			if (http_parse_long(value, 1, HTTP_FRAMES_MAX, &n) < 0) {
				snprintf(why, why_size,
					 "parameter 'frames' must be a whole number from 1 to %ld",
					 HTTP_FRAMES_MAX);
				return -1;
			}
			query->frames = n;
		} else if (kind == ROUTE_INGEST && strcmp(pair, "format") == 0) {
			if (!value || encode_parse_format(value, &query->format) < 0) {
				snprintf(why, why_size, "parameter 'format' must be rgb24, bgr24, "
							"rgba, gray or yuyv");
				return -1;
			}
			query->raw = 1;
		} else if (kind == ROUTE_INGEST &&
			   (strcmp(pair, "width") == 0 || strcmp(pair, "height") == 0)) {
			if (http_parse_long(value, 1, FRAME_SIDE_MAX, &n) < 0) {
				snprintf(why, why_size,
					 "parameter '%s' must be a whole number from 1 to %d",
					 pair, FRAME_SIDE_MAX);
				return -1;
			}
			*(pair[0] == 'w' ? &query->width : &query->height) = n;
		} else {
			/* Printable and short, whatever the client sent. */
			char shown[33];
			size_t i;

			for (i = 0; i < sizeof(shown) - 1 && pair[i]; i++)
				shown[i] = pair[i] >= 0x20 && pair[i] < 0x7f ? pair[i] : '?';
			shown[i] = '\0';
			snprintf(why, why_size, "unknown parameter '%s'", shown);
			return -1;
		}
	}
	if (kind == ROUTE_INGEST && (query->raw || query->width || query->height) &&
	    !(query->raw && query->width && query->height)) {
		snprintf(why, why_size, "raw frames need all of parameters 'format', 'width' "
					"and 'height'");
		return -1;
	}
	if (query->raw && query->format == PIXEL_YUYV && query->width % 2) {
		snprintf(why, why_size, "parameter 'width' must be even for yuyv");
		return -1;
	}
	return 0;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

int http_error_response(char *buf, size_t size, int status, const char *extra_headers,
			const char *message)
{
	int n = snprintf(buf, size,
			 "Status: %d %s\r\n"
			 "Content-Type: text/plain; charset=utf-8\r\n"
			 "Cache-Control: no-store\r\n"
			 "%s"
			 "\r\n"
			 "%s\n",
			 status, http_reason(status), extra_headers ? extra_headers : "", message);

	if (n < 0 || (size_t)n >= size)
		return -1;
	return n;
}
