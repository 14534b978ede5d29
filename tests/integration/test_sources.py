"""Every source end to end through nginx: dir:, raw: (FIFO), mjpeg: (FIFO),
and ingest (POST), with every ingest error.  One stack with its own config
file is started for the module, and a second one for sources fed bad frames
and bad files (and a device)."""

import io
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import mjpeg
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


class FramesStack(Stack):
    """A stack whose tests read whole answers and counted stream parts."""

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


class SourcesStack(FramesStack):
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

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with SourcesStack(str(tmp_path_factory.mktemp("sources"))).start() as st:
        yield st


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


INGEST_ERRORS = [
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
]


# Ids by the expected answer: the bodies (up to frame_bytes_max) would make
# node ids too long for the environment of a subprocess.
@pytest.mark.parametrize("path,headers,data,method,code,words", INGEST_ERRORS,
                         ids=["%d %s" % (e[4], e[5]) for e in INGEST_ERRORS])
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


# --- frames that must never reach a viewer, from every source kind ---------
#
# A JPEG not encoded by the responder reaches viewers only when it decodes
# without error or warning and is at most 8192x8192 (README, Limits).  Each
# bad kind below is built from a real JPEG.

def noisy_jpeg(size=(160, 120), seed=7):
    """A JPEG of a noise-like picture: long scan data, every byte of it
    matters."""
    w, h = size
    pixels = bytes(((i * 7919) ^ (i >> 5) ^ seed * 31) & 0xFF for i in range(w * h * 3))
    out = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(out, format="JPEG", quality=85)
    return out.getvalue()


def segment_at(jpeg, code):
    """Offset of the first marker segment with this code, walking the
    segments from SOI."""
    at = 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF:
        if jpeg[at + 1] == code:
            return at
        at += 2 + int.from_bytes(jpeg[at + 2:at + 4], "big")
    raise AssertionError("no marker FF%02X" % code)


def scan_data_at(jpeg):
    sos = segment_at(jpeg, 0xDA)
    return sos + 2 + int.from_bytes(jpeg[sos + 2:sos + 4], "big")


def declared_65500():
    """A small, clean JPEG whose frame header says 65500x65500."""
    j = bytearray(jpeg_of("red", (64, 48)))
    sof = segment_at(j, 0xC0)
    j[sof + 5:sof + 9] = (65500).to_bytes(2, "big") * 2
    return bytes(j)


def wider_than_limit():
    """A real JPEG of 8200x8: decodes cleanly, one side over the limit."""
    out = io.BytesIO()
    Image.new("L", (8200, 8), 128).save(out, format="JPEG")
    return out.getvalue()


def truncated_with_eoi():
    j = noisy_jpeg(seed=1)
    return j[:len(j) // 2] + b"\xff\xd9"


def no_scan_data():
    j = noisy_jpeg(seed=2)
    return j[:scan_data_at(j)] + b"\xff\xd9"


def garbage_scan():
    j = bytearray(noisy_jpeg(seed=3))
    x = 12345
    for i in range(scan_data_at(j), len(j) - 2):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        j[i] = (x >> 24) if (x >> 24) != 0xFF else 0x5A
    return bytes(j)


# (name, body, what the refusal says)
BAD_JPEGS = [
    ("declared-65500", declared_65500(), "65500x65500 pixels, over the 8192x8192 limit"),
    ("wider-8200", wider_than_limit(), "8200x8 pixels, over the 8192x8192 limit"),
    ("truncated-eoi", truncated_with_eoi(), "corrupt JPEG data"),
    ("no-scan-data", no_scan_data(), "corrupt JPEG data"),
    ("garbage-scan", garbage_scan(), "corrupt JPEG data"),
]


def ffmpeg_decode_errors(jpeg):
    """What ffmpeg says, at level error, decoding this JPEG."""
    r = subprocess.run(["ffmpeg", "-v", "error", "-f", "jpeg_pipe", "-i", "-", "-f", "null",
                        "-"], input=jpeg, capture_output=True, timeout=30)
    return r.stderr.decode(errors="replace").strip()


def test_bad_jpegs_are_what_they_claim():
    """The bad frames are bad for the reason named: their frame headers
    declare the sizes named, and ffmpeg (a client, with a decoder of its
    own) reports errors on the corrupt ones and none on a good one.  (PIL
    is no judge: it fills what it cannot decode with grey, silently.)"""
    for name, body, words in BAD_JPEGS:
        assert body[:2] == b"\xff\xd8" and body[-2:] == b"\xff\xd9", name
        if "limit" in words:
            sof = segment_at(body, 0xC0)
            size = (int.from_bytes(body[sof + 7:sof + 9], "big"),
                    int.from_bytes(body[sof + 5:sof + 7], "big"))
            assert ("%dx%d pixels" % size) in words, (name, size)
        else:
            assert ffmpeg_decode_errors(body), name
    assert not ffmpeg_decode_errors(noisy_jpeg())


@pytest.mark.parametrize("name,body,words", BAD_JPEGS, ids=[b[0] for b in BAD_JPEGS])
def test_ingest_refuses_bad_jpeg_and_changes_nothing(stack, name, body, words):
    good = jpeg_of((200, 30, 10), (40, 30))
    status, _, reply = stack.fetch("ingest/cam", AUTH, good, "POST")
    assert status == 200, reply
    status, hdrs, reply = stack.fetch("ingest/cam", AUTH, body, "POST")
    assert status == 415, reply
    assert hdrs["Content-Type"].startswith("text/plain")
    assert reply.endswith(b"\n") and reply.count(b"\n") == 1
    assert words.encode() in reply, reply
    status, _, snap = stack.get("snapshot/cam")
    assert status == 200 and snap == good


def test_ingest_refuses_bad_jpeg_behind_every_server(stack_factory, tmp_path):
    """The same refusal in every deployment mode (FastCGI behind nginx,
    lighttpd, mod_fcgid, mod_proxy_fcgi; plain CGI under Apache)."""
    config = tmp_path / "ingest.ini"
    config.write_text("[stream cam]\nsource = ingest\ntoken = %s\n" % TOKEN)
    st = stack_factory(str(config))
    good = jpeg_of("blue", (40, 30))
    status, _, reply = st.request("POST", "ingest/cam", good, AUTH)
    assert status == 200, reply
    for name, body, words in (BAD_JPEGS[0], BAD_JPEGS[2]):
        status, _, reply = st.request("POST", "ingest/cam", body, AUTH)
        assert status == 415 and words.encode() in reply, (name, status, reply)
    status, _, snap = st.get("snapshot/cam")
    assert status == 200 and snap == good


class BadStack(FramesStack):
    """A stack of sources fed bad frames and bad files:

    baddir  dir: with two good frames (one through a symlink) among files
            that can never be played: one of each problem
    badmj   mjpeg: FIFO, fed good and bad frames in turn
    zero    raw:/dev/zero at 10 fps (a device: nothing paces it but us)
    """

    GOOD_NAMES = ["00-red.jpg", "01-blue-link.jpg"]

    def __init__(self, tmp):
        self.tmp = tmp
        self.dir = os.path.join(tmp, "bad")
        os.mkdir(self.dir)
        d = self.dir
        self.good = [jpeg_of("red"), jpeg_of("blue")]
        with open(os.path.join(d, "00-red.jpg"), "wb") as f:
            f.write(self.good[0])
        outside = os.path.join(tmp, "blue-elsewhere.jpg")
        with open(outside, "wb") as f:
            f.write(self.good[1])
        os.symlink(outside, os.path.join(d, "01-blue-link.jpg"))  # followed
        self.bad_names = []

        def bad(name):
            self.bad_names.append(name)
            return os.path.join(d, name)

        for i in range(40):
            os.symlink(os.path.join(tmp, "nowhere-%d" % i), bad("dangling-%02d.jpg" % i))
        os.symlink("loop.jpg", bad("loop.jpg"))
        os.mkdir(bad("directory.jpg"))
        # opened without O_NONBLOCK, a FIFO held the source forever
        os.mkfifo(bad("fifo.jpg"))
        os.symlink("/dev/zero", bad("device-link.jpg"))
        with open(bad("huge.jpg"), "wb") as f:
            f.write(b"\xff\xd8" + b"\0" * (FRAME_BYTES_MAX + 100) + b"\xff\xd9")
        for name, body, _ in BAD_JPEGS:
            with open(bad(name + ".jpg"), "wb") as f:
                f.write(body)
        # unreadable; as root it is read, and refused as a bad JPEG instead
        with open(bad("unreadable.jpg"), "wb") as f:
            f.write(truncated_with_eoi())
        os.chmod(os.path.join(d, "unreadable.jpg"), 0)
        self.mjpeg_fifo = os.path.join(tmp, "bad.fifo")
        os.mkfifo(self.mjpeg_fifo)
        config = os.path.join(tmp, "bad.ini")
        with open(config, "w") as f:
            f.write(
                "[server]\nframe_bytes_max = %d\nidle_pause_s = 1\n\n"
                "[stream baddir]\nsource = dir:%s\nfps = 30\n\n"
                "[stream badmj]\nsource = mjpeg:%s\n\n"
                "[stream zero]\nsource = raw:/dev/zero\nformat = gray\nsize = 640x480\n"
                "fps = 10\n"
                % (FRAME_BYTES_MAX, self.dir, self.mjpeg_fifo))
        super().__init__(free_port(), config=config)


@pytest.fixture(scope="module")
def bad_stack(tmp_path_factory):
    with BadStack(str(tmp_path_factory.mktemp("badsources"))).start() as st:
        yield st


def test_dir_bad_files_one_line_each_good_ones_served(bad_stack):
    """Many rounds over one file of each problem: every bad file is one
    log line, whatever its problem and however many rounds meet it; only
    the good files (a symlink to one included) are served."""
    st = bad_stack
    # 2 good files a round at 30 fps: 60 parts are about 30 rounds
    parts = st.parts("baddir", 60, timeout=30)
    assert set(parts) == set(st.good), [len(p) for p in parts if p not in st.good]
    lines = [l for l in st.log().splitlines() if "source baddir:" in l]
    # one line per bad file over all the rounds, whatever it says
    about_bad = [l for l in lines if any("/" + n in l for n in st.bad_names)]
    assert len(about_bad) == len(st.bad_names), (len(about_bad), about_bad[:10])
    for name in st.bad_names:
        mine = [l for l in lines if "/%s skipped" % name in l]
        assert len(mine) == 1, (name, mine)
    for name in st.GOOD_NAMES:
        assert not [l for l in lines if name in l], name
    # nothing else about the directory but the producer's own lines
    skipped = [l for l in lines if "skipped" in l]
    assert len(skipped) == len(st.bad_names), skipped[:20]
    # the reasons say what is wrong
    text = "\n".join(lines)
    assert "loop.jpg skipped: stat: Too many levels of symbolic links" in text
    assert "dangling-00.jpg skipped: stat: No such file or directory" in text
    assert "directory.jpg skipped: not a regular file" in text
    assert "fifo.jpg skipped: not a regular file" in text
    assert "device-link.jpg skipped: not a regular file" in text
    assert "huge.jpg skipped: %d bytes, over frame_bytes_max" % (FRAME_BYTES_MAX + 104) in text
    for name, _, words in BAD_JPEGS:
        line = [l for l in lines if "/%s.jpg skipped: " % name in l][0]
        assert words in line, line


def test_mjpeg_pipe_skips_bad_frames(bad_stack):
    """Good and bad frames in turn through a FIFO: viewers get the good
    ones only, and the log names what was dropped (rate-limited lines)."""
    st = bad_stack
    red, blue = st.good
    sequence = b"".join([red] + [b for _, b, _ in BAD_JPEGS] + [blue] +
                        [b for _, b, _ in BAD_JPEGS])
    w = FifoWriter(st.mjpeg_fifo, sequence, interval=0.1)
    w.start()
    try:
        parts = st.parts("badmj", 40, timeout=30)
    finally:
        w.stop.set()
        w.join(5)
    assert set(parts) == {red, blue}, [len(p) for p in parts if p not in (red, blue)]
    lines = [l for l in st.log().splitlines() if "source badmj:" in l and "invalid JPEG" in l]
    assert lines, "no line about the invalid JPEGs"


def producer_read_bytes(pid):
    """Bytes the process has read (rchar of /proc/PID/io): what the
    producer pulled from /dev/zero, counted without timing anything."""
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/%d/io" % pid)


def test_device_source_paced_at_fps_and_paused_without_viewers(bad_stack):
    """raw:/dev/zero at fps 10: frames are published at most at fps while
    watched, and the device is not read at all once nobody watches.

    Before, a device was read as fast as it gives bytes (~1,100 frames a
    second at fps 30 here) and never paused."""
    st = bad_stack
    window = 3.0
    with mjpeg.Viewer(st.port, "/stream/zero", timeout=10) as v:
        assert v.status == 200
        v.reader.next_part()
        before = st.stream("zero")["frames_published"]
        t0 = time.monotonic()
        deadline = t0 + window
        while time.monotonic() < deadline:
            v.reader.next_part()
        published = st.stream("zero")["frames_published"] - before
        took = time.monotonic() - t0
    # At most fps x the time, + 2 for the edges of the window; a slow
    # machine publishes fewer, never more.  Unpaced: thousands.
    assert 1 <= published <= 10 * took + 2, (published, took)
    # No viewer: after idle_pause_s (1 s, and 2 s of margin) the producer
    # pauses; a paused source reads nothing.  Paced but read on, 640x480
    # gray at 10 fps would be 3 MB a second; the margin (1 MB in 2 s)
    # leaves room for the responder's other reads (status requests).
    time.sleep(3.0)
    pid = st.stream("zero")["producer_pid"]
    assert pid > 0
    published = st.stream("zero")["frames_published"]
    read0 = producer_read_bytes(pid)
    time.sleep(2.0)
    read = producer_read_bytes(pid) - read0
    assert st.stream("zero")["frames_published"] == published
    assert read < 1 << 20, "%d bytes read in 2 s without viewers" % read
