#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level level_max = LOG_LEVEL_INFO;

const char *const log_level_names[LOG_LEVEL_COUNT + 1] = { "error", "warn", "info", "debug",
							    NULL };

void log_set_level(enum log_level level)
{
	level_max = level;
}

/* One write(2) per line, so that lines from several threads and processes
 * sharing one log file never interleave. */
static void log_vline(const char *level, const char *fmt, va_list ap)
{
	char line[1024];
	struct timeval tv;
	struct tm tm;
	size_t used;
	int n;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	used = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	n = snprintf(line + used, sizeof(line) - used, ".%03ld mjpeg-fcgi[%ld] %s: ",
		     (long)tv.tv_usec / 1000, (long)getpid(), level);
	if (n > 0 && (size_t)n < sizeof(line) - used)
		used += (size_t)n;
	n = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
	if (n > 0)
		used += (size_t)n < sizeof(line) - used ? (size_t)n : sizeof(line) - used - 1;
	if (used > sizeof(line) - 2)
		used = sizeof(line) - 2;
	line[used++] = '\n';
	if (write(STDERR_FILENO, line, used) < 0) {
		/* Nowhere left to report it. */
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > level_max)
		return;
	va_start(ap, fmt);
	log_vline(log_level_names[level], fmt, ap);
	va_end(ap);
}

void log_fatal(const char *file, int line, const char *fmt, ...)
{
	char where[256];
	va_list ap;

	snprintf(where, sizeof(where), "fatal (%s:%d)", file, line);
	va_start(ap, fmt);
	log_vline(where, fmt, ap);
	va_end(ap);
	abort();
}
