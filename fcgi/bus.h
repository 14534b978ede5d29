/* bus: the frame bus.  One shared-memory file per named stream, holding a
 * header and a ring of frame slots.
 *
 * One producer (the process holding the file's flock) publishes complete
 * JPEG frames; any number of viewers in any number of processes copy the
 * newest one.  Publishing never waits for viewers: a viewer that falls behind
 * skips to the newest frame, and a frame torn by a concurrent publish is
 * detected (seqlock) and read again, never handed out.
 *
 * Thread safety: every function may be called from any thread, except
 * bus_publish and bus_wait_demand, which belong to the producer (the thread
 * holding the lock from bus_lock_producer). */
#ifndef MJPEG_BUS_H
#define MJPEG_BUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BUS_MAGIC 0x4d4a5046u /* "MJPF" */
#define BUS_VERSION 3u
#define BUS_SLOTS 4u

struct bus;

/* A frame as a viewer holds it: its own copy, in a buffer it owns. */
struct bus_frame {
	unsigned char *jpeg;   /* capacity bytes, owned by the caller */
	size_t capacity;
	/* 1: jpeg is from malloc (or NULL) and bus_read_latest may grow it
	 * with realloc to fit a frame, so a viewer holds what its frames need
	 * rather than frame_bytes_max. */
	int growable;
	size_t bytes;          /* JPEG length of the frame held */
	uint64_t seq;          /* 1, 2, ...: 0 means no frame held */
	int64_t publish_usec;  /* wall clock, set by the producer */
	uint32_t width, height;
};

/* Upper bounds (microseconds) of the encode-time histogram's buckets; a
 * last bucket counts everything above. */
#define BUS_ENCODE_BUCKETS 8
#define BUS_ENCODE_BOUNDS_USEC { 500, 1000, 2000, 5000, 10000, 20000, 50000 }

/* Counters, as read by /status and /metrics. */
struct bus_stats {
	uint64_t encode_hist[BUS_ENCODE_BUCKETS]; /* per bucket, not cumulative */
	uint64_t frames_published;
	uint64_t frames_encoded;
	uint64_t frames_delivered;
	uint64_t frames_dropped;  /* newer frames a viewer skipped */
	uint64_t bytes_sent;
	uint64_t encode_usec_total;
	uint32_t viewers;         /* of live processes (and the shared count) */
	int32_t producer_pid;     /* 0 when no producer has run yet */
	uint32_t width, height;
	int64_t last_publish_usec;
};

/* Opens (creating when missing) the file DIR/NAME sized for frames of up to
 * frame_bytes_max bytes.  DIR (created 0700 when missing) must be a real
 * directory of this process's effective user that group and others cannot
 * write to; DIR/NAME (created 0600 when missing) a regular file of that
 * user, mode 0600, with one link.  Anything else (another user's, a
 * symbolic link, a hard link, a FIFO, a directory) is refused, untouched.
 * NULL on failure, logged with the path and what is wrong. */
struct bus *bus_open(const char *dir, const char *name, size_t frame_bytes_max)
	__attribute__((warn_unused_result));
void bus_close(struct bus *bus);

const char *bus_name(const struct bus *bus);

/* 0 while the file at the bus's path is still the one mapped; -1 (logged)
 * when it was removed or replaced: this process then talks to a file no new
 * process will open, and must restart. */
int bus_check_file(const struct bus *bus) __attribute__((warn_unused_result));
size_t bus_frame_bytes_max(const struct bus *bus);

/* Producer election.  Blocks until this process holds the stream's lock
 * (returns 0), or fails (-1, logged), or a signal interrupts the wait while
 * *cancel is set (-1, not logged).  The lock lasts until bus_close or
 * process exit, which is how a dead producer hands over. */
int bus_lock_producer(struct bus *bus, const _Atomic int *cancel)
	__attribute__((warn_unused_result));

/* Producer: publish one complete JPEG.  -1 if it does not fit in a slot. */
int bus_publish(struct bus *bus, const void *jpeg, size_t bytes,
		uint32_t width, uint32_t height, int64_t publish_usec,
		int64_t encode_usec) __attribute__((warn_unused_result));

/* Any process, any thread: publish one frame to a stream that has no
 * producer (ingest), taking the file's lock for just this frame.  Waits
 * for the lock at most BUS_PUBLISH_WAIT_USEC, and stops waiting when
 * *cancel (may be NULL) is set.  Returns one of: */
#define BUS_PUBLISHED 0
#define BUS_PUBLISH_ERROR (-1)     /* too large, or the layout changed: logged */
#define BUS_PUBLISH_BUSY (-2)      /* another writer (a producer) kept the lock */
#define BUS_PUBLISH_CANCELLED (-3) /* *cancel was set: nothing published */
#define BUS_PUBLISH_WAIT_USEC (2 * 1000 * 1000LL)
int bus_publish_shared(struct bus *bus, const void *jpeg, size_t bytes, uint32_t width,
		       uint32_t height, int64_t publish_usec, int64_t encode_usec,
		       const _Atomic int *cancel) __attribute__((warn_unused_result));

/* Sequence number of the newest frame, 0 if none yet. */
uint64_t bus_latest(const struct bus *bus);

/* Copies the newest frame into frame (whose jpeg/capacity the caller set).
 * 1: a frame was copied; 0: none published yet; -1: the frame does not fit
 * a fixed buffer, memory ran out, or the layout is broken (logged). */
int bus_read_latest(struct bus *bus, struct bus_frame *frame)
	__attribute__((warn_unused_result));

/* Blocks until a frame newer than seq is published, timeout_usec passes
 * (returns 0) or bus_wake_all is called (returns 0 too).  1: newer frame. */
int bus_wait_newer(struct bus *bus, uint64_t seq, int64_t timeout_usec);

/* Wakes every thread in bus_wait_newer, e.g. on shutdown. */
void bus_wake_all(struct bus *bus);

/* Viewers: "someone is watching".  Keeps the producer running and wakes it
 * when it paused for lack of viewers. */
void bus_demand(struct bus *bus);

/* Producer: returns at once while demand was seen within idle_usec; else
 * marks the producer paused and sleeps until demand arrives or
 * timeout_usec passes.  1: demand is current; 0: still idle. */
int bus_wait_demand(struct bus *bus, int64_t idle_usec, int64_t timeout_usec);

/* Viewers are counted per process, in a slot of the file that the process
 * claims at its first viewer: the viewers of a process that died (SIGKILL,
 * a crash) stop counting as soon as it is gone.  Beyond BUS_VIEWER_SLOTS
 * live processes, viewers go to one shared count, which a process that dies
 * leaves behind.  Call leave from the process that called enter. */
#define BUS_VIEWER_SLOTS 256
void bus_viewer_enter(struct bus *bus);
void bus_viewer_leave(struct bus *bus);
/* frames parts of bytes in all went out; skipped newer frames were not
 * sent to slow viewers.  Writer threads add up many parts per call. */
void bus_count_delivered(struct bus *bus, uint64_t frames, uint64_t bytes, uint64_t skipped);

void bus_stats(const struct bus *bus, struct bus_stats *stats);

/* The state of a stream's upstream (an http: camera, an exec: command), as
 * /status shows it.  Written by the producer, read by any process. */
enum bus_upstream_state {
	BUS_UPSTREAM_IDLE,       /* not connected: nobody watches (or never ran) */
	BUS_UPSTREAM_CONNECTING, /* first attempt under way */
	BUS_UPSTREAM_CONNECTED,  /* frames flow (or may: connected, running) */
	BUS_UPSTREAM_AWAY,       /* lost or refused: retrying with back-off */
};
#define BUS_UPSTREAM_ERROR_MAX 256
struct bus_upstream {
	uint32_t state;       /* enum bus_upstream_state */
	uint32_t reserved;
	int64_t since_usec;   /* wall clock: when state last changed, 0: never */
	uint64_t reconnects;  /* connections (or starts) after the first */
	char last_error[BUS_UPSTREAM_ERROR_MAX]; /* the latest failure, "" none */
};

/* Producer: stores the upstream's state (a seqlock: readers never see half
 * of it). */
void bus_set_upstream(struct bus *bus, const struct bus_upstream *upstream);
/* Any thread: a consistent copy of the upstream's state. */
void bus_upstream(const struct bus *bus, struct bus_upstream *upstream);

#endif
