/*
 * derivedbench: what one frame of a derived stream costs, measured on the
 * responder's own code, against a plain encode of the same output size.
 *
 *   derivedbench [--quality Q] [--seconds S] [--warmup S]
 *
 * The input is a 640x480 bars frame (pattern_bars, as pattern:bars draws
 * it) encoded by encode_frame(), as it sits on an input stream's bus.
 *
 *   scale    scale:, 640x480 -> 320x240: scaler_draw() (TurboJPEG's DCT
 *            scaling: a 1/2 decode straight into the picture's YCbCr
 *            planes) and encode_frame() of the 320x240 result, per frame
 *   mosaic   a 2x2 mosaic: of four such inputs into 1280x960 (tiles of
 *            640x480: full decodes), then the encode of the 1280x960 picture
 *   plain    encode_frame() alone of each output picture, as RGB24 (what a
 *            pattern or raw: stream of that size costs per frame): the
 *            baseline
 *
 * Each is run untimed for --warmup seconds, then timed for --seconds; the
 * mean is the window over the frames made in it.  One thread, like one
 * producer.  The result is one JSON line on standard output:
 *
 *   {"quality":Q,"input_bytes":B,
 *    "scale_usec":S,"scale_plain_usec":s,"scale_jpeg_bytes":b,
 *    "mosaic_usec":M,"mosaic_plain_usec":m,"mosaic_jpeg_bytes":b}
 */
#include "clock.h"
#include "encode.h"
#include "parse.h"
#include "scaler.h"
#include "source_pattern.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#define IN_W 640
#define IN_H 480
#define SCALE_W 320
#define SCALE_H 240
#define MOSAIC_W 1280
#define MOSAIC_H 960
#define SECONDS_MAX 600.0
/* The same picture every run (2024-01-01 12:34:56.789 UTC, frame 1234). */
#define BARS_FRAME_NUMBER 1234
#define BARS_WALL_USEC (1704112496LL * USEC_PER_SEC + 789 * USEC_PER_MSEC)

struct job {
	struct scaler *scaler;
	struct encoder *enc;
	const unsigned char *input; /* the input JPEG, a copy */
	size_t input_bytes;
	struct scaler_picture pic;  /* the derived picture */
	unsigned char *rgb;         /* the same picture as RGB24, for the plain encode */
	int tiles;                  /* 0: encode only; 1: scale; 4: 2x2 mosaic */
	int quality;
	size_t jpeg_bytes;          /* the last output's */
};

static void usage(void)
{
	fprintf(stderr, "usage: derivedbench [--quality 1-100] [--seconds S] [--warmup S]\n");
	exit(2);
}

/* One frame: the inputs drawn into their tiles, then the encode; or, with
 * no tiles, the plain encode of the RGB24 picture. */
static int one_frame(struct job *j)
{
	uint32_t width = j->pic.width, height = j->pic.height;
	uint32_t tw = j->tiles == 4 ? width / 2 : width;
	uint32_t th = j->tiles == 4 ? height / 2 : height;
	const unsigned char *jpeg;
	int t;

	if (!j->tiles)
		return encode_frame(j->enc, j->rgb, PIXEL_RGB24, width, height, j->quality, &jpeg,
				    &j->jpeg_bytes);
	for (t = 0; t < j->tiles; t++)
		if (scaler_draw(j->scaler, j->input, j->input_bytes, &j->pic,
				(uint32_t)(t % 2) * tw, (uint32_t)(t / 2) * th, tw, th,
				"bench") < 0)
			return -1;
	return encode_frame(j->enc, j->pic.yuv, PIXEL_I420, width, height, j->quality, &jpeg,
			    &j->jpeg_bytes);
}

/* The derived picture as RGB24, for the plain encode; 0 or -1. */
static int picture_rgb(struct job *j)
{
	tjhandle tj = tjInitDecompress();
	int rc = -1;

	if (tj && tjDecodeYUV(tj, j->pic.yuv, 1, TJSAMP_420, j->rgb, (int)j->pic.width, 0,
			      (int)j->pic.height, TJPF_RGB, 0) == 0)
		rc = 0;
	else
		fprintf(stderr, "derivedbench: tjDecodeYUV: %s\n", tjGetErrorStr2(tj));
	if (tj)
		tjDestroy(tj);
	return rc;
}

/* Mean microseconds per frame over a timed window; -1 on a failure. */
static double run(struct job *j, double warmup, double seconds)
{
	int64_t start = clock_mono_usec(), now = start;
	uint64_t frames = 0;

	do {
		if (one_frame(j) < 0)
			return -1;
		now = clock_mono_usec();
	} while (now - start < (int64_t)(warmup * USEC_PER_SEC));
	start = now;
	do {
		if (one_frame(j) < 0)
			return -1;
		frames++;
		now = clock_mono_usec();
	} while (now - start < (int64_t)(seconds * USEC_PER_SEC));
	return (double)(now - start) / (double)frames;
}

int main(int argc, char **argv)
{
	double seconds = 2.0, warmup = 0.5, usec[4];
	int quality = ENCODE_QUALITY_DEFAULT, i, rc = 1;
	unsigned char *bars = malloc((size_t)IN_W * IN_H * 3);
	unsigned char *rgb = malloc((size_t)MOSAIC_W * MOSAIC_H * 3), *input = NULL;
	unsigned char *yuv = malloc(encode_i420_bytes(MOSAIC_W, MOSAIC_H));
	struct job j = { 0 };
	const unsigned char *jpeg;
	size_t bytes, out_bytes[4];

	for (i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--quality") == 0) {
			long v;

			if (parse_long(argv[++i], 1, 100, &v) < 0)
				usage();
			quality = (int)v;
		} else if (strcmp(argv[i], "--seconds") == 0) {
			if (parse_decimal(argv[++i], 0, SECONDS_MAX, &seconds) < 0 || seconds <= 0)
				usage();
		} else if (strcmp(argv[i], "--warmup") == 0) {
			if (parse_decimal(argv[++i], 0, SECONDS_MAX, &warmup) < 0)
				usage();
		} else {
			usage();
		}
	}
	j.enc = encode_open();
	j.scaler = scaler_open();
	if (!bars || !rgb || !yuv || !j.enc || !j.scaler)
		goto out;
	pattern_bars(bars, IN_W, IN_H, BARS_FRAME_NUMBER, BARS_WALL_USEC);
	if (encode_frame(j.enc, bars, PIXEL_RGB24, IN_W, IN_H, quality, &jpeg, &bytes) < 0)
		goto out;
	input = malloc(bytes);
	if (!input)
		goto out;
	memcpy(input, jpeg, bytes);
	j.input = input;
	j.input_bytes = bytes;
	j.rgb = rgb;
	j.pic.yuv = yuv;
	j.quality = quality;
	/* derived, then plain, for each size: the plain encode of the very
	 * picture the derived frame made */
	for (i = 0; i < 4; i++) {
		int mosaic = i >= 2;

		j.pic.width = mosaic ? MOSAIC_W : SCALE_W;
		j.pic.height = mosaic ? MOSAIC_H : SCALE_H;
		j.tiles = i % 2 ? 0 : (mosaic ? 4 : 1);
		if (!j.tiles && picture_rgb(&j) < 0)
			goto out;
		usec[i] = run(&j, warmup, seconds);
		out_bytes[i] = j.jpeg_bytes;
		if (usec[i] < 0)
			goto out;
	}
	printf("{\"quality\":%d,\"input_bytes\":%zu,"
	       "\"scale_usec\":%.1f,\"scale_plain_usec\":%.1f,\"scale_jpeg_bytes\":%zu,"
	       "\"mosaic_usec\":%.1f,\"mosaic_plain_usec\":%.1f,\"mosaic_jpeg_bytes\":%zu}\n",
	       quality, bytes, usec[0], usec[1], out_bytes[0], usec[2], usec[3], out_bytes[2]);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "derivedbench: failed (see above)\n");
	free(input);
	free(bars);
	free(rgb);
	free(yuv);
	scaler_close(j.scaler);
	encode_close(j.enc);
	return rc;
}
