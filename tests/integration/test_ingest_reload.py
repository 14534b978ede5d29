"""An ingest in flight while a reload (SIGHUP) turns its stream into another
kind: the new kind's producer takes the stream's bus for as long as it
runs, so the ingest must not wait for it for ever.  It answers at once
(409: the stream changed, nothing published) and the stream shows the new
source's frames, not the late upload."""

import os
import signal
import socket
import subprocess
import time

import pytest
from stacks import start_stack

TOKEN = "ingest-reload-token-0123456789"
BEFORE = """[stream cam]
source = ingest
token = %s
""" % TOKEN
AFTER = """[stream cam]
source = pattern:bars
size = 160x120
"""
# How long the answer may take once the body is complete.  Without the
# fix there is none at all (the publish waits on the producer's lock for
# ever); with it, at most the bus's 2 s lock wait.  10 s leaves a 3x slower
# machine room and still tells the two apart.
ANSWER_TIMEOUT = 10


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def stack(request, tmp_path):
    config = tmp_path / "cam.ini"
    config.write_text(BEFORE)
    with start_stack(config=config, workers=request.param) as st:
        yield st.port, config, st.pid()


def http_get(port, path, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % path.encode())
    data = b""
    while True:
        d = s.recv(1 << 16)
        if not d:
            break
        data += d
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def a_jpeg():
    """A small real JPEG to upload (ffmpeg is a test dependency)."""
    r = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                        "color=c=red:s=64x48", "-frames:v", "1", "-f", "mjpeg", "-"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(b"\xff\xd8"), r.stderr
    return r.stdout


def test_ingest_in_flight_when_its_stream_changes_kind(stack):
    port, config, pid = stack
    jpeg = a_jpeg()
    half = len(jpeg) // 2

    s = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT)
    s.sendall(b"POST /ingest/cam HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Authorization: Bearer %s\r\nContent-Type: image/jpeg\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (TOKEN.encode(), len(jpeg)))
    s.sendall(jpeg[:half])
    time.sleep(0.5)  # the request reaches the responder with half its body

    config.write_text(AFTER)
    os.kill(pid, signal.SIGHUP)
    # a viewer of the new kind: its producer now holds the stream's bus
    deadline = time.time() + 10
    while True:
        status, body = http_get(port, "/snapshot/cam")
        if status == 200:
            break
        assert time.time() < deadline, "no bars frame after the reload: %d" % status
        time.sleep(0.2)

    s.sendall(jpeg[half:])
    start = time.time()
    answer = b""
    try:
        while True:
            d = s.recv(1 << 16)
            if not d:
                break
            answer += d
    except socket.timeout:
        pytest.fail("no answer %d s after the body was complete: %r" % (ANSWER_TIMEOUT, answer))
    finally:
        s.close()
    assert time.time() - start < ANSWER_TIMEOUT
    status_line = answer.split(b"\r\n", 1)[0]
    assert b" 409 " in status_line, answer
    assert b"changed" in answer and b"not published" in answer, answer

    # what viewers get is the new source's, never the late upload
    status, body = http_get(port, "/snapshot/cam")
    assert status == 200 and body != jpeg
