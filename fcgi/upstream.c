#include "upstream.h"

#include "clock.h"
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void upstream_init(struct upstream_link *link, const struct stream_settings *stream,
		   const char *who, const char *what, const char *retrying)
{
	memset(link, 0, sizeof(*link));
	link->stream = stream;
	link->who = who;
	link->what = what;
	link->retrying = retrying;
	link->backoff_usec = stream->upstream.retry_min_usec;
	link->random = (uint32_t)clock_mono_usec() ^ ((uint32_t)getpid() << 16) ^ 0x9e3779b9u;
	if (!link->random)
		link->random = 1;
}

void upstream_set_state(struct upstream_link *link, enum bus_upstream_state state,
			const char *error)
{
	if (link->up.state != (uint32_t)state) {
		link->up.state = state;
		link->up.since_usec = clock_wall_usec();
		link->changes++;
	}
	if (error && strcmp(error, link->up.last_error) != 0) {
		snprintf(link->up.last_error, sizeof(link->up.last_error), "%s", error);
		link->changes++;
	}
}

/* A wait in [base - base * UPSTREAM_JITTER_PERCENT / 100, base]. */
static int64_t jittered(struct upstream_link *link, int64_t base)
{
	uint32_t x = link->random;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	link->random = x;
	return base - (int64_t)(x % 1000u) * base * UPSTREAM_JITTER_PERCENT / 100 / 1000;
}

int64_t upstream_failed(struct upstream_link *link, const char *why)
{
	const struct upstream_settings *up = &link->stream->upstream;
	int64_t wait = jittered(link, link->backoff_usec);

	link->backoff_usec = link->backoff_usec * 2 > up->retry_max_usec ? up->retry_max_usec
									 : link->backoff_usec * 2;
	link->attempts_failed++;
	if (!link->away_since_usec) {
		link->away_since_usec = clock_mono_usec();
		log_warn("%s %s: %s %s: %s; %s every %lld to %lld ms until it is back", link->who,
			 link->stream->name, link->what, link->stream->source, why, link->retrying,
			 (long long)(up->retry_min_usec / USEC_PER_MSEC),
			 (long long)(up->retry_max_usec / USEC_PER_MSEC));
	}
	upstream_set_state(link, BUS_UPSTREAM_AWAY, why);
	return wait;
}

void upstream_flows(struct upstream_link *link)
{
	if (link->away_since_usec) {
		log_info("%s %s: %s %s is back after %.1f s (%llu attempts failed)", link->who,
			 link->stream->name, link->what, link->stream->source,
			 (double)(clock_mono_usec() - link->away_since_usec) / USEC_PER_SEC,
			 (unsigned long long)link->attempts_failed);
		link->up.reconnects++;
		link->changes++;
	}
	link->away_since_usec = 0;
	link->attempts_failed = 0;
	link->backoff_usec = link->stream->upstream.retry_min_usec;
	upstream_set_state(link, BUS_UPSTREAM_CONNECTED, NULL);
}

void upstream_idle(struct upstream_link *link)
{
	link->backoff_usec = link->stream->upstream.retry_min_usec;
	link->attempts_failed = 0;
	link->away_since_usec = 0;
	upstream_set_state(link, BUS_UPSTREAM_IDLE, NULL);
}

int upstream_away(const struct upstream_link *link)
{
	return link->away_since_usec != 0;
}

const struct bus_upstream *upstream_state(const struct upstream_link *link, uint64_t *changes)
{
	*changes = link->changes;
	return &link->up;
}

CURLcode upstream_curl_options(CURL *e, const struct upstream_settings *up,
			       struct curl_slist *headers)
{
	CURLcode rc = CURLE_OK;

#define SET(option, value) \
	do { \
		if (rc == CURLE_OK) \
			rc = curl_easy_setopt(e, option, value); \
	} while (0)
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)(up->connect_usec / USEC_PER_MSEC));
	SET(CURLOPT_SSL_VERIFYPEER, up->tls_verify ? 1L : 0L);
	SET(CURLOPT_SSL_VERIFYHOST, up->tls_verify ? 2L : 0L);
	if (headers)
		SET(CURLOPT_HTTPHEADER, headers);
	if (up->user[0]) {
		SET(CURLOPT_USERNAME, up->user);
		SET(CURLOPT_PASSWORD, up->password);
		SET(CURLOPT_HTTPAUTH, (long)(CURLAUTH_BASIC | CURLAUTH_DIGEST));
	}
#undef SET
	return rc;
}
