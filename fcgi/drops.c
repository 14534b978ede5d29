#include "drops.h"

#include "log.h"
#include "mjpeg_splitter.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Longest "dropped ..." line, bytes. */
#define DROPS_LINE_BYTES 512

void drop_log_init(struct drop_log *log, size_t frame_bytes_max)
{
	memset(log, 0, sizeof(*log));
	log->frame_bytes_max = frame_bytes_max;
}

void drop_log_add(struct drop_log *log, const struct drops *dropped, const char *why)
{
	struct drops *p = &log->pending;

	p->invalid += dropped->invalid;
	p->oversized += dropped->oversized;
	p->cut += dropped->cut;
	p->partial += dropped->partial;
	p->bytes_skipped += dropped->bytes_skipped;
	/* why lasts only until the caller's next validation */
	if (why && snprintf(p->invalid_why, sizeof(p->invalid_why), "%s", why) < 0)
		p->invalid_why[0] = '\0';
}

void drop_log_splitter(struct drop_log *log, const struct mjpeg_splitter *s,
		       struct drops *dropped)
{
	memset(dropped, 0, sizeof(*dropped));
	dropped->oversized = s->frames_oversized - log->seen_oversized;
	dropped->cut = s->frames_cut - log->seen_cut;
	dropped->bytes_skipped = s->bytes_skipped - log->seen_skipped;
	log->seen_oversized = s->frames_oversized;
	log->seen_cut = s->frames_cut;
	log->seen_skipped = s->bytes_skipped;
}

static void line_add(char *line, size_t *used, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Appends ", " and a formatted part to line (DROPS_LINE_BYTES); a line
 * that fills up is cut short. */
static void line_add(char *line, size_t *used, const char *fmt, ...)
{
	size_t room;
	va_list ap;
	int n;

	if (*used > 0 && *used + 2 < DROPS_LINE_BYTES) {
		memcpy(line + *used, ", ", 3);
		*used += 2;
	}
	room = DROPS_LINE_BYTES - *used; /* *used < DROPS_LINE_BYTES always */
	if (room < 2)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line + *used, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used += (size_t)n < room ? (size_t)n : room - 1;
}

static const char *plural(uint64_t count)
{
	return count == 1 ? "" : "s";
}

void drop_log_flush(struct drop_log *log, const char *who, int now_anyway)
{
	struct drops *p = &log->pending;
	char line[DROPS_LINE_BYTES];
	int64_t now;
	size_t used = 0;

	if (!p->invalid && !p->oversized && !p->cut && !p->partial && !p->bytes_skipped)
		return;
	now = clock_mono_usec();
	if (now < log->next_usec && !now_anyway)
		return;
	log->next_usec = now + DROPS_LOG_INTERVAL_USEC;
	line[0] = '\0';
	if (p->invalid)
		line_add(line, &used, "%" PRIu64 " invalid JPEG%s (%s)", p->invalid,
			 plural(p->invalid), p->invalid_why);
	if (p->oversized)
		line_add(line, &used, "%" PRIu64 " JPEG%s over frame_bytes_max (%zu bytes)",
			 p->oversized, plural(p->oversized), log->frame_bytes_max);
	if (p->cut)
		line_add(line, &used, "%" PRIu64 " JPEG%s cut short or broken", p->cut,
			 plural(p->cut));
	if (p->partial)
		line_add(line, &used, "%" PRIu64 " partial frame%s at the end of the input",
			 p->partial, plural(p->partial));
	if (p->bytes_skipped)
		line_add(line, &used, "%" PRIu64 " byte%s outside any JPEG", p->bytes_skipped,
			 plural(p->bytes_skipped));
	log_warn("%s: dropped %s", who, line);
	memset(p, 0, sizeof(*p));
}
