#include "mjpeg_reader.h"

#include "log.h"

#include <string.h>
#include <strings.h>

enum reader_state {
	READ_TEXT, /* lines between JPEGs; FF D8 starts one */
	READ_JPEG, /* the splitter has the bytes until the frame's EOI */
	READ_SKIP, /* skip_left bytes of a part of another type, unread */
	READ_PAD,  /* skip_left bytes of padding after a frame; FF D8 starts a JPEG */
};

#define JPEG_SOI 0xD8
#define USEC_PER_SECOND 1000000
/* Seconds an X-Timestamp may hold: its microseconds fit an int64_t. */
#define TIMESTAMP_SECONDS_MAX (INT64_MAX / USEC_PER_SECOND - 1)

static void part_clear(struct mjpeg_reader *r)
{
	r->part_length = -1;
	r->part_not_jpeg = 0;
	r->headers_seen = 0;
	r->part_timestamp_usec = 0;
}

static void line_clear(struct mjpeg_reader *r)
{
	r->line_len = 0;
	r->line_bytes = 0;
}

void mjpeg_reader_init(struct mjpeg_reader *r, size_t frame_bytes_max)
{
	memset(r, 0, sizeof(*r));
	mjpeg_splitter_init(&r->splitter, frame_bytes_max);
	r->state = READ_TEXT;
	part_clear(r);
}

void mjpeg_reader_destroy(struct mjpeg_reader *r)
{
	mjpeg_splitter_destroy(&r->splitter);
	memset(r, 0, sizeof(*r));
}

size_t mjpeg_reader_reset(struct mjpeg_reader *r)
{
	size_t dropped = mjpeg_splitter_reset(&r->splitter) + r->line_bytes + r->pending_ff;

	r->bytes_stray += r->stray_pending;
	r->stray_pending = 0;
	line_clear(r);
	r->pending_ff = 0;
	r->skip_left = 0;
	part_clear(r);
	r->state = READ_TEXT;
	return dropped;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 9110 token characters, as in a header's name. */
static int is_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Whether value[0, len) holds needle, ASCII case-insensitively. */
static int contains_nocase(const char *value, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;

	for (i = 0; i + n <= len; i++)
		if (strncasecmp(value + i, needle, n) == 0)
			return 1;
	return 0;
}

/* Content-Length: digits only, at most frame_bytes_max (a longer part is
 * no JPEG we keep, and skipping it by a length would trust the length too
 * far).  -1 otherwise. */
static int64_t parse_length(const char *value, size_t len, size_t limit)
{
	uint64_t n = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (!is_digit(value[i]))
			return -1;
		n = n * 10 + (uint64_t)(value[i] - '0');
		if (n > limit)
			return -1;
	}
	return (int64_t)n;
}

/* X-Timestamp "S" or "S.f" with 1 to 6 decimals: microseconds, or -1. */
static int64_t parse_timestamp(const char *value, size_t len)
{
	int64_t seconds = 0, usec = 0, scale = USEC_PER_SECOND;
	size_t i = 0, decimals;

	if (len == 0 || !is_digit(value[0]))
		return -1;
	for (; i < len && is_digit(value[i]); i++) {
		seconds = seconds * 10 + (value[i] - '0');
		if (seconds > TIMESTAMP_SECONDS_MAX)
			return -1;
	}
	if (i < len) {
		if (value[i++] != '.')
			return -1;
		for (decimals = 0; i < len && is_digit(value[i]); i++, decimals++) {
			if (decimals == 6)
				return -1;
			scale /= 10;
			usec += (value[i] - '0') * scale;
		}
		if (decimals == 0 || i < len)
			return -1;
	}
	return seconds * USEC_PER_SECOND + usec;
}

/* A header line "Name: value": the three kept; 0 if line is no header. */
static int text_header(struct mjpeg_reader *r, const char *line, size_t len)
{
	size_t name_len = 0, start, end;
	const char *value;
	int64_t n;

	while (name_len < len && is_token_char(line[name_len]))
		name_len++;
	if (name_len == 0 || name_len == len || line[name_len] != ':')
		return 0;
	for (start = name_len + 1; start < len && is_space(line[start]); start++)
		;
	for (end = len; end > start && is_space(line[end - 1]); end--)
		;
	value = line + start;
	if (name_len == 14 && strncasecmp(line, "Content-Length", name_len) == 0) {
		r->part_length = parse_length(value, end - start, r->splitter.frame_bytes_max);
	} else if (name_len == 12 && strncasecmp(line, "Content-Type", name_len) == 0) {
		const char *semicolon = memchr(value, ';', end - start);
		size_t type_len = semicolon ? (size_t)(semicolon - value) : end - start;

		r->part_not_jpeg = type_len > 0 && !contains_nocase(value, type_len, "jp") &&
				   !contains_nocase(value, type_len, "octet-stream");
	} else if (name_len == 11 && strncasecmp(line, "X-Timestamp", name_len) == 0) {
		n = parse_timestamp(value, end - start);
		if (n < 0)
			r->timestamps_bad++;
		r->part_timestamp_usec = n < 0 ? 0 : n;
	}
	return 1;
}

/* Whether line[0, len) is empty or whitespace only. */
static int is_blank(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!is_space(line[i]) && line[i] != '\r')
			return 0;
	return 1;
}

/* Another line that is neither blank nor a header: a delimiter, or stray. */
static void text_other(struct mjpeg_reader *r, int dashes, size_t bytes)
{
	r->bytes_stray += r->stray_pending;
	r->stray_pending = dashes ? 0 : bytes;
	part_clear(r);
}

/* A whole line (its LF consumed and counted in line_bytes, not kept). */
static void text_line(struct mjpeg_reader *r)
{
	size_t len = r->line_len, bytes = r->line_bytes;

	line_clear(r);
	if (bytes - 1 > MJPEG_READER_LINE_MAX) {
		/* Over-long: stray, and not kept; what it held is unknown,
		 * so no delimiter either. */
		text_other(r, 0, 0);
		r->bytes_stray += bytes;
		return;
	}
	if (len > 0 && r->line[len - 1] == '\r')
		len--;
	if (is_blank(r->line, len)) {
		if (r->headers_seen && r->part_not_jpeg && r->part_length >= 0) {
			r->parts_skipped++;
			r->skip_left = (size_t)r->part_length;
			part_clear(r);
			if (r->skip_left > 0)
				r->state = READ_SKIP;
		}
		return;
	}
	if (text_header(r, r->line, len)) {
		r->stray_pending = 0; /* the line before was a delimiter */
		r->headers_seen = 1;
		return;
	}
	text_other(r, len >= 2 && r->line[0] == '-' && r->line[1] == '-', bytes);
}

/* One text byte (not its LF) into the line: kept while it fits. */
static void text_byte(struct mjpeg_reader *r, unsigned char c)
{
	if (r->line_len < MJPEG_READER_LINE_MAX)
		r->line[r->line_len++] = (char)c;
	r->line_bytes++;
}

/* FF D8 seen outside the splitter: the text before it on its line is
 * stray (unless blank), and a JPEG begins. */
static void jpeg_begin(struct mjpeg_reader *r)
{
	if (r->line_bytes > MJPEG_READER_LINE_MAX || !is_blank(r->line, r->line_len))
		r->bytes_stray += r->line_bytes;
	r->bytes_stray += r->stray_pending; /* no header followed it */
	r->stray_pending = 0;
	line_clear(r);
	r->pending_ff = 0;
	r->skip_left = 0;
	r->broken_at_part_start = r->splitter.frames_cut + r->splitter.frames_oversized;
	mjpeg_splitter_begin(&r->splitter);
	r->state = READ_JPEG;
}

/* READ_TEXT over data[0, len): stops after a JPEG began or a part is to be
 * skipped.  Returns the bytes consumed. */
static size_t read_text(struct mjpeg_reader *r, const unsigned char *data, size_t len)
{
	size_t i = 0;

	while (i < len && r->state == READ_TEXT) {
		unsigned char c = data[i++];

		if (r->pending_ff) {
			r->pending_ff = 0;
			if (c == JPEG_SOI) {
				jpeg_begin(r);
				break;
			}
			text_byte(r, 0xFF);
		}
		if (c == 0xFF) {
			r->pending_ff = 1;
		} else if (c == '\n') {
			r->line_bytes++;
			text_line(r);
		} else {
			text_byte(r, c);
		}
	}
	return i;
}

/* READ_SKIP and READ_PAD over data[0, len): returns the bytes consumed. */
static size_t read_skip(struct mjpeg_reader *r, const unsigned char *data, size_t len)
{
	size_t i = 0;

	if (r->state == READ_SKIP) {
		i = len < r->skip_left ? len : r->skip_left;
		r->skip_left -= i;
	} else {
		while (i < len && r->skip_left > 0) {
			unsigned char c = data[i++];

			r->skip_left--;
			if (r->pending_ff && c == JPEG_SOI) {
				jpeg_begin(r);
				return i;
			}
			r->pending_ff = c == 0xFF;
		}
	}
	if (r->skip_left == 0)
		r->state = READ_TEXT; /* a pending FF carries on into the text */
	return i;
}

/* The splitter returned a frame of the part being read. */
static void jpeg_frame(struct mjpeg_reader *r, const unsigned char *jpeg, size_t jpeg_bytes,
		       struct mjpeg_reader_frame *frame)
{
	int whole = r->splitter.frames_cut + r->splitter.frames_oversized ==
		    r->broken_at_part_start;
	size_t padding = 0;

	frame->jpeg = jpeg;
	frame->jpeg_bytes = jpeg_bytes;
	frame->timestamp_usec = whole ? r->part_timestamp_usec : 0;
	if (whole && r->part_length >= 0) {
		if ((uint64_t)r->part_length > jpeg_bytes) {
			padding = (size_t)r->part_length - jpeg_bytes;
			if (padding > MJPEG_READER_PADDING_SLACK)
				r->lengths_mismatched++;
		} else if ((uint64_t)r->part_length < jpeg_bytes) {
			r->lengths_mismatched++;
		}
	}
	r->frames++;
	/* The stamp and the length were this frame's; the frames from bytes
	 * parsed again have neither. */
	part_clear(r);
	if (!mjpeg_splitter_hunting(&r->splitter))
		return; /* more frames from bytes kept: stay */
	r->skip_left = padding;
	r->state = padding > 0 ? READ_PAD : READ_TEXT;
}

size_t mjpeg_reader_feed(struct mjpeg_reader *r, const unsigned char *data, size_t len,
			 struct mjpeg_reader_frame *frame)
{
	size_t consumed = 0;

	frame->jpeg = NULL;
	frame->jpeg_bytes = 0;
	frame->timestamp_usec = 0;
	for (;;) {
		const unsigned char *jpeg;
		size_t jpeg_bytes;

		switch (r->state) {
		case READ_TEXT:
			if (consumed == len)
				return consumed;
			consumed += read_text(r, data + consumed, len - consumed);
			break;
		case READ_SKIP:
		case READ_PAD:
			if (consumed == len)
				return consumed;
			consumed += read_skip(r, data + consumed, len - consumed);
			break;
		case READ_JPEG:
			/* Even with nothing left: bytes kept may hold frames
			 * (data may then be NULL: no offset added to it). */
			consumed += mjpeg_splitter_feed_frame(&r->splitter,
							      consumed < len ? data + consumed : data,
							      len - consumed, &jpeg, &jpeg_bytes);
			if (jpeg) {
				jpeg_frame(r, jpeg, jpeg_bytes, frame);
				return consumed;
			}
			if (!mjpeg_splitter_hunting(&r->splitter))
				return consumed; /* all of data went into the frame */
			/* The frame broke or outgrew the limit: text again. */
			part_clear(r);
			r->state = READ_TEXT;
			break;
		default:
			FATAL("mjpeg_reader: state %d", r->state);
		}
	}
}
