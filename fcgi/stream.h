/* stream: the named streams of this process, each a frame bus plus the
 * producer thread started the first time a request wants the stream.
 *
 * A stream is reference-counted: the set that lists it holds one
 * reference, and every request using it holds one.  On a config reload
 * (SIGHUP) a stream whose settings did not change moves to the new set
 * as it is, viewers and all; one that was removed or changed is retired:
 * its viewers end their responses and the last one to leave frees it. */
#ifndef MJPEG_STREAM_H
#define MJPEG_STREAM_H

#include "bus.h"
#include "config.h"
#include "producer.h"

#include <pthread.h>
#include <stdatomic.h>

struct stream {
	struct stream_settings cfg_copy; /* owned: outlives any reload */
	const struct stream_settings *cfg; /* points to cfg_copy */
	const struct settings *settings; /* server-wide: fixed for the process */
	struct bus *bus;
	pthread_mutex_t producer_lock; /* guards producer */
	struct producer *producer;     /* NULL until first wanted */
	_Atomic int refs;              /* the set's and the requests' */
	_Atomic int retired;           /* set once, by a reload: viewers end */
	/* Viewers of this stream in this process (the bus counts all
	 * processes'): /status leaves a private stream's out of the process
	 * total.  Changed by the request threads and writer threads that
	 * admit and end viewers; read by status. */
	_Atomic int viewers_here;
};

struct stream_set {
	size_t count;
	struct stream **streams;
};

/* Opens every configured stream's bus.  -1 on failure (logged); the set is
 * then empty. */
int streams_open(struct stream_set *set, const struct settings *settings)
	__attribute__((warn_unused_result));
/* Drops the set's reference to each stream. */
void streams_close(struct stream_set *set);

/* Builds next from new_settings, moving every stream of old whose settings
 * are unchanged and opening the others; the streams of old that were not
 * moved are retired.  On failure (logged) returns -1 and changes nothing.
 * Either way old is left empty on success. */
int streams_reload(struct stream_set *old, struct stream_set *next,
		   const struct settings *settings, const struct settings *new_settings)
	__attribute__((warn_unused_result));

/* Finds a stream and takes a reference to it (NULL if there is none). */
struct stream *streams_get(const struct stream_set *set, const char *name);
/* Takes one more reference to a stream the caller holds one of; returns
 * it.  Every reference is given back with stream_release: refs changes
 * only here. */
struct stream *stream_ref(struct stream *stream);
void stream_release(struct stream *stream);

/* A request wants this stream's frames: keeps its producer running,
 * starting this process's producer thread the first time. */
void stream_want(struct stream *stream);

/* Wakes every viewer waiting for frames (shutdown). */
void streams_wake_all(const struct stream_set *set);

#endif
