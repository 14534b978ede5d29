/* fanout_viewer: a stream viewer held by a writer thread (fanout.c): the
 * sink of the viewer engine (viewer.c) that writes non-blocking FastCGI
 * records.  The part in flight goes out from the writer's shared frame
 * copy (frame_cache.c) as far as the socket takes it, one sendmsg per
 * try; a viewer whose socket is full keeps its part and skips the frames
 * published meanwhile; one that takes no bytes for stall_ms is dropped.
 * An FCGI_ABORT_REQUEST ends it after the part in flight, with the end
 * records.
 *
 * Created by fanout_add in a request thread, then owned by one writer
 * thread. */
#ifndef MJPEG_FANOUT_VIEWER_H
#define MJPEG_FANOUT_VIEWER_H

#include "frame_cache.h"
#include "http.h"
#include "request_input.h"
#include "viewer.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

/* What a writer thread lends its viewers: fixed for the writer. */
struct fanout_env {
	int epoll_fd;              /* the writer's: its viewers' sockets */
	struct frame_cache *cache; /* the writer's frame copies */
	const struct settings *settings;
};

struct fanout_viewer {
	int fd, request_id;
	struct stream *stream;     /* a reference, released at the end */
	struct feed *feed;         /* its stream in the writer's cache */
	struct viewer engine;      /* what goes next, and when */
	struct frame_ref *held;    /* the frame last sent, or being sent */
	/* The part in flight: held's head and JPEG, then tail. */
	char tail[MULTIPART_BOUNDARY_LEN + 16];
	int tail_len;
	int busy;                  /* a part (or the end) is partly sent */
	size_t sent;               /* bytes of its records written */
	int writable;              /* no EAGAIN since the last EPOLLOUT */
	int want_out;              /* EPOLLOUT is in the watched events */
	int64_t progress_usec;     /* monotonic: when bytes last went out */
	struct request_input input; /* what the server sends: an abort? */
	int done;                  /* ended: to be freed at the end of the pass */
	struct fanout_viewer *next_new; /* the writer's inbox */
};

/* Events a viewer's connection is watched for: departure and input,
 * edge-triggered; EPOLLOUT only while a part waits for room.  (Watching it
 * always would wake the writer each time the web server reads a part.) */
#define FANOUT_VIEWER_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)

/* A viewer on connection fd (its response head with boundary sent).  NULL
 * if memory ran out (logged). */
struct fanout_viewer *fanout_viewer_new(int fd, int request_id, struct stream *stream,
					const struct settings *settings,
					const struct query *query, const char *boundary);

/* Notes an epoll event of the viewer's connection. */
void fanout_viewer_event(struct fanout_viewer *v, uint32_t events);

/* Takes the viewer's next step: more of the part in flight, a new part, or
 * the end (v->done). */
void fanout_viewer_step(struct fanout_viewer *v, const struct fanout_env *env, int64_t now_usec);

/* Lowers *wake_usec to when the viewer wants its next step at the latest:
 * its stall deadline while a part waits for room, else its next repeat or
 * paced part.  A new frame or a socket event wakes the writer anyway. */
void fanout_viewer_schedule(const struct fanout_viewer *v, const struct fanout_env *env,
			    int64_t now_usec, int64_t *wake_usec);

#endif
