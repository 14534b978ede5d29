/* status: the /status document (JSON): version, uptime, the limits, and
 * per stream its geometry, producer and counters from the frame bus, and
 * the state of its upstream for relayed and exec: streams. */
#ifndef MJPEG_STATUS_H
#define MJPEG_STATUS_H

#include "stream.h"

#include <stdint.h>
#include <stdio.h>

struct status_process {
	int64_t started_mono_usec; /* when this process started */
	int viewers;               /* viewers of this process */
	const char *client_addr;   /* REMOTE_ADDR of the request, may be NULL */
	const char *server_port;   /* SERVER_PORT of the request (the port the web
				    * server answered on), may be NULL */
	int show_private;          /* the request carried the status_token */
};

/* Without show_private, the documents leave out private streams (those
 * with a view_secret) entirely: their names, their counters, and their
 * viewers in this process's total. */

/* Writes the JSON document (one line, newline-terminated) to out. */
void status_write_json(FILE *out, const struct stream_set *set, const struct settings *settings,
		       const struct status_process *process);

/* Writes the same counters in Prometheus text format (version 0.0.4). */
void status_write_metrics(FILE *out, const struct stream_set *set,
			  const struct status_process *process);

/* 1 if the documents show stream st to this request. */
int status_shows(const struct stream *st, const struct status_process *process);

/* 1 for the kinds with an upstream (http:, exec:), whose stream objects
 * carry "upstream":{"state":"idle|connecting|connected|away","since":S,
 * "reconnects":N,"last_error":"..."}. */
int status_has_upstream(const struct stream_settings *cfg);

/* Writes s as a JSON string literal, quotes included. */
void status_json_string(FILE *out, const char *s);

#endif
