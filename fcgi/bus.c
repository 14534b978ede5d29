/* bus: the frame bus's ring of frame slots in the mapped file: publishing
 * (seqlock per slot), reading the newest frame, waiting for one (futex),
 * demand that wakes a paused producer, per-process viewer counts and the
 * delivery counters.  The file itself (opening, checks, mapping) is
 * bus_file.c's; the layout both share is bus_layout.h. */
#include "bus_layout.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <signal.h>
#include <unistd.h>

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *timeout)
{
	return syscall(SYS_futex, (uint32_t *)word, op, val, timeout, NULL, 0);
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_usec)
{
	struct timespec ts;

	if (timeout_usec <= 0)
		return;
	ts = clock_timespec(timeout_usec);
	/* Shared (not FUTEX_PRIVATE): the word lives in a file mapped by
	 * several processes.  EAGAIN, EINTR and ETIMEDOUT all mean "look
	 * again", which every caller does. */
	futex(word, FUTEX_WAIT, expected, &ts);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
	futex(word, FUTEX_WAKE, INT_MAX, NULL);
}

static struct bus_slot *slot_at(const struct bus *bus, uint64_t seq)
{
	size_t index = (size_t)(seq % BUS_SLOTS);

	return (struct bus_slot *)(bus->map + BUS_HEADER_BYTES + index * bus->slot_stride);
}

static unsigned char *slot_data(struct bus_slot *slot)
{
	return (unsigned char *)(slot + 1);
}

static int bus_ready(const struct bus *bus)
{
	return atomic_load_explicit(&bus->hdr->magic, memory_order_acquire) == BUS_MAGIC;
}

/* Called by the writer holding the file's flock: initialises a new file
 * and records who writes.  -1 if the layout changed under us. */
static int writer_init(struct bus *bus)
{
	struct bus_header *hdr = bus->hdr;

	if (!bus_ready(bus)) {
		/* First writer of a new file: nobody reads the fields below
		 * before magic is stored with release. */
		hdr->version = BUS_VERSION;
		hdr->slot_count = BUS_SLOTS;
		hdr->slot_bytes = bus->frame_bytes_max;
		atomic_store_explicit(&hdr->magic, BUS_MAGIC, memory_order_release);
	} else if (hdr->slot_bytes != bus->frame_bytes_max) {
		log_error("bus: %s changed layout under this process", bus->path);
		return -1;
	}
	atomic_store(&hdr->producer_pid, (int32_t)getpid());
	return 0;
}

int bus_lock_producer(struct bus *bus, const _Atomic int *cancel)
{
	struct bus_header *hdr = bus->hdr;

	while (flock(bus->fd, LOCK_EX) < 0) {
		if (errno == EINTR && atomic_load(cancel))
			return -1;
		if (errno != EINTR) {
			log_error("bus: flock(%s): %s", bus->path, strerror(errno));
			return -1;
		}
	}
	if (writer_init(bus) < 0)
		return -1;
	atomic_store(&hdr->producer_paused, 0);
	return 0;
}

/* How often bus_publish_shared tries the lock again while another writer
 * holds it: ingest publishers hold it for one memcpy of a frame. */
#define PUBLISH_RETRY_USEC (1 * USEC_PER_MSEC)

int bus_publish_shared(struct bus *bus, const void *jpeg, size_t bytes, uint32_t width,
		       uint32_t height, int64_t publish_usec, int64_t encode_usec,
		       const _Atomic int *cancel)
{
	int64_t deadline;
	int rc = BUS_PUBLISH_ERROR;

	CHECK_ZERO(pthread_mutex_lock(&bus->publish_lock));
	/* Never a blocking flock: a producer that holds the lock keeps it
	 * for as long as it runs (the stream became another kind in a
	 * reload, or another process of the stack has another config). */
	deadline = clock_mono_usec() + BUS_PUBLISH_WAIT_USEC;
	while (flock(bus->fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			log_error("bus: flock(%s): %s", bus->path, strerror(errno));
			goto out;
		}
		if (cancel && atomic_load(cancel)) {
			rc = BUS_PUBLISH_CANCELLED;
			goto out;
		}
		if (clock_mono_usec() >= deadline) {
			rc = BUS_PUBLISH_BUSY;
			goto out;
		}
		clock_sleep_usec(PUBLISH_RETRY_USEC);
	}
	if (cancel && atomic_load(cancel))
		rc = BUS_PUBLISH_CANCELLED;
	else if (writer_init(bus) == 0 &&
		 bus_publish(bus, jpeg, bytes, width, height, publish_usec, encode_usec) == 0)
		rc = BUS_PUBLISHED;
	if (flock(bus->fd, LOCK_UN) < 0)
		FATAL("flock(%s, LOCK_UN): %s", bus->path, strerror(errno));
out:
	CHECK_ZERO(pthread_mutex_unlock(&bus->publish_lock));
	return rc;
}

int bus_publish(struct bus *bus, const void *jpeg, size_t bytes, uint32_t width,
		uint32_t height, int64_t publish_usec, int64_t encode_usec)
{
	struct bus_header *hdr = bus->hdr;
	struct bus_slot *slot;
	uint64_t seq;

	if (bytes == 0 || bytes > bus->frame_bytes_max) {
		log_warn("bus: %s: frame of %zu bytes outside 1..frame_bytes_max (%zu), dropped",
			 bus->name, bytes, bus->frame_bytes_max);
		return -1;
	}
	/* Only the producer stores latest_seq, so relaxed is enough here. */
	seq = atomic_load_explicit(&hdr->latest_seq, memory_order_relaxed) + 1;
	slot = slot_at(bus, seq);

	/* Seqlock write: mark the slot busy, and order that mark before the
	 * data stores (release fence), so a reader that sees new data also
	 * sees the mark when it re-checks. */
	atomic_store_explicit(&slot->seq, 0, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memcpy(slot_data(slot), jpeg, bytes);
	slot->bytes = bytes;
	slot->publish_usec = publish_usec;
	slot->width = width;
	slot->height = height;
	atomic_store_explicit(&slot->seq, seq, memory_order_release);

	atomic_store(&hdr->width, width);
	atomic_store(&hdr->height, height);
	atomic_store(&hdr->last_publish_usec, publish_usec);
	atomic_fetch_add_explicit(&hdr->frames_published, 1, memory_order_relaxed);
	if (encode_usec >= 0) {
		static const int64_t bounds[] = BUS_ENCODE_BOUNDS_USEC;
		size_t bucket = 0;

		while (bucket < sizeof(bounds) / sizeof(bounds[0]) && encode_usec > bounds[bucket])
			bucket++;
		atomic_fetch_add_explicit(&hdr->frames_encoded, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&hdr->encode_usec_total, (uint64_t)encode_usec,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&hdr->encode_hist[bucket], 1, memory_order_relaxed);
	}

	/* seq_cst: pairs with bus_wait_newer's waiters increment, so that
	 * either we see a sleeper and wake it, or it sees the new frame. */
	atomic_store(&hdr->latest_seq, seq);
	atomic_fetch_add(&hdr->wake_word, 1);
	if (atomic_load(&hdr->waiters) > 0)
		futex_wake_all(&hdr->wake_word);
	return 0;
}

uint64_t bus_latest(const struct bus *bus)
{
	if (!bus_ready(bus))
		return 0;
	return atomic_load_explicit(&bus->hdr->latest_seq, memory_order_acquire);
}

/* Room for a frame of bytes, with headroom so that frames of a slightly
 * varying size do not realloc every time. */
static int grow_frame(const struct bus *bus, struct bus_frame *frame, size_t bytes)
{
	size_t want = bytes + bytes / 4 + 4096;
	unsigned char *grown;

	if (want > bus->frame_bytes_max)
		want = bus->frame_bytes_max;
	grown = realloc(frame->jpeg, want);
	if (!grown) {
		log_error("bus: %s: realloc(%zu) for a frame failed", bus->name, want);
		return -1;
	}
	frame->jpeg = grown;
	frame->capacity = want;
	return 0;
}

int bus_read_latest(struct bus *bus, struct bus_frame *frame)
{
	struct bus_slot *slot;
	uint64_t seq, check;
	size_t bytes;
	int tries;

	/* A copy fails only when the producer laps the ring (BUS_SLOTS
	 * publishes) during one memcpy; a few tries always suffice in
	 * practice, and the bound keeps a broken file from spinning us. */
	for (tries = 0; tries < 64; tries++) {
		seq = bus_latest(bus);
		if (seq == 0)
			return 0;
		slot = slot_at(bus, seq);
		if (atomic_load_explicit(&slot->seq, memory_order_acquire) != seq)
			continue; /* being rewritten: a newer frame exists */
		bytes = slot->bytes;
		if (frame->growable && bytes > frame->capacity && bytes <= bus->frame_bytes_max &&
		    grow_frame(bus, frame, bytes) < 0)
			return -1;
		if (bytes == 0 || bytes > bus->frame_bytes_max || bytes > frame->capacity) {
			/* Torn metadata shows up here too; re-check first. */
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&slot->seq, memory_order_relaxed) != seq)
				continue;
			log_error("bus: %s: slot holds %zu bytes, buffer %zu", bus->name, bytes,
				  frame->capacity);
			return -1;
		}
		memcpy(frame->jpeg, slot_data(slot), bytes);
		frame->publish_usec = slot->publish_usec;
		frame->width = slot->width;
		frame->height = slot->height;
		/* Order the copy before the re-check of the seqlock word. */
		atomic_thread_fence(memory_order_acquire);
		check = atomic_load_explicit(&slot->seq, memory_order_relaxed);
		if (check != seq)
			continue; /* torn: the producer rewrote the slot meanwhile */
		frame->bytes = bytes;
		frame->seq = seq;
		return 1;
	}
	log_warn("bus: %s: no consistent frame after %d tries", bus->name, tries);
	return 0;
}

int bus_wait_newer(struct bus *bus, uint64_t seq, int64_t timeout_usec)
{
	struct bus_header *hdr = bus->hdr;
	uint32_t word;

	if (bus_latest(bus) > seq)
		return 1;
	atomic_fetch_add(&hdr->waiters, 1);
	word = atomic_load(&hdr->wake_word);
	if (bus_latest(bus) <= seq)
		futex_wait(&hdr->wake_word, word, timeout_usec);
	atomic_fetch_sub(&hdr->waiters, 1);
	return bus_latest(bus) > seq;
}

void bus_wake_all(struct bus *bus)
{
	atomic_fetch_add(&bus->hdr->wake_word, 1);
	futex_wake_all(&bus->hdr->wake_word);
}

void bus_demand(struct bus *bus)
{
	struct bus_header *hdr = bus->hdr;
	int64_t now = clock_mono_usec();

	if (now - atomic_load_explicit(&hdr->demand_usec, memory_order_relaxed) < DEMAND_REFRESH_USEC &&
	    !atomic_load(&hdr->producer_paused))
		return;
	/* seq_cst store then load, against the producer's store of
	 * producer_paused then load of demand_usec: one of us sees the
	 * other. */
	atomic_store(&hdr->demand_usec, now);
	if (atomic_load(&hdr->producer_paused)) {
		atomic_fetch_add(&hdr->demand_word, 1);
		futex_wake_all(&hdr->demand_word);
	}
}

int bus_wait_demand(struct bus *bus, int64_t idle_usec, int64_t timeout_usec)
{
	struct bus_header *hdr = bus->hdr;
	uint32_t word;
	int wanted;

	if (clock_mono_usec() - atomic_load(&hdr->demand_usec) < idle_usec)
		return 1;
	word = atomic_load(&hdr->demand_word);
	atomic_store(&hdr->producer_paused, 1);
	if (clock_mono_usec() - atomic_load(&hdr->demand_usec) >= idle_usec)
		futex_wait(&hdr->demand_word, word, timeout_usec);
	wanted = clock_mono_usec() - atomic_load(&hdr->demand_usec) < idle_usec;
	if (wanted)
		atomic_store(&hdr->producer_paused, 0);
	return wanted;
}

/* 1 while process pid exists (or may: another user's). */
static int process_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

/* This process's viewer count: its slot, claimed the first time (a free
 * slot, or one whose process died, whose count is then dropped), or the
 * shared count when every slot belongs to a live process.  Call with
 * viewer_lock held. */
static _Atomic uint32_t *viewer_count_locked(struct bus *bus)
{
	struct bus_header *hdr = bus->hdr;
	pid_t me = getpid();
	int i;

	if (bus->slot_pid != me) {
		bus->slot_pid = me;
		bus->viewer_slot = VIEWERS_UNCLAIMED;
	}
	for (i = 0; bus->viewer_slot == VIEWERS_UNCLAIMED && i < BUS_VIEWER_SLOTS; i++) {
		struct bus_viewer_slot *slot = &hdr->viewer_slots[i];
		int32_t pid = atomic_load(&slot->pid);

		if (pid != 0 && (pid == me || process_alive(pid)))
			continue;
		/* seq_cst: whoever wins the slot then resets its count. */
		if (atomic_compare_exchange_strong(&slot->pid, &pid, (int32_t)me)) {
			atomic_store(&slot->viewers, 0);
			bus->viewer_slot = i;
		}
	}
	if (bus->viewer_slot == VIEWERS_UNCLAIMED)
		bus->viewer_slot = VIEWERS_SHARED;
	if (bus->viewer_slot == VIEWERS_SHARED)
		return &hdr->viewers_shared;
	return &hdr->viewer_slots[bus->viewer_slot].viewers;
}

void bus_viewer_enter(struct bus *bus)
{
	CHECK_ZERO(pthread_mutex_lock(&bus->viewer_lock));
	atomic_fetch_add_explicit(viewer_count_locked(bus), 1, memory_order_relaxed);
	CHECK_ZERO(pthread_mutex_unlock(&bus->viewer_lock));
}

void bus_viewer_leave(struct bus *bus)
{
	CHECK_ZERO(pthread_mutex_lock(&bus->viewer_lock));
	atomic_fetch_sub_explicit(viewer_count_locked(bus), 1, memory_order_relaxed);
	CHECK_ZERO(pthread_mutex_unlock(&bus->viewer_lock));
}

/* The viewers of every live process, and the shared count. */
static uint32_t viewers_total(const struct bus *bus)
{
	const struct bus_header *hdr = bus->hdr;
	uint32_t total = atomic_load_explicit(&hdr->viewers_shared, memory_order_relaxed);
	pid_t me = getpid();

	for (int i = 0; i < BUS_VIEWER_SLOTS; i++) {
		const struct bus_viewer_slot *slot = &hdr->viewer_slots[i];
		int32_t pid = atomic_load_explicit(&slot->pid, memory_order_relaxed);
		uint32_t n = atomic_load_explicit(&slot->viewers, memory_order_relaxed);

		/* n above INT32_MAX is a count that went below 0 (a slot taken
		 * over from a process we could not see, in another pid
		 * namespace): ignored rather than read as four billion. */
		if (pid != 0 && n != 0 && n <= INT32_MAX && (pid == me || process_alive(pid)))
			total += n;
	}
	return total;
}

void bus_count_delivered(struct bus *bus, uint64_t frames, uint64_t bytes, uint64_t skipped)
{
	struct bus_header *hdr = bus->hdr;

	/* Counters only: no ordering with anything else is needed. */
	atomic_fetch_add_explicit(&hdr->frames_delivered, frames, memory_order_relaxed);
	atomic_fetch_add_explicit(&hdr->bytes_sent, bytes, memory_order_relaxed);
	if (skipped)
		atomic_fetch_add_explicit(&hdr->frames_dropped, skipped, memory_order_relaxed);
}

void bus_stats(const struct bus *bus, struct bus_stats *stats)
{
	struct bus_header *hdr = bus->hdr;

	stats->frames_published = atomic_load_explicit(&hdr->frames_published, memory_order_relaxed);
	stats->frames_encoded = atomic_load_explicit(&hdr->frames_encoded, memory_order_relaxed);
	stats->frames_delivered = atomic_load_explicit(&hdr->frames_delivered, memory_order_relaxed);
	stats->frames_dropped = atomic_load_explicit(&hdr->frames_dropped, memory_order_relaxed);
	stats->bytes_sent = atomic_load_explicit(&hdr->bytes_sent, memory_order_relaxed);
	stats->encode_usec_total = atomic_load_explicit(&hdr->encode_usec_total, memory_order_relaxed);
	for (size_t i = 0; i < BUS_ENCODE_BUCKETS; i++)
		stats->encode_hist[i] = atomic_load_explicit(&hdr->encode_hist[i], memory_order_relaxed);
	stats->viewers = viewers_total(bus);
	stats->producer_pid = atomic_load_explicit(&hdr->producer_pid, memory_order_relaxed);
	stats->width = atomic_load_explicit(&hdr->width, memory_order_relaxed);
	stats->height = atomic_load_explicit(&hdr->height, memory_order_relaxed);
	stats->last_publish_usec = atomic_load_explicit(&hdr->last_publish_usec, memory_order_relaxed);
}

void bus_set_upstream(struct bus *bus, const struct bus_upstream *upstream)
{
	struct bus_header *hdr = bus->hdr;
	uint32_t seq = atomic_load_explicit(&hdr->upstream_seq, memory_order_relaxed);

	/* Seqlock write, as a frame slot's: odd first, fenced before the
	 * data; even again, with release, after it. */
	atomic_store_explicit(&hdr->upstream_seq, seq | 1u, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memcpy(&hdr->upstream, upstream, sizeof(*upstream));
	hdr->upstream.last_error[BUS_UPSTREAM_ERROR_MAX - 1] = '\0';
	atomic_store_explicit(&hdr->upstream_seq, (seq | 1u) + 1u, memory_order_release);
}

void bus_upstream(const struct bus *bus, struct bus_upstream *upstream)
{
	struct bus_header *hdr = bus->hdr;
	int tries;

	/* The producer writes a few times per outage at most: a copy is torn
	 * only by a write during its memcpy, and the bound keeps a broken
	 * file from spinning us. */
	for (tries = 0; tries < 64; tries++) {
		uint32_t seq = atomic_load_explicit(&hdr->upstream_seq, memory_order_acquire);

		if (seq & 1u)
			continue;
		memcpy(upstream, &hdr->upstream, sizeof(*upstream));
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&hdr->upstream_seq, memory_order_relaxed) == seq)
			break;
	}
	upstream->last_error[BUS_UPSTREAM_ERROR_MAX - 1] = '\0';
	if (upstream->state > BUS_UPSTREAM_AWAY)
		upstream->state = BUS_UPSTREAM_IDLE; /* a broken file: say nothing wrong */
}
