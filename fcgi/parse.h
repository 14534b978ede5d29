/* parse: strict readers of numbers as users and clients write them (config
 * keys, options, query parameters, CONTENT_LENGTH).  A leaf: no other
 * module of the responder below it.
 *
 * Each reader takes the whole string or nothing: no spaces, no '+', no
 * exponent or hex, no trailing bytes; *out is written only on success. */
#ifndef MJPEG_PARSE_H
#define MJPEG_PARSE_H

#include <stdint.h>

/* Strict base-10 integer in [min, max]: the whole string, no spaces, no
 * sign games.  0 or -1. */
int parse_long(const char *text, long min, long max, long *out)
	__attribute__((warn_unused_result));

/* Strict decimal number ("12", "0.5", "29.97") in [min, max]: digits with
 * at most one point, nothing else (no sign, exponent, hex or spaces), at
 * most 32 bytes.  0 or -1. */
int parse_decimal(const char *text, double min, double max, double *out)
	__attribute__((warn_unused_result));

/* A picture size "WIDTHxHEIGHT", each side an integer from 1 to side_max
 * (as parse_long).  0 or -1. */
int parse_size(const char *text, long side_max, uint32_t *width, uint32_t *height)
	__attribute__((warn_unused_result));

#endif
