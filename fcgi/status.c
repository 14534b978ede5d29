#include "status.h"

#include "clock.h"

#include <errno.h>
#include <signal.h>

void status_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* A producer pid recorded in the bus may belong to a process that died;
 * report it only while that process lives. */
static int32_t live_pid(int32_t pid)
{
	if (pid <= 0)
		return 0;
	if (kill(pid, 0) == 0 || errno == EPERM)
		return pid;
	return 0;
}

void status_write_json(FILE *out, const struct stream_set *set, const struct settings *settings,
		       const struct status_process *process)
{
	size_t i;

	fprintf(out, "{\"version\":\"%s\",\"uptime_sec\":%.3f,\"client_addr\":",
		MJPEG_FCGI_VERSION,
		(double)(clock_mono_usec() - process->started_mono_usec) / USEC_PER_SEC);
	status_json_string(out, process->client_addr ? process->client_addr : "");
	fprintf(out, ",\"max_viewers\":%d,\"viewers\":%d,\"streams\":[", settings->max_viewers,
		process->viewers);
	for (i = 0; i < set->count; i++) {
		const struct stream *st = &set->streams[i];
		struct bus_stats stats;

		bus_stats(st->bus, &stats);
		fprintf(out, "%s{\"name\":", i ? "," : "");
		status_json_string(out, st->cfg->name);
		fputs(",\"source\":", out);
		status_json_string(out, st->cfg->source);
		fprintf(out,
			",\"width\":%u,\"height\":%u,\"fps\":%g,\"quality\":%d,"
			"\"max_viewers\":%d,\"producer_pid\":%d,"
			"\"frames_published\":%llu,\"frames_encoded\":%llu,"
			"\"frames_delivered\":%llu,\"frames_dropped\":%llu,"
			"\"viewers\":%u,\"bytes_sent\":%llu,\"last_publish\":%lld.%06lld}",
			stats.width ? stats.width : st->cfg->width,
			stats.height ? stats.height : st->cfg->height, st->cfg->fps,
			st->cfg->quality, st->cfg->max_viewers, live_pid(stats.producer_pid),
			(unsigned long long)stats.frames_published,
			(unsigned long long)stats.frames_encoded,
			(unsigned long long)stats.frames_delivered,
			(unsigned long long)stats.frames_dropped, stats.viewers,
			(unsigned long long)stats.bytes_sent,
			(long long)(stats.last_publish_usec / USEC_PER_SEC),
			(long long)(stats.last_publish_usec % USEC_PER_SEC));
	}
	fputs("]}\n", out);
}
