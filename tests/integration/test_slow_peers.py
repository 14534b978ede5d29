"""Slow peers hold up nobody (README, Security and Limits).

Anyone who can connect to the responder's socket can send a request as
slowly as they like. The responder reads a request's head (FCGI_BEGIN_REQUEST
and every FCGI_PARAMS record) by the deadline `request_ms` from the accept,
and a request body by the deadline `ingest_ms` from its start, with no lock
held meanwhile; a kept connection (FCGI_KEEP_CONN) takes one request after
another and holds no thread while idle; snapshots waiting for a frame are
capped per process. Checked here:

- a peer stalled at every stage of a request, twenty at once: a /status on
  a new connection is answered meanwhile, and the stalled connection is
  closed (head) or answered (body: 408 for ingest, the end for a stream)
  in time, also when the peer trickles bytes so that no single read waits
  long;
- the same through every web server whose responders listen on a socket
  (stalled connections on each of those sockets, /status over HTTP), and
  the body deadline of plain CGI behind Apache and run directly;
- kept connections: requests in a row, idle ones hold up nobody and are
  closed after request_ms, at most SERVER_KEPT_MAX (64) idle ones per
  process, a stream on a kept connection, a request's body end that comes
  after its answer (as Apache sends it); behind nginx (fastcgi_keep_conn
  on, keepalive) and Apache mod_proxy_fcgi (enablereuse=on);
- snapshots of a stream without a frame: at most 8 wait, the others get 503
  with Retry-After at once, /status stays quick;
- ingest: a CONTENT_LENGTH that is not a number is 400, the Bearer scheme
  is taken in any case.

lighttpd (1.4.69, mod_fastcgi) never sets FCGI_KEEP_CONN (its begin record's
flags are always 0), so it has no kept connections to test.

Every read has a timeout; every time bound says what it catches and its
margin. "/status within STATUS_WITHIN" is the main one: it answers in a few
milliseconds, and a responder that reads requests under its accepting lock
does not answer it before the stalled peers give up (never, for a peer
that stays connected).
"""

import glob
import http.client
import io
import json
import os
import select
import shutil
import socket
import stat
import struct
import subprocess
import threading
import time

import pytest
from PIL import Image

import mjpeg
import stacks
from fcgiwire import (BEGIN_REQUEST, BIN, END_REQUEST, KEEP_CONN, PARAMS, RESPONDER, STDIN, STDOUT,
                      Connection, cgi_env, fcgi_request, own_responder, params_of,
                      parse_response, record, request_bytes)
from stacks import edit, start_stack, wait_until

TEST_TIME_LIMIT = 60
TIMEOUT = 5.0              # every socket operation that should answer at once
TOKEN = "slow-peer-token-0123456789abcdef"

# /status on a new connection while peers stall: answered in a few ms
# (0.1 s on a machine 3x slower under ASan would still be 50x inside). A
# responder that reads requests under its accepting lock answers it only
# once every stalled peer before it gave up: never without a deadline,
# after twenty times request_ms (100 s) with one.
STATUS_WITHIN = 5.0
PEERS = 20                 # stalled peers at once: more than the idle threads (4)
# The "closed in time" tests: request_ms / ingest_ms there, and how late
# after it the connection may end. The watchdog fires at the deadline; 3 s
# covers scheduling on a machine 3x slower and busy. Without a deadline it
# never ends (the peer stays connected).
SHORT_MS = 1000
LATE_BY = 3.0
TRICKLE_S = 0.1            # a trickling peer sends one byte this often: no read waits long
INGEST_BYTES = 4096        # CONTENT_LENGTH of the stalled ingest bodies (half is sent)
SNAPSHOT_WAITERS = 8       # SERVER_SNAPSHOT_WAITERS / VIEWER_SNAPSHOT_WAITING_MAX
KEPT_MAX = 64              # SERVER_KEPT_MAX


@pytest.fixture(autouse=True)
def time_limit():
    with stacks.time_limit(TEST_TIME_LIMIT):
        yield


def write_config(directory, **server):
    """A config file with an ingest stream (cam, no frame until one is
    posted) and a small bars stream; SERVER are [server] keys."""
    path = os.path.join(str(directory), "slow.ini")
    with open(path, "w") as f:
        if server:
            f.write("[server]\n" + "".join("%s = %s\n" % kv for kv in server.items()) + "\n")
        f.write("[stream bars]\nsource = pattern:bars\nsize = 160x120\nfps = 10\n\n"
                "[stream cam]\nsource = ingest\ntoken = %s\n" % TOKEN)
    return path


def jpeg_of(colour, size=(64, 48)):
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=90)
    return out.getvalue()


def begin_record(rid=1, flags=0):
    return record(BEGIN_REQUEST, rid, struct.pack("!HB5x", RESPONDER, flags))


def ingest_env(length, authorization="Bearer " + TOKEN, name="cam"):
    return cgi_env("/ingest/" + name, "POST", CONTENT_LENGTH=str(length),
                   CONTENT_TYPE="image/jpeg", HTTP_AUTHORIZATION=authorization)


def records_in(data):
    """The record types of the whole records at the start of DATA."""
    kinds = []
    while len(data) >= 8:
        _, kind, _, clen, plen = struct.unpack("!BBHHBx", data[:8])
        if len(data) < 8 + clen + plen:
            break
        kinds.append(kind)
        data = data[8 + clen + plen:]
    return kinds


def status_ok(headers, body):
    assert headers["status"].startswith("200"), (headers, body[:200])
    assert json.loads(body)["streams"], body[:200]


# --- peers stalled at each stage of a request ----------------------------------------

HEAD_STAGES = ["connected", "begin-header", "begin", "half-params", "params-unended",
               "params-trickle"]
BODY_STAGES = ["stream-body", "stream-trickle", "ingest-half", "ingest-trickle"]


class Peer:
    """A connection to the responder whose request stops at STAGE:

    connected       connected, nothing sent
    begin-header    the 8-byte header of FCGI_BEGIN_REQUEST, not its body
    begin           the whole FCGI_BEGIN_REQUEST
    half-params     and half a PARAMS record
    params-unended  and the whole PARAMS record, not their empty end record
    params-trickle  and a PARAMS record's header, then one byte of it every
                    TRICKLE_S (it would take minutes to end)
    stream-body     a whole GET of a stream, its body (STDIN) never ended
    stream-trickle  the same, one byte of body every TRICKLE_S
    ingest-half     an ingest POST (FCGI_KEEP_CONN) with half its body
    ingest-trickle  the same, then one byte of body every TRICKLE_S
    """

    def __init__(self, address, stage):
        self.stage = stage
        self.conn = Connection(address, TIMEOUT)
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.trickler = None
        params = params_of("/status")
        if stage == "begin-header":
            self.conn.send(begin_record()[:8])
        elif stage == "begin":
            self.conn.send(begin_record())
        elif stage == "half-params":
            self.conn.send(begin_record() + record(PARAMS, 1, params)[:8 + len(params) // 2])
        elif stage == "params-unended":
            self.conn.send(begin_record() + record(PARAMS, 1, params))
        elif stage == "params-trickle":
            self.conn.send(begin_record() + record(PARAMS, 1, params)[:8])
            self.trickle(params[i:i + 1] for i in range(len(params)))
        elif stage in ("stream-body", "stream-trickle"):
            self.conn.send(request_bytes(1, cgi_env("/stream/bars"), 0, stdin_end=False))
            if stage == "stream-trickle":
                self.trickle(record(STDIN, 1, b"x") for _ in range(100000))
        elif stage in ("ingest-half", "ingest-trickle"):
            body = b"\xff\xd8" + bytes(INGEST_BYTES // 2 - 2)
            self.conn.send(request_bytes(1, ingest_env(INGEST_BYTES), KEEP_CONN, body,
                                         stdin_end=False))
            if stage == "ingest-trickle":
                self.trickle(record(STDIN, 1, b"\0") for _ in range(INGEST_BYTES // 2 - 1))
        else:
            assert stage == "connected", stage

    def trickle(self, chunks):
        def run():
            for chunk in chunks:
                if self.stop.wait(TRICKLE_S):
                    return
                try:
                    self.conn.sock.sendall(chunk)
                except OSError:
                    return   # the responder shut or closed it

        self.trickler = threading.Thread(target=run, daemon=True)
        self.trickler.start()

    def close(self):
        self.stop.set()
        if self.trickler:
            self.trickler.join(TIMEOUT)
        self.conn.close()

    def assert_held(self):
        """The connection is open and nothing ended its request: nothing
        came at all (head stages, ingest), or no FCGI_END_REQUEST (a
        stream, whose response head comes at once)."""
        # a socket with a timeout waits for input first, whatever the flags
        self.conn.sock.setblocking(False)
        try:
            data = self.conn.sock.recv(1 << 20, socket.MSG_PEEK)
        except BlockingIOError:
            return
        except ConnectionResetError:
            data = b""
        finally:
            self.conn.sock.settimeout(TIMEOUT)
        assert data, "%s: the responder closed the connection already" % self.stage
        assert self.stage.startswith("stream"), "%s: sent %r" % (self.stage, data[:80])
        assert END_REQUEST not in records_in(data), "%s: the request ended already" % (
            self.stage)

    def set_deadline(self, deadline):
        self.conn.sock.settimeout(max(0.05, deadline - time.monotonic()))

    def assert_closed_silently(self, deadline):
        """The responder closes the connection by DEADLINE (monotonic),
        having sent nothing."""
        self.set_deadline(deadline)
        try:
            data = self.conn.sock.recv(65536)
        except socket.timeout:
            pytest.fail("%s: still open %.1f s after it started (request_ms %d ms)"
                        % (self.stage, time.monotonic() - self.started, SHORT_MS))
        except ConnectionResetError:
            data = b""
        assert data == b"", "%s: the responder sent %r" % (self.stage, data[:80])

    def assert_ended(self, deadline):
        """The request's end (FCGI_END_REQUEST) came by DEADLINE, then the
        end of the connection; (headers, body) of the response."""
        self.set_deadline(deadline)
        try:
            self.conn.read_to_end(1, deadline)
            rec = self.conn.next_record()
        except socket.timeout:
            pytest.fail("%s: no end %.1f s after it started (ingest_ms %d ms)"
                        % (self.stage, time.monotonic() - self.started, SHORT_MS))
        except ConnectionResetError:
            rec = None
        assert rec is None, "%s: the connection stayed open (%r)" % (self.stage, rec[:2])
        return parse_response(self.conn.stdout)


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path)


def close_all(peers):
    for p in peers:
        p.close()


@pytest.mark.parametrize("stage", HEAD_STAGES + BODY_STAGES)
def test_stalled_peers_hold_up_nobody(config, stage):
    """PEERS peers stall at STAGE; /status on a new connection is answered
    within STATUS_WITHIN meanwhile, and the stalled ones are still held
    (request_ms is its default, 5 s; ingest_ms 30 s: the whole check takes
    well under a second)."""
    with own_responder("--config", config, "--ingest-ms", "30000") as r:
        peers = []
        try:
            for _ in range(PEERS):
                peers.append(Peer(r.socket, stage))
            t0 = time.monotonic()
            try:
                headers, body = fcgi_request(r.socket, cgi_env("/status"),
                                             timeout=STATUS_WITHIN)
            except socket.timeout:
                pytest.fail("/status not answered within %.0f s while %d peers stall at %s"
                            % (STATUS_WITHIN, PEERS, stage))
            status_ok(headers, body)
            assert time.monotonic() - t0 < STATUS_WITHIN
            for p in peers:
                p.assert_held()
        finally:
            close_all(peers)


def test_stalled_heads_closed_after_request_ms(config):
    """With request_ms 1000, a peer stalled anywhere in a request's head
    (two of each stage, trickling ones included: the deadline is for the
    whole head, not for each read) is closed with nothing sent, not before
    half of request_ms and by request_ms + LATE_BY."""
    with own_responder("--config", config, "--request-ms", str(SHORT_MS)) as r:
        peers = []
        try:
            for stage in HEAD_STAGES * 2:
                peers.append(Peer(r.socket, stage))
            # not closed at once: checked at half the deadline, if the
            # set-up left the time to
            first = peers[0].started
            time.sleep(max(0.0, first + SHORT_MS / 2000 - time.monotonic()))
            if time.monotonic() < first + 0.9 * SHORT_MS / 1000:
                for p in peers:
                    p.assert_held()
            for p in peers:
                p.assert_closed_silently(p.started + SHORT_MS / 1000 + LATE_BY)
            # and the responder still serves
            status_ok(*fcgi_request(r.socket, cgi_env("/status")))
        finally:
            close_all(peers)


@pytest.mark.parametrize("stage", BODY_STAGES)
def test_stalled_bodies_end_after_ingest_ms(config, stage):
    """With ingest_ms 1000, a body that does not arrive whole (silent or
    trickling) ends its request by ingest_ms + LATE_BY: an ingest with 408
    naming ingest_ms, its connection not kept although the request asked
    for it; a stream request with the end of its response."""
    with own_responder("--config", config, "--ingest-ms", str(SHORT_MS)) as r:
        peers = []
        try:
            for _ in range(2):
                peers.append(Peer(r.socket, stage))
            for p in peers:
                headers, body = p.assert_ended(p.started + SHORT_MS / 1000 + LATE_BY)
                assert time.monotonic() - p.started > 0.9 * SHORT_MS / 1000
                if stage.startswith("ingest"):
                    assert headers["status"].startswith("408"), (headers, body)
                    assert b"ingest_ms" in body and body.count(b"\n") == 1, body
            status_ok(*fcgi_request(r.socket, cgi_env("/status")))
        finally:
            close_all(peers)


# --- the same behind the web servers ----------------------------------------------

WEB_STAGES = ["connected", "begin", "half-params"]


def responder_sockets(st):
    """The sockets the stack's responders listen on: stack.sh's (nginx,
    apache-proxy), the ones lighttpd spawns its responders on
    (mjpeg-fcgi.sock-N), mod_fcgid's in its IPC directory."""
    run = st.run_dir
    if st.server == "lighttpd":
        paths = glob.glob(os.path.join(run, "mjpeg-fcgi.sock-*"))
    elif st.server == "apache-fcgid":
        paths = glob.glob(os.path.join(run, "fcgidsock", "**"), recursive=True)
    else:
        paths = [os.path.join(run, "mjpeg-fcgi.sock")]
    found = []
    for p in paths:
        try:
            if stat.S_ISSOCK(os.stat(p).st_mode):
                found.append(p)
        except OSError:
            pass
    return found


def test_stalled_peers_on_every_responder_socket(stack):
    """Peers stalled in a request's head on every socket a responder of the
    stack listens on (two at each of WEB_STAGES per socket): /status over
    HTTP through the web server is answered within STATUS_WITHIN (the
    stack's request_ms is the default, 5 s: the stalled peers are still
    held when it is checked, well under a second later)."""
    if stack.server == "apache":
        pytest.skip("plain CGI: Apache runs a process per request on a pipe, there is "
                    "no responder socket; its body deadline is tested below")
    stack.status()   # mod_fcgid starts its first responder for it
    sockets = wait_until(lambda: responder_sockets(stack), TIMEOUT)
    assert sockets, "no responder socket under %s" % stack.run_dir
    peers = []
    try:
        for path in sockets:
            for stage in WEB_STAGES * 2:
                peers.append(Peer(path, stage))
        try:
            status, _, body = stack.get("status", timeout=STATUS_WITHIN)
        except socket.timeout:
            pytest.fail("/status through %s not answered within %.0f s while %d peers stall "
                        "on %s" % (stack.server, STATUS_WITHIN, len(peers), sockets))
        assert status == 200, (status, body[:200])
        assert json.loads(body)["streams"]
        for p in peers:
            p.assert_held()
    finally:
        close_all(peers)


def cgi_env_of(uri, method="GET", **extra):
    """Plain CGI's variables for URI: the script at /cams/mjpeg.cgi, the
    path below it in PATH_INFO (the only part that routes)."""
    path, _, query = uri.partition("?")
    env = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method,
           "SCRIPT_NAME": "/cams/mjpeg.cgi", "PATH_INFO": path, "QUERY_STRING": query,
           "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
           "SERVER_NAME": "localhost", "SERVER_PORT": "80",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(extra)
    return env


def cgi_ingest_env(length, authorization="Bearer " + TOKEN):
    return cgi_env_of("/ingest/cam", "POST", CONTENT_LENGTH=str(length),
                      CONTENT_TYPE="image/jpeg", HTTP_AUTHORIZATION=authorization)


def read_until_eof(fd, deadline):
    """Everything read from FD until its end; None if the end did not come
    by DEADLINE (what came so far is lost)."""
    out = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            data = os.read(fd, 65536)
            if not data:
                return out
            out += data


@pytest.mark.parametrize("mode", ["half", "trickle"])
def test_cgi_body_deadline(tmp_path, mode):
    """Plain CGI (GATEWAY_INTERFACE set, standard input a pipe held open):
    an ingest body of CONTENT_LENGTH bytes of which half came (then nothing,
    or a byte every TRICKLE_S) is answered 408 naming ingest_ms (1000 here)
    not before ingest_ms and by ingest_ms + LATE_BY, and the process ends.
    Without a deadline it waits for the rest as long as the pipe is open."""
    config = write_config(tmp_path, ingest_ms=SHORT_MS)
    stop = threading.Event()
    t0 = time.monotonic()
    proc = subprocess.Popen([BIN, "--config", config, "--bus-dir", str(tmp_path / "bus")],
                            env=cgi_ingest_env(INGEST_BYTES), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    trickler = None
    try:
        proc.stdin.write(b"\xff\xd8" + bytes(INGEST_BYTES // 2 - 2))
        proc.stdin.flush()
        if mode == "trickle":
            def run():
                while not stop.wait(TRICKLE_S):
                    try:
                        proc.stdin.write(b"\0")
                        proc.stdin.flush()
                    except OSError:
                        return
            trickler = threading.Thread(target=run, daemon=True)
            trickler.start()
        out = read_until_eof(proc.stdout.fileno(), t0 + SHORT_MS / 1000 + LATE_BY)
        assert out is not None, "no answer %.1f s after the start (ingest_ms %d ms)" % (
            time.monotonic() - t0, SHORT_MS)
        assert time.monotonic() - t0 > 0.9 * SHORT_MS / 1000
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"Status: 408"), out[:300]
        assert b"ingest_ms" in body and body.count(b"\n") == 1, body
        assert proc.wait(TIMEOUT) == 0
    finally:
        stop.set()
        if trickler:
            trickler.join(TIMEOUT)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass


def cgi_processes(st):
    """Pids of the stack's CGI processes (their executable is its
    www/mjpeg.cgi)."""
    cgi = os.path.join(st.run_dir, "www", "mjpeg.cgi")
    pids = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            exe = os.readlink(os.path.join(d, "exe"))
        except OSError:
            continue
        if exe.replace(" (deleted)", "") == cgi:
            pids.append(int(os.path.basename(d)))
    return pids


def test_cgi_body_deadline_behind_apache(tmp_path):
    """Apache CGI passes an ingest body on to the program as it arrives, and
    sends the program's answer only once it read the whole body (mod_cgid).
    A body trickling in (a byte every TRICKLE_S): the program answers 408
    and ends by ingest_ms (1000 here) + LATE_BY while the body still
    trickles; once the rest is sent, the client gets that 408. Without a
    deadline the program reads on as long as bytes come, and answers the
    whole body (2xx: it is a JPEG)."""
    st = start_stack(config=write_config(tmp_path, ingest_ms=SHORT_MS), server="apache")
    stop = threading.Event()
    trickler = None
    frame = jpeg_of("red")
    sent = [2]
    s = socket.create_connection(("127.0.0.1", st.port), timeout=TIMEOUT)
    try:
        s.sendall(b"POST /ingest/cam HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                  b"Authorization: Bearer %s\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: %d\r\n\r\n" % (TOKEN.encode(), len(frame)) + frame[:2])
        t0 = time.monotonic()

        def run():
            while not stop.wait(TRICKLE_S) and sent[0] < len(frame) // 2:
                s.sendall(frame[sent[0]:sent[0] + 1])
                sent[0] += 1
        trickler = threading.Thread(target=run, daemon=True)
        trickler.start()
        pids = wait_until(lambda: cgi_processes(st), TIMEOUT, period=0.02)
        assert pids, "Apache started no CGI program for the request"
        deadline = t0 + SHORT_MS / 1000 + LATE_BY
        gone = wait_until(lambda: not set(pids) & set(cgi_processes(st)),
                          deadline - time.monotonic(), period=0.05)
        assert gone, "the CGI program still runs %.1f s after the request started (%d " \
            "bytes of body came)" % (time.monotonic() - t0, sent[0])
        assert trickler.is_alive(), "the body stopped trickling before the program ended"
        stop.set()
        trickler.join(TIMEOUT)
        s.sendall(frame[sent[0]:])
        status, headers, rest = mjpeg.read_http_head(s, time.monotonic() + TIMEOUT)
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            data = s.recv(65536)
            if not data:
                break
            rest += data
        assert status == 408, (status, headers, rest[:200])
        assert b"ingest_ms" in rest, rest[:200]
    finally:
        stop.set()
        if trickler:
            trickler.join(TIMEOUT)
        s.close()
        st.stop()


# --- kept connections (FCGI_KEEP_CONN) ----------------------------------------------

def kept_request(conn, uri, rid=1, timeout=TIMEOUT):
    """One request with FCGI_KEEP_CONN on CONN: (headers, body). Its
    answer comes in a few ms; TIMEOUT (5 s) bounds a responder that does
    not read the next request of a kept connection (it never would)."""
    try:
        return conn.request(cgi_env(uri), rid=rid, flags=KEEP_CONN, timeout=timeout)
    except socket.timeout:
        pytest.fail("%s (request id %d) on a kept connection: no answer within %.0f s"
                    % (uri, rid, timeout))


def snapshot_ok(headers, body):
    assert headers["status"].startswith("200"), (headers, body[:200])
    assert headers["content-type"] == "image/jpeg", headers
    mjpeg.decode_jpeg(body)


def is_open(conn):
    """The connection is open with nothing to read (no end, no data)."""
    conn.sock.setblocking(False)
    try:
        data = conn.sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False
    finally:
        conn.sock.settimeout(TIMEOUT)
    assert not data, "unexpected bytes on a kept connection: %r" % data
    return False


def test_kept_connection_takes_requests_in_a_row(config):
    """Six /status and six snapshots in a row on one connection, each with
    FCGI_KEEP_CONN: each is answered, and the connection stays open."""
    with own_responder("--config", config) as r, Connection(r.socket) as conn:
        for i in range(6):
            status_ok(*kept_request(conn, "/status", rid=i + 1))
        for i in range(6):
            snapshot_ok(*kept_request(conn, "/snapshot/bars", rid=i + 1))
        assert is_open(conn), "the kept connection was closed"


def test_idle_kept_connections_hold_up_nobody(config):
    """Ten kept connections that answered one request each lie idle: a
    /status and a snapshot on new connections are answered within
    STATUS_WITHIN, and each kept one then takes a second request. (request_ms
    is its default, 5 s; the whole test takes well under a second.)"""
    with own_responder("--config", config) as r:
        kept = []
        try:
            for _ in range(10):
                kept.append(Connection(r.socket))
                status_ok(*kept_request(kept[-1], "/status"))
            try:
                status_ok(*fcgi_request(r.socket, cgi_env("/status"), timeout=STATUS_WITHIN))
                snapshot_ok(*fcgi_request(r.socket, cgi_env("/snapshot/bars"),
                                          timeout=STATUS_WITHIN))
            except socket.timeout:
                pytest.fail("a new connection was not served within %.0f s while %d kept "
                            "connections lie idle" % (STATUS_WITHIN, len(kept)))
            for conn in kept:
                status_ok(*kept_request(conn, "/status", rid=2))
        finally:
            for conn in kept:
                conn.close()


def test_idle_kept_connection_closed_after_request_ms(config):
    """With request_ms 1000, a kept connection that takes no next request is
    closed not before half of request_ms (it was kept) and by
    request_ms + LATE_BY."""
    with own_responder("--config", config, "--request-ms", str(SHORT_MS)) as r, \
            Connection(r.socket) as conn:
        status_ok(*kept_request(conn, "/status"))
        idle_since = time.monotonic()
        conn.sock.settimeout(SHORT_MS / 1000 + LATE_BY)
        try:
            rec = conn.next_record()
        except socket.timeout:
            pytest.fail("the idle kept connection is still open %.1f s later (request_ms "
                        "%d ms)" % (time.monotonic() - idle_since, SHORT_MS))
        except ConnectionResetError:
            rec = None
        assert rec is None, rec
        assert time.monotonic() - idle_since > SHORT_MS / 2000
        status_ok(*fcgi_request(r.socket, cgi_env("/status")))


def test_stream_on_a_kept_connection_then_the_next_request(config):
    """A stream with ?frames=3 on a kept connection is served to its
    closing boundary (three whole parts; bars runs at 10 fps, so it ends
    in under a second; 10 s bounds it), then the same connection takes a
    /status."""
    with own_responder("--config", config) as r, Connection(r.socket) as conn:
        conn.send(request_bytes(1, cgi_env("/stream/bars?frames=3"), KEEP_CONN))
        conn.read_to_end(1, time.monotonic() + 10)
        headers, body = parse_response(conn.stdout)
        reader = mjpeg.from_bytes(body, mjpeg.boundary_of(headers["content-type"]))
        parts = list(reader)
        reader.finish()
        assert len(parts) == 3, len(parts)
        for p in parts:
            mjpeg.decode_jpeg(p.body)
        status_ok(*kept_request(conn, "/status", rid=2))
        assert is_open(conn)


def test_idle_kept_connections_are_capped(config):
    """KEPT_MAX + 1 connections each take one request with FCGI_KEEP_CONN:
    one of them (the last, unless the one before it was put aside a moment
    late) is closed after its answer, the other KEPT_MAX stay and each
    takes a second request. request_ms is 30 s here so that none is closed
    for idleness meanwhile (65 requests take well under a second)."""
    with own_responder("--config", config, "--request-ms", "30000") as r:
        conns = []
        try:
            for _ in range(KEPT_MAX + 1):
                conns.append(Connection(r.socket))
                status_ok(*kept_request(conns[-1], "/status"))
            closed = wait_until(lambda: [c for c in conns if not is_open(c)], TIMEOUT, 0.05)
            assert closed and len(closed) == 1, "%d of %d kept connections were closed" % (
                len(closed or []), len(conns))
            for conn in conns:
                if conn is not closed[0]:
                    status_ok(*kept_request(conn, "/status", rid=2))
        finally:
            for conn in conns:
                conn.close()


# --- kept connections behind nginx and Apache mod_proxy_fcgi -------------------------

RELOAD_WAIT = 15.0         # a reloaded server runs the new config within this


def children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return {int(p) for p in f.read().split()}


def connections_to(path):
    """Connected sockets on the accepting side of the unix socket PATH
    (they carry its name in /proc/net/unix; state 03 is connected)."""
    with open("/proc/net/unix") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for r in rows if len(r) >= 8 and r[7] == path and r[5] == "03")


def check_kept_in_a_row(st):
    """Six /status and six snapshots in a row on one HTTP connection, then
    six /status on connections of their own, each answered within TIMEOUT
    (a few ms when the responder takes the next request of a kept
    connection; never, with a responder that does not), and the web server
    still keeps a connection to the responder afterwards: the requests did
    go over kept connections."""
    conn = http.client.HTTPConnection("127.0.0.1", st.port, timeout=TIMEOUT)
    try:
        for i, path in enumerate(["/status"] * 6 + ["/snapshot/bars"] * 6):
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
            except socket.timeout:
                pytest.fail("%s, request %d in a row through %s: no answer within %.0f s"
                            % (path, i + 1, st.server, TIMEOUT))
            assert resp.status == 200, (path, resp.status, body[:200])
            if path == "/status":
                assert json.loads(body)["streams"]
            else:
                assert resp.getheader("Content-Type") == "image/jpeg"
                mjpeg.decode_jpeg(body)
    finally:
        conn.close()
    for i in range(6):
        try:
            status, _, body = st.get("status", timeout=TIMEOUT)
        except socket.timeout:
            pytest.fail("/status %d on a connection of its own through %s: no answer "
                        "within %.0f s" % (i + 1, st.server, TIMEOUT))
        assert status == 200, (status, body[:200])
    # the responder closes idle kept connections after request_ms (5 s);
    # this looks within a few ms of the last answer
    assert connections_to(os.path.join(st.run_dir, "mjpeg-fcgi.sock")) >= 1, \
        "%s kept no connection to the responder: keep-alive was not in use" % st.server


def test_kept_connections_behind_nginx():
    """nginx with fastcgi_keep_conn on and keepalive 8 in its upstream."""
    st = start_stack(server="nginx")
    try:
        conf = os.path.join(st.run_dir, "nginx.conf")
        edit(conf, [(r"^(\s*)fastcgi_keep_conn off;", r"\1fastcgi_keep_conn on;"),
                    (r'^(\s*)(server "unix:[^"]+"[^;]*;)', r"\1\2\n\1keepalive 8;")])
        master = int(open(os.path.join(st.run_dir, "nginx.pid")).read())
        old = children(master)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        subprocess.run([nginx, "-p", st.run_dir + "/", "-c", conf, "-e",
                        os.path.join(st.run_dir, "nginx-error.log"), "-s", "reload"],
                       check=True, capture_output=True, timeout=TIMEOUT)
        # the old workers (without keep-alive) leave once idle
        assert wait_until(lambda: children(master) and not children(master) & old,
                          RELOAD_WAIT), "nginx did not take the new config"
        check_kept_in_a_row(st)
    finally:
        st.stop()


def test_kept_connections_behind_apache_proxy_fcgi():
    """Apache mod_proxy_fcgi with enablereuse=on (it then sets
    FCGI_KEEP_CONN)."""
    st = start_stack(server="apache-proxy")
    try:
        conf = os.path.join(st.run_dir, "apache.conf")
        edit(conf, [(r"enablereuse=off", "enablereuse=on")])
        log = st.log_path()

        def generations():
            with open(log, errors="replace") as f:
                return f.read().count("resuming normal operations")

        before = generations()
        master = int(open(os.path.join(st.run_dir, "apache2.pid")).read())
        old = children(master)
        apache = shutil.which("apache2") or "/usr/sbin/apache2"
        subprocess.run([apache, "-f", conf, "-k", "graceful"], check=True,
                       capture_output=True, timeout=TIMEOUT)
        # every child is replaced; an old one (without reuse) could still
        # take a connection until it has left
        assert wait_until(lambda: generations() > before and children(master)
                          and not children(master) & old, RELOAD_WAIT), \
            "Apache did not take the new config"
        check_kept_in_a_row(st)
    finally:
        st.stop()


def read_answer(conn, rid, deadline):
    """STDOUT records of request RID until its answer (head and
    Content-Length bytes of body) is complete: (headers, body)."""
    conn.stdout = b""
    conn.sock.settimeout(max(0.05, deadline - time.monotonic()))
    while True:
        head, sep, body = conn.stdout.partition(b"\r\n\r\n")
        if sep:
            headers, body = parse_response(conn.stdout)
            if len(body) >= int(headers["content-length"]):
                return headers, body
        rec = conn.next_record()
        assert rec is not None, "connection closed before the answer was complete"
        kind, got, content = rec
        assert (kind, got) == (STDOUT, rid) and content, rec[:2]
        conn.stdout += content


def test_kept_connection_body_end_after_the_answer(config):
    """Apache mod_proxy_fcgi sends a request's begin and params in one
    write and the end of its (empty) body in another, so the body's end
    can come after the responder answered a /status or a snapshot, which
    read no body. That record still belongs to the request, which ends
    (FCGI_END_REQUEST) once it came: the kept connection then takes the
    next request (Apache sends it right away)."""
    with own_responder("--config", config) as r, Connection(r.socket) as conn:
        for i, uri in enumerate(["/status", "/snapshot/bars", "/status", "/metrics"]):
            rid = i + 1
            conn.send(request_bytes(rid, cgi_env(uri), KEEP_CONN, stdin_end=False))
            try:
                headers, body = read_answer(conn, rid, time.monotonic() + TIMEOUT)
                conn.send(record(STDIN, rid))
                conn.read_to_end(rid, time.monotonic() + TIMEOUT)
            except (socket.timeout, AssertionError) as e:
                pytest.fail("%s (request id %d), its body's end sent after its answer: %s"
                            % (uri, rid, e))
            if uri == "/metrics":
                assert headers["status"].startswith("200"), headers
            else:
                (status_ok if uri == "/status" else snapshot_ok)(headers, body)
        status_ok(*kept_request(conn, "/status", rid=9))


def test_kept_connection_body_end_never_comes(tmp_path):
    """A kept request whose body's end never comes is answered at once;
    its end (FCGI_END_REQUEST) comes after request_ms, and the connection
    is closed, not kept (its input is not at a record boundary). Margin:
    request_ms is 1 s; the end must come by 1 s + LATE_BY (3 s)."""
    config = write_config(tmp_path, request_ms=SHORT_MS)
    with own_responder("--config", config) as r, Connection(r.socket) as conn:
        started = time.monotonic()
        conn.send(request_bytes(1, cgi_env("/status"), KEEP_CONN, stdin_end=False))
        status_ok(*read_answer(conn, 1, started + TIMEOUT))
        deadline = started + SHORT_MS / 1000 + LATE_BY
        try:
            conn.read_to_end(1, deadline)
            rec = conn.next_record()
        except socket.timeout:
            pytest.fail("no end of the request %.1f s after it started (request_ms %d ms)"
                        % (time.monotonic() - started, SHORT_MS))
        assert rec is None, "the connection was kept (%r)" % (rec[:2],)
        assert time.monotonic() - started >= SHORT_MS / 1000 * 0.9, \
            "the request ended before its body's end or request_ms"


REST_MAX = 64 * 1024        # SERVER_REST_MAX


@pytest.mark.parametrize("body", [1024, REST_MAX + 4096])
def test_kept_connection_unread_body(config, body):
    """A body that a /status answer does not read is read after the answer
    (up to SERVER_REST_MAX, 64 KiB): the connection is kept for the next
    request. A larger one is not read in full: the request ends and the
    connection is closed, not kept."""
    chunk = 32 * 1024
    data = b"x" * body
    stdin = b"".join(record(STDIN, 1, data[i:i + chunk]) for i in range(0, body, chunk))
    env = cgi_env("/status", "POST", CONTENT_LENGTH=str(body),
                  CONTENT_TYPE="application/octet-stream")
    with own_responder("--config", config) as r, Connection(r.socket) as conn:
        conn.send(request_bytes(1, env, KEEP_CONN) + stdin + record(STDIN, 1))
        try:
            conn.read_to_end(1, time.monotonic() + TIMEOUT)
        except socket.timeout:
            pytest.fail("no end of a /status with a %d-byte body within %.0f s"
                        % (body, TIMEOUT))
        if body <= REST_MAX:
            status_ok(*kept_request(conn, "/status", rid=2))
        else:
            conn.sock.settimeout(TIMEOUT)
            try:
                rec = conn.next_record()
            except ConnectionResetError:
                rec = None
            assert rec is None, "the connection was kept (%r)" % (rec[:2],)


# --- snapshots waiting for a frame ------------------------------------------------

SNAPSHOTS = 30
# /status while SNAPSHOT_WAITERS snapshots wait: it answers in a few ms;
# 2 s is over 100 times that, and far below first_frame_ms (30 s here),
# which a /status queued behind the waiting snapshots would take.
STATUS_WHILE_WAITING = 2.0


def test_waiting_snapshots_are_capped(tmp_path):
    """SNAPSHOTS snapshots of the ingest stream, which has no frame (they
    would wait first_frame_ms, 30 s): the SNAPSHOTS - 8 beyond the eight
    that wait are answered 503 with Retry-After at once (within TIMEOUT;
    a few ms), the eight still wait, /status answers within
    STATUS_WHILE_WAITING; once a frame is posted the eight get it, and
    snapshots no longer wait."""
    config = write_config(tmp_path, first_frame_ms=30000)
    with own_responder("--config", config) as r:
        conns = []
        try:
            for _ in range(SNAPSHOTS):
                conns.append(Connection(r.socket))
                conns[-1].send(request_bytes(1, cgi_env("/snapshot/cam")))
            beyond = SNAPSHOTS - SNAPSHOT_WAITERS
            answered = {}
            deadline = time.monotonic() + TIMEOUT
            while len(answered) < beyond and time.monotonic() < deadline:
                by_socket = {c.sock: c for c in conns if c not in answered}
                ready, _, _ = select.select(list(by_socket), [], [],
                                            max(0.0, deadline - time.monotonic()))
                for c in (by_socket[s] for s in ready):
                    c.read_to_end(1, time.monotonic() + TIMEOUT)
                    answered[c] = parse_response(c.stdout)
            assert len(answered) >= beyond, (
                "%d of %d snapshots answered at once; %d should wait, the others get 503"
                % (len(answered), SNAPSHOTS, SNAPSHOT_WAITERS))
            time.sleep(0.2)   # one answer too many would come now, not in 30 s
            for headers, body in answered.values():
                assert headers["status"].startswith("503"), (headers, body)
                assert int(headers["retry-after"]) >= 1, headers
                assert body.count(b"\n") == 1, body
            waiting = [c for c in conns if c not in answered]
            assert len(waiting) == SNAPSHOT_WAITERS and all(is_open(c) for c in waiting), (
                "%d snapshots answered, %d wait" % (len(answered), len(waiting)))
            t0 = time.monotonic()
            try:
                status_ok(*fcgi_request(r.socket, cgi_env("/status"),
                                        timeout=STATUS_WHILE_WAITING))
            except socket.timeout:
                pytest.fail("/status not answered within %.0f s while %d snapshots wait"
                            % (STATUS_WHILE_WAITING, SNAPSHOT_WAITERS))
            assert time.monotonic() - t0 < STATUS_WHILE_WAITING
            assert all(is_open(c) for c in waiting)
            # a frame: the waiting ones get it, and the next ones do not wait
            frame = jpeg_of("blue")
            headers, body = fcgi_request(r.socket, ingest_env(len(frame)), stdin=frame)
            assert headers["status"][:1] == "2", (headers, body)
            for c in waiting:
                c.read_to_end(1, time.monotonic() + TIMEOUT)
                snapshot_ok(*parse_response(c.stdout))
            for _ in range(SNAPSHOTS // 3):
                snapshot_ok(*fcgi_request(r.socket, cgi_env("/snapshot/cam")))
        finally:
            for c in conns:
                c.close()


# --- ingest: CONTENT_LENGTH and the Bearer scheme -------------------------------------

BAD_LENGTHS = ["abc", "-1", "1x"]


def test_content_length_not_a_number_is_400(config):
    """FastCGI: an ingest whose CONTENT_LENGTH is not a whole number is
    400 naming it (not 413, which says the frame is too large), and
    publishes nothing."""
    frame = jpeg_of("red")
    with own_responder("--config", config) as r:
        for length in BAD_LENGTHS:
            headers, body = fcgi_request(r.socket, ingest_env(length), stdin=frame)
            assert headers["status"].startswith("400"), (length, headers, body)
            assert b"CONTENT_LENGTH" in body and body.count(b"\n") == 1, (length, body)
        headers, body = fcgi_request(r.socket, ingest_env(len(frame)), stdin=frame)
        assert headers["status"][:1] == "2", (headers, body)
        cam = [s for s in json.loads(fcgi_request(r.socket, cgi_env("/status"))[1])["streams"]
               if s["name"] == "cam"][0]
        assert cam["frames_published"] == 1, cam


@pytest.mark.parametrize("length", BAD_LENGTHS)
def test_cgi_content_length_not_a_number_is_400(tmp_path, length):
    """Plain CGI: the same 400."""
    config = write_config(tmp_path)
    r = subprocess.run([BIN, "--config", config, "--bus-dir", str(tmp_path / "bus")],
                       env=cgi_ingest_env(length), input=jpeg_of("red"),
                       capture_output=True, timeout=20)
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"Status: 400"), r.stdout[:300]
    assert b"CONTENT_LENGTH" in body, body


SCHEMES = ["Bearer", "bearer", "BEARER", "bEaReR"]


def test_bearer_scheme_in_any_case(config):
    """The Authorization scheme is case-insensitive (RFC 9110, 11.1): each
    spelling with the token publishes, with a wrong token is 403."""
    with own_responder("--config", config) as r:
        for i, scheme in enumerate(SCHEMES):
            frame = jpeg_of((40 * i, 0, 0))
            headers, body = fcgi_request(r.socket, ingest_env(len(frame), scheme + " " + TOKEN),
                                         stdin=frame)
            assert headers["status"][:1] == "2", (scheme, headers, body)
            headers, body = fcgi_request(r.socket, ingest_env(len(frame), scheme + " x" + TOKEN),
                                         stdin=frame)
            assert headers["status"].startswith("403"), (scheme, headers, body)


def test_bearer_scheme_in_any_case_behind_nginx(tmp_path):
    """The same through nginx, which passes the header as it came."""
    st = start_stack(config=write_config(tmp_path), server="nginx")
    try:
        frame = jpeg_of("green")
        for scheme in ("bearer", "BEARER"):
            status, _, body = st.request("POST", "/ingest/cam", body=frame, headers={
                "Authorization": scheme + " " + TOKEN, "Content-Type": "image/jpeg"})
            assert 200 <= status < 300, (scheme, status, body)
        status, headers, body = st.get("snapshot/cam")
        assert status == 200 and headers["Content-Type"] == "image/jpeg", (status, body[:200])
    finally:
        st.stop()
