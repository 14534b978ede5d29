"""FCGI_ABORT_REQUEST ends a stream (FastCGI 1.0, 5.4: the application
answers it with FCGI_END_REQUEST as soon as possible).

nginx, lighttpd and Apache close the connection when a client leaves and
never send FCGI_ABORT_REQUEST (their sources define it and do not use it),
so this test speaks FastCGI to the responder itself, over its own unix
socket, as a web server that aborts would. Both engines are covered: a
request without FCGI_KEEP_CONN goes to the writer threads, one with it stays
in the request's own thread (viewer_stream). Every read has a timeout.
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

import mjpeg
from stacks import TOP

BIN = os.environ.get("RESPONDER") or os.path.join(TOP, "fcgi", "mjpeg-fcgi")
TIMEOUT = 5.0                 # every socket operation
TEST_TIME_LIMIT = 30
# How soon after the abort FCGI_END_REQUEST must come: the part in flight
# (a 640x480 bars frame, tens of KB over a unix socket) and at most one
# pacing step of the request's own thread (100 ms), with room for a slow
# or sanitized build. Without the fix it never comes (the stream goes on).
END_AFTER_ABORT = 1.5
INGEST_MS = 1000              # the responder's ingest_ms here

BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 2, 3, 4, 5, 6
RESPONDER, KEEP_CONN = 1, 1
REQUEST_COMPLETE = 0


class TimeLimitExceeded(Exception):
    pass


@pytest.fixture(autouse=True)
def time_limit():
    def expired(signum, frame):
        raise TimeLimitExceeded("test ran over %d s" % TEST_TIME_LIMIT)

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIME_LIMIT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def responder():
    """mjpeg-fcgi on a unix socket of its own (default streams); yields the
    socket path."""
    base = "/tmp/mjpeg-abort-%d" % os.getpid()
    os.makedirs(base, exist_ok=True)
    sock = os.path.join(base, "s.sock")
    log = open(os.path.join(base, "log"), "wb")
    proc = subprocess.Popen([BIN, "--listen", "unix:" + sock, "--bus-dir", base + "-bus",
                             "--ingest-ms", str(INGEST_MS)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not os.path.exists(sock):
            assert proc.poll() is None, "the responder exited"
            assert time.monotonic() < deadline, "the responder made no socket"
            time.sleep(0.05)
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(base + "-bus", ignore_errors=True)


def record(kind, rid, content=b""):
    return struct.pack("!BBHHBx", 1, kind, rid, len(content), 0) + content


def params_of(uri):
    path, _, query = uri.partition("?")
    env = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "SCRIPT_NAME": path,
           "QUERY_STRING": query, "REQUEST_URI": uri, "SERVER_PROTOCOL": "HTTP/1.1",
           "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost", "SERVER_PORT": "80"}

    def length(n):
        return bytes([n]) if n < 128 else struct.pack("!I", n | 0x80000000)

    return b"".join(length(len(k)) + length(len(v)) + k + v
                    for k, v in ((k.encode(), v.encode()) for k, v in env.items()))


class Connection:
    """The web server's end of one FastCGI connection."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.buf = b""
        self.stdout = b""

    def send(self, data):
        self.sock.sendall(data)

    def next_record(self):
        """(type, request id, content); None at the end of the connection."""
        while True:
            if len(self.buf) >= 8:
                _, kind, rid, clen, plen = struct.unpack("!BBHHBx", self.buf[:8])
                if len(self.buf) >= 8 + clen + plen:
                    content = self.buf[8:8 + clen]
                    self.buf = self.buf[8 + clen + plen:]
                    return kind, rid, content
            data = self.sock.recv(65536)
            if not data:
                assert not self.buf, "connection ended inside a record"
                return None
            self.buf += data

    def read_parts(self, rid, count):
        """Reads STDOUT records until the response head and count parts are
        in; returns the boundary."""
        while True:
            kind, got, content = self.next_record()
            assert (kind, got) == (STDOUT, rid), (kind, got, content[:80])
            self.stdout += content
            head, sep, body = self.stdout.partition(b"\r\n\r\n")
            if not sep:
                continue
            ctype = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-type:")][0].decode()
            boundary = mjpeg.boundary_of(ctype)
            if body.count(b"\r\n--" + boundary.encode() + b"\r\n") >= count:
                return boundary

    def read_to_end(self, rid, deadline):
        """STDOUT records, the empty one, then FCGI_END_REQUEST (checked)
        by time.monotonic() deadline; returns the stdout bytes that came
        meanwhile."""
        stdout_ended = False
        before = len(self.stdout)
        while True:
            assert time.monotonic() < deadline, (
                "no FCGI_END_REQUEST in time; %d bytes of stdout came meanwhile"
                % (len(self.stdout) - before))
            rec = self.next_record()
            assert rec is not None, "connection closed without FCGI_END_REQUEST"
            kind, got, content = rec
            assert got == rid, rec[:2]
            if kind == STDOUT and content:
                assert not stdout_ended, "stdout after its end"
                self.stdout += content
            elif kind == STDOUT:
                stdout_ended = True
            else:
                assert kind == END_REQUEST, kind
                assert stdout_ended, "FCGI_END_REQUEST before the end of stdout"
                app_status, protocol_status = struct.unpack("!IB3x", content)
                assert protocol_status == REQUEST_COMPLETE, protocol_status
                return len(self.stdout) - before

    def close(self):
        self.sock.close()


def begin(conn, rid, uri, flags, stdin_end=True):
    conn.send(record(BEGIN_REQUEST, rid, struct.pack("!HB5x", RESPONDER, flags))
              + record(PARAMS, rid, params_of(uri)) + record(PARAMS, rid)
              + (record(STDIN, rid) if stdin_end else b""))


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
