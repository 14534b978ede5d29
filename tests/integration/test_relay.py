"""The http:/https: relay source against servers we did not write: a camera
emulator with the layouts real cameras use (camera.py), ffmpeg's own HTTP
server, nginx serving a JPEG file that a script replaces, and another
mjpeg-fcgi stack.  Every part a viewer of the relay gets must decode
(Chromium ends a stream on one undecodable part)."""

import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
from camera import COLOURS, Camera
from mjpeg import Viewer, Watcher, decode_jpeg
from stacks import free_port, running_stack, start_stack, wait_until

LAYOUTS = ["/std", "/nolength", "/quoted", "/noleading", "/lf", "/octet", "/stamped"]
# Waits for things that happen at once on an idle machine; generous so a
# machine under two busy loops and ASan still passes.
SETTLE_S = 15


def colour_index(jpeg):
    """The index in COLOURS of a solid-colour frame (nearest colour)."""
    img = decode_jpeg(jpeg).convert("RGB")
    px = img.getpixel((img.width // 2, img.height // 2))
    return min(range(len(COLOURS)),
               key=lambda i: sum((a - b) ** 2 for a, b in zip(px, COLOURS[i])))


def read_parts(port, path, count, timeout=20):
    """COUNT parts of PATH (asserting 200 and that each decodes)."""
    with Viewer(port, path, timeout=timeout) as v:
        assert v.status == 200, (path, v.status, v.resp.read()[:200])
        parts = []
        while len(parts) < count:
            p = v.reader.next_part()
            assert p is not None, "%s ended after %d parts" % (path, len(parts))
            decode_jpeg(p.body)
            parts.append(p)
        return parts


def write_config(tmp_path, text, name="relay.ini"):
    path = tmp_path / name
    path.write_text(text)
    return path


def log_lines(st, pattern):
    return [line for line in st.log().splitlines() if re.search(pattern, line)]


@pytest.fixture(scope="module")
def layouts_edge(tmp_path_factory):
    """A camera serving every layout, and an edge relaying each as a stream."""
    cam = Camera(free_port(), fps=20).start()
    cfg = "[server]\nidle_pause_s = 2\n"
    for path in LAYOUTS + ["/cut"]:
        cfg += "[stream %s]\nsource = %s\n" % (path.strip("/"), cam.url(path))
    cfg += "[stream snap]\nsource = %s\nfps = 10\n" % cam.url("/snapshot.jpg")
    config = write_config(tmp_path_factory.mktemp("layouts"), cfg)
    st = start_stack(config=config)
    try:
        yield cam, st
    finally:
        st.stop()
        cam.stop()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_relayed_whole(layouts_edge, layout):
    """Each layout gives whole frames, in the camera's colour order (the
    relay may skip a frame when a viewer is slow, never reorder: each
    colour follows the last one by at most two steps of the cycle)."""
    cam, st = layouts_edge
    parts = read_parts(st.port, "/stream/%s?frames=16" % layout.strip("/"), 16)
    colours = [colour_index(p.body) for p in parts]
    distinct = [c for i, c in enumerate(colours) if i == 0 or c != colours[i - 1]]
    assert len(set(distinct)) >= 3, colours
    steps = [(b - a) % len(COLOURS) for a, b in zip(distinct, distinct[1:])]
    assert all(1 <= s <= 2 for s in steps), colours
    assert st.stream(layout.strip("/"))["upstream"]["state"] == "connected"


def test_upstream_timestamp_kept(layouts_edge):
    """/stamped sends X-Timestamp 0.5 s in the past (a camera's or an
    origin's publish time): the relay passes it on, so the delay a viewer
    measures is end to end, not from the relay.  Unstamped layouts get the
    relay's own time."""
    cam, st = layouts_edge
    parts = read_parts(st.port, "/stream/stamped?frames=6", 6)
    now = time.time()
    # the camera stamps when it sends: within a second of now, and each
    # one different (a fresh frame)
    assert all(now - 5 < p.timestamp <= now + 0.01 for p in parts)
    stamps = [p.timestamp for p in parts]
    own = read_parts(st.port, "/stream/std?frames=2", 2)
    assert all(abs(p.timestamp - time.time()) < 5 for p in own)
    assert len(set(stamps)) >= 3, stamps


def test_cut_stream_no_torn_frame(layouts_edge):
    """/cut closes mid-part after three frames, every time: the relay
    reconnects (back-off), viewers get only whole frames, and the half part
    never goes out."""
    cam, st = layouts_edge
    before = cam.connections["/cut"]
    parts = read_parts(st.port, "/stream/cut?frames=8", 8, timeout=30)
    assert cam.connections["/cut"] - before >= 2
    assert len(parts) == 8  # each decoded in read_parts
    assert log_lines(st, r"relay cut: upstream .*: the upstream ended the stream; retrying")


def test_snapshot_url_polled_at_fps(layouts_edge):
    """An image/jpeg URL is fetched again at the stream's fps (10 here): in
    3 s about 30 requests; bounds wide enough for a loaded machine, tight
    enough to catch polling as fast as possible (hundreds) or once."""
    cam, st = layouts_edge
    with Viewer(st.port, "/stream/snap") as v:
        assert v.status == 200
        assert v.reader.next_part() is not None
        start = cam.snapshots
        time.sleep(3)
        polled = cam.snapshots - start
        p = v.reader.next_part()
        decode_jpeg(p.body)
    assert 5 <= polled <= 45, polled


def test_stalled_upstream_dropped_and_retried(tmp_path):
    """A camera that sends one frame and then nothing, connection open: after
    upstream_stall_ms without a byte the relay hangs up and connects again."""
    cam = Camera(free_port()).start()
    try:
        config = write_config(tmp_path, "[stream frozen]\nsource = %s\n"
                                        "upstream_stall_ms = 800\n" % cam.url("/hang"))
        with running_stack(config=config) as st, Viewer(st.port, "/stream/frozen") as v:
            assert v.status == 200
            decode_jpeg(v.reader.next_part().body)
            assert wait_until(lambda: "no byte for 800 ms" in
                              st.stream("frozen")["upstream"]["last_error"], SETTLE_S)
            assert wait_until(lambda: cam.connections["/hang"] >= 2, SETTLE_S)
            # each frozen connection is let go, not kept beside the next one
            # (kept ones would pile up: 2, 3, ... open for good)
            assert wait_until(lambda: cam.open["/hang"] <= 1, SETTLE_S)
    finally:
        cam.stop()


def test_relay_from_ffmpeg_server(tmp_path):
    """ffmpeg's own HTTP server (-listen 1) answers application/octet-stream,
    chunked, with --ffmpeg parts: read from the body, not the header."""
    port = free_port()
    url = "http://127.0.0.1:%d/" % port
    ff = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
                           "-i", "testsrc=size=320x240:rate=15", "-f", "mpjpeg", "-listen", "1",
                           url], stdin=subprocess.DEVNULL)
    try:
        config = write_config(tmp_path, "[stream ff]\nsource = %s\nfps = 15\n" % url)
        with running_stack(config=config) as st:
            parts = read_parts(st.port, "/stream/ff?frames=10", 10)
            img = decode_jpeg(parts[-1].body)
            assert img.size == (320, 240)
            assert st.stream("ff")["upstream"]["state"] == "connected"
    finally:
        ff.kill()
        ff.wait()


NGINX_CONF = """
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    types {{ image/jpeg jpg; }}
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
    }}
}}
"""


def test_relay_polls_jpeg_file_served_by_nginx(tmp_path):
    """A plain image/jpeg URL (nginx serving a file a script replaces):
    the relay picks up the new picture at its next poll."""
    port = free_port()
    # nginx's workers run as another user when the test runs as root: its
    # files must be readable by anyone, and pytest's temp dirs are not
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="mjpeg-relay-nginx-"))
    tmp_path.chmod(0o755)
    www = tmp_path / "www"
    www.mkdir(mode=0o755)
    from camera import solid_jpeg
    (www / "cam.jpg").write_bytes(solid_jpeg(COLOURS[0]))
    (tmp_path / "nginx.conf").write_text(NGINX_CONF.format(dir=tmp_path, port=port))
    nginx = subprocess.Popen(["nginx", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                             stdin=subprocess.DEVNULL)
    try:
        url = "http://127.0.0.1:%d/cam.jpg" % port
        assert wait_until(lambda: subprocess.run(["curl", "-sf", "-o", "/dev/null", url]).returncode
                          == 0, SETTLE_S)
        config = write_config(tmp_path, "[stream file]\nsource = %s\nfps = 5\n" % url)
        with running_stack(config=config) as st, Viewer(st.port, "/stream/file") as v:
            assert v.status == 200
            assert colour_index(v.reader.next_part().body) == 0
            tmp = www / "cam.jpg.new"
            tmp.write_bytes(solid_jpeg(COLOURS[2]))
            os.rename(tmp, www / "cam.jpg")  # as a script replaces it: atomically
            deadline = time.monotonic() + SETTLE_S
            while colour_index(v.reader.next_part().body) != 2:
                assert time.monotonic() < deadline, "the new picture never came"
    finally:
        nginx.terminate()
        nginx.wait()
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_origin_and_edge_one_connection(tmp_path):
    """An mjpeg-fcgi origin and an edge (two workers) relaying its bars:
    frames pass through byte for byte with the origin's X-Timestamp; 50
    viewers of the edge hold exactly one connection to the origin; none
    15 s after the last one left."""
    with running_stack() as origin:
        config = write_config(tmp_path, "[server]\nidle_pause_s = 2\n[stream bars]\n"
                                        "source = http://127.0.0.1:%d/stream/bars\n" % origin.port)
        with running_stack(config=config, workers=2) as edge:
            # byte for byte, with the origin's stamp
            seen = {}
            with Viewer(origin.port, "/stream/bars") as ov:
                edge_parts = read_parts(edge.port, "/stream/bars?frames=10", 10)
                deadline = time.monotonic() + SETTLE_S
                while len(seen) < 60 and time.monotonic() < deadline:
                    p = ov.reader.next_part()
                    seen[hashlib.sha1(p.body).digest()] = p.timestamp
            matched = [p for p in edge_parts if hashlib.sha1(p.body).digest() in seen]
            assert len(matched) >= 3, "edge frames are not the origin's bytes"
            for p in matched:
                assert p.timestamp == seen[hashlib.sha1(p.body).digest()]

            watchers = [Watcher(edge.port, "/stream/bars", reconnect=False) for _ in range(50)]
            for w in watchers:
                w.start()
            try:
                assert wait_until(lambda: edge.viewers("bars") == 50, SETTLE_S), \
                    edge.viewers("bars")
                # the edge's two workers share one producer: one upstream viewer
                assert wait_until(lambda: origin.viewers("bars") == 1, SETTLE_S)
                time.sleep(1.0)
                assert origin.viewers("bars") == 1
                assert wait_until(lambda: all(w.parts > 0 for w in watchers), SETTLE_S), \
                    sum(w.parts > 0 for w in watchers)
                assert not any(w.bad for w in watchers)
            finally:
                for w in watchers:
                    w.stop.set()
                for w in watchers:
                    w.join(5)
            assert wait_until(lambda: origin.viewers("bars") == 0, 15), origin.viewers("bars")
            assert wait_until(lambda: edge.stream("bars")["upstream"]["state"] == "idle", 5)


class PartLog(threading.Thread):
    """A viewer in a thread that keeps every part's arrival time and
    X-Timestamp (a repeat of the newest frame has the same stamp; a new
    frame a newer one), decoding each."""

    def __init__(self, port, path):
        super().__init__(daemon=True)
        self.viewer = Viewer(port, path, timeout=30)
        assert self.viewer.status == 200
        self.parts, self.bad = [], []
        self.ended = threading.Event()
        self.stop = False

    def run(self):
        try:
            while not self.stop:
                p = self.viewer.reader.next_part()
                if p is None:
                    break
                try:
                    decode_jpeg(p.body)
                except Exception as e:  # noqa: BLE001 - any decode failure counts
                    self.bad.append(repr(e))
                self.parts.append((time.monotonic(), p.timestamp))
        except OSError:
            pass
        finally:
            self.ended.set()

    def frames(self):
        """Distinct frames seen (by X-Timestamp)."""
        return len({stamp for _, stamp in self.parts})

    def close(self):
        self.stop = True
        self.viewer.close()
        self.join(5)


def test_outage_down_at_start_then_away_and_back(tmp_path):
    """The camera is down when the viewer comes, comes up, goes away
    mid-stream and comes back: the viewer stays connected throughout (the
    last frame repeated meanwhile), every part decodes, new frames come
    within 3 s of each return (the back-off waits at most 2 s by default:
    1 s of margin), and the log has one line per outage and one per
    return, not one per attempt."""
    cam = Camera(free_port(), fps=20)
    config = write_config(tmp_path, "[stream cam]\nsource = %s\n" % cam.url("/std"))
    with running_stack(config=config) as st:
        log = PartLog(st.port, "/stream/cam")
        log.start()
        try:
            assert wait_until(lambda: st.stream("cam")["upstream"]["state"] == "away", SETTLE_S)
            up = st.stream("cam")["upstream"]
            assert "127.0.0.1" in up["last_error"] or "onnect" in up["last_error"], up
            time.sleep(2.5)  # several attempts fail meanwhile
            cam.start()
            assert wait_until(lambda: log.frames() > 0, 3), "no frame 3 s after the camera came up"
            assert wait_until(lambda: st.stream("cam")["upstream"]["state"] == "connected", 5)

            cam.stop()
            assert wait_until(lambda: st.stream("cam")["upstream"]["state"] == "away", SETTLE_S)
            parts, frames = len(log.parts), log.frames()
            time.sleep(2.5)
            assert len(log.parts) > parts, "the last frame was not repeated while away"
            assert log.frames() == frames, "new frames while the camera was away?"
            cam.start()
            assert wait_until(lambda: log.frames() > frames, 3), \
                "no new frame 3 s after the camera came back"
            assert wait_until(lambda: log.frames() > frames + 5, 5)
            assert not log.ended.is_set(), "the viewer's stream ended"
            assert not log.bad, log.bad
            up = st.stream("cam")["upstream"]
            assert up["reconnects"] == 2, up
            assert len(log_lines(st, r"relay cam: upstream .*retrying")) == 2, st.log_tail()
            assert len(log_lines(st, r"relay cam: upstream .* is back after")) == 2, \
                st.log_tail()
        finally:
            log.close()
            cam.stop()


SECRET = "s3cret-Passw0rd-x9"
TOKEN = "tok-4f0c2b6e9d1a7c35"


def test_credentials_used_and_never_shown(tmp_path):
    """Basic credentials (keys, and user:password@ in the URL) and a bearer
    header reach the camera; none of them shows in /status, /metrics or
    the log, also when the camera refuses them."""
    basic = Camera(free_port(), user="bob", password=SECRET).start()
    bearer = Camera(free_port(), token=TOKEN).start()
    try:
        url_with = basic.url("/std").replace("http://", "http://bob:%s@" % SECRET)
        config = write_config(tmp_path, (
            "[stream basic]\nsource = %s\nuser = bob\npassword = %s\n"
            "[stream inurl]\nsource = %s\n"
            "[stream bearer]\nsource = %s\nheader = Authorization: Bearer %s\n"
            "[stream wrong]\nsource = %s\nuser = bob\npassword = %sX\n")
            % (basic.url("/std"), SECRET, url_with, bearer.url("/std"), TOKEN,
               basic.url("/std"), SECRET))
        with running_stack(config=config) as st:
            for name in ("basic", "inurl", "bearer"):
                read_parts(st.port, "/stream/%s?frames=3" % name, 3)
            with Viewer(st.port, "/stream/wrong"):
                assert wait_until(lambda: "401" in st.stream("wrong")["upstream"]["last_error"],
                                  SETTLE_S), st.stream("wrong")
            status = st.get("status")[2].decode()
            metrics = st.get("metrics")[2].decode()
            assert "http://***@127.0.0.1" in status
            for text in (status, metrics, st.log()):
                assert SECRET not in text
                assert TOKEN not in text
    finally:
        basic.stop()
        bearer.stop()


@pytest.fixture
def tls_camera(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    cam = Camera(free_port(), certfile=str(cert), keyfile=str(key)).start()
    yield cam
    cam.stop()


def test_https_verified_by_default(tmp_path, tls_camera):
    """A self-signed camera: refused while tls_verify is on (the default),
    with the reason in /status; relayed with tls_verify = no, which warns
    in the log at start-up."""
    url = tls_camera.url("/std", scheme="https")
    config = write_config(tmp_path, "[stream strict]\nsource = %s\n"
                                    "[stream lax]\nsource = %s\ntls_verify = no\n" % (url, url))
    with running_stack(config=config) as st:
        assert log_lines(st, r"stream lax: tls_verify = no")
        assert not log_lines(st, r"stream strict: tls_verify")
        read_parts(st.port, "/stream/lax?frames=3", 3)
        with Viewer(st.port, "/stream/strict"):
            assert wait_until(lambda: st.stream("strict")["upstream"]["state"] == "away",
                              SETTLE_S)
        err = st.stream("strict")["upstream"]["last_error"]
        assert "certificate" in err.lower() or "ssl" in err.lower(), err
