#include "origin.h"

#include "clock.h"
#include "log.h"
#include "upstream.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ORIGIN_USER_AGENT "mjpeg-fcgi/" MJPEG_FCGI_VERSION " (edge)"

/* The last list this process read from its origin.  Written by whichever
 * thread reads the origin (main at start and reload, the watch thread),
 * under known_lock; workers forked by the supervisor inherit it. */
static pthread_mutex_t known_lock = PTHREAD_MUTEX_INITIALIZER;
static struct origin_list known;
static int known_valid; /* 0 until a read succeeded */

/* The watch thread.  watch_stop and its condition are under watch_lock;
 * the rest is set before the thread starts and read-only after. */
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cond;
static pthread_t watch_thread;
static int watch_running, watch_stop;
static struct relay_settings watch_relay;
static void (*watch_on_change)(void);

int origin_parse_status(const char *json, size_t len, struct origin_list *list, char *why,
			size_t why_size)
{
	json_error_t error;
	json_t *root, *streams, *stream;
	size_t i, skipped_over_max = 0;

	list->count = 0;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &error);
	if (!root) {
		snprintf(why, why_size, "not JSON: %s (line %d)", error.text, error.line);
		return -1;
	}
	streams = json_is_object(root) ? json_object_get(root, "streams") : NULL;
	if (!json_is_array(streams)) {
		snprintf(why, why_size, "no \"streams\" array: not an mjpeg-fcgi /status");
		json_decref(root);
		return -1;
	}
	json_array_foreach(streams, i, stream) {
		const char *name = json_string_value(json_object_get(stream, "name"));
		double fps;

		if (!name) {
			log_warn("origin: stream %zu of the list has no name; skipped", i);
			continue;
		}
		if (!config_stream_name_valid(name)) {
			log_warn("origin: stream name \"%.64s\" is not [A-Za-z0-9_-]{1,64}; skipped",
				 name);
			continue;
		}
		if (list->count >= STREAMS_MAX) {
			skipped_over_max++;
			continue;
		}
		fps = json_number_value(json_object_get(stream, "fps"));
		list->fps[list->count] = fps >= 0.01 && fps <= FPS_MAX ? fps : 0;
		snprintf(list->names[list->count++], sizeof(list->names[0]), "%s", name);
	}
	if (skipped_over_max)
		log_warn("origin: %zu streams past the first %d skipped (at most %d streams)",
			 skipped_over_max, STREAMS_MAX, STREAMS_MAX);
	json_decref(root);
	return 0;
}

struct fetch_body {
	char *data;
	size_t bytes;
	int too_large;
};

static size_t on_status_body(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct fetch_body *body = user;
	size_t len = size * nmemb;
	char *bigger;

	if (len > ORIGIN_STATUS_BYTES_MAX - body->bytes) {
		body->too_large = 1;
		return 0; /* libcurl ends the transfer with an error */
	}
	bigger = realloc(body->data, body->bytes + len + 1);
	if (!bigger)
		return 0;
	body->data = bigger;
	memcpy(body->data + body->bytes, ptr, len);
	body->bytes += len;
	return len;
}

int origin_fetch(const struct relay_settings *relay, struct origin_list *list, char *why,
		 size_t why_size)
{
	const struct upstream_settings *up = &relay->upstream;
	char url[RELAY_ORIGIN_MAX + 16], errbuf[CURL_ERROR_SIZE] = "";
	struct fetch_body body = { 0 };
	struct curl_slist *headers = NULL;
	CURL *e = curl_easy_init();
	CURLcode rc = CURLE_OK;
	int i, result = -1;

	if (!e) {
		snprintf(why, why_size, "curl_easy_init failed");
		return -1;
	}
	snprintf(url, sizeof(url), "%s/status", relay->origin);
	for (i = 0; i < up->header_count; i++) {
		struct curl_slist *more = curl_slist_append(headers, up->headers[i]);

		if (!more) {
			snprintf(why, why_size, "out of memory");
			goto out;
		}
		headers = more;
	}
#define SET(option, value) \
	do { \
		if (rc == CURLE_OK) \
			rc = curl_easy_setopt(e, option, value); \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, 5L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_FAILONERROR, 1L);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_WRITEFUNCTION, on_status_body);
	SET(CURLOPT_WRITEDATA, &body);
	SET(CURLOPT_TIMEOUT_MS, (long)ORIGIN_FETCH_MS);
	SET(CURLOPT_USERAGENT, ORIGIN_USER_AGENT);
#undef SET
	if (rc == CURLE_OK)
		rc = upstream_curl_options(e, up, headers);
	if (rc != CURLE_OK) {
		snprintf(why, why_size, "curl_easy_setopt: %s", curl_easy_strerror(rc));
		goto out;
	}
	rc = curl_easy_perform(e);
	if (body.too_large) {
		snprintf(why, why_size, "status document over %d bytes", ORIGIN_STATUS_BYTES_MAX);
		goto out;
	}
	if (rc != CURLE_OK) {
		snprintf(why, why_size, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	result = origin_parse_status(body.data ? body.data : "", body.bytes, list, why, why_size);
out:
	curl_slist_free_all(headers);
	curl_easy_cleanup(e);
	free(body.data);
	return result;
}

/* Reads the origin; on success remembers the list.  Returns -1 (why set)
 * on failure, else 1 when the list differs from the last one read, 0 when
 * it is the same. */
static int refresh_known(const struct relay_settings *relay, struct origin_list *list,
			 char *why, size_t why_size)
{
	int changed;

	if (origin_fetch(relay, list, why, why_size) < 0)
		return -1;
	CHECK_ZERO(pthread_mutex_lock(&known_lock));
	changed = !known_valid || known.count != list->count ||
		  memcmp(known.names, list->names, list->count * sizeof(list->names[0])) != 0 ||
		  memcmp(known.fps, list->fps, list->count * sizeof(list->fps[0])) != 0;
	known = *list;
	known_valid = 1;
	CHECK_ZERO(pthread_mutex_unlock(&known_lock));
	return changed;
}

size_t origin_add_streams(struct settings *settings)
{
	static struct origin_list list; /* large; main thread only */
	char shown[RELAY_ORIGIN_MAX + 1], why[256];
	size_t i, added = 0;

	config_url_shown(settings->relay.origin, shown, sizeof(shown));
	if (refresh_known(&settings->relay, &list, why, sizeof(why)) < 0) {
		int valid;

		CHECK_ZERO(pthread_mutex_lock(&known_lock));
		list = known;
		valid = known_valid;
		if (!valid)
			list.count = 0;
		CHECK_ZERO(pthread_mutex_unlock(&known_lock));
		if (valid)
			log_warn("origin %s: %s; relaying the %zu streams of the last list read",
				 shown, why, list.count);
		else
			log_warn("origin %s: %s; no stream to relay until its list can be read "
				 "(tried every refresh_s)",
				 shown, why);
	}
	for (i = 0; i < list.count; i++) {
		const char *refused =
			config_add_relay_stream(settings, list.names[i], list.fps[i]);

		if (refused)
			log_warn("origin %s: stream %s not relayed: %s", shown, list.names[i], refused);
		else
			added++;
	}
	return added;
}

/* Sleeps until the next refresh or a stop.  1 when asked to stop. */
static int watch_wait(void)
{
	struct timespec until;
	int stop;

	CHECK_ZERO(clock_gettime(CLOCK_MONOTONIC, &until));
	until.tv_sec += (time_t)(watch_relay.refresh_usec / USEC_PER_SEC);
	CHECK_ZERO(pthread_mutex_lock(&watch_lock));
	while (!watch_stop) {
		int rc = pthread_cond_timedwait(&watch_cond, &watch_lock, &until);

		if (rc == ETIMEDOUT)
			break;
		if (rc != 0)
			FATAL("pthread_cond_timedwait: %d", rc);
	}
	stop = watch_stop;
	CHECK_ZERO(pthread_mutex_unlock(&watch_lock));
	return stop;
}

static void *watch_main(void *arg)
{
	static struct origin_list list; /* large; this thread only */
	char shown[RELAY_ORIGIN_MAX + 1], why[256];
	int away = 0;

	(void)arg;
	config_url_shown(watch_relay.origin, shown, sizeof(shown));
	while (!watch_wait()) {
		int changed = refresh_known(&watch_relay, &list, why, sizeof(why));

		if (changed < 0) {
			/* one line when it goes away, one when it is back */
			if (!away)
				log_warn("origin %s: cannot read the stream list: %s; keeping the "
					 "last one", shown, why);
			away = 1;
			continue;
		}
		if (away)
			log_info("origin %s: the stream list can be read again", shown);
		away = 0;
		if (changed) {
			log_info("origin %s: the stream list changed (%zu streams); reloading",
				 shown, list.count);
			watch_on_change();
		}
	}
	return NULL;
}

/* A worker forked while another thread held known_lock would inherit it
 * locked, with no thread left to unlock it. */
static void known_lock_before_fork(void)
{
	CHECK_ZERO(pthread_mutex_lock(&known_lock));
}

static void known_unlock_after_fork(void)
{
	CHECK_ZERO(pthread_mutex_unlock(&known_lock));
}

int origin_watch_start(const struct relay_settings *relay, void (*on_change)(void))
{
	static int atfork_set;
	pthread_condattr_t attr;
	int rc;

	if (watch_running)
		FATAL("origin_watch_start: already running");
	if (!atfork_set) {
		CHECK_ZERO(pthread_atfork(known_lock_before_fork, known_unlock_after_fork,
					  known_unlock_after_fork));
		atfork_set = 1;
	}
	watch_relay = *relay;
	watch_on_change = on_change;
	watch_stop = 0;
	CHECK_ZERO(pthread_condattr_init(&attr));
	CHECK_ZERO(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC));
	CHECK_ZERO(pthread_cond_init(&watch_cond, &attr));
	CHECK_ZERO(pthread_condattr_destroy(&attr));
	rc = pthread_create(&watch_thread, NULL, watch_main, NULL);
	if (rc != 0) {
		log_error("origin: pthread_create: %s", strerror(rc));
		CHECK_ZERO(pthread_cond_destroy(&watch_cond));
		return -1;
	}
	watch_running = 1;
	return 0;
}

void origin_watch_stop(void)
{
	if (!watch_running)
		return;
	CHECK_ZERO(pthread_mutex_lock(&watch_lock));
	watch_stop = 1;
	CHECK_ZERO(pthread_cond_signal(&watch_cond));
	CHECK_ZERO(pthread_mutex_unlock(&watch_lock));
	CHECK_ZERO(pthread_join(watch_thread, NULL));
	CHECK_ZERO(pthread_cond_destroy(&watch_cond));
	watch_running = 0;
}
