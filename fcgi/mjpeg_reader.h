/* mjpeg_reader: whole JPEGs out of any body a camera, ffmpeg or another
 * mjpeg-fcgi sends: multipart/x-mixed-replace with any boundary (or none, as
 * ffmpeg's application/octet-stream), parts with or without Content-Length,
 * CRLF or LF line ends, and bare concatenated JPEGs.  A leaf on top of
 * mjpeg_splitter: no I/O, no clock, no log lines; it reports what it
 * dropped through the counters below (and the splitter's).
 *
 * The boundary is never used: the layout comes from the bytes.  The reader
 * reads text until a JPEG starts, hands the JPEG to the splitter (which
 * walks its segments, so boundary text or FFD9 inside a JPEG never cuts
 * it), and reads text again from the byte after its EOI, or after the
 * splitter gave up on a broken frame (mjpeg_splitter_feed_frame): so the
 * same bytes give the same frames and timestamps however they are cut into
 * feeds.
 *
 * Text.  FF D8 anywhere starts a JPEG (part headers never hold an FF byte).
 * Otherwise the text is cut into lines at LF, a CR before the LF dropped.
 * A line is:
 *  - blank (empty, or spaces and tabs): the end of a part's headers.  When
 *    the headers named a type that is not a JPEG (see below) and a length,
 *    that many bytes are skipped unread (a text part may hold FF D8);
 *  - a header "Name: value" (name case-insensitive): of these only
 *    Content-Length (digits only, at most frame_bytes_max, else unknown),
 *    Content-Type and X-Timestamp ("S" or "S.f", 1 to 6 decimals: seconds
 *    since the epoch, as mjpeg-fcgi sends it; anything else is counted in
 *    timestamps_bad) are kept, for the part they belong to;
 *  - anything else: a delimiter ("--B", "B", "--B--", whatever B is) or
 *    garbage.  Either way the part so far is forgotten.  It counts as stray
 *    unless it starts with "--" or a header line follows it (so "B" lines
 *    without "--" are delimiters, as they act).
 * A line over MJPEG_READER_LINE_MAX bytes is stray; it is still scanned for
 * FF D8, but not kept.  Blank text is never stray.
 *
 * A type is a JPEG's unless it is given and names neither "jp" (image/jpeg,
 * image/jpg, image/pjpeg, video/x-motion-jpeg) nor "octet-stream": a
 * mislabelled camera part is still read; only a part plainly of another
 * type, and with a length, is skipped.
 *
 * Frames.  A frame carries its part's X-Timestamp when the splitter broke no
 * frame since the JPEG began (a frame cut short may swallow the next part's
 * headers: the frame after it then has no stamp of its own), and only the
 * part's first frame does.  With a known Content-Length: a frame shorter is
 * followed by padding, skipped up to that length (lengths_mismatched counts
 * it only beyond MJPEG_READER_PADDING_SLACK bytes); an FF D8 in the
 * padding still starts a JPEG (the length was wrong).  A frame longer than
 * its length is counted in lengths_mismatched and returned all the same
 * (the caller validates frames).  Frames over frame_bytes_max are parsed,
 * not kept, and counted in the splitter's frames_oversized.
 *
 * Cost: linear in the bytes fed (the splitter's parsing again included).
 * Memory: the splitter's buffer (at most frame_bytes_max) and the line
 * (MJPEG_READER_LINE_MAX) inside the struct. */
#ifndef MJPEG_MJPEG_READER_H
#define MJPEG_MJPEG_READER_H

#include "mjpeg_splitter.h"

#include <stddef.h>
#include <stdint.h>

/* Longest text line kept, bytes (its LF not counted, a CR is): part headers
 * are far shorter; a longer line is stray. */
#define MJPEG_READER_LINE_MAX 1024
/* Padding after a frame within its Content-Length that is no mismatch,
 * bytes: a CRLF counted in the length. */
#define MJPEG_READER_PADDING_SLACK 2

struct mjpeg_reader_frame {
	const unsigned char *jpeg; /* SOI..EOI, valid until the next feed */
	size_t jpeg_bytes;
	int64_t timestamp_usec;    /* the part's X-Timestamp, microseconds since
				    * the epoch; 0: none or unusable */
};

/* One reader per byte stream; owned by one thread.  The fields are the
 * reader's own but for the counters, which the caller reads. */
struct mjpeg_reader {
	struct mjpeg_splitter splitter; /* its counters count JPEGs dropped */
	int state;                      /* enum reader_state, in mjpeg_reader.c */
	char line[MJPEG_READER_LINE_MAX]; /* the text line so far */
	size_t line_len;                /* bytes in line */
	size_t line_bytes;              /* bytes of the line seen, CR and over-long ones too */
	int pending_ff;                 /* the last text byte was an FF: D8 starts a JPEG */
	/* The part being read, from its headers; cleared after each frame. */
	int64_t part_length;            /* Content-Length, -1: none */
	int part_not_jpeg;              /* Content-Type names something else */
	int headers_seen;               /* a header line since the last other line */
	int64_t part_timestamp_usec;    /* X-Timestamp, 0: none */
	uint64_t broken_at_part_start;  /* splitter frames_cut + frames_oversized
					 * when the JPEG began */
	size_t skip_left;               /* bytes still to skip: a part of another
					 * type, or padding after a frame */
	size_t stray_pending;           /* the last other line, stray unless a
					 * header line follows */
	/* Counts since init, for the caller's log lines. */
	uint64_t frames;             /* frames returned */
	uint64_t parts_skipped;      /* parts of another type, skipped by length */
	uint64_t bytes_stray;        /* text that is neither header, blank nor delimiter */
	uint64_t lengths_mismatched; /* a frame and its Content-Length disagreed */
	uint64_t timestamps_bad;     /* X-Timestamp headers not understood */
};

/* frame_bytes_max: the largest JPEG kept (mjpeg_splitter_init's). */
void mjpeg_reader_init(struct mjpeg_reader *r, size_t frame_bytes_max);
void mjpeg_reader_destroy(struct mjpeg_reader *r);

/* A new connection or body: forgets the frame, the part and the line in
 * progress.  Returns the bytes dropped, 0 if none.  Counters are kept. */
size_t mjpeg_reader_reset(struct mjpeg_reader *r);

/* mjpeg_splitter_feed's contract.  Feeds len bytes; returns the bytes
 * consumed: all of them when no frame was completed (then frame->jpeg is
 * NULL, jpeg_bytes and timestamp_usec 0); when one was, *frame describes it
 * and the bytes after it are left unconsumed.  A frame may also complete
 * from bytes kept earlier, consuming none of data: so after a frame always
 * call again, with the rest even when that is empty, until a call gives no
 * frame. */
size_t mjpeg_reader_feed(struct mjpeg_reader *r, const unsigned char *data, size_t len,
			 struct mjpeg_reader_frame *frame) __attribute__((warn_unused_result));

#endif
