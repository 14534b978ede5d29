"""Push ingest: one long POST /ingest/NAME whose body keeps coming, each
frame published as it arrives, through nginx (fastcgi_request_buffering
off).  Real pushers: ffmpeg with -f mpjpeg and -f mjpeg, chunked (it sends
no Content-Type), and GStreamer (multipartmux into curl -T -).  A viewer
sees the pushed colours in order; a wrong token is answered before any
body byte is sent; a bad frame is skipped and counted; a stalled pusher is
ended after ingest_ms; a second pusher gets 409 while the first is
connected, and is taken after it ended."""

import io
import os
import re
import socket
import subprocess
import threading
import time

import pytest
from mjpeg import Viewer
from PIL import Image
from stacks import running_stack, wait_until

TOKEN = "push-token-0123456789abcdef"
INGEST_MS = 2000          # the responder's ingest_ms here
FPS = 30
SIZE = (64, 48)
STREAMS = ("mpjpeg", "mjpeg", "gst", "bad", "stall", "busy", "auth")


# What each web server does with a push (README, Pushing from a remote
# camera over one request): "live" passes the body on as it comes;
# "whole" collects all of it first (frames arrive when the push ends);
# "411" refuses a chunked body.
PUSH_BY_SERVER = {"nginx": "live", "apache": "live", "apache-proxy": "live",
                  "apache-fcgid": "whole", "lighttpd": "411"}


@pytest.fixture(scope="module")
def stack(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("push")
    config = tmp / "push.ini"
    config.write_text("[server]\ningest_ms = %d\n\n" % INGEST_MS + "".join(
        "[stream %s]\nsource = ingest\ntoken = %s\n\n" % (name, TOKEN) for name in STREAMS))
    with running_stack(config=config, server=server) as st:
        yield st


def answers_early(st):
    """nginx sends the responder's answer while the client still sends its
    body; Apache reads the rest of the body first, so there the answer
    reaches a pusher when its body ends (test_push_answers_on_apache)."""
    if st.server != "nginx":
        pytest.skip("%s answers a push only after its body (see test_push_answers_on_apache)"
                    % st.server)


def responder_log(st):
    """The responder's log lines, wherever this server puts them."""
    text = st.log()
    if os.path.exists(st.log_path("mjpeg-fcgi.log")) and not st.log_path().endswith(
            "mjpeg-fcgi.log"):
        text += st.log("mjpeg-fcgi.log")
    return text


def nginx_only(st):
    """The long pushes run behind nginx alone (test_push_per_server covers
    the others)."""
    if st.server != "nginx":
        pytest.skip("nginx only")


# Frame i is a solid colour of its own: red in 15 steps of 15, green in 20
# steps of 10, so up to 300 frames.  A solid picture comes back from JPEG
# within a few levels, far inside half a step.
def colour_of(i):
    return (20 + 15 * (i // 20), 20 + 10 * (i % 20), 100)


def index_of(img):
    r, g, _ = img.convert("RGB").getpixel((SIZE[0] // 2, SIZE[1] // 2))
    return round((r - 20) / 15) * 20 + round((g - 20) / 10)


def write_frames(directory, count):
    os.makedirs(directory, exist_ok=True)
    for i in range(count):
        Image.new("RGB", SIZE, colour_of(i)).save(
            os.path.join(directory, "%04d.jpg" % i), "JPEG", quality=95)
    return os.path.join(directory, "%04d.jpg")


def published(st, name):
    return st.stream(name)["frames_published"]


class Watch(threading.Thread):
    """A viewer of stream NAME, decoding the frame index of every part
    until stop(); seen: the indices in arrival order, repeats folded."""

    def __init__(self, port, name):
        super().__init__(daemon=True)
        self.viewer = Viewer(port, "/stream/%s" % name, timeout=10.0)
        assert self.viewer.status == 200
        self.seen, self.errors = [], []
        self.stopping = False
        self.start()

    def run(self):
        try:
            while not self.stopping:
                part = self.viewer.reader.next_part()
                if part is None:
                    break
                i = index_of(Image.open(io.BytesIO(part.body)))
                if not self.seen or self.seen[-1] != i:
                    self.seen.append(i)
        except Exception as e:  # noqa: BLE001 - a closed viewer ends here
            if not self.stopping:
                self.errors.append(repr(e))

    def stop(self):
        self.stopping = True
        self.viewer.close()
        self.join(10)


def check_seen(watch, count):
    """The viewer saw the pushed frames in order.  The frame bus hands a
    viewer the newest frame, so a frame published right after another (two
    frames in one read of a busy machine) may be passed over by design:
    at least 80% must arrive, in strictly rising order, the last one too."""
    assert not watch.errors, watch.errors
    seen = [i for i in watch.seen if 0 <= i < count]
    assert seen == sorted(set(seen)), "out of order: %r" % seen
    assert seen and seen[-1] == count - 1, seen[-5:]
    assert len(seen) >= 0.8 * count, "saw %d of %d: %r" % (len(seen), count, seen)


def push_with(st, name, pusher, count):
    """Runs the pusher command (a shell line) while a viewer watches NAME;
    returns its output.  Every frame is published exactly once."""
    before = published(st, name)
    watch = Watch(st.port, name)
    try:
        r = subprocess.run(pusher, shell=True, capture_output=True, timeout=count / FPS * 3 + 30)
        assert r.returncode == 0, (r.stdout, r.stderr[-2000:])
        assert wait_until(lambda: published(st, name) - before == count, 5), \
            (published(st, name) - before, count)
        time.sleep(0.3)   # the last frame reaches the viewer
    finally:
        watch.stop()
    check_seen(watch, count)
    return r.stdout


@pytest.mark.parametrize("muxer", ["mpjpeg", "mjpeg"])
def test_ffmpeg_push_30fps_for_10s(stack, tmp_path, muxer):
    """ffmpeg -re pushes 300 frames at 30 fps over one chunked POST with no
    Content-Type: every one is published, and a viewer sees them in order."""
    nginx_only(stack)
    count = 10 * FPS
    pattern = write_frames(str(tmp_path / "frames"), count)
    pusher = ("ffmpeg -hide_banner -loglevel error -re -framerate %d -i %s -c:v copy "
              "-f %s -method POST -chunked_post 1 -headers 'Authorization: Bearer %s' "
              "http://127.0.0.1:%d/ingest/%s" % (FPS, pattern, muxer, TOKEN, stack.port, muxer))
    push_with(stack, muxer, pusher, count)


def test_gstreamer_push(stack, tmp_path):
    """GStreamer paces frames at 30 fps (videorate, clocksync), multipartmux
    writes the parts to curl, which posts them chunked as they come."""
    nginx_only(stack)
    count = 3 * FPS
    pattern = write_frames(str(tmp_path / "frames"), count)
    pusher = ("gst-launch-1.0 -q multifilesrc location=%s index=0 stop-index=%d "
              "caps=image/jpeg,framerate=%d/1 ! jpegdec ! videoconvert ! videorate ! "
              "video/x-raw,framerate=%d/1 ! clocksync ! jpegenc quality=95 ! multipartmux ! "
              "fdsink fd=1 | curl -sS --fail-with-body -X POST -T - "
              "-H 'Authorization: Bearer %s' http://127.0.0.1:%d/ingest/gst"
              % (pattern, count - 1, FPS, FPS, TOKEN, stack.port))
    out = push_with(stack, "gst", pusher, count)
    assert b"published %d frames" % count in out, out


def raw_post(port, name, headers=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /ingest/%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n%s\r\n"
              % (name.encode(), headers))
    return s


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def answer(s):
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"0\r\n\r\n"):
        d = s.recv(4096)
        if not d:
            break
        data += d
    return data


def solid(i):
    buf = io.BytesIO()
    Image.new("RGB", SIZE, colour_of(i)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


@pytest.mark.parametrize("auth,code", [(b"", 401),
                                       (b"Authorization: Bearer wrong-token-0123456789\r\n", 403)])
def test_wrong_token_answered_before_the_body(stack, auth, code):
    """The answer comes while the client has sent no body byte yet (the
    request head only): the token is checked first, and nothing is read or
    published."""
    answers_early(stack)
    before = published(stack, "auth")
    s = raw_post(stack.port, "auth", auth)
    try:
        head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 %d " % code), head[:200]
        # Sending frames now changes nothing either.
        try:
            s.sendall(chunk(solid(1)) + b"0\r\n\r\n")
        except OSError:
            pass
    finally:
        s.close()
    assert published(stack, "auth") == before


def test_bad_frame_skipped_and_counted(stack):
    """A broken JPEG (well framed, but 0x0) between two good ones,
    concatenated: the good ones are published, the bad one dropped, counted
    in the answer and the log; the push goes on past it."""
    if PUSH_BY_SERVER[stack.server] != "live":
        pytest.skip("%s does not pass a push on as it comes" % stack.server)
    bad = bytearray(solid(5))
    sof = bad.index(b"\xff\xc0")
    bad[sof + 5:sof + 9] = b"\0\0\0\0"    # height and width 0: well framed, not valid
    bad = bytes(bad)
    before = published(stack, "bad")
    s = raw_post(stack.port, "bad", b"Authorization: Bearer %s\r\n" % TOKEN.encode())
    try:
        # The first frame alone, published before the rest is sent: the
        # body is read as it comes (a body whole at once may reach the
        # responder with a length; it is cut into frames all the same).
        s.sendall(chunk(solid(1)))
        assert wait_until(lambda: published(stack, "bad") - before == 1, 5)
        s.sendall(chunk(bad) + chunk(solid(2)) + b"0\r\n\r\n")
        reply = answer(s)
    finally:
        s.close()
    assert reply.startswith(b"HTTP/1.1 200 "), reply
    assert b"published 2 frames" in reply and b"dropped 1 invalid" in reply, reply
    assert published(stack, "bad") - before == 2
    assert wait_until(lambda: "ingest bad: dropped 1 invalid JPEG" in responder_log(stack), 5), \
        responder_log(stack)[-3000:]


def test_stalled_pusher_ended_after_ingest_ms(stack):
    """One frame, then nothing: the push is answered 408 after ingest_ms
    (2 s): not before it (0.2 s for the clocks' rounding), and well within
    3x of it (a busy machine)."""
    answers_early(stack)
    s = raw_post(stack.port, "stall", b"Authorization: Bearer %s\r\n" % TOKEN.encode())
    try:
        s.sendall(chunk(solid(1)))
        assert wait_until(lambda: published(stack, "stall") >= 1, 5)
        start = time.monotonic()
        reply = answer(s)
        took = time.monotonic() - start
    finally:
        s.close()
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert b"ingest_ms" in reply and b"1 published" in reply, reply
    assert INGEST_MS / 1000 - 0.2 <= took <= 3 * INGEST_MS / 1000, took


def test_second_pusher_409_then_taken(stack):
    """While a pusher is connected a second one gets 409 at once; after the
    first ended, the second is taken."""
    answers_early(stack)
    auth = b"Authorization: Bearer %s\r\n" % TOKEN.encode()
    first = raw_post(stack.port, "busy", auth)
    try:
        first.sendall(chunk(solid(1)))
        assert wait_until(lambda: published(stack, "busy") >= 1, 5)
        second = raw_post(stack.port, "busy", auth)
        try:
            reply = answer(second)
        finally:
            second.close()
        assert reply.startswith(b"HTTP/1.1 409 "), reply
        assert b"pusher" in reply, reply
        first.sendall(chunk(solid(2)) + b"0\r\n\r\n")
        reply = answer(first)
        assert reply.startswith(b"HTTP/1.1 200 "), reply
    finally:
        first.close()
    again = raw_post(stack.port, "busy", auth)
    try:
        again.sendall(chunk(solid(3)) + b"0\r\n\r\n")
        reply = answer(again)
    finally:
        again.close()
    assert reply.startswith(b"HTTP/1.1 200 "), reply
    assert published(stack, "busy") == 3


def test_push_per_server(stack, tmp_path):
    """ffmpeg pushes 3 s of frames (-re, 30 fps): behind a server that
    passes the body on as it comes, frames are published while the push
    goes on (1.5 s in: the first frame takes well under that even on a
    slow machine, and the push cannot have ended, -re paces it); behind
    one that collects the body first, none are until it ends; lighttpd
    refuses the chunked body (411).  What the README's table says."""
    kind = PUSH_BY_SERVER[stack.server]
    if kind == "411":
        # A body still coming (a whole small body lighttpd collects first).
        s = raw_post(stack.port, "busy", b"Authorization: Bearer %s\r\n" % TOKEN.encode())
        try:
            s.sendall(chunk(solid(1)))
            reply = s.recv(4096)
        finally:
            s.close()
        assert reply.startswith(b"HTTP/1.1 411 "), reply[:200]
        assert published(stack, "busy") == 0
        return
    count = 3 * FPS
    pattern = write_frames(str(tmp_path / "frames"), count)
    before = published(stack, "mpjpeg")
    proc = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-framerate", str(FPS),
         "-i", pattern, "-c:v", "copy", "-f", "mpjpeg", "-method", "POST", "-chunked_post", "1",
         "-headers", "Authorization: Bearer %s" % TOKEN,
         "http://127.0.0.1:%d/ingest/mpjpeg" % stack.port],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)
        midway = published(stack, "mpjpeg") - before
        still_pushing = proc.poll() is None
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert still_pushing
    if kind == "live":
        assert midway > 0, "nothing published 1.5 s into the push"
    else:
        assert midway == 0, midway
    assert wait_until(lambda: published(stack, "mpjpeg") - before == count, 5), \
        published(stack, "mpjpeg") - before


# What a stalled pusher is told behind Apache: mod_proxy_fcgi, still
# forwarding the body to a responder that ended the request, answers 503
# itself.
STALL_ANSWER = {"apache": 408, "apache-proxy": 503}


def test_push_answers_on_apache(stack):
    """Apache (CGI, mod_proxy_fcgi) passes a push on as it comes but sends
    the answer only once the client's body ended.  The responder decides at
    once all the same: a wrong token is logged while no body byte was sent;
    a second pusher's frames are never published while the first is
    connected, and it is told 409; a pusher that stalled past ingest_ms has
    its later frames dropped, and is told 408 (mod_proxy_fcgi: 503)."""
    if not stack.server.startswith("apache") or PUSH_BY_SERVER[stack.server] != "live":
        pytest.skip("Apache with a live push only")
    auth = b"Authorization: Bearer %s\r\n" % TOKEN.encode()
    wrong = raw_post(stack.port, "auth", b"Authorization: Bearer wrong-token-%s\r\n"
                     % b"x" * 20)
    try:
        assert wait_until(lambda: "ingest auth: wrong token" in responder_log(stack), 10), \
            responder_log(stack)[-3000:]
        wrong.sendall(chunk(solid(1)) + b"0\r\n\r\n")
        assert answer(wrong).startswith(b"HTTP/1.1 403 ")
    finally:
        wrong.close()
    assert published(stack, "auth") == 0

    first = raw_post(stack.port, "busy", auth)
    try:
        first.sendall(chunk(solid(1)))
        assert wait_until(lambda: published(stack, "busy") == 1, 10)
        second = raw_post(stack.port, "busy", auth)
        try:
            second.sendall(chunk(solid(2)) + chunk(solid(3)))
            time.sleep(1)
            assert published(stack, "busy") == 1
            second.sendall(b"0\r\n\r\n")
            reply = answer(second)
            assert reply.startswith(b"HTTP/1.1 409 "), reply[:300]
        finally:
            second.close()
        # The first pusher stalls past ingest_ms: its request ends.
        time.sleep(INGEST_MS / 1000 + 1)
        first.sendall(chunk(solid(4)) + b"0\r\n\r\n")
        reply = answer(first)
        assert reply.startswith(b"HTTP/1.1 %d " % STALL_ANSWER[stack.server]), reply[:300]
    finally:
        first.close()
    assert published(stack, "busy") == 1


def lock_holder(path):
    """The pid holding an flock on the file at PATH (/proc/locks), or None."""
    st = os.stat(path)
    with open("/proc/locks") as f:
        for line in f:
            fields = line.split()
            if "->" in fields or fields[1] != "FLOCK":
                continue
            _, _, inode = fields[5].split(":")
            if int(inode) == st.st_ino:
                return int(fields[4])
    return None


def test_push_lock_freed_when_its_process_dies(tmp_path):
    """Two responder processes: the one serving a push is killed (-9) mid-
    push; its lock goes with it, so the next pusher is taken, not told
    409."""
    config = tmp_path / "push.ini"
    config.write_text("[stream cam]\nsource = ingest\ntoken = %s\n" % TOKEN)
    auth = b"Authorization: Bearer %s\r\n" % TOKEN.encode()
    with running_stack(config=config, workers=2) as st:
        # the bus directory, as the responder names it at start
        bus_dir = re.search(r" bus (\S+), ", responder_log(st)).group(1)
        lock = os.path.join(bus_dir, "cam.push")
        first = raw_post(st.port, "cam", auth)
        try:
            first.sendall(chunk(solid(1)))
            assert wait_until(lambda: published(st, "cam") == 1, 10)
            holder = lock_holder(lock)
            assert holder, open("/proc/locks").read()
            os.kill(holder, 9)
            assert wait_until(lambda: lock_holder(lock) is None, 10)
        finally:
            first.close()
        again = raw_post(st.port, "cam", auth)
        try:
            again.sendall(chunk(solid(2)) + b"0\r\n\r\n")
            reply = answer(again)
        finally:
            again.close()
        assert reply.startswith(b"HTTP/1.1 200 "), reply[:300]
        assert published(st, "cam") == 2
