/* ingest: POST ingest/NAME publishes one frame to a stream whose source is
 * "ingest": a JPEG body (passed through once validated) or raw pixels
 * (?format=rgb24&width=W&height=H, encoded here).  Needs the stream's token
 * as "Authorization: Bearer TOKEN".  A rejected frame changes nothing: the
 * previous frame stays on the stream. */
#ifndef MJPEG_INGEST_H
#define MJPEG_INGEST_H

#include "deadline.h"
#include "http.h"
#include "stream.h"

#include <fcgiapp.h>

/* Answers the request: 200 on success, else 400/401/403/408/409/413/415/503
 * with a one-line reason.  The body must arrive whole within ingest_ms:
 * watchdog enforces it on a FastCGI connection (NULL under plain CGI, whose
 * reader keeps the deadline itself).
 *
 * A push: a body with no length (chunked) or a multipart one is read as it
 * arrives and each frame published when
 * whole: multipart parts or concatenated JPEGs, told apart by the bytes
 * (mjpeg_reader), so a Content-Type is not needed.  Each frame must be
 * whole within ingest_ms of the one before (a stall ends the push: 408); a
 * bad frame is dropped and counted (drops.c), the push goes on.  One push
 * per stream at a time over every process (a lock file beside the bus):
 * another POST to the stream meanwhile gets 409, as does a push while a
 * one-frame POST is being read.  The token is checked before any body byte
 * is read. */
void ingest_handle(FCGX_Request *req, struct stream *stream, const struct query *query,
		   struct deadlines *watchdog);

/* Compares a presented Authorization header value with "Bearer TOKEN" (the
 * scheme in any case) in time that does not depend on where they differ.
 * 1 if equal. */
int ingest_token_matches(const char *authorization, const char *token);

#endif
