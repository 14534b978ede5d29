"""Every source end to end through nginx: dir:, raw: (FIFO), mjpeg: (FIFO),
and ingest (POST), with every ingest error.  One stack with its own config
file is started for the module."""

import io
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from PIL import Image
from stacks import Stack, free_port, wait_until

TOKEN = "s3cret-token-0123456789abcdef"
RAW_W, RAW_H = 64, 48
FRAME_BYTES_MAX = 200000


def jpeg_of(colour, size=(96, 64), quality=90):
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def centre(jpeg):
    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    return img.size, img.getpixel((img.size[0] // 2, img.size[1] // 2))


def is_red(p):
    return p[0] > 200 and p[1] < 60 and p[2] < 60


def is_blue(p):
    return p[0] < 60 and p[1] < 60 and p[2] > 200


class SourcesStack(Stack):
    """The stack with a config of every source kind, its frame files and
    FIFOs in TMP."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.dir = os.path.join(tmp, "frames")
        os.mkdir(self.dir)
        self.files = []
        for i, colour in enumerate(["red", "green", "blue"]):
            data = jpeg_of(colour)
            path = os.path.join(self.dir, "%02d.jpg" % i)
            with open(path, "wb") as f:
                f.write(data)
            self.files.append(data)
        with open(os.path.join(self.dir, "03-broken.jpg"), "wb") as f:
            f.write(b"\xff\xd8 this is not a JPEG")
        self.raw_fifo = os.path.join(tmp, "raw.fifo")
        self.mjpeg_fifo = os.path.join(tmp, "mjpeg.fifo")
        os.mkfifo(self.raw_fifo)
        os.mkfifo(self.mjpeg_fifo)
        config = os.path.join(tmp, "sources.ini")
        with open(config, "w") as f:
            f.write(
                "[server]\nframe_bytes_max = %d\n\n"
                "[stream files]\nsource = dir:%s\nfps = 10\n\n"
                "[stream rawcam]\nsource = raw:%s\nformat = rgb24\nsize = %dx%d\n\n"
                "[stream mj]\nsource = mjpeg:%s\n\n"
                "[stream cam]\nsource = ingest\ntoken = %s\n\n"
                "[stream demo]\nsource = pattern:redblue\n"
                % (FRAME_BYTES_MAX, self.dir, self.raw_fifo, RAW_W, RAW_H,
                   self.mjpeg_fifo, TOKEN))
        super().__init__(free_port(), config=config)

    def fetch(self, path, headers=None, data=None, method=None, timeout=10):
        """urllib's answer to one request: (status, headers dict, body)."""
        req = urllib.request.Request(self.base + path, data=data,
                                     headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def parts(self, name, count, timeout=15):
        """The bodies of the first `count` parts of stream/NAME?frames=count."""
        status, headers, body = self.fetch("stream/%s?frames=%d" % (name, count),
                                         timeout=timeout)
        assert status == 200, body
        boundary = headers["Content-Type"].split("boundary=")[1].encode()
        chunks = body.split(b"--" + boundary)
        assert chunks[0] == b"" and chunks[-1] == b"--\r\n"
        out = []
        for chunk in chunks[1:-1]:
            head, _, rest = chunk.partition(b"\r\n\r\n")
            length = int([l for l in head.split(b"\r\n")
                          if l.startswith(b"Content-Length: ")][0].split(b": ")[1])
            out.append(rest[:length])
            assert rest[length:] == b"\r\n"
        assert len(out) == count
        return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    st = SourcesStack(str(tmp_path_factory.mktemp("sources"))).start()
    try:
        yield st
    finally:
        st.stop()


def test_dir_passes_files_through_in_order_and_skips_invalid(stack):
    parts = stack.parts("files", 8)
    # every part is one of the files, byte for byte: no re-encoding
    for p in parts:
        assert p in stack.files
    # consecutive distinct frames follow the files' name order
    distinct = [stack.files.index(p) for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]]
    for a, b in zip(distinct, distinct[1:]):
        assert b == (a + 1) % 3
    log = stack.log()
    assert log.count("03-broken.jpg skipped") == 1, log


class FifoWriter(threading.Thread):
    """Writes frames to a FIFO until stopped, then closes it."""

    def __init__(self, path, frame, interval=0.05):
        super().__init__(daemon=True)
        self.path, self.frame, self.interval = path, frame, interval
        self.stop = threading.Event()

    def run(self):
        with open(self.path, "wb", buffering=0) as f:
            while not self.stop.is_set():
                f.write(self.frame)
                time.sleep(self.interval)


def wait_colour(stack, name, check, timeout=15):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        status, _, body = stack.fetch("snapshot/" + name)
        if status == 200:
            last = centre(body)
            if check(last[1]):
                return last
        time.sleep(0.1)
    raise AssertionError("stream %s never showed the colour; last %r" % (name, last))


def test_raw_fifo_encodes_and_survives_writer_restart(stack):
    red = bytes([255, 0, 0]) * (RAW_W * RAW_H)
    blue = bytes([0, 0, 255]) * (RAW_W * RAW_H)
    w = FifoWriter(stack.raw_fifo, red)
    w.start()
    try:
        size, _ = wait_colour(stack, "rawcam", is_red)
        assert size == (RAW_W, RAW_H)
    finally:
        w.stop.set()
        w.join(5)
    # the writer went away: the FIFO is reopened and a new writer is read
    w = FifoWriter(stack.raw_fifo, blue)
    w.start()
    try:
        wait_colour(stack, "rawcam", is_blue)
        for p in stack.parts("rawcam", 3):
            assert centre(p)[0] == (RAW_W, RAW_H)
    finally:
        w.stop.set()
        w.join(5)


def test_mjpeg_fifo_from_ffmpeg_passes_through(stack):
    ff = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i",
         "testsrc=size=160x120:rate=10", "-t", "20", "-f", "mjpeg", "-q:v", "5",
         "-y", stack.mjpeg_fifo],
        stdin=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: stack.fetch("snapshot/mj")[0] == 200, 15, 0.2), \
            "no frame from ffmpeg's FIFO within 15 s"
        parts = stack.parts("mj", 5)
        for p in parts:
            assert p[:2] == b"\xff\xd8" and p[-2:] == b"\xff\xd9"
            assert centre(p)[0] == (160, 120)
        assert len(set(parts)) >= 2  # testsrc moves
    finally:
        ff.terminate()
        ff.wait(10)


AUTH = {"Authorization": "Bearer " + TOKEN}


def test_ingest_publishes_jpeg_and_raw(stack):
    red = jpeg_of("red", (80, 60))
    status, _, body = stack.fetch("ingest/cam", AUTH, red, "POST")
    assert status == 200, body
    status, headers, snap = stack.fetch("snapshot/cam")
    assert status == 200 and snap == red  # passed through as posted

    raw = bytes([0, 0, 255]) * (32 * 16)
    status, _, body = stack.fetch("ingest/cam?format=rgb24&width=32&height=16", AUTH, raw,
                                "POST")
    assert status == 200, body
    status, _, snap = stack.fetch("snapshot/cam")
    size, pixel = centre(snap)
    assert size == (32, 16) and is_blue(pixel)


@pytest.mark.parametrize("path,headers,data,method,code,words", [
    ("ingest/cam", {}, b"x", "POST", 401, "Authorization"),
    ("ingest/cam", {"Authorization": "Bearer wrong-token-0123456789"}, b"x", "POST", 403,
     "wrong token"),
    ("ingest/cam", {"Authorization": "Basic dXNlcjpwYXNz"}, b"x", "POST", 403, "wrong token"),
    ("ingest/cam", AUTH, b"not a jpeg at all", "POST", 415, "not a JPEG"),
    ("ingest/cam", AUTH, jpeg_of("green")[:-2], "POST", 415, "truncated"),
    ("ingest/cam", AUTH, b"\xff\xd8" + b"\0" * (FRAME_BYTES_MAX + 10) + b"\xff\xd9", "POST",
     413, "frame_bytes_max"),
    ("ingest/cam?format=rgb24&width=32&height=16", AUTH, b"\0" * 100, "POST", 415,
     "needs 1536 bytes"),
    ("ingest/cam?format=rgb24&width=32&height=16", AUTH, b"\0" * 5000, "POST", 415,
     "larger than"),
    ("ingest/cam?format=rgb48&width=32&height=16", AUTH, b"\0", "POST", 400, "format"),
    ("ingest/cam?format=rgb24&width=32", AUTH, b"\0", "POST", 400, "height"),
    ("ingest/cam?width=0&height=2&format=gray", AUTH, b"\0", "POST", 400, "width"),
    ("ingest/demo", AUTH, jpeg_of("red"), "POST", 403, "not from POST"),
    ("ingest/nosuch", AUTH, jpeg_of("red"), "POST", 404, "unknown stream"),
    ("ingest/cam", AUTH, None, "GET", 405, "not allowed"),
])
def test_ingest_errors_change_nothing(stack, path, headers, data, method, code, words):
    good = jpeg_of((10, 200, 30), (40, 30))
    status, _, body = stack.fetch("ingest/cam", AUTH, good, "POST")
    assert status == 200, body
    status, hdrs, body = stack.fetch(path, headers, data, method)
    assert status == code, body
    assert hdrs["Content-Type"].startswith("text/plain")
    assert body.endswith(b"\n") and body.count(b"\n") == 1
    assert words.encode() in body, body
    if code == 405:
        assert hdrs["Allow"] == "POST"
    status, _, snap = stack.fetch("snapshot/cam")
    assert status == 200 and snap == good  # the rejected frame changed nothing


def test_token_never_shown(stack):
    for path in ("status", "metrics"):
        status, _, body = stack.fetch(path)
        assert status == 200
        assert TOKEN.encode() not in body
    assert TOKEN not in stack.log()
