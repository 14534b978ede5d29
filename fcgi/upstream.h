/* upstream: what the sources with an upstream (http: relays, exec:
 * commands) share about a thing that comes and goes: the state /status
 * shows, the capped, jittered back-off between attempts, and the log
 * lines of an outage (one when it begins, one when it ends, none per
 * attempt).
 *
 * Each wait is the back-off's base less up to UPSTREAM_JITTER_PERCENT of
 * it, at random; the base starts at upstream_retry_min_ms and doubles up
 * to upstream_retry_max_ms, and starts again once frames flow.
 *
 * Owned by the stream's producer thread, as its source is (source.h). */
#ifndef MJPEG_UPSTREAM_H
#define MJPEG_UPSTREAM_H

#include "bus.h"
#include "config.h"

#include <curl/curl.h>
#include <stdint.h>

/* Sources that lost the same upstream do not all come back at the same
 * instant, and no wait exceeds upstream_retry_max_ms. */
#define UPSTREAM_JITTER_PERCENT 25

struct upstream_link {
	const struct stream_settings *stream; /* read-only, outlives us */
	const char *who;		      /* "relay", "exec": log lines begin "relay NAME:" */
	const char *what;		      /* "upstream", "command" */
	const char *retrying;		      /* "retrying", "restarting it" */
	int64_t backoff_usec;		      /* the base of the next wait */
	uint64_t attempts_failed;	      /* since the outage began */
	int64_t away_since_usec;	      /* monotonic; 0: not away */
	uint32_t random;		      /* xorshift state for the jitter */
	struct bus_upstream up;		      /* what /status shows ... */
	uint64_t changes;		      /* ... and a count of its changes */
};

void upstream_init(struct upstream_link *link, const struct stream_settings *stream,
		   const char *who, const char *what, const char *retrying);

/* Sets the state (and the last error, when error is not NULL). */
void upstream_set_state(struct upstream_link *link, enum bus_upstream_state state,
			const char *error);

/* An attempt failed (why): the state turns away, the first failure of an
 * outage is logged.  Returns how long to wait before the next attempt,
 * microseconds. */
int64_t upstream_failed(struct upstream_link *link, const char *why)
	__attribute__((warn_unused_result));

/* Frames flow again: logs the end of an outage, counts a reconnect, and
 * starts the back-off again from its minimum. */
void upstream_flows(struct upstream_link *link);

/* Nobody watches, the upstream was let go of: idle, no outage. */
void upstream_idle(struct upstream_link *link);

/* 1 while an outage lasts. */
int upstream_away(const struct upstream_link *link);

/* The state /status shows, and its count of changes (source_upstream). */
const struct bus_upstream *upstream_state(const struct upstream_link *link, uint64_t *changes);

/* The options of a request to an upstream that come from its settings:
 * the connect time-out, TLS verification, the extra headers (headers, the
 * list made of up->headers; NULL: none) and the credentials (Basic or
 * Digest, as the server asks).  The first error, or CURLE_OK. */
CURLcode upstream_curl_options(CURL *e, const struct upstream_settings *up,
			       struct curl_slist *headers);

#endif
