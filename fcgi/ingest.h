/* ingest: POST ingest/NAME publishes one frame to a stream whose source is
 * "ingest": a JPEG body (passed through once validated) or raw pixels
 * (?format=rgb24&width=W&height=H, encoded here).  Needs the stream's token
 * as "Authorization: Bearer TOKEN".  A rejected frame changes nothing: the
 * previous frame stays on the stream. */
#ifndef MJPEG_INGEST_H
#define MJPEG_INGEST_H

#include "http.h"
#include "stream.h"

#include <fcgiapp.h>

/* Answers the request: 200 on success, else 400/401/403/411/413/415 with a
 * one-line reason. */
void ingest_handle(FCGX_Request *req, struct stream *stream, const struct query *query);

/* Compares a presented Authorization header value with "Bearer TOKEN" in
 * time that does not depend on where they differ.  1 if equal. */
int ingest_token_matches(const char *authorization, const char *token);

#endif
