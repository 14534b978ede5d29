/* source_http: http:// and https:// sources, relayed.  A camera, ffmpeg's
 * own server (-listen 1), ustreamer, mjpg-streamer, another mjpeg-fcgi:
 * whatever multipart layout the server sends, whatever its Content-Type
 * says (mjpeg_reader finds the frames from the bytes), or one JPEG per
 * request (a snapshot URL, answered image/...), fetched again at the
 * stream's fps.  JPEGs are validated and passed through, never re-encoded;
 * an upstream mjpeg-fcgi's X-Timestamp goes along with its frame.
 *
 * libcurl's multi interface runs in the producer thread: next drives the
 * transfer for at most HTTP_STEP_USEC and hands back the oldest frame that
 * came in.  Only while the stream has viewers: the producer pauses after
 * idle_pause_s without one, and pause drops the connection.  So a relayed
 * stream holds one upstream connection however many viewers and responder
 * processes it has (the bus elects one producer), and none while nobody
 * watches.
 *
 * Every failure (refused, a time-out, an HTTP error, a body with no JPEG, a
 * stream that ends or stalls) is retried after a jittered wait that starts
 * at upstream_retry_min_ms and doubles up to upstream_retry_max_ms; one log
 * line when the upstream goes away and one when it is back, none per
 * attempt (upstream.c, shared with exec:).  Viewers keep the last frame meanwhile (the engine repeats it).
 *
 * Credentials (user, password, header) go to libcurl only: never to the
 * log or the upstream state /status shows.  libcurl keeps Authorization
 * and Cookie headers and credentials from hosts a redirect leads to.
 *
 * Owned by the stream's producer thread (source.h). */
#include "source.h"

#include "clock.h"
#include "drops.h"
#include "log.h"
#include "mjpeg_reader.h"
#include "upstream.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Longest a call to next runs without a frame: the producer then looks at
 * demand and at its stop flag again. */
#define HTTP_STEP_USEC (200 * USEC_PER_MSEC)
/* Longest single wait in curl_multi_poll, milliseconds. */
#define HTTP_POLL_MSEC 100
/* Frames that arrived and were not handed to the producer yet.  It takes
 * them as fast as they come; one read from libcurl may complete several
 * small frames.  Beyond this the oldest is dropped. */
#define HTTP_QUEUE_FRAMES 4
/* Bytes libcurl hands over per write callback. */
#define HTTP_BUFFER_BYTES (64L * 1024)
#define HTTP_REDIRECTS_MAX 5L
#define HTTP_USER_AGENT "mjpeg-fcgi/" MJPEG_FCGI_VERSION

struct held_frame {
	unsigned char *jpeg;    /* malloc'd, capacity bytes */
	size_t bytes, capacity;
	int64_t timestamp_usec; /* the part's X-Timestamp, 0: none */
};

struct http_source {
	const struct stream_settings *stream; /* read-only, outlives us */
	size_t frame_bytes_max;
	char who[STREAM_NAME_MAX + 8];        /* "relay NAME", for log lines */
	CURLM *multi;                         /* NULL while paused */
	CURL *easy;                           /* kept across attempts, NULL while paused */
	struct curl_slist *headers;           /* the configured request headers */
	int active;                           /* easy is in multi: a transfer runs */
	char errbuf[CURL_ERROR_SIZE];         /* libcurl's words for a failure */
	char refusal[128];                    /* ours, when on_body refused the body */
	struct mjpeg_reader reader;
	struct drop_log drops;
	/* Frames queued by on_body: queue[(head + i) % HTTP_QUEUE_FRAMES] for
	 * i < count.  handed: queue[head] went to the producer in the last
	 * call (valid until this one) and is dropped when the next begins. */
	struct held_frame queue[HTTP_QUEUE_FRAMES];
	size_t head, count;
	int handed;
	/* The transfer under way (monotonic times). */
	int64_t started_usec;
	int64_t last_byte_usec;
	int body_checked;                     /* on_body looked at status and type */
	int snapshot;                         /* the response is one image: poll */
	uint64_t frames_this_transfer;        /* valid frames handed out */
	/* Between attempts. */
	int64_t next_attempt_usec;            /* monotonic; 0: at once */
	/* The back-off, and what /status shows. */
	struct upstream_link link;
};

/* Frees what the transfer holds: the connection (the multi handle's cache
 * too), frames queued, the reader's partial frame. */
static void transfer_drop(struct http_source *src)
{
	if (src->active)
		curl_multi_remove_handle(src->multi, src->easy);
	src->active = 0;
	curl_easy_cleanup(src->easy);
	src->easy = NULL;
	curl_multi_cleanup(src->multi);
	src->multi = NULL;
	src->count = 0;
	src->handed = 0;
	(void)mjpeg_reader_reset(&src->reader);
}

static void http_close(void *state)
{
	struct http_source *src = state;
	size_t i;

	if (!src)
		return;
	transfer_drop(src);
	drop_log_flush(&src->drops, src->who, 1);
	for (i = 0; i < HTTP_QUEUE_FRAMES; i++)
		free(src->queue[i].jpeg);
	curl_slist_free_all(src->headers);
	mjpeg_reader_destroy(&src->reader);
	free(src);
}

static void *http_open(const struct stream_settings *stream, size_t frame_bytes_max)
{
	struct http_source *src = calloc(1, sizeof(*src));
	int i;

	if (!src) {
		log_error("relay %s: calloc failed", stream->name);
		return NULL;
	}
	src->stream = stream;
	src->frame_bytes_max = frame_bytes_max;
	snprintf(src->who, sizeof(src->who), "relay %s", stream->name);
	mjpeg_reader_init(&src->reader, frame_bytes_max);
	drop_log_init(&src->drops, frame_bytes_max);
	upstream_init(&src->link, stream, "relay", "upstream", "retrying");
	for (i = 0; i < stream->upstream.header_count; i++) {
		struct curl_slist *more = curl_slist_append(src->headers, stream->upstream.headers[i]);

		if (!more) {
			log_error("relay %s: curl_slist_append failed", stream->name);
			http_close(src);
			return NULL;
		}
		src->headers = more;
	}
	return src;
}

/* The oldest queued frame's slot when one is free, else the oldest frame is
 * dropped to make room. */
static struct held_frame *queue_slot(struct http_source *src)
{
	if (src->count == HTTP_QUEUE_FRAMES) {
		src->head = (src->head + 1) % HTTP_QUEUE_FRAMES;
		src->count--;
	}
	return &src->queue[(src->head + src->count) % HTTP_QUEUE_FRAMES];
}

/* Copies a frame the reader completed into the queue.  0, or -1 when
 * memory ran out (logged). */
static int queue_frame(struct http_source *src, const struct mjpeg_reader_frame *f)
{
	struct held_frame *slot = queue_slot(src);

	if (f->jpeg_bytes > slot->capacity) {
		unsigned char *bigger = realloc(slot->jpeg, f->jpeg_bytes);

		if (!bigger) {
			log_error("relay %s: realloc(%zu) failed", src->stream->name, f->jpeg_bytes);
			return -1;
		}
		slot->jpeg = bigger;
		slot->capacity = f->jpeg_bytes;
	}
	memcpy(slot->jpeg, f->jpeg, f->jpeg_bytes);
	slot->bytes = f->jpeg_bytes;
	slot->timestamp_usec = f->timestamp_usec;
	src->count++;
	return 0;
}

/* The first body bytes: a response libcurl did not fail (FAILONERROR takes
 * 400 and above) but that holds no stream (204, a 3xx not followed) is
 * refused here.  An image/... type means one picture per request. */
static int check_response(struct http_source *src)
{
	long code = 0;
	char *type = NULL;

	src->body_checked = 1;
	if (curl_easy_getinfo(src->easy, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
	    code != 200) {
		snprintf(src->refusal, sizeof(src->refusal), "HTTP status %ld, not 200", code);
		return -1;
	}
	if (curl_easy_getinfo(src->easy, CURLINFO_CONTENT_TYPE, &type) != CURLE_OK)
		type = NULL;
	src->snapshot = type && strncasecmp(type, "image/", 6) == 0;
	return 0;
}

/* libcurl's write callback: body bytes, cut into frames as they come. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	struct http_source *src = user;
	size_t len = size * nmemb, pos = 0;

	src->last_byte_usec = clock_mono_usec();
	if (!src->body_checked && check_response(src) < 0)
		return 0; /* CURLE_WRITE_ERROR, with src->refusal */
	for (;;) {
		struct mjpeg_reader_frame f;

		pos += mjpeg_reader_feed(&src->reader, (const unsigned char *)data + pos, len - pos,
					 &f);
		if (!f.jpeg)
			break;
		if (queue_frame(src, &f) < 0) {
			snprintf(src->refusal, sizeof(src->refusal), "out of memory");
			return 0;
		}
	}
	return len;
}

/* Sets up the easy handle's options, once per connection.  -1 (logged) if
 * libcurl refuses one: a build without a protocol, out of memory. */
static int configure(struct http_source *src)
{
	const struct upstream_settings *up = &src->stream->upstream;
	CURL *e = src->easy;
	CURLcode rc = CURLE_OK;

#define SET(option, value) \
	do { \
		if (rc == CURLE_OK) \
			rc = curl_easy_setopt(e, option, value); \
	} while (0)
	SET(CURLOPT_URL, src->stream->path);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, HTTP_REDIRECTS_MAX);
	SET(CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS time-outs */
	SET(CURLOPT_FAILONERROR, 1L);
	SET(CURLOPT_ERRORBUFFER, src->errbuf);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, src);
	SET(CURLOPT_BUFFERSIZE, HTTP_BUFFER_BYTES);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_USERAGENT, HTTP_USER_AGENT);
#undef SET
	if (rc == CURLE_OK)
		rc = upstream_curl_options(e, up, src->headers);
	if (rc != CURLE_OK) {
		log_error("relay %s: curl_easy_setopt: %s", src->stream->name,
			  curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

/* Starts an attempt.  -1 with src->refusal set when it cannot start. */
static int transfer_start(struct http_source *src)
{
	if (!src->multi && !(src->multi = curl_multi_init())) {
		snprintf(src->refusal, sizeof(src->refusal), "curl_multi_init failed");
		return -1;
	}
	if (!src->easy) {
		src->easy = curl_easy_init();
		if (!src->easy || configure(src) < 0) {
			snprintf(src->refusal, sizeof(src->refusal), "libcurl set-up failed");
			curl_easy_cleanup(src->easy);
			src->easy = NULL;
			return -1;
		}
	}
	src->errbuf[0] = '\0';
	src->refusal[0] = '\0';
	src->body_checked = 0;
	src->snapshot = 0;
	src->frames_this_transfer = 0;
	(void)mjpeg_reader_reset(&src->reader);
	if (curl_multi_add_handle(src->multi, src->easy) != CURLM_OK) {
		snprintf(src->refusal, sizeof(src->refusal), "curl_multi_add_handle failed");
		return -1;
	}
	src->active = 1;
	src->started_usec = src->last_byte_usec = clock_mono_usec();
	if (src->link.up.state == BUS_UPSTREAM_IDLE)
		upstream_set_state(&src->link, BUS_UPSTREAM_CONNECTING, NULL);
	return 0;
}

static void transfer_stop(struct http_source *src)
{
	if (src->active)
		curl_multi_remove_handle(src->multi, src->easy);
	src->active = 0;
}

/* An attempt failed: wait, then try again.  The first failure of an outage
 * is logged; the rest only update the state /status shows. */
static void attempt_failed(struct http_source *src, const char *why)
{
	transfer_stop(src);
	src->count = 0;
	src->handed = 0;
	src->next_attempt_usec = clock_mono_usec() + upstream_failed(&src->link, why);
}

/* A transfer ended.  A snapshot URL's picture arrived: fetch the next one
 * a frame interval after this one began.  Anything else is a failure: a
 * stream is not meant to end. */
static void transfer_done(struct http_source *src, CURLcode result)
{
	char why[CURL_ERROR_SIZE + 64];

	if (result == CURLE_OK && src->snapshot && src->frames_this_transfer + src->count > 0) {
		transfer_stop(src);
		src->next_attempt_usec = src->started_usec + (int64_t)(USEC_PER_SEC / src->stream->fps);
		return;
	}
	if (src->refusal[0])
		snprintf(why, sizeof(why), "%s", src->refusal);
	else if (result != CURLE_OK)
		snprintf(why, sizeof(why), "%s", src->errbuf[0] ? src->errbuf
								: curl_easy_strerror(result));
	else if (src->frames_this_transfer + src->count > 0)
		snprintf(why, sizeof(why), "the upstream ended the stream");
	else
		snprintf(why, sizeof(why), "the response held no JPEG");
	if (src->count > 0) {
		/* Frames that arrived before the end still go out; the failure
		 * waits for them. */
		transfer_stop(src);
		snprintf(src->refusal, sizeof(src->refusal), "%.*s", (int)sizeof(src->refusal) - 1,
			 why);
		src->next_attempt_usec = -1; /* attempt_failed once the queue is empty */
		return;
	}
	attempt_failed(src, why);
}

/* Runs libcurl: reads what arrived, and finishes an ended transfer. */
static void drive(struct http_source *src)
{
	CURLMsg *msg;
	int running, left;

	if (curl_multi_perform(src->multi, &running) != CURLM_OK) {
		attempt_failed(src, "curl_multi_perform failed");
		return;
	}
	while ((msg = curl_multi_info_read(src->multi, &left))) {
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == src->easy) {
			transfer_done(src, msg->data.result);
			return;
		}
	}
	if (src->active && clock_mono_usec() - src->last_byte_usec > src->stream->upstream.stall_usec) {
		char why[96];

		snprintf(why, sizeof(why), "no byte for %lld ms (upstream_stall_ms)",
			 (long long)(src->stream->upstream.stall_usec / USEC_PER_MSEC));
		attempt_failed(src, why);
	}
}

/* A frame is handed out: the upstream is (again) connected. */
static void frame_flows(struct http_source *src)
{
	if (src->frames_this_transfer++ > 0 && src->link.up.state == BUS_UPSTREAM_CONNECTED)
		return;
	upstream_flows(&src->link);
}

/* The oldest queued frame, when valid: 1.  An invalid one is dropped and
 * counted: 0. */
static int hand_out(struct http_source *src, struct source_frame *frame)
{
	struct held_frame *f = &src->queue[src->head];
	const char *why;

	if (encode_validate(f->jpeg, f->bytes, &frame->width, &frame->height, &why) < 0) {
		const struct drops invalid = { .invalid = 1 };

		drop_log_add(&src->drops, &invalid, why);
		src->head = (src->head + 1) % HTTP_QUEUE_FRAMES;
		src->count--;
		return 0;
	}
	frame->jpeg = f->jpeg;
	frame->jpeg_bytes = f->bytes;
	frame->timestamp_usec = f->timestamp_usec;
	src->handed = 1;
	frame_flows(src);
	return 1;
}

/* Takes the reader's new drops into the report. */
static void note_reader(struct http_source *src)
{
	struct drops dropped;

	drop_log_splitter(&src->drops, &src->reader.splitter, &dropped);
	drop_log_add(&src->drops, &dropped, NULL);
	drop_log_flush(&src->drops, src->who, 0);
}

static int http_next(void *state, struct source_frame *frame, const _Atomic int *stopping)
{
	struct http_source *src = state;
	int64_t deadline = clock_mono_usec() + HTTP_STEP_USEC;

	if (src->handed) {
		src->head = (src->head + 1) % HTTP_QUEUE_FRAMES;
		src->count--;
		src->handed = 0;
	}
	for (;;) {
		int64_t now = clock_mono_usec(), left = deadline - now;

		note_reader(src);
		while (src->count > 0)
			if (hand_out(src, frame))
				return 1;
		if (src->next_attempt_usec < 0)
			attempt_failed(src, src->refusal); /* its frames are out */
		if (atomic_load_explicit(stopping, memory_order_relaxed) || left <= 0)
			return 0;
		if (!src->active) {
			if (now < src->next_attempt_usec) {
				int64_t wait = src->next_attempt_usec - now;

				if (clock_sleep_unless(wait < left ? wait : left, stopping,
						       HTTP_STEP_USEC) < 0)
					return 0;
				continue;
			}
			if (transfer_start(src) < 0) {
				char why[sizeof(src->refusal)];

				memcpy(why, src->refusal, sizeof(why));
				attempt_failed(src, why);
				continue;
			}
		}
		drive(src);
		if (src->active && src->count == 0)
			(void)curl_multi_poll(src->multi, NULL, 0,
					      (int)(left / USEC_PER_MSEC < HTTP_POLL_MSEC
						    ? left / USEC_PER_MSEC + 1
						    : HTTP_POLL_MSEC),
					      NULL);
	}
}

/* Nobody watches: the connection goes, and the next viewer's first call
 * connects at once. */
static void http_pause(void *state)
{
	struct http_source *src = state;

	transfer_drop(src);
	src->next_attempt_usec = 0;
	upstream_idle(&src->link);
}

static const struct bus_upstream *http_upstream(const void *state, uint64_t *changes)
{
	const struct http_source *src = state;

	return upstream_state(&src->link, changes);
}

/* Paced: not read while nobody watches (it is paused: no connection). */
static int http_is_paced(const void *state)
{
	(void)state;
	return 1;
}

const struct source_ops source_http_ops = {
	.pace = SOURCE_PACE_OWN,
	.open = http_open,
	.next = http_next,
	.is_paced = http_is_paced,
	.close = http_close,
	.pause = http_pause,
	.upstream = http_upstream,
};
