#include "parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int parse_long(const char *text, long min, long max, long *out)
{
	const char *digits = text;
	char *end;
	long v;

	/* strtol alone would take leading spaces and '+'. */
	if (!text)
		return -1;
	if (*digits == '-')
		digits++;
	if (*digits < '0' || *digits > '9')
		return -1;
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int parse_decimal(const char *text, double min, double max, double *out)
{
	const char *p;
	int digits = 0, points = 0;
	double v;

	if (!text)
		return -1;
	for (p = text; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		else if (*p == '.' && !points++)
			continue;
		else
			return -1;
	}
	if (!digits || p - text > 32)
		return -1;
	v = strtod(text, NULL);
	if (!(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

int parse_size(const char *text, long side_max, uint32_t *width, uint32_t *height)
{
	char w[16];
	const char *x = text ? strchr(text, 'x') : NULL;
	long wv, hv;

	if (!x || (size_t)(x - text) >= sizeof(w))
		return -1;
	memcpy(w, text, (size_t)(x - text));
	w[x - text] = '\0';
	if (parse_long(w, 1, side_max, &wv) < 0 || parse_long(x + 1, 1, side_max, &hv) < 0)
		return -1;
	*width = (uint32_t)wv;
	*height = (uint32_t)hv;
	return 0;
}
