"""Ten streams at once, and producers that pause when nobody watches."""

import io
import json
import os
import subprocess
import threading
import time
import urllib.request

import pytest
from PIL import Image
from stacks import free_port

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZES = [(160, 120), (320, 240), (640, 480), (256, 256), (200, 100),
         (96, 96), (480, 270), (64, 48), (800, 600), (128, 512)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    config = tmp_path_factory.mktemp("streams") / "ten.ini"
    config.write_text("[server]\nidle_pause_s = 1\n\n" + "".join(
        "[stream s%d]\nsource = pattern:%s\nsize = %dx%d\nfps = %d\n\n"
        % (i, "bars" if i % 3 else "redblue", w, h, 5 + 5 * i)
        for i, (w, h) in enumerate(SIZES)))
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


def read_parts(port, name, count, out):
    with urllib.request.urlopen("http://127.0.0.1:%d/stream/%s?frames=%d"
                                % (port, name, count), timeout=20) as r:
        body = r.read()
    sizes = set()
    for chunk in body.split(b"Content-Length: ")[1:]:
        n = int(chunk[:chunk.index(b"\r\n")])
        jpeg = chunk[chunk.index(b"\r\n\r\n") + 4:][:n]
        sizes.add(Image.open(io.BytesIO(jpeg)).size)
    out[name] = (body.count(b"Content-Length: "), sizes)


def test_ten_streams_at_once(stack):
    out = {}
    threads = [threading.Thread(target=read_parts, args=(stack, "s%d" % i, 6, out))
               for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i, size in enumerate(SIZES):
        assert out["s%d" % i] == (6, {size}), (i, out.get("s%d" % i))
    doc = status(stack)
    assert len(doc["streams"]) == 10
    for s in doc["streams"]:
        assert s["frames_encoded"] == s["frames_published"] > 0
        assert s["producer_pid"] > 0


def responder_ticks(port):
    with open(os.path.join(TOP, "run", str(port), "mjpeg-fcgi.pid")) as f:
        pid = int(f.read())
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, clock ticks


def test_producers_pause_without_viewers(stack):
    read_parts(stack, "s9", 3, {})  # s9: 50 fps while watched
    time.sleep(2.5)                  # idle_pause_s = 1, plus margin
    before = {s["name"]: s["frames_published"] for s in status(stack)["streams"]}
    ticks = responder_ticks(stack)
    time.sleep(3)
    after = {s["name"]: s["frames_published"] for s in status(stack)["streams"]}
    used = responder_ticks(stack) - ticks
    assert after == before, (before, after)
    # 3 s is 300 ticks of one core; paused, the process uses (almost) none
    assert used <= 3, used
    # and a new viewer wakes the producer at once
    t0 = time.time()
    out = {}
    read_parts(stack, "s9", 2, out)
    assert out["s9"][0] == 2 and time.time() - t0 < 2
