"""FCGI_ABORT_REQUEST ends a stream (FastCGI 1.0, 5.4: the application
answers it with FCGI_END_REQUEST as soon as possible).

nginx, lighttpd and Apache close the connection when a client leaves and
never send FCGI_ABORT_REQUEST (their sources define it and do not use it),
so this test speaks FastCGI to the responder itself, over its own unix
socket, as a web server that aborts would. Both sinks are covered: a
request without FCGI_KEEP_CONN goes to the writer threads, one with it stays
in the request's own thread (viewer_blocking_serve). Every read has a timeout.
"""

import time

import pytest

import mjpeg
from fcgiwire import (ABORT_REQUEST, KEEP_CONN, STDIN, STDOUT, Connection, begin,
                      own_responder, record)
from stacks import time_limit as limit

TEST_TIME_LIMIT = 30
# How soon after the abort FCGI_END_REQUEST must come: the part in flight
# (a 640x480 bars frame, tens of KB over a unix socket) and at most one
# pacing step of the request's own thread (100 ms), with room for a slow
# or sanitized build. Without the fix it never comes (the stream goes on).
END_AFTER_ABORT = 1.5
INGEST_MS = 1000              # the responder's ingest_ms here


@pytest.fixture(autouse=True)
def time_limit():
    with limit(TEST_TIME_LIMIT):
        yield


@pytest.fixture
def responder():
    """mjpeg-fcgi on a unix socket of its own (default streams); yields the
    socket path."""
    with own_responder("--ingest-ms", str(INGEST_MS)) as r:
        yield r.socket


def send_buffer_bytes():
    """A unix socket's default send buffer: what the responder can have
    sent that this end did not read yet."""
    with open("/proc/sys/net/core/wmem_default") as f:
        return int(f.read())


def assert_whole_parts(stdout, boundary):
    """The stream data ends right after a whole part (the part in flight was
    finished), with no closing boundary: every part parses strictly."""
    head, _, body = stdout.partition(b"\r\n\r\n")
    tail = b"\r\n--" + boundary.encode() + b"\r\n"
    assert body.endswith(tail), body[-80:]
    closed = body[:-len(tail)] + b"\r\n--" + boundary.encode() + b"--\r\n"
    reader = mjpeg.from_bytes(closed, boundary)
    parts = list(reader)
    reader.finish()
    for p in parts:
        mjpeg.decode_jpeg(p.body)
    return parts


@pytest.mark.parametrize("flags", [0, KEEP_CONN], ids=["writer-threads", "keep-conn"])
def test_abort_ends_the_stream(responder, flags):
    """After three parts the server aborts: the response ends within
    END_AFTER_ABORT with the part in flight whole, the empty stdout record
    and FCGI_END_REQUEST; without FCGI_KEEP_CONN the connection is closed."""
    conn = Connection(responder)
    try:
        begin(conn, 1, "/stream/bars", flags)
        boundary = conn.read_parts(1, 3)
        conn.send(record(ABORT_REQUEST, 1))
        after = conn.read_to_end(1, time.monotonic() + END_AFTER_ABORT)
        parts = assert_whole_parts(conn.stdout, boundary)
        assert len(parts) >= 3
        # What was sent before the abort was read (at most a unix socket's
        # send buffer), then the part in flight; not the stream going on.
        largest = max(len(p.body) for p in parts) + 256
        assert after <= send_buffer_bytes() + largest, (after, largest)
        if not flags:
            assert conn.next_record() is None, "the connection stayed open"
    finally:
        conn.close()


def test_abort_before_the_body_ended(responder):
    """An abort that comes where the empty FCGI_STDIN record was expected
    (libfcgi reads it as the request's input failing) ends the request
    too, instead of handing it to the writer threads."""
    conn = Connection(responder)
    try:
        begin(conn, 1, "/stream/bars", 0, stdin_end=False)
        conn.send(record(ABORT_REQUEST, 1))
        conn.read_to_end(1, time.monotonic() + END_AFTER_ABORT)
    finally:
        conn.close()


def test_other_records_do_not_end_the_stream(responder):
    """An abort of another request id and stdin content after the request
    are not an abort of this one: parts keep coming."""
    conn = Connection(responder)
    try:
        begin(conn, 1, "/stream/bars", 0)
        conn.read_parts(1, 1)
        conn.send(record(ABORT_REQUEST, 2) + record(STDIN, 1, record(ABORT_REQUEST, 1)))
        before = len(conn.stdout)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            kind, rid, content = conn.next_record()
            assert (kind, rid) == (STDOUT, 1) and content, (kind, rid)
            conn.stdout += content
        assert len(conn.stdout) > before
    finally:
        conn.close()


@pytest.mark.parametrize("flags", [0, KEEP_CONN], ids=["writer-threads", "keep-conn"])
def test_stream_body_that_never_ends(responder, flags):
    """A stream request has no body; one that starts and never ends is read
    for ingest_ms at most, then the request ends and the connection is
    closed (its input is not at a record boundary any more)."""
    conn = Connection(responder)
    try:
        begin(conn, 1, "/stream/bars", flags, stdin_end=False)
        conn.send(record(STDIN, 1, b"x"))
        conn.read_to_end(1, time.monotonic() + INGEST_MS / 1000 + END_AFTER_ABORT)
        assert conn.next_record() is None, "the connection stayed open"
    finally:
        conn.close()
