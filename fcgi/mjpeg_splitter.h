/* mjpeg_splitter: cuts a byte stream into complete JPEGs.  Pure (no I/O, no
 * clock, no log lines: only a broken invariant aborts), so it can be tested
 * and fuzzed alone; it reports what it dropped through the counters below.
 *
 * Bytes before an SOI (FFD8) are skipped.  Inside a frame, marker segments
 * are skipped by their length, so FFD9 inside an APPn segment (an EXIF
 * thumbnail) does not end the frame.  After SOS comes entropy-coded data:
 * FF00 is a stuffed FF, FFD0-FFD7 restart markers, FFFF fill; FFD9 ends the
 * frame and any other marker begins a segment (progressive JPEGs have
 * several scans).
 *
 * Resynchronisation.  A frame that goes wrong is never returned:
 *  - FFD8 where a marker may stand (between segments, or inside entropy
 *    data, where a JPEG cannot hold it) means the frame was cut short and a
 *    new one begins: the cut one is dropped and parsing restarts at the new
 *    SOI.  This is what a writer that died mid-frame leaves behind.
 *    FFD8 where a segment length stands is taken the same way (a cut right
 *    after a marker code); a real segment of exactly 65496 bytes is lost.
 *  - A byte that cannot be there (no FF where a marker is due, FF00 between
 *    segments, a segment length below 2, a second SOFn) means the frame
 *    was cut inside a segment, whose length then swallowed the next
 *    frame's start.  The frame is dropped and its bytes after its SOI are
 *    parsed again, so the next frame's SOI inside them is found.  The
 *    bytes parsed again are paid for from a credit earned by new input, so
 *    an adversarial stream costs at most about twice its length in
 *    parsing.  Rarely (frames from one encoder share their layout) the
 *    swallowed length ends right on a marker of the next frame and the
 *    parse goes on without a break: the splice comes out as one frame and
 *    decodes as the next frame's picture or fails encode_validate.
 *  - A frame that outgrows frame_bytes_max is still parsed but not kept,
 *    and dropped at its EOI (or at the next SOI); the next frame comes out
 *    whole.
 *
 * Memory: the buffer grows as frames need it, up to frame_bytes_max. */
#ifndef MJPEG_MJPEG_SPLITTER_H
#define MJPEG_MJPEG_SPLITTER_H

#include <stddef.h>
#include <stdint.h>

struct mjpeg_splitter {
	unsigned char *buf;     /* the frame so far, then bytes to parse again */
	size_t capacity;        /* bytes allocated at buf */
	size_t frame_bytes_max;
	size_t frame_bytes;     /* buf[0, frame_bytes): the frame so far */
	/* buf[replay_start, replay_end): bytes taken in before, to be parsed
	 * (again, after a resync) ahead of new input.  While there are any,
	 * frame_bytes <= replay_start, so parsing moves them down in place. */
	size_t replay_start, replay_end;
	size_t replay_credit;   /* bytes that may still be parsed a second time */
	int frame_returned;     /* buf[0, frame_bytes) went out last call */
	int discarding;         /* the frame outgrew frame_bytes_max: parsed, not kept */
	int seen_sof;           /* the frame has its SOFn segment */
	int state;              /* enum splitter_state, in mjpeg_splitter.c */
	unsigned char marker;   /* the code of the segment being read */
	size_t segment_left;    /* bytes of its payload still to come */
	/* Counts since init, for the caller's log lines. */
	uint64_t frames;          /* complete frames returned */
	uint64_t frames_oversized; /* dropped: over frame_bytes_max (or out of memory) */
	uint64_t frames_cut;      /* dropped: cut short or broken before their EOI */
	uint64_t bytes_skipped;   /* outside any frame, before an SOI */
};

void mjpeg_splitter_init(struct mjpeg_splitter *s, size_t frame_bytes_max);
void mjpeg_splitter_destroy(struct mjpeg_splitter *s);

/* Forgets any frame in progress and any bytes kept for parsing again (a new
 * writer starts afresh).  Returns the bytes dropped, 0 if none. */
size_t mjpeg_splitter_reset(struct mjpeg_splitter *s);

/* Feeds len bytes.  Returns the bytes consumed: all of them when no frame
 * was completed (then *jpeg is NULL and *jpeg_bytes 0); when a frame was,
 * *jpeg and *jpeg_bytes point to it (SOI to EOI; valid until the next call)
 * and the bytes after it are left unconsumed: call again with them.  A
 * frame may also complete from bytes kept earlier, consuming none of data:
 * so after a frame always call again, with the rest even when that is
 * empty, until a call gives no frame. */
size_t mjpeg_splitter_feed(struct mjpeg_splitter *s, const unsigned char *data, size_t len,
			   const unsigned char **jpeg, size_t *jpeg_bytes)
	__attribute__((warn_unused_result));

/* For a caller that finds the start of each frame itself (mjpeg_reader,
 * which reads the text between frames).  These three let it hand the
 * splitter exactly a frame's bytes and no byte after it.
 *
 * mjpeg_splitter_hunting: 1 when between frames (looking for an SOI) with
 * no byte kept to parse again; 0 inside a frame (or right after an FF that
 * may begin one), or while kept bytes remain. */
int mjpeg_splitter_hunting(const struct mjpeg_splitter *s);

/* The caller found an SOI (FF D8, which it consumed) while the splitter was
 * hunting: a frame begins with it.  Aborts if the splitter was not
 * hunting. */
void mjpeg_splitter_begin(struct mjpeg_splitter *s);

/* As mjpeg_splitter_feed, except that it takes no byte of data while
 * hunting: it stops there, without a frame and before the end of data if
 * need be, and the caller reads on.  Bytes kept to parse again are still
 * parsed (they came from data given before), frames in them included: so
 * after a frame, call again until a call gives no frame, then look at
 * mjpeg_splitter_hunting. */
size_t mjpeg_splitter_feed_frame(struct mjpeg_splitter *s, const unsigned char *data, size_t len,
				 const unsigned char **jpeg, size_t *jpeg_bytes)
	__attribute__((warn_unused_result));

#endif
