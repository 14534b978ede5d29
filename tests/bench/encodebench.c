/*
 * encodebench: how long the responder takes to encode one frame of its
 * pattern:bars stream, measured on the responder's own code.
 *
 *   encodebench [--quality Q] [--seconds S] [--warmup S] [--ppm PATH]
 *
 * Renders one 640x480 bars frame with pattern_bars() (source_pattern.o, as
 * the pattern:bars source does), writes it to PATH as a binary PPM (P6)
 * when asked, so that tjbench can encode the same picture, then calls
 * encode_frame() (encode.o: the producer's call, RGB24 in, TurboJPEG with
 * 4:2:0 and the fast DCT) on it again and again: --warmup seconds untimed,
 * then --seconds timed.  One thread, like one producer.
 *
 * Then, for the same number of seconds each, it validates the JPEG it
 * made with encode_validate() (what every JPEG not encoded by the
 * responder goes through: ingest, dir:, mjpeg:), and decodes it fully to
 * RGB with TurboJPEG (the alternative validation, for comparison).
 *
 * The result is one JSON line on standard output:
 *
 *   {"width":640,"height":480,"quality":80,"frames":N,"seconds":S,
 *    "encode_usec_mean":M,"encode_usec_min":m,"jpeg_bytes":B,
 *    "validate_usec_mean":V,"validate_usec_min":v,
 *    "decode_full_usec_mean":D,"decode_full_usec_min":d}
 *
 * A *_usec_mean is the timed window divided by the calls made in it, as
 * tjbench computes its throughput; *_usec_min the fastest single call.
 */
#include "clock.h"
#include "encode.h"
#include "parse.h"
#include "source_pattern.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* The size config.c gives a pattern:bars stream that does not set one. */
#define BARS_WIDTH 640
#define BARS_HEIGHT 480
/* Every run encodes the same picture: a fixed frame number and time for
 * the text the pattern draws (2024-01-01 12:34:56.789 UTC). */
#define BARS_FRAME_NUMBER 1234
#define BARS_WALL_USEC (1704112496LL * USEC_PER_SEC + 789 * USEC_PER_MSEC)
#define SECONDS_DEFAULT 2.0
#define WARMUP_DEFAULT 0.5
#define SECONDS_MAX 600.0

struct timing {
	uint64_t frames;
	int64_t window_usec;   /* the whole timed loop */
	int64_t fastest_usec;  /* one encode_frame() call */
	size_t jpeg_bytes;     /* of the last frame */
};

/* What is timed after the encodes, on the JPEG they made. */
enum check { CHECK_VALIDATE, CHECK_DECODE_FULL };

static void usage(void)
{
	fprintf(stderr, "usage: encodebench [--quality 1-100] [--seconds S] [--warmup S] "
			"[--ppm PATH]\n");
	exit(2);
}

static int write_ppm(const char *path, const unsigned char *rgb, uint32_t width,
		     uint32_t height)
{
	size_t bytes = (size_t)width * height * 3;
	FILE *f = fopen(path, "wb");
	int rc = -1;

	if (!f) {
		fprintf(stderr, "encodebench: fopen(%s): %s\n", path, strerror(errno));
		return -1;
	}
	if (fprintf(f, "P6\n%u %u\n255\n", width, height) < 0 ||
	    fwrite(rgb, 1, bytes, f) != bytes) {
		fprintf(stderr, "encodebench: write(%s): %s\n", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fclose(f) != 0 && rc == 0) {
		fprintf(stderr, "encodebench: fclose(%s): %s\n", path, strerror(errno));
		rc = -1;
	}
	return rc;
}

/* Encodes rgb until usec microseconds have passed; the timing is filled
 * in.  -1 if an encode failed (logged by encode_frame). */
static int encode_for(struct encoder *enc, const unsigned char *rgb, int quality,
		      int64_t usec, struct timing *t)
{
	int64_t start = clock_mono_usec(), now = start;

	memset(t, 0, sizeof(*t));
	t->fastest_usec = INT64_MAX;
	do {
		const unsigned char *jpeg;
		int64_t call_start = now;

		if (encode_frame(enc, rgb, PIXEL_RGB24, BARS_WIDTH, BARS_HEIGHT, quality, &jpeg,
				 &t->jpeg_bytes) < 0)
			return -1;
		now = clock_mono_usec();
		if (now - call_start < t->fastest_usec)
			t->fastest_usec = now - call_start;
		t->frames++;
	} while (now - start < usec);
	t->window_usec = now - start;
	return 0;
}

/* Validates (or fully decodes) jpeg until usec microseconds have passed;
 * the timing is filled in (jpeg_bytes: the input's).  rgb has room for the
 * picture.  -1 if a call failed. */
static int check_for(enum check what, tjhandle tj, const unsigned char *jpeg, size_t bytes,
		     unsigned char *rgb, int64_t usec, struct timing *t)
{
	int64_t start = clock_mono_usec(), now = start;

	memset(t, 0, sizeof(*t));
	t->fastest_usec = INT64_MAX;
	t->jpeg_bytes = bytes;
	do {
		int64_t call_start = now;
		const char *why = NULL;

		if (what == CHECK_VALIDATE) {
			if (encode_validate(jpeg, bytes, NULL, NULL, &why) < 0) {
				fprintf(stderr, "encodebench: encode_validate: %s\n", why);
				return -1;
			}
		} else if (tjDecompress2(tj, jpeg, (unsigned long)bytes, rgb, BARS_WIDTH, 0,
					 BARS_HEIGHT, TJPF_RGB, TJFLAG_STOPONWARNING) < 0) {
			fprintf(stderr, "encodebench: tjDecompress2: %s\n", tjGetErrorStr2(tj));
			return -1;
		}
		now = clock_mono_usec();
		if (now - call_start < t->fastest_usec)
			t->fastest_usec = now - call_start;
		t->frames++;
	} while (now - start < usec);
	t->window_usec = now - start;
	return 0;
}

int main(int argc, char **argv)
{
	int quality = ENCODE_QUALITY_DEFAULT;
	double seconds = SECONDS_DEFAULT, warmup = WARMUP_DEFAULT;
	const char *ppm = NULL;
	unsigned char *rgb = NULL, *jpeg_copy = NULL, *decoded = NULL;
	struct encoder *enc = NULL;
	tjhandle tj = NULL;
	struct timing t, valid, full;
	const unsigned char *jpeg;
	int i, rc = 1;

	if (argc % 2 == 0) /* every option takes a value */
		usage();
	for (i = 1; i < argc; i += 2) {
		const char *value = argv[i + 1];

		if (strcmp(argv[i], "--quality") == 0) {
			long v;

			if (parse_long(value, 1, 100, &v) < 0)
				usage();
			quality = (int)v;
		} else if (strcmp(argv[i], "--seconds") == 0) {
			if (parse_decimal(value, 0, SECONDS_MAX, &seconds) < 0 || seconds <= 0)
				usage();
		} else if (strcmp(argv[i], "--warmup") == 0) {
			if (parse_decimal(value, 0, SECONDS_MAX, &warmup) < 0)
				usage();
		} else if (strcmp(argv[i], "--ppm") == 0) {
			ppm = value;
		} else {
			usage();
		}
	}

	rgb = malloc((size_t)BARS_WIDTH * BARS_HEIGHT * 3);
	if (!rgb) {
		fprintf(stderr, "encodebench: malloc failed\n");
		goto out;
	}
	pattern_bars(rgb, BARS_WIDTH, BARS_HEIGHT, BARS_FRAME_NUMBER, BARS_WALL_USEC);
	if (ppm && write_ppm(ppm, rgb, BARS_WIDTH, BARS_HEIGHT) < 0)
		goto out;
	enc = encode_open();
	if (!enc)
		goto out;
	/* The warm-up also lets TurboJPEG grow its output buffer, as the
	 * producer's first frames do. */
	if (encode_for(enc, rgb, quality, (int64_t)(warmup * USEC_PER_SEC), &t) < 0 ||
	    encode_for(enc, rgb, quality, (int64_t)(seconds * USEC_PER_SEC), &t) < 0)
		goto out;
	/* The last frame encoded, copied out of the encoder's buffer. */
	if (encode_frame(enc, rgb, PIXEL_RGB24, BARS_WIDTH, BARS_HEIGHT, quality, &jpeg,
			 &t.jpeg_bytes) < 0)
		goto out;
	jpeg_copy = malloc(t.jpeg_bytes);
	decoded = malloc((size_t)BARS_WIDTH * BARS_HEIGHT * 3);
	tj = tjInitDecompress();
	if (!jpeg_copy || !decoded || !tj) {
		fprintf(stderr, "encodebench: out of memory\n");
		goto out;
	}
	memcpy(jpeg_copy, jpeg, t.jpeg_bytes);
	if (check_for(CHECK_VALIDATE, tj, jpeg_copy, t.jpeg_bytes, decoded,
		      (int64_t)(warmup * USEC_PER_SEC), &valid) < 0 ||
	    check_for(CHECK_VALIDATE, tj, jpeg_copy, t.jpeg_bytes, decoded,
		      (int64_t)(seconds * USEC_PER_SEC), &valid) < 0 ||
	    check_for(CHECK_DECODE_FULL, tj, jpeg_copy, t.jpeg_bytes, decoded,
		      (int64_t)(warmup * USEC_PER_SEC), &full) < 0 ||
	    check_for(CHECK_DECODE_FULL, tj, jpeg_copy, t.jpeg_bytes, decoded,
		      (int64_t)(seconds * USEC_PER_SEC), &full) < 0)
		goto out;
	printf("{\"width\":%d,\"height\":%d,\"quality\":%d,\"frames\":%llu,\"seconds\":%.3f,"
	       "\"encode_usec_mean\":%.2f,\"encode_usec_min\":%lld,\"jpeg_bytes\":%zu,"
	       "\"validate_usec_mean\":%.2f,\"validate_usec_min\":%lld,"
	       "\"decode_full_usec_mean\":%.2f,\"decode_full_usec_min\":%lld}\n",
	       BARS_WIDTH, BARS_HEIGHT, quality, (unsigned long long)t.frames,
	       (double)t.window_usec / USEC_PER_SEC, (double)t.window_usec / (double)t.frames,
	       (long long)t.fastest_usec, t.jpeg_bytes,
	       (double)valid.window_usec / (double)valid.frames, (long long)valid.fastest_usec,
	       (double)full.window_usec / (double)full.frames, (long long)full.fastest_usec);
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	if (tj)
		tjDestroy(tj);
	free(decoded);
	free(jpeg_copy);
	encode_close(enc);
	free(rgb);
	return rc;
}
