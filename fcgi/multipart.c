#include "multipart.h"

#include "clock.h"

#include <stdio.h>
#include <sys/random.h>

void multipart_make_boundary(char *boundary)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char noise[MULTIPART_BOUNDARY_LEN];
	size_t i;

	/* Not a secret: a short read only makes the boundary less random,
	 * which is harmless, so the result is not checked beyond that. */
	if (getrandom(noise, sizeof(noise), GRND_NONBLOCK) != (ssize_t)sizeof(noise)) {
		for (i = 0; i < sizeof(noise); i++)
			noise[i] = (unsigned char)(clock_mono_usec() >> (i % 8) ^ i * 131);
	}
	for (i = 0; i < MULTIPART_BOUNDARY_LEN; i++)
		boundary[i] = alphabet[noise[i] % (sizeof(alphabet) - 1)];
	boundary[MULTIPART_BOUNDARY_LEN] = '\0';
}

static int checked(int n, size_t size)
{
	return n < 0 || (size_t)n >= size ? -1 : n;
}

int multipart_response_head(char *buf, size_t size, const char *boundary,
			    const char *extra_headers)
{
	return checked(snprintf(buf, size,
				"Status: 200 OK\r\n"
				"Content-Type: multipart/x-mixed-replace;boundary=%s\r\n"
				"Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n"
				"Pragma: no-cache\r\n"
				"X-Accel-Buffering: no\r\n"
				"%s"
				"\r\n"
				"--%s\r\n",
				boundary, extra_headers ? extra_headers : "", boundary),
		       size);
}

int multipart_part_head(char *buf, size_t size, size_t jpeg_bytes, int64_t publish_usec)
{
	return checked(snprintf(buf, size,
				"Content-Type: image/jpeg\r\n"
				"Content-Length: %zu\r\n"
				"X-Timestamp: %lld.%06lld\r\n"
				"\r\n",
				jpeg_bytes, (long long)(publish_usec / USEC_PER_SEC),
				(long long)(publish_usec % USEC_PER_SEC)),
		       size);
}

int multipart_part_tail(char *buf, size_t size, const char *boundary, int last)
{
	return checked(snprintf(buf, size, "\r\n--%s%s\r\n", boundary, last ? "--" : ""), size);
}
