/* Fuzzes the MJPEG body reader (fcgi/mjpeg_reader.h): the same bytes fed
 * whole and in chunks must give the same frames with the same timestamps
 * and the same counts; each frame a whole JPEG (SOI to EOI) no larger than
 * frame_bytes_max; no call consuming more than it was given.  After a
 * reset, a small part comes out alone, with its timestamp.  A broken
 * invariant traps (__builtin_trap), which libFuzzer reports as a crash.
 *
 * Input: the layout of struct fuzz_stream (fuzz.h); the stream is the body. */
#include "mjpeg_reader.h"
#include "fuzz.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


/* Every frame one feeding produced, back to back, with their lengths and
 * timestamps. */
struct frames {
	unsigned char *bytes;
	size_t used, capacity;
	size_t *lengths;
	int64_t *stamps;
	size_t count, count_capacity;
};

static void frames_add(struct frames *f, const struct mjpeg_reader_frame *frame)
{
	size_t n = frame->jpeg_bytes;

	if (f->used + n > f->capacity) {
		size_t capacity = f->capacity ? f->capacity : 4096;

		while (capacity < f->used + n)
			capacity *= 2;
		f->bytes = realloc(f->bytes, capacity);
		CHECK(f->bytes != NULL);
		f->capacity = capacity;
	}
	if (f->count == f->count_capacity) {
		f->count_capacity = f->count_capacity ? f->count_capacity * 2 : 16;
		f->lengths = realloc(f->lengths, f->count_capacity * sizeof(*f->lengths));
		f->stamps = realloc(f->stamps, f->count_capacity * sizeof(*f->stamps));
		CHECK(f->lengths != NULL && f->stamps != NULL);
	}
	memcpy(f->bytes + f->used, frame->jpeg, n);
	f->used += n;
	f->lengths[f->count] = n;
	f->stamps[f->count++] = frame->timestamp_usec;
}

static void frames_free(struct frames *f)
{
	free(f->bytes);
	free(f->lengths);
	free(f->stamps);
	memset(f, 0, sizeof(*f));
}

/* Feeds len bytes as the header says a caller must: after a frame, again
 * with the rest (even when empty) until a call gives no frame. */
static void feed(struct mjpeg_reader *r, const unsigned char *data, size_t len,
		 struct frames *out)
{
	size_t frame_bytes_max = r->splitter.frame_bytes_max;
	/* A frame takes at least 4 bytes, from this input or from bytes the
	 * splitter kept to parse again (at most frame_bytes_max, parsed again
	 * at most about twice): a reader that never stops returning frames is
	 * caught as a bug, not a timeout. */
	size_t calls = 0, calls_max = len + 2 * frame_bytes_max + 16;

	for (;;) {
		struct mjpeg_reader_frame frame;
		size_t used;

		used = mjpeg_reader_feed(r, data, len, &frame);
		CHECK(used <= len);
		CHECK(++calls <= calls_max);
		data += used;
		len -= used;
		if (!frame.jpeg) {
			CHECK(frame.jpeg_bytes == 0 && frame.timestamp_usec == 0);
			CHECK(len == 0); /* no frame: every byte consumed */
			return;
		}
		CHECK(frame.jpeg_bytes >= 4 && frame.jpeg_bytes <= frame_bytes_max);
		CHECK(frame.jpeg[0] == 0xFF && frame.jpeg[1] == 0xD8);
		CHECK(frame.jpeg[frame.jpeg_bytes - 2] == 0xFF &&
		      frame.jpeg[frame.jpeg_bytes - 1] == 0xD9);
		CHECK(frame.timestamp_usec >= 0);
		frames_add(out, &frame);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char part[] = "--b\r\nX-Timestamp: 1.5\r\n\r\n\xff\xd8\xff\xd9";
	struct mjpeg_reader whole, chunked;
	struct frames whole_frames = { 0 }, chunked_frames = { 0 }, after_reset = { 0 };
	struct fuzz_stream in;
	size_t pos, turn, n;

	if (!fuzz_stream_parse(data, size, &in))
		return 0;

	mjpeg_reader_init(&whole, in.frame_bytes_max);
	feed(&whole, in.bytes, in.len, &whole_frames);

	mjpeg_reader_init(&chunked, in.frame_bytes_max);
	for (pos = 0, turn = 0; pos < in.len; pos += n) {
		n = fuzz_stream_chunk(&in, pos, &turn);
		feed(&chunked, in.bytes + pos, n, &chunked_frames);
	}

	/* the same frames and timestamps, whatever the chunking */
	CHECK(whole_frames.count == chunked_frames.count);
	CHECK(whole_frames.used == chunked_frames.used);
	CHECK(whole_frames.count == 0 ||
	      memcmp(whole_frames.lengths, chunked_frames.lengths,
		     whole_frames.count * sizeof(*whole_frames.lengths)) == 0);
	CHECK(whole_frames.count == 0 ||
	      memcmp(whole_frames.stamps, chunked_frames.stamps,
		     whole_frames.count * sizeof(*whole_frames.stamps)) == 0);
	CHECK(whole_frames.used == 0 ||
	      memcmp(whole_frames.bytes, chunked_frames.bytes, whole_frames.used) == 0);
	/* and the same account of what was dropped */
	CHECK(whole.frames == whole_frames.count && chunked.frames == chunked_frames.count);
	CHECK(whole.parts_skipped == chunked.parts_skipped);
	CHECK(whole.bytes_stray == chunked.bytes_stray);
	CHECK(whole.lengths_mismatched == chunked.lengths_mismatched);
	CHECK(whole.timestamps_bad == chunked.timestamps_bad);
	CHECK(whole.splitter.frames_oversized == chunked.splitter.frames_oversized);
	CHECK(whole.splitter.frames_cut == chunked.splitter.frames_cut);
	CHECK(whole.splitter.bytes_skipped == chunked.splitter.bytes_skipped);
	CHECK(whole.splitter.capacity <= in.frame_bytes_max);

	/* reset forgets everything in progress: a part after it comes out
	 * alone, with its timestamp */
	(void)mjpeg_reader_reset(&chunked);
	feed(&chunked, (const unsigned char *)part, sizeof(part) - 1, &after_reset);
	CHECK(after_reset.count == 1 && after_reset.lengths[0] == 4);
	CHECK(after_reset.stamps[0] == 1500000);

	mjpeg_reader_destroy(&whole);
	mjpeg_reader_destroy(&chunked);
	frames_free(&whole_frames);
	frames_free(&chunked_frames);
	frames_free(&after_reset);
	return 0;
}
