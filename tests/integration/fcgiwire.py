"""The web server's side of FastCGI, for tests that speak to the responder
directly: records, a request's params, one connection with timed reads, and
a responder started on a socket of its own (`own_responder`).

nginx, lighttpd and Apache each speak only part of FastCGI (none sends
FCGI_ABORT_REQUEST; a request's records come all at once), so what a peer
could send and they never do is tested here."""

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import mjpeg
from stacks import TOP

BIN = os.environ.get("RESPONDER") or os.path.join(TOP, "fcgi", "mjpeg-fcgi")
TIMEOUT = 5.0                 # every socket operation

BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 2, 3, 4, 5, 6
RESPONDER, KEEP_CONN = 1, 1
REQUEST_COMPLETE = 0


def record(kind, rid, content=b""):
    """One record, unpadded."""
    return struct.pack("!BBHHBx", 1, kind, rid, len(content), 0) + content


def cgi_env(uri, method="GET", **extra):
    """The CGI variables a web server sends for URI (SCRIPT_NAME = the path,
    no PATH_INFO), plus EXTRA (names as given)."""
    path, _, query = uri.partition("?")
    env = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method, "SCRIPT_NAME": path,
           "QUERY_STRING": query, "REQUEST_URI": uri, "SERVER_PROTOCOL": "HTTP/1.1",
           "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost", "SERVER_PORT": "80"}
    env.update(extra)
    return env


def name_values(env):
    """A PARAMS record's content: FastCGI name-value pairs of ENV."""
    def length(n):
        return bytes([n]) if n < 128 else struct.pack("!I", n | 0x80000000)

    return b"".join(length(len(k)) + length(len(v)) + k + v
                    for k, v in ((k.encode(), v.encode()) for k, v in env.items()))


def params_of(uri, method="GET", **extra):
    return name_values(cgi_env(uri, method, **extra))


def request_bytes(rid, env, flags=0, stdin=b"", stdin_end=True):
    """A whole request as a web server sends it: BEGIN_REQUEST, the params,
    their end, the body in one STDIN record (if any) and its end."""
    return (record(BEGIN_REQUEST, rid, struct.pack("!HB5x", RESPONDER, flags))
            + record(PARAMS, rid, name_values(env)) + record(PARAMS, rid)
            + (record(STDIN, rid, stdin) if stdin else b"")
            + (record(STDIN, rid) if stdin_end else b""))


def parse_response(stdout):
    """(headers with lower-case names and 'status', body) of a response's
    stdout bytes."""
    head, _, body = stdout.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    headers.setdefault("status", "200 OK")
    return headers, body


class Connection:
    """The web server's end of one FastCGI connection: ADDRESS is a unix
    socket path or a (host, port) pair."""

    def __init__(self, address, timeout=TIMEOUT):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buf = b""
        self.stdout = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

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
        by time.monotonic() deadline; returns the number of stdout bytes
        that came meanwhile (all of them are in self.stdout)."""
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

    def request(self, env, rid=1, flags=0, stdin=b"", timeout=TIMEOUT):
        """Sends one whole request and reads its response: (headers, body).
        self.stdout holds only this response afterwards."""
        self.stdout = b""
        self.send(request_bytes(rid, env, flags, stdin))
        self.read_to_end(rid, time.monotonic() + timeout)
        return parse_response(self.stdout)

    def close(self):
        self.sock.close()


def begin(conn, rid, uri, flags, stdin_end=True):
    """Starts a GET of URI on CONN (the body's end sent unless told not)."""
    conn.send(request_bytes(rid, cgi_env(uri), flags, stdin_end=stdin_end))


def fcgi_request(address, env, stdin=b"", timeout=TIMEOUT):
    """One request on a connection of its own: (headers, body)."""
    with Connection(address, timeout) as conn:
        return conn.request(env, stdin=stdin, timeout=timeout)


def accepting(sock):
    """True once something listens on the unix socket SOCK.  Its file
    appears at bind(), before listen(): a connect in between is refused,
    so the file alone does not say the server is ready."""
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sock)
        return True
    except OSError:
        return False
    finally:
        s.close()


@contextlib.contextmanager
def own_responder(*args, env=None):
    """mjpeg-fcgi listening on a unix socket of its own with ARGS (default
    streams unless ARGS name a config); yields an object with .socket (the
    path), .proc and .log() (what it logged so far). Stopped with SIGTERM,
    and its files removed, at the end."""
    base = tempfile.mkdtemp(prefix="mjpeg-own-", dir="/tmp")
    sock = os.path.join(base, "s.sock")
    log_path = os.path.join(base, "log")
    log = open(log_path, "wb")
    proc = subprocess.Popen([BIN, "--listen", "unix:" + sock, "--bus-dir", base + "/bus"]
                            + list(args), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            env=env)

    class Responder:
        pass

    r = Responder()
    r.socket, r.proc, r.base = sock, proc, base
    r.log = lambda: open(log_path, "rb").read().decode(errors="replace")
    try:
        deadline = time.monotonic() + TIMEOUT
        while not accepting(sock):
            assert proc.poll() is None, "the responder exited: " + r.log()
            assert time.monotonic() < deadline, "the responder does not accept on its socket"
            time.sleep(0.05)
        yield r
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        shutil.rmtree(base, ignore_errors=True)
