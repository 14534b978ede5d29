#include "http.h"

#include "parse.h"

#include <stdio.h>
#include <string.h>

int http_path_below(const char *mount, const char *script_name, const char *path_info,
		    char *buf, size_t size)
{
	char full[HTTP_PATH_MAX + 1];
	const char *prefix = mount ? mount : "/";
	size_t prefix_len = strlen(prefix);
	int n;

	if (!script_name || !mount)
		script_name = ""; /* plain CGI: the script is the mount point */
	if (!path_info)
		path_info = "";
	n = snprintf(full, sizeof(full), "%s%s", script_name, path_info);
	if (n < 0 || (size_t)n >= sizeof(full) || strncmp(full, prefix, prefix_len) != 0)
		return -1;
	n -= (int)prefix_len;
	if ((size_t)n >= size)
		return -1;
	memcpy(buf, full + prefix_len, (size_t)n + 1);
	return 0;
}

void http_route(const char *below, struct route *route)
{
	static const struct {
		const char *prefix; /* "kind/" before a stream name, or the whole path */
		enum route_kind kind;
		int named;
	} shapes[] = {
		{ "stream/", ROUTE_STREAM, 1 },   { "snapshot/", ROUTE_SNAPSHOT, 1 },
		{ "ingest/", ROUTE_INGEST, 1 },   { "status", ROUTE_STATUS, 0 },
		{ "metrics", ROUTE_METRICS, 0 },
	};
	size_t i, n;

	memset(route, 0, sizeof(*route));
	route->kind = ROUTE_NONE;
	if (!below)
		return;
	/* The whole path must have one of the shapes: a name is one segment
	 * of name characters (no '/', '.', '%'), so nothing can follow it or
	 * hide another kind's path inside it. */
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		n = strlen(shapes[i].prefix);
		if (!shapes[i].named) {
			if (strcmp(below, shapes[i].prefix) == 0)
				route->kind = shapes[i].kind;
			continue;
		}
		if (strncmp(below, shapes[i].prefix, n) != 0 ||
		    !config_stream_name_valid(below + n))
			continue;
		route->kind = shapes[i].kind;
		/* valid names are at most STREAM_NAME_MAX bytes */
		memcpy(route->name, below + n, strlen(below + n) + 1);
		return;
	}
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
		if ((kind == ROUTE_STREAM || kind == ROUTE_SNAPSHOT) &&
		    sign_take_param(&query->link, pair, value))
			continue;
		if (kind == ROUTE_STREAM && strcmp(pair, "fps") == 0) {
			if (parse_decimal(value, 0.01, FPS_MAX, &query->fps) < 0) {
				snprintf(why, why_size,
					 "parameter 'fps' must be a number from 0.01 to 240");
				return -1;
			}
		} else if (kind == ROUTE_STREAM && strcmp(pair, "frames") == 0) {
			if (parse_long(value, 1, HTTP_FRAMES_MAX, &n) < 0) {
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
			if (parse_long(value, 1, FRAME_SIDE_MAX, &n) < 0) {
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
