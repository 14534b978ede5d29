"""Limits and slow clients: a viewer that stops reading is dropped after
stall_ms without slowing anyone else; an ingest body that never arrives is
answered 408 after ingest_ms; query length, per-stream viewer limit, stream
count."""

import os
import socket
import subprocess
import threading
import time

import pytest
from stacks import TOP, running_stack, wait_until

TOKEN = "limits-token-0123456789abcdef"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    config = tmp / "limits.ini"
    config.write_text(
        "[server]\nstall_ms = 1000\ningest_ms = 1000\n\n"
        "[stream bars]\nsource = pattern:bars\n\n"
        "[stream few]\nsource = pattern:redblue\nmax_viewers = 2\n\n"
        "[stream cam]\nsource = ingest\ntoken = %s\n" % TOKEN)
    with running_stack(config=config) as st:
        yield st


def read_parts(port, seconds, out):
    """Reads /stream/bars for SECONDS; appends the arrival times
    (time.monotonic()) of the parts to OUT, one list per reader."""
    times = []
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET /stream/bars HTTP/1.0\r\n\r\n")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            d = s.recv(1 << 16)
            if not d:
                break
            times += [time.monotonic()] * d.count(b"X-Timestamp: ")
    finally:
        s.close()
    out.append(times)


# A stall shows as a gap of stall_ms (1 s here) at least: a write that
# blocks for it holds up whatever waits behind it.  Frames of bars come
# every 33 ms, resends of a stalled source every 200 ms: a gap this long
# is the stall, not a slow machine (a 3x slower one still sends a part
# every 100-600 ms).
GAP_MAX_S = 0.7
# Each reader gets most frames the producer published meanwhile (measured
# in the same window, so a slow producer lowers both alike); a reader held
# up by the stalled viewers for stall_ms would miss a third of them.
DELIVERED_MIN = 0.8


def test_stalled_viewers_are_dropped_and_slow_nobody(stack):
    # warm up the producer
    assert stack.get("snapshot/bars")[0] == 200
    baseline = stack.viewers("bars")
    stalled = []
    for _ in range(5):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", stack.port))
        s.sendall(b"GET /stream/bars HTTP/1.0\r\n\r\n")
        stalled.append(s)  # never read
    try:
        arrivals = []
        readers = [threading.Thread(target=read_parts, args=(stack.port, 3, arrivals))
                   for _ in range(3)]
        published = stack.stream("bars")["frames_published"]
        for t in readers:
            t.start()
        for t in readers:
            t.join(10)
        published = stack.stream("bars")["frames_published"] - published
        assert len(arrivals) == 3 and published > 0, (arrivals, published)
        got = [len(a) for a in arrivals]
        gaps = [max(b - a for a, b in zip(t, t[1:])) for t in arrivals if len(t) > 1]
        print("stalled viewers: readers got %s of %d published, longest gaps %s" % (
            got, published, ["%.3f" % g for g in gaps]))
        assert min(got) >= DELIVERED_MIN * published, (got, published)
        assert len(gaps) == 3 and max(gaps) < GAP_MAX_S, gaps
        # nginx stops reading from the responder once its buffers for the
        # client fill; the responder's write then makes no progress for
        # stall_ms and it drops the viewer
        assert wait_until(lambda: stack.viewers("bars") <= baseline, 20), \
            (stack.viewers("bars"), baseline)
    finally:
        for s in stalled:
            s.close()


def test_slow_ingest_body_gets_408(stack):
    s = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
    s.sendall(b"POST /ingest/cam HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
              b"Content-Type: image/jpeg\r\nContent-Length: 5000\r\n\r\n\xff\xd8"
              % TOKEN.encode())
    t0 = time.monotonic()
    reply = s.recv(4096)
    elapsed = time.monotonic() - t0
    s.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert b"ingest_ms" in reply
    # ingest_ms = 1000: not before it (0.2 s for the clocks' rounding), and
    # well before the socket's own 10 s (a timer that never fires would
    # leave the body to nginx's client_body_timeout, 60 s)
    assert 0.8 < elapsed < 8, elapsed


def test_query_length_limit(stack):
    status, _, body = stack.get("/stream/bars?_=" + "x" * 1100)
    assert status == 400 and b"longer than 1024" in body
    status, _, _ = stack.get("/stream/bars?frames=1&_=" + "x" * 900)
    assert status == 200


def test_per_stream_viewer_limit(stack):
    held = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", stack.port), timeout=5)
        s.sendall(b"GET /stream/few HTTP/1.0\r\n\r\n")
        assert s.recv(64).startswith(b"HTTP/1.1 200")
        held.append(s)
    try:
        status, headers, body = stack.get("/stream/few")
        assert status == 503 and headers.get("Retry-After") == "5", (status, dict(headers))
        assert b"max_viewers 2" in body
        held.pop().close()
        # the slot comes free once the responder noticed the departure
        assert wait_until(lambda: stack.get("/stream/few?frames=1")[0] == 200, 10, 0.2)
    finally:
        for s in held:
            s.close()


def test_stream_count_limit(tmp_path):
    config = tmp_path / "many.ini"
    config.write_text("".join("[stream s%d]\nsource = pattern:bars\n" % i for i in range(65)))
    r = subprocess.run([os.path.join(TOP, "fcgi", "mjpeg-fcgi"), "--config", str(config),
                        "--listen", "unix:%s" % (tmp_path / "s.sock")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "too many streams (at most 64)" in r.stderr and "many.ini:" in r.stderr
