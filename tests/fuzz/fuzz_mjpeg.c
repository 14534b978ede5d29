/* Fuzzes the MJPEG splitter (fcgi/mjpeg_splitter.h): the same bytes fed whole
 * and in chunks must give the same frames, each a whole JPEG (SOI to EOI) no
 * larger than frame_bytes_max.  A broken invariant traps (__builtin_trap),
 * which libFuzzer reports as a crash.
 *
 * Input: the layout of struct fuzz_stream (fuzz.h). */
#include "mjpeg_splitter.h"
#include "fuzz.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


/* Every frame one feeding produced, back to back, with their lengths. */
struct frames {
	unsigned char *bytes;
	size_t used, capacity;
	size_t *lengths;
	size_t count, count_capacity;
};

static void frames_add(struct frames *f, const unsigned char *jpeg, size_t n)
{
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
		CHECK(f->lengths != NULL);
	}
	memcpy(f->bytes + f->used, jpeg, n);
	f->used += n;
	f->lengths[f->count++] = n;
}

static void frames_free(struct frames *f)
{
	free(f->bytes);
	free(f->lengths);
	memset(f, 0, sizeof(*f));
}

/* Feeds len bytes as the header says a caller must: after a frame, again
 * with the rest (even when empty) until a call gives no frame. */
static void feed(struct mjpeg_splitter *s, const unsigned char *data, size_t len,
		 struct frames *out)
{
	/* A frame takes at least 4 bytes (SOI, EOI), from this input or from
	 * bytes kept to be parsed again (at most frame_bytes_max, parsed again
	 * at most about twice): bound the loop generously, so a splitter that
	 * never stops returning frames is caught as a bug, not a timeout. */
	size_t calls = 0, calls_max = len + 2 * s->frame_bytes_max + 16;

	for (;;) {
		const unsigned char *jpeg;
		size_t jpeg_bytes, used;

		used = mjpeg_splitter_feed(s, data, len, &jpeg, &jpeg_bytes);
		CHECK(used <= len);
		CHECK(++calls <= calls_max);
		data += used;
		len -= used;
		if (!jpeg) {
			CHECK(jpeg_bytes == 0);
			CHECK(len == 0); /* no frame: every byte consumed */
			return;
		}
		CHECK(jpeg_bytes >= 4 && jpeg_bytes <= s->frame_bytes_max);
		CHECK(jpeg[0] == 0xFF && jpeg[1] == 0xD8);
		CHECK(jpeg[jpeg_bytes - 2] == 0xFF && jpeg[jpeg_bytes - 1] == 0xD9);
		frames_add(out, jpeg, jpeg_bytes);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mjpeg_splitter whole, chunked;
	struct frames whole_frames = { 0 }, chunked_frames = { 0 };
	struct fuzz_stream in;
	size_t pos, turn, n;

	if (!fuzz_stream_parse(data, size, &in))
		return 0;

	mjpeg_splitter_init(&whole, in.frame_bytes_max);
	feed(&whole, in.bytes, in.len, &whole_frames);

	mjpeg_splitter_init(&chunked, in.frame_bytes_max);
	for (pos = 0, turn = 0; pos < in.len; pos += n) {
		n = fuzz_stream_chunk(&in, pos, &turn);
		feed(&chunked, in.bytes + pos, n, &chunked_frames);
	}

	/* the same frames, whatever the chunking */
	CHECK(whole_frames.count == chunked_frames.count);
	CHECK(whole_frames.used == chunked_frames.used);
	CHECK(whole_frames.count == 0 ||
	      memcmp(whole_frames.lengths, chunked_frames.lengths,
		     whole_frames.count * sizeof(*whole_frames.lengths)) == 0);
	CHECK(whole_frames.used == 0 ||
	      memcmp(whole_frames.bytes, chunked_frames.bytes, whole_frames.used) == 0);
	/* and the same account of what was dropped */
	CHECK(whole.frames == whole_frames.count && chunked.frames == chunked_frames.count);
	CHECK(whole.frames_oversized == chunked.frames_oversized);
	CHECK(whole.frames_cut == chunked.frames_cut);
	CHECK(whole.bytes_skipped == chunked.bytes_skipped);
	CHECK(whole.capacity <= in.frame_bytes_max || whole.capacity == 0);

	/* reset forgets the frame in progress and every byte kept */
	mjpeg_splitter_reset(&chunked);
	CHECK(chunked.frame_bytes == 0 && chunked.replay_start == chunked.replay_end);

	mjpeg_splitter_destroy(&whole);
	mjpeg_splitter_destroy(&chunked);
	frames_free(&whole_frames);
	frames_free(&chunked_frames);
	return 0;
}
