#include "status.h"

#include "clock.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <stddef.h>
#include <string.h>

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

int status_has_upstream(const struct stream_settings *cfg)
{
	return cfg->kind == SOURCE_HTTP || cfg->kind == SOURCE_EXEC;
}

/* The upstream's state as the producer last stored it; with no live
 * producer there is no connection, whatever the file says. */
static void read_upstream(const struct bus *bus, struct bus_upstream *up)
{
	struct bus_stats stats;

	bus_upstream(bus, up);
	bus_stats(bus, &stats);
	if (!live_pid(stats.producer_pid))
		up->state = BUS_UPSTREAM_IDLE;
}

static const char *const upstream_state_names[] = {
	[BUS_UPSTREAM_IDLE] = "idle",
	[BUS_UPSTREAM_CONNECTING] = "connecting",
	[BUS_UPSTREAM_CONNECTED] = "connected",
	[BUS_UPSTREAM_AWAY] = "away",
};

/* ,"upstream":{...}: state, since when, reconnects, the last error. */
static void write_upstream(FILE *out, const struct bus *bus)
{
	struct bus_upstream up;

	read_upstream(bus, &up);
	fprintf(out, ",\"upstream\":{\"state\":\"%s\",\"since\":%lld.%06lld,\"reconnects\":%llu,"
		     "\"last_error\":",
		upstream_state_names[up.state], (long long)(up.since_usec / USEC_PER_SEC),
		(long long)(up.since_usec % USEC_PER_SEC), (unsigned long long)up.reconnects);
	status_json_string(out, up.last_error);
	fputc('}', out);
}

int status_shows(const struct stream *st, const struct status_process *process)
{
	return process->show_private || !st->cfg->view_secret[0];
}

/* This process's viewers as the request may see them: less those of the
 * private streams it is not shown. */
static int viewers_shown(const struct stream_set *set, const struct status_process *process)
{
	int viewers = process->viewers;
	size_t i;

	for (i = 0; i < set->count; i++)
		if (!status_shows(set->streams[i], process))
			viewers -= atomic_load(&set->streams[i]->viewers_here);
	return viewers > 0 ? viewers : 0;
}

void status_write_json(FILE *out, const struct stream_set *set, const struct settings *settings,
		       const struct status_process *process)
{
	size_t i;
	int shown = 0;

	fprintf(out, "{\"version\":\"%s\",\"uptime_sec\":%.3f,\"client_addr\":",
		MJPEG_FCGI_VERSION,
		(double)(clock_mono_usec() - process->started_mono_usec) / USEC_PER_SEC);
	status_json_string(out, process->client_addr ? process->client_addr : "");
	/* the port as a number; null when the web server passed none */
	if (process->server_port && process->server_port[0] &&
	    strspn(process->server_port, "0123456789") == strlen(process->server_port) &&
	    strlen(process->server_port) <= 5)
		fprintf(out, ",\"server_port\":%s", process->server_port);
	else
		fputs(",\"server_port\":null", out);
	fprintf(out, ",\"pid\":%ld,\"max_viewers\":%d,\"viewers\":%d,\"streams\":[",
		(long)getpid(), settings->max_viewers, viewers_shown(set, process));
	for (i = 0; i < set->count; i++) {
		const struct stream *st = set->streams[i];
		struct bus_stats stats;

		if (!status_shows(st, process))
			continue;
		bus_stats(st->bus, &stats);
		fprintf(out, "%s{\"name\":", shown++ ? "," : "");
		status_json_string(out, st->cfg->name);
		fputs(",\"source\":", out);
		status_json_string(out, st->cfg->source);
		fprintf(out,
			",\"width\":%u,\"height\":%u,\"fps\":%g,\"quality\":%d,"
			"\"max_viewers\":%d,\"producer_pid\":%d,"
			"\"frames_published\":%llu,\"frames_encoded\":%llu,"
			"\"frames_delivered\":%llu,\"frames_dropped\":%llu,"
			"\"viewers\":%u,\"bytes_sent\":%llu,\"last_publish\":%lld.%06lld",
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
		if (status_has_upstream(st->cfg))
			write_upstream(out, st->bus);
		fputc('}', out);
	}
	fputs("]}\n", out);
}

/* One metric family over every stream: HELP, TYPE, then a sample per
 * stream, the value picked from the stats by offset. */
static void metric_family(FILE *out, const struct stream_set *set,
			  const struct status_process *process, const char *name, const char *type,
			  const char *help, size_t offset)
{
	size_t i;

	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (i = 0; i < set->count; i++) {
		struct bus_stats stats;
		uint64_t value;

		if (!status_shows(set->streams[i], process))
			continue;
		bus_stats(set->streams[i]->bus, &stats);
		if (offset == offsetof(struct bus_stats, viewers))
			value = stats.viewers;
		else
			memcpy(&value, (const char *)&stats + offset, sizeof(value));
		fprintf(out, "%s{stream=\"%s\"} %llu\n", name, set->streams[i]->cfg->name,
			(unsigned long long)value);
	}
}

void status_write_metrics(FILE *out, const struct stream_set *set,
			  const struct status_process *process)
{
	static const int64_t bounds[] = BUS_ENCODE_BOUNDS_USEC;
	size_t i, b;

	fprintf(out,
		"# HELP mjpeg_uptime_seconds Seconds since this responder process started.\n"
		"# TYPE mjpeg_uptime_seconds gauge\n"
		"mjpeg_uptime_seconds %.3f\n"
		"# HELP mjpeg_process_viewers Stream viewers served by this process.\n"
		"# TYPE mjpeg_process_viewers gauge\n"
		"mjpeg_process_viewers %d\n",
		(double)(clock_mono_usec() - process->started_mono_usec) / USEC_PER_SEC,
		viewers_shown(set, process));
	metric_family(out, set, process, "mjpeg_frames_published_total", "counter",
		      "Frames published to the stream.", offsetof(struct bus_stats, frames_published));
	metric_family(out, set, process, "mjpeg_frames_encoded_total", "counter",
		      "Frames encoded to JPEG (pass-through sources encode none).",
		      offsetof(struct bus_stats, frames_encoded));
	metric_family(out, set, process, "mjpeg_frames_delivered_total", "counter",
		      "Parts written to viewers, repeats included.",
		      offsetof(struct bus_stats, frames_delivered));
	metric_family(out, set, process, "mjpeg_frames_dropped_total", "counter",
		      "Frames viewers skipped because newer ones were published first.",
		      offsetof(struct bus_stats, frames_dropped));
	metric_family(out, set, process, "mjpeg_bytes_sent_total", "counter",
		      "JPEG bytes written to viewers.", offsetof(struct bus_stats, bytes_sent));
	metric_family(out, set, process, "mjpeg_viewers", "gauge", "Viewers now, over all processes.",
		      offsetof(struct bus_stats, viewers));

	fputs("# HELP mjpeg_upstream_connected 1 while the stream's upstream (http:, exec:) is "
	      "connected or running.\n"
	      "# TYPE mjpeg_upstream_connected gauge\n",
	      out);
	for (i = 0; i < set->count; i++) {
		struct bus_upstream up;

		if (!status_has_upstream(set->streams[i]->cfg) ||
		    !status_shows(set->streams[i], process))
			continue;
		read_upstream(set->streams[i]->bus, &up);
		fprintf(out, "mjpeg_upstream_connected{stream=\"%s\"} %d\n",
			set->streams[i]->cfg->name, up.state == BUS_UPSTREAM_CONNECTED);
	}
	fputs("# HELP mjpeg_upstream_reconnects_total Connections to (or starts of) the "
	      "upstream after the first.\n"
	      "# TYPE mjpeg_upstream_reconnects_total counter\n",
	      out);
	for (i = 0; i < set->count; i++) {
		struct bus_upstream up;

		if (!status_has_upstream(set->streams[i]->cfg) ||
		    !status_shows(set->streams[i], process))
			continue;
		bus_upstream(set->streams[i]->bus, &up);
		fprintf(out, "mjpeg_upstream_reconnects_total{stream=\"%s\"} %llu\n",
			set->streams[i]->cfg->name, (unsigned long long)up.reconnects);
	}

	fputs("# HELP mjpeg_encode_seconds Time to encode one frame.\n"
	      "# TYPE mjpeg_encode_seconds histogram\n",
	      out);
	for (i = 0; i < set->count; i++) {
		const char *name = set->streams[i]->cfg->name;
		struct bus_stats stats;
		uint64_t cumulative = 0;

		if (!status_shows(set->streams[i], process))
			continue;
		bus_stats(set->streams[i]->bus, &stats);
		for (b = 0; b < BUS_ENCODE_BUCKETS; b++) {
			cumulative += stats.encode_hist[b];
			if (b < BUS_ENCODE_BUCKETS - 1)
				fprintf(out, "mjpeg_encode_seconds_bucket{stream=\"%s\",le=\"%g\"} %llu\n",
					name, (double)bounds[b] / USEC_PER_SEC,
					(unsigned long long)cumulative);
			else
				fprintf(out, "mjpeg_encode_seconds_bucket{stream=\"%s\",le=\"+Inf\"} %llu\n",
					name, (unsigned long long)cumulative);
		}
		fprintf(out, "mjpeg_encode_seconds_sum{stream=\"%s\"} %.6f\n", name,
			(double)stats.encode_usec_total / USEC_PER_SEC);
		fprintf(out, "mjpeg_encode_seconds_count{stream=\"%s\"} %llu\n", name,
			(unsigned long long)stats.frames_encoded);
	}
}
