/* bus_layout: the frame bus's file layout and the struct bus that maps it,
 * shared by the two halves of the bus: bus_file.c (opening, checking and
 * closing the file) and bus.c (the frame ring, its seqlock and futexes,
 * demand, viewer counts).  Private to them: nothing else includes it. */
#ifndef MJPEG_BUS_LAYOUT_H
#define MJPEG_BUS_LAYOUT_H

#include "bus.h"
#include "clock.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

/* The file layout.  Everything in it is shared between processes; the
 * producer (flock holder) writes frames and most counters, viewers in any
 * process write the viewer, demand and delivery counters.  Changing any of
 * these structs means bumping BUS_VERSION. */

#define BUS_HEADER_BYTES 4096u
#define BUS_FILE_MODE 0600 /* the only mode a stream file may have */
#define BUS_ALIGN 64u

struct bus_slot {
	/* Seqlock word: 0 while the producer writes the slot, else the
	 * sequence number of the complete frame in it. */
	_Atomic uint64_t seq;
	uint64_t bytes;
	int64_t publish_usec;
	uint32_t width, height;
	unsigned char pad[BUS_ALIGN - 32];
};

/* One process's viewers of the stream (see bus_viewer_enter). */
struct bus_viewer_slot {
	_Atomic int32_t pid;      /* 0: free; a dead process's slot is free too */
	_Atomic uint32_t viewers;
};

struct bus_header {
	_Atomic uint32_t magic; /* stored last, with release, by the producer */
	uint32_t version;
	uint32_t slot_count;
	uint32_t reserved;
	uint64_t slot_bytes;    /* JPEG capacity of each slot */

	_Atomic uint64_t latest_seq;      /* newest complete frame, 0: none */
	_Atomic uint32_t wake_word;       /* futex: bumped after each publish */
	_Atomic uint32_t waiters;         /* viewers sleeping on wake_word */
	_Atomic uint32_t demand_word;     /* futex: bumped to wake a paused producer */
	_Atomic uint32_t producer_paused; /* 1 while the producer sleeps for lack of viewers */
	_Atomic int64_t demand_usec;      /* monotonic time a viewer last wanted frames */
	_Atomic int32_t producer_pid;
	_Atomic uint32_t viewers_shared;  /* of processes that found no slot */

	_Atomic uint64_t frames_published;
	_Atomic uint64_t frames_encoded;
	_Atomic uint64_t frames_delivered;
	_Atomic uint64_t frames_dropped;
	_Atomic uint64_t bytes_sent;
	_Atomic uint64_t encode_usec_total;
	_Atomic uint64_t encode_hist[BUS_ENCODE_BUCKETS];
	_Atomic int64_t last_publish_usec;
	_Atomic uint32_t width, height;
	/* Seqlock word of upstream: odd while the producer rewrites it. */
	_Atomic uint32_t upstream_seq;
	uint32_t reserved2;
	struct bus_upstream upstream;
	struct bus_viewer_slot viewer_slots[BUS_VIEWER_SLOTS];
};

_Static_assert(sizeof(struct bus_header) <= BUS_HEADER_BYTES, "bus header too large");
_Static_assert(sizeof(struct bus_slot) == BUS_ALIGN, "bus slot header size");

struct bus {
	char name[72];
	char path[PATH_MAX];
	int fd;
	size_t frame_bytes_max;
	size_t slot_stride;
	size_t map_bytes;
	unsigned char *map;
	struct bus_header *hdr;
	/* Ingest: serialises this process's publishing threads; flock alone
	 * does not, as they share one open file description. */
	pthread_mutex_t publish_lock;
	/* This process's viewer slot: an index into viewer_slots,
	 * VIEWERS_SHARED when none was free, or VIEWERS_UNCLAIMED; valid for
	 * slot_pid only (a forked child claims its own).  viewer_lock. */
	pthread_mutex_t viewer_lock;
	int viewer_slot;
	pid_t slot_pid;
};

#define VIEWERS_UNCLAIMED (-1)
#define VIEWERS_SHARED (-2)

/* Demand is refreshed at most this often per viewer: each refresh is a store
 * to a cache line shared by every viewer of the stream. */
#define DEMAND_REFRESH_USEC (100 * USEC_PER_MSEC)

#endif
