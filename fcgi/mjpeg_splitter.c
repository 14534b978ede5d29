#include "mjpeg_splitter.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

enum splitter_state {
	SPLIT_HUNT,        /* outside a frame: bytes are skipped */
	SPLIT_HUNT_FF,     /* outside a frame, after an FF: D8 starts one */
	SPLIT_MARKER,      /* between segments: an FF is due */
	SPLIT_MARKER_CODE, /* after that FF: the marker's code; another FF is fill */
	SPLIT_LENGTH_HI,   /* segment length, big-endian, counting its own 2 bytes */
	SPLIT_LENGTH_LO,
	SPLIT_SEGMENT,     /* segment_left payload bytes, whatever they hold */
	SPLIT_SCAN,        /* entropy-coded data after SOS */
	SPLIT_SCAN_FF,     /* entropy-coded data, after an FF */
};

/* Why split_run stopped before the end of its bytes. */
enum split_event { SPLIT_MORE, SPLIT_FRAME, SPLIT_BROKEN };

#define JPEG_TEM 0x01
#define JPEG_RST0 0xD0
#define JPEG_RST7 0xD7
#define JPEG_SOI 0xD8
#define JPEG_EOI 0xD9
#define JPEG_SOS 0xDA

/* First allocation of the frame buffer, bytes; doubled as frames need. */
#define SPLITTER_BUF_MIN ((size_t)64 * 1024)

void mjpeg_splitter_init(struct mjpeg_splitter *s, size_t frame_bytes_max)
{
	memset(s, 0, sizeof(*s));
	s->frame_bytes_max = frame_bytes_max;
	s->state = SPLIT_HUNT;
}

void mjpeg_splitter_destroy(struct mjpeg_splitter *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

size_t mjpeg_splitter_reset(struct mjpeg_splitter *s)
{
	size_t dropped = s->replay_end - s->replay_start;

	if (!s->frame_returned)
		dropped += s->frame_bytes;
	s->frame_bytes = 0;
	s->replay_start = s->replay_end = 0;
	s->frame_returned = 0;
	s->discarding = 0;
	s->state = SPLIT_HUNT;
	return dropped;
}

/* The frame outgrew frame_bytes_max (or memory): parse on, keep nothing. */
static void split_discard(struct mjpeg_splitter *s)
{
	s->discarding = 1;
	s->frame_bytes = 0;
	s->frames_oversized++;
}

static int split_grow(struct mjpeg_splitter *s, size_t need)
{
	size_t capacity = s->capacity ? s->capacity : SPLITTER_BUF_MIN;
	unsigned char *grown;

	/* Bytes being parsed again point into buf: it must not move under
	 * them.  They never need more room than they already occupy. */
	if (s->replay_start < s->replay_end)
		FATAL("splitter: buffer grown while parsing kept bytes");
	while (capacity < need)
		capacity = capacity > s->frame_bytes_max / 2 ? s->frame_bytes_max : capacity * 2;
	if (capacity > s->frame_bytes_max)
		capacity = s->frame_bytes_max;
	grown = realloc(s->buf, capacity);
	if (!grown)
		return -1;
	s->buf = grown;
	s->capacity = capacity;
	return 0;
}

/* Appends n bytes to the frame.  p may point into buf at or after
 * frame_bytes (bytes parsed again), hence memmove. */
static void split_store(struct mjpeg_splitter *s, const unsigned char *p, size_t n)
{
	if (s->discarding || n == 0)
		return;
	if (n > s->frame_bytes_max - s->frame_bytes ||
	    (s->frame_bytes + n > s->capacity && split_grow(s, s->frame_bytes + n) < 0)) {
		split_discard(s);
		return;
	}
	memmove(s->buf + s->frame_bytes, p, n);
	s->frame_bytes += n;
}

static void split_start(struct mjpeg_splitter *s)
{
	static const unsigned char soi[2] = { 0xFF, JPEG_SOI };

	s->frame_bytes = 0;
	s->discarding = 0;
	s->seen_sof = 0;
	s->state = SPLIT_MARKER;
	split_store(s, soi, sizeof(soi));
}

/* SOF0-SOF15: C0-CF but for DHT (C4), JPG (C8) and DAC (CC). */
static int is_sof(unsigned char code)
{
	return code >= 0xC0 && code <= 0xCF && code != 0xC4 && code != 0xC8 && code != 0xCC;
}

/* An SOI inside a frame: the frame was cut short, a new one begins. */
static void split_restart(struct mjpeg_splitter *s)
{
	if (!s->discarding)
		s->frames_cut++; /* an oversized frame was counted already */
	split_start(s);
}

/* The byte after an FF inside a frame (state SPLIT_MARKER_CODE or
 * SPLIT_SCAN_FF). */
static enum split_event split_marker(struct mjpeg_splitter *s, unsigned char code)
{
	int in_scan = s->state == SPLIT_SCAN_FF;

	if (code == JPEG_SOI) {
		/* No JPEG holds FFD8 here: this frame was cut short and a new
		 * one begins. */
		split_restart(s);
		return SPLIT_MORE;
	}
	split_store(s, &code, 1);
	if (code == 0xFF)
		return SPLIT_MORE; /* fill byte: the code is still to come */
	if (in_scan && (code == 0x00 || (code >= JPEG_RST0 && code <= JPEG_RST7))) {
		s->state = SPLIT_SCAN; /* stuffed FF, restart marker: data goes on */
		return SPLIT_MORE;
	}
	if (code == JPEG_EOI) {
		int kept = !s->discarding;

		s->discarding = 0;
		s->state = SPLIT_HUNT;
		return kept ? SPLIT_FRAME : SPLIT_MORE;
	}
	if (code == 0x00)
		return SPLIT_BROKEN; /* between segments FF00 stands for nothing */
	if (code == JPEG_TEM || (code >= JPEG_RST0 && code <= JPEG_RST7)) {
		s->state = SPLIT_MARKER; /* markers without a length */
		return SPLIT_MORE;
	}
	if (is_sof(code)) {
		/* One frame header per JPEG (hierarchical JPEGs, which have
		 * more, are not decoded by TurboJPEG anyway).  A second one is
		 * the next frame's, spliced on after a cut whose segment
		 * length swallowed that frame's SOI. */
		if (s->seen_sof)
			return SPLIT_BROKEN;
		s->seen_sof = 1;
	}
	/* Every other marker (APPn, DQT, SOFn, DHT, DRI, COM, SOS, DNL, the
	 * reserved ones) has a length. */
	s->marker = code;
	s->state = SPLIT_LENGTH_HI;
	return SPLIT_MORE;
}

/* Parses data[0, len) (new input, or bytes kept in buf) until it runs out,
 * a frame completes or the frame breaks; with stop_hunting, also as soon as
 * it is outside a frame.  *used gets the bytes parsed. */
static enum split_event split_run(struct mjpeg_splitter *s, const unsigned char *data, size_t len,
				  int stop_hunting, size_t *used)
{
	enum split_event event = SPLIT_MORE;
	size_t i = 0;

	while (i < len && event == SPLIT_MORE) {
		const unsigned char *ff;
		unsigned char c;
		size_t n;

		/* An oversized frame ends here without an event. */
		if (stop_hunting && s->state == SPLIT_HUNT)
			break;

		/* The states that take runs of bytes, a run at a time. */
		switch (s->state) {
		case SPLIT_HUNT:
			ff = memchr(data + i, 0xFF, len - i);
			n = ff ? (size_t)(ff - (data + i)) : len - i;
			s->bytes_skipped += n;
			i += n;
			if (ff) {
				i++;
				s->state = SPLIT_HUNT_FF;
			}
			continue;
		case SPLIT_SEGMENT:
			n = s->segment_left < len - i ? s->segment_left : len - i;
			split_store(s, data + i, n);
			i += n;
			s->segment_left -= n;
			if (s->segment_left == 0)
				s->state = s->marker == JPEG_SOS ? SPLIT_SCAN : SPLIT_MARKER;
			continue;
		case SPLIT_SCAN:
			ff = memchr(data + i, 0xFF, len - i);
			n = ff ? (size_t)(ff - (data + i)) + 1 : len - i;
			split_store(s, data + i, n);
			i += n;
			if (ff)
				s->state = SPLIT_SCAN_FF;
			continue;
		default:
			break;
		}
		c = data[i++];
		switch (s->state) {
		case SPLIT_HUNT_FF:
			if (c == JPEG_SOI) {
				split_start(s);
			} else if (c == 0xFF) {
				s->bytes_skipped++; /* the FF before this one */
			} else {
				s->bytes_skipped += 2;
				s->state = SPLIT_HUNT;
			}
			break;
		case SPLIT_MARKER:
			/* Kept even when wrong: with the byte before it, it may
			 * be the next frame's SOI, found when parsed again. */
			split_store(s, &c, 1);
			if (c == 0xFF)
				s->state = SPLIT_MARKER_CODE;
			else
				event = SPLIT_BROKEN;
			break;
		case SPLIT_MARKER_CODE:
		case SPLIT_SCAN_FF:
			event = split_marker(s, c);
			break;
		case SPLIT_LENGTH_HI:
			split_store(s, &c, 1);
			s->segment_left = (size_t)c << 8;
			s->state = SPLIT_LENGTH_LO;
			break;
		case SPLIT_LENGTH_LO:
			if (s->segment_left == 0xFF00 && c == JPEG_SOI) {
				/* FFD8 where a length stands is taken for the
				 * next frame's SOI after a frame cut right after
				 * a marker code: read as a length, it would
				 * swallow 64 kB of the frames after it.  The cost:
				 * a real segment of exactly 65496 bytes (rare)
				 * loses its frame. */
				split_restart(s);
				break;
			}
			split_store(s, &c, 1);
			s->segment_left |= c;
			if (s->segment_left < 2) {
				event = SPLIT_BROKEN;
				break;
			}
			s->segment_left -= 2;
			if (s->segment_left > 0)
				s->state = SPLIT_SEGMENT;
			else
				s->state = s->marker == JPEG_SOS ? SPLIT_SCAN : SPLIT_MARKER;
			break;
		default:
			FATAL("splitter: state %d", s->state);
		}
	}
	*used = i;
	return event;
}

/* The frame broke (see the header): drop it, and parse its bytes after its
 * SOI again when the credit allows, ahead of any bytes still kept. */
static void split_resync(struct mjpeg_splitter *s)
{
	size_t again;

	s->state = SPLIT_HUNT;
	if (s->discarding) {
		s->discarding = 0; /* already counted as oversized; nothing kept */
		return;
	}
	s->frames_cut++;
	/* From buf[1]: buf[0] is the FF of the frame's own SOI. */
	again = s->frame_bytes > 0 ? s->frame_bytes - 1 : 0;
	if (again > 0 && again <= s->replay_credit) {
		size_t kept = s->replay_end - s->replay_start;

		memmove(s->buf + s->frame_bytes, s->buf + s->replay_start, kept);
		s->replay_start = 1;
		s->replay_end = s->frame_bytes + kept;
		s->replay_credit -= again;
	}
	s->frame_bytes = 0;
}

static size_t split_feed(struct mjpeg_splitter *s, const unsigned char *data, size_t len,
			 int stop_hunting, const unsigned char **jpeg, size_t *jpeg_bytes)
{
	size_t consumed = 0;

	*jpeg = NULL;
	*jpeg_bytes = 0;
	if (s->frame_returned) {
		s->frame_returned = 0;
		s->frame_bytes = 0;
	}
	for (;;) {
		enum split_event event;
		size_t used;

		/* Bytes kept from before come first: they precede data. */
		if (s->replay_start < s->replay_end) {
			event = split_run(s, s->buf + s->replay_start,
					  s->replay_end - s->replay_start, 0, &used);
			s->replay_start += used;
			if (s->replay_start == s->replay_end)
				s->replay_start = s->replay_end = 0;
		} else if (consumed < len && !(stop_hunting && s->state == SPLIT_HUNT)) {
			event = split_run(s, data + consumed, len - consumed, stop_hunting, &used);
			consumed += used;
			/* Capped, so a long good stream does not pay for an
			 * unbounded amount of parsing again later. */
			s->replay_credit = used < s->frame_bytes_max - s->replay_credit
						   ? s->replay_credit + used
						   : s->frame_bytes_max;
		} else {
			break;
		}
		if (event == SPLIT_FRAME) {
			s->frame_returned = 1;
			s->frames++;
			*jpeg = s->buf;
			*jpeg_bytes = s->frame_bytes;
			break;
		}
		if (event == SPLIT_BROKEN)
			split_resync(s);
	}
	return consumed;
}

size_t mjpeg_splitter_feed(struct mjpeg_splitter *s, const unsigned char *data, size_t len,
			   const unsigned char **jpeg, size_t *jpeg_bytes)
{
	return split_feed(s, data, len, 0, jpeg, jpeg_bytes);
}

size_t mjpeg_splitter_feed_frame(struct mjpeg_splitter *s, const unsigned char *data, size_t len,
				 const unsigned char **jpeg, size_t *jpeg_bytes)
{
	return split_feed(s, data, len, 1, jpeg, jpeg_bytes);
}

int mjpeg_splitter_hunting(const struct mjpeg_splitter *s)
{
	return s->state == SPLIT_HUNT && s->replay_start == s->replay_end;
}

void mjpeg_splitter_begin(struct mjpeg_splitter *s)
{
	if (!mjpeg_splitter_hunting(s))
		FATAL("splitter: a frame begun while not hunting (state %d)", s->state);
	s->frame_returned = 0;
	/* The SOI is input too: it earns credit as if fed (so that a frame
	 * breaking at once is parsed again as mjpeg_splitter_feed would). */
	s->replay_credit = s->frame_bytes_max - s->replay_credit > 2 ? s->replay_credit + 2
								     : s->frame_bytes_max;
	split_start(s);
}
