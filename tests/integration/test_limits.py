"""Limits and slow clients: a viewer that stops reading is dropped after
stall_ms without slowing anyone else; an ingest body that never arrives is
answered 408 after ingest_ms; query length, per-stream viewer limit, stream
count."""

import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import json

import pytest
from stacks import free_port

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
    port = free_port()
    r = subprocess.run(["make", "-s", "-C", TOP, "start", "PORT=%d" % port,
                        "CONFIG=%s" % config], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        yield port
    finally:
        subprocess.run(["make", "-s", "-C", TOP, "stop", "PORT=%d" % port],
                       capture_output=True, timeout=60)


def status(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/status" % port, timeout=5) as r:
        return json.load(r)


def viewers_of(port, name):
    return [s for s in status(port)["streams"] if s["name"] == name][0]["viewers"]


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def count_parts(port, seconds, out):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /stream/bars HTTP/1.0\r\n\r\n")
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        d = s.recv(1 << 16)
        if not d:
            break
        n += d.count(b"X-Timestamp: ")
    s.close()
    out.append(n / seconds)


def test_stalled_viewers_are_dropped_and_slow_nobody(stack):
    # warm up the producer
    assert get(stack, "/snapshot/bars")[0] == 200
    baseline = viewers_of(stack, "bars")
    stalled = []
    for _ in range(5):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", stack))
        s.sendall(b"GET /stream/bars HTTP/1.0\r\n\r\n")
        stalled.append(s)  # never read
    rates = []
    readers = [threading.Thread(target=count_parts, args=(stack, 3, rates)) for _ in range(3)]
    for t in readers:
        t.start()
    for t in readers:
        t.join(10)
    assert len(rates) == 3 and min(rates) >= 25, rates
    # nginx stops reading from the responder once its buffers for the client
    # fill; the responder's write then makes no progress for stall_ms
    deadline = time.time() + 20
    while time.time() < deadline and viewers_of(stack, "bars") > baseline:
        time.sleep(0.25)
    assert viewers_of(stack, "bars") == baseline
    for s in stalled:
        s.close()


def test_slow_ingest_body_gets_408(stack):
    s = socket.create_connection(("127.0.0.1", stack), timeout=10)
    s.sendall(b"POST /ingest/cam HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
              b"Content-Type: image/jpeg\r\nContent-Length: 5000\r\n\r\n\xff\xd8"
              % TOKEN.encode())
    t0 = time.monotonic()
    reply = s.recv(4096)
    elapsed = time.monotonic() - t0
    s.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert b"ingest_ms" in reply
    assert 0.8 < elapsed < 5, elapsed


def test_query_length_limit(stack):
    status, _, body = get(stack, "/stream/bars?_=" + "x" * 1100)
    assert status == 400 and b"longer than 1024" in body
    status, _, _ = get(stack, "/stream/bars?frames=1&_=" + "x" * 900)
    assert status == 200


def test_per_stream_viewer_limit(stack):
    held = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", stack), timeout=5)
        s.sendall(b"GET /stream/few HTTP/1.0\r\n\r\n")
        assert s.recv(64).startswith(b"HTTP/1.1 200")
        held.append(s)
    status, headers, body = get(stack, "/stream/few")
    assert status == 503 and headers.get("Retry-After") == "5", (status, headers)
    assert b"max_viewers 2" in body
    held.pop().close()
    deadline = time.time() + 5
    while time.time() < deadline:
        status, _, _ = get(stack, "/stream/few?frames=1")
        if status == 200:
            break
        time.sleep(0.2)
    assert status == 200
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
