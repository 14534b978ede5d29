"""A strict, incremental reader of multipart/x-mixed-replace (MJPEG over HTTP)
bodies, for the integration tests.

It checks the wire format of DESIGN.md ("Wire format") byte for byte instead
of guessing its way through like a tolerant client would:

    --B\\r\\n                              the very first body bytes
    Content-Type: image/jpeg\\r\\n          exactly one space after every colon
    Content-Length: N\\r\\n                 required, the exact body size
    X-Timestamp: 1767225600.123456\\r\\n    publish time (optional here)
    \\r\\n
    <N bytes>\\r\\n
    --B\\r\\n ... or, to end it, --B--\\r\\n and then the end of the data

Every line ends in CRLF (a bare CR or LF is an error), header lines stay
under 128 bytes (ffmpeg's mpjpeg demuxer reads lines into 128 bytes).

The reader pulls bytes through a `recv(n)` callable that returns at most n
bytes and b"" at the end of the data: `HTTPResponse.read1`, `socket.recv` or
`BytesIO.read` all fit (see the from_* helpers). Each Part records when it was
complete (time.monotonic()), so the tests can measure delays.
"""

import http.client
import io
import re
import socket
import threading
import time

from PIL import Image

CONTENT_TYPE_PREFIX = "multipart/x-mixed-replace;boundary="
# the whole Content-Type value: boundary of 16+ letters/digits, unquoted, last
CONTENT_TYPE_RE = re.compile(r"multipart/x-mixed-replace;boundary=([A-Za-z0-9]{16,})\Z")
HEADER_LINE_MAX = 127          # bytes before the CRLF
HEADER_RE = re.compile(rb"([A-Za-z0-9-]+): (\S(?:.*\S)?)\Z")
TIMESTAMP_RE = re.compile(r"[0-9]+\.[0-9]{6}\Z")   # seconds with microseconds
READ_SIZE = 65536


class ProtocolError(AssertionError):
    """The bytes on the wire break the agreed format (an AssertionError, so
    pytest reports it as a failed check with this message)."""


def boundary_of(content_type):
    """The boundary of a stream response's Content-Type, checked strictly."""
    m = CONTENT_TYPE_RE.match(content_type or "")
    if not m:
        raise ProtocolError("Content-Type %r is not %s<16+ letters/digits>"
                            % (content_type, CONTENT_TYPE_PREFIX))
    return m.group(1)


class Part:
    """One part: its header lines (in order), body and completion time."""

    def __init__(self, header_lines, headers, body, arrived):
        self.header_lines = header_lines   # raw bytes lines without CRLF
        self.headers = headers             # {lower-case name: str value}
        self.body = body
        self.arrived = arrived             # time.monotonic() when complete

    @property
    def timestamp(self):
        """X-Timestamp as float seconds (None when absent)."""
        value = self.headers.get("x-timestamp")
        return None if value is None else float(value)

    def __repr__(self):
        return "<Part %d bytes, headers %r>" % (len(self.body), self.headers)


class Reader:
    """Reads parts one by one: next_part() returns a Part, or None once the
    closing boundary came (after which finish() checks for the end of data)."""

    def __init__(self, recv, boundary, deadline=None, initial=b""):
        self._recv = recv
        if isinstance(boundary, bytes):
            boundary = boundary.decode("ascii")
        self.boundary = boundary
        self.delimiter = b"--" + boundary.encode("ascii")
        self.deadline = deadline           # time.monotonic() limit, or None
        self.buf = bytearray(initial)
        self.started = False
        self.closed = False                # closing boundary seen
        self.count = 0                     # parts read
        self.total = len(initial)          # bytes received in all

    # --- low level ----------------------------------------------------

    def _fill(self):
        """Appends more data; False at the end of the data."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimeoutError("multipart reader: deadline passed after %d parts, "
                               "%d bytes" % (self.count, self.total))
        data = self._recv(READ_SIZE)
        if not data:
            return False
        self.buf += data
        self.total += len(data)
        return True

    def _where(self):
        return "after %d parts (%d bytes in)" % (self.count, self.total - len(self.buf))

    def _read_exact(self, n, what):
        while len(self.buf) < n:
            if not self._fill():
                raise ProtocolError("data ended inside %s %s: wanted %d bytes, got %d: %r"
                                    % (what, self._where(), n, len(self.buf),
                                       bytes(self.buf[:80])))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _read_line(self, what, limit=HEADER_LINE_MAX):
        """One CRLF-terminated line without its CRLF."""
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                break
            if len(self.buf) > limit + 1:
                raise ProtocolError("%s %s longer than %d bytes: %r"
                                    % (what, self._where(), limit, bytes(self.buf[:200])))
            start = len(self.buf)
            if not self._fill():
                raise ProtocolError("data ended inside %s %s: %r"
                                    % (what, self._where(), bytes(self.buf[:200])))
        raw = bytes(self.buf[:i + 1])
        if i == 0 or raw[-2:] != b"\r\n":
            raise ProtocolError("%s %s ends in a bare LF, not CRLF: %r"
                                % (what, self._where(), raw[:200]))
        line = raw[:-2]
        if b"\r" in line:
            raise ProtocolError("%s %s holds a bare CR: %r" % (what, self._where(), raw[:200]))
        if len(line) > limit:
            raise ProtocolError("%s %s is %d bytes, over %d: %r"
                                % (what, self._where(), len(line), limit, raw[:200]))
        del self.buf[:i + 1]
        return line

    # --- parts --------------------------------------------------------

    def next_part(self):
        if self.closed:
            return None
        what = "the first boundary line (first body bytes)" if not self.started \
            else "the boundary line"
        line = self._read_line(what, limit=max(HEADER_LINE_MAX, len(self.delimiter) + 2))
        self.started = True
        if line == self.delimiter + b"--":
            self.closed = True
            return None
        if line != self.delimiter:
            raise ProtocolError("expected %r or the closing %r %s, got %r"
                                % (self.delimiter, self.delimiter + b"--", self._where(), line))

        header_lines, headers = [], {}
        while True:
            line = self._read_line("a part header line")
            if not line:
                break
            m = HEADER_RE.match(line)
            if not m:
                raise ProtocolError("part header line %r %s is not 'Name: value' with "
                                    "exactly one space after the colon" % (line, self._where()))
            name = m.group(1).decode("ascii").lower()
            if name in headers:
                raise ProtocolError("part header %r twice %s" % (name, self._where()))
            headers[name] = m.group(2).decode("latin-1")
            header_lines.append(line)

        if b"Content-Type: image/jpeg" not in header_lines:
            raise ProtocolError("part %s has no 'Content-Type: image/jpeg' line: %r"
                                % (self._where(), header_lines))
        length = headers.get("content-length")
        if length is None or not length.isdigit():
            raise ProtocolError("part %s has no valid Content-Length: %r"
                                % (self._where(), header_lines))
        if "x-timestamp" in headers and not TIMESTAMP_RE.match(headers["x-timestamp"]):
            raise ProtocolError("X-Timestamp %r %s is not seconds with microseconds"
                                % (headers["x-timestamp"], self._where()))
        body = self._read_exact(int(length), "a part body (Content-Length %s)" % length)
        arrived = time.monotonic()
        tail = self._read_exact(2, "the CRLF after a part body")
        if tail != b"\r\n":
            raise ProtocolError("part body %s (Content-Length %s) is followed by %r, not "
                                "CRLF: Content-Length does not match the body"
                                % (self._where(), length, tail + bytes(self.buf[:40])))
        self.count += 1
        return Part(header_lines, headers, body, arrived)

    def __iter__(self):
        while True:
            part = self.next_part()
            if part is None:
                return
            yield part

    def finish(self):
        """After the closing boundary: the data must end right there."""
        if not self.closed:
            raise ProtocolError("finish() before the closing boundary")
        while self._fill():
            pass
        if self.buf:
            raise ProtocolError("%d bytes after the closing boundary: %r"
                                % (len(self.buf), bytes(self.buf[:80])))


# --- sources --------------------------------------------------------------

def from_response(resp, deadline=None):
    """Reader over an http.client response of a stream (status 200)."""
    return Reader(resp.read1, boundary_of(resp.getheader("Content-Type")), deadline)


def from_bytes(data, boundary=None):
    """Reader over a complete body, e.g. a file written by curl; without a
    boundary it is taken from the first line (which must be --B)."""
    if boundary is None:
        first = data.split(b"\r\n", 1)[0]
        if not first.startswith(b"--"):
            raise ProtocolError("body does not start with a boundary line: %r" % data[:80])
        boundary = first[2:].decode("ascii")
    return Reader(io.BytesIO(data).read, boundary)


def read_http_head(sock, deadline=None):
    """Status code, {lower-case name: value} and the body bytes already read,
    from a raw socket after a request was sent."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("no complete response head: %r" % buf[:200])
        data = sock.recv(READ_SIZE)
        if not data:
            raise ProtocolError("connection closed before the response head ended: %r" % buf)
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def from_socket(sock, headers, rest, deadline=None):
    """Reader over a raw socket, after read_http_head (no chunked bodies)."""
    if "transfer-encoding" in headers:
        raise ProtocolError("raw socket reader cannot take Transfer-Encoding %r"
                            % headers["transfer-encoding"])
    return Reader(sock.recv, boundary_of(headers.get("content-type")), deadline, rest)


# --- clients --------------------------------------------------------------

class Viewer:
    """One stream viewer over http.client: `with Viewer(port, path) as v:`
    sends the request; v.resp, v.status, v.reader (200 only)."""

    def __init__(self, port, path, timeout=5.0, deadline=None, method="GET"):
        self.port, self.path = port, path
        self.started = time.monotonic()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.resp = None
        self.reader = None
        try:
            self.conn.request(method, path)
            self.resp = self.conn.getresponse()
            self.status = self.resp.status
            if self.status == 200:
                self.reader = from_response(self.resp, deadline)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Closes the connection for real: the response holds the socket too."""
        sock = self.conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.resp is not None:
            self.resp.close()
        self.conn.close()


def admitted_viewer(port, path, wait_s, timeout=5.0, retry_s=0.1):
    """A Viewer of PATH, with its first part read, once the server admits
    one (200) again after a viewer left a full stream: until then it must
    answer 503; fails after WAIT_S seconds of 503s (the departure has to
    be noticed, not more)."""
    deadline = time.monotonic() + wait_s
    while True:
        v = Viewer(port, path, timeout, deadline=time.monotonic() + 10)
        if v.status == 200:
            try:
                if v.reader.next_part() is None:
                    raise AssertionError("%s: admitted, then ended at once" % path)
            except BaseException:
                v.close()
                raise
            return v
        body = v.resp.read()
        v.close()
        if v.status != 503:
            raise AssertionError("%s: %d, not 200 or 503: %r" % (path, v.status, body))
        if time.monotonic() >= deadline:
            raise AssertionError("%s still 503 %.0f s after a viewer left: %r"
                                 % (path, wait_s, body))
        time.sleep(retry_s)


class Watcher(threading.Thread):
    """A viewer in a thread, over a raw socket: reads PATH and decodes every
    part, as a browser shows them, until stop is set.  With reconnect it
    connects again whenever the server ends or refuses the stream (nginx
    answers 502 while no responder accepts), as a page does.

    Records, per connection, the arrival times (time.monotonic()) of its
    parts (connections); the parts that did not decode (bad); whether the
    last connection the server ended did so with the closing boundary
    (closed_properly); `ended` is set once the server ended a stream."""

    def __init__(self, port, path, reconnect=True, timeout=1.0):
        super().__init__(daemon=True)
        self.port, self.path, self.reconnect, self.timeout = port, path, reconnect, timeout
        self.stop = threading.Event()
        self.ended = threading.Event()
        self.connections, self.bad = [], []
        self.closed_properly = False

    @property
    def parts(self):
        return sum(len(c) for c in self.connections)

    @property
    def times(self):
        return [t for c in self.connections for t in c]

    def run(self):
        while not self.stop.is_set():
            try:
                self.watch()
            except OSError:
                time.sleep(0.1)
            if not self.reconnect:
                break

    def watch(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        try:
            s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % self.path.encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = s.recv(READ_SIZE)
                if not d:
                    return
                buf += d
            # A 1.0 request: nginx and Apache answer 1.1, lighttpd 1.0.
            if not re.match(rb"HTTP/1\.[01] 200 ", buf):
                time.sleep(0.1)
                return
            head, buf = buf.split(b"\r\n\r\n", 1)
            closing = b"--" + re.search(rb"boundary=(\w+)", head).group(1) + b"--\r\n"
            times = []
            self.connections.append(times)
            while not self.stop.is_set():
                try:
                    d = s.recv(READ_SIZE)
                except socket.timeout:
                    continue
                if not d:
                    self.closed_properly = buf.endswith(closing)
                    self.ended.set()
                    return
                buf += d
                buf = self._take_parts(buf, times)
        finally:
            s.close()

    def _take_parts(self, buf, times):
        """Decodes the complete parts at the start of BUF; the rest."""
        while True:
            i = buf.find(b"Content-Length: ")
            j = buf.find(b"\r\n\r\n", i) if i >= 0 else -1
            if j < 0:
                return buf
            n = int(buf[i + 16:buf.index(b"\r\n", i)])
            if len(buf) < j + 4 + n:
                return buf
            body, buf = buf[j + 4:j + 4 + n], buf[j + 4 + n:]
            times.append(time.monotonic())
            try:
                decode_jpeg(body)
            except Exception as e:  # noqa: BLE001 - any decode failure counts
                self.bad.append(repr(e))


def decode_jpeg(body):
    """The decoded image of a complete JPEG (SOI .. EOI, decodes fully)."""
    if body[:2] != b"\xff\xd8":
        raise ProtocolError("part does not start with FFD8: %r" % body[:16])
    if body[-2:] != b"\xff\xd9":
        raise ProtocolError("part does not end with FFD9: %r" % body[-16:])
    img = Image.open(io.BytesIO(body))
    if img.format != "JPEG":
        raise ProtocolError("part decodes as %s, not JPEG" % img.format)
    img.load()
    return img
