#include "reply.h"

#include "http.h"
#include "log.h"
#include "multipart.h"

#include <stdarg.h>
#include <stdio.h>

void reply_error(FCGX_Stream *out, int status, const char *extra_headers, const char *fmt, ...)
{
	char message[256], response[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	n = http_error_response(response, sizeof(response), status, extra_headers, message);
	if (n > 0)
		FCGX_PutStr(response, n, out);
}

int reply_stream_head(FCGX_Stream *out, char *boundary)
{
	char head[MULTIPART_HEAD_MAX];
	int n;

	multipart_make_boundary(boundary);
	n = multipart_response_head(head, sizeof(head), boundary, NULL);
	if (n < 0)
		FATAL("multipart head overflow");
	if (FCGX_PutStr(head, n, out) < 0 || FCGX_FFlush(out) < 0)
		return -1;
	return 0;
}
