/* cgi: plain CGI mode, for shared hosting where no daemon may run.  The web
 * server starts the binary once per request with the request in the
 * environment, the body on stdin and the answer expected on stdout; every
 * viewer is its own process, and all of them share each stream's producer
 * through the frame bus (the first process to serve a stream produces it;
 * when it exits, a waiting one takes over).
 *
 * The request is served by the same code as under FastCGI: stdin and
 * stdout are wrapped in libfcgi stream objects. */
#ifndef MJPEG_CGI_H
#define MJPEG_CGI_H

#include "config.h"

#include <fcgiapp.h>
#include <stdint.h>

/* 1 when this process was started as a CGI program: standard input is not
 * a socket and GATEWAY_INTERFACE is set. */
int cgi_detect(void);

/* The config file a CGI program reads when none was named: $MJPEG_FCGI_CONFIG,
 * else mjpeg-fcgi.ini beside the script (SCRIPT_FILENAME).  Fills path
 * (size bytes) and returns 1 if such a file exists. */
int cgi_default_config(char *path, size_t size);

/* Moves the deadline of cgi_serve's request body reader (in: its req->in)
 * to at_usec (clock_mono_usec): a push ingest renews it after each frame,
 * so ingest_ms bounds a stall, not the whole body.  Only for the stream
 * cgi_serve made (a request whose ipcFd is -1). */
void cgi_input_deadline(FCGX_Stream *in, int64_t at_usec);

/* Serves the one request; returns the exit status.  A stream request
 * served from a config file also watches the file (a CGI program gets no
 * SIGHUP): when its stream's view_secret changes there, the stream ends
 * with its closing boundary. */
int cgi_serve(const struct settings *settings);

#endif
