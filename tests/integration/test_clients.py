"""Real clients against the real stack (the responder behind nginx): ffmpeg
and ffprobe, GStreamer, OpenCV, curl, and headless Chromium showing the
viewer page and the Vue 3 example.  Nothing here parses the stream itself:
each test proves that the client does, and checks what the client made of it
(frame counts, sizes, and the colours a person would see)."""

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest
from PIL import Image
from selenium.webdriver.common.by import By

from browser import one_test as browser_one_test
from browser import session as browser_session
from stacks import TOP, running_stack

ARTIFACTS = os.path.join(TOP, "tests", "artifacts")
VUE_DIR = os.path.join(TOP, "html", "vue")
VUE_BUILD = os.path.join(VUE_DIR, "node_modules", "vue", "dist", "vue.esm-browser.prod.js")
PYTHON = "/usr/bin/python3"

CLIENT_TIMEOUT = 30        # any one client command
RESTART_LIMIT_S = 30       # the page shows the live demo again this soon after a restart
# A frame that no newer one followed is sent again after repeat_ms (200 ms),
# and Chromium shows a part once the next one begins: from then on the
# screen must show it.  Screenshots are taken once a frame has been the
# newest this long: 0.2 s for the repeat, 0.25 s for the page to paint it
# (tens of ms here, so a 3x slower machine still fits), and before the
# next frame of the 1 fps demo even with a screenshot that takes 0.5 s.
FRAME_SETTLED_S = 0.45
SAMPLE_FRAME_S = 6          # sample_frames gives up after this, a frame on average
KEEP_STEP_SAMPLES = 4      # frames sampled for check_keeps_step

# SMPTE-like bars of pattern:bars, left to right, repeating (RGB).
BARS = [
    ("grey", (192, 192, 192)), ("yellow", (192, 192, 0)), ("cyan", (0, 192, 192)),
    ("green", (0, 192, 0)), ("magenta", (192, 0, 192)), ("red", (192, 0, 0)),
    ("blue", (0, 0, 192)), ("black", (16, 16, 16)),
]
NEXT_BAR = {BARS[i][0]: BARS[(i + 1) % len(BARS)][0] for i in range(len(BARS))}


# ---- helpers -------------------------------------------------------------


def run(cmd, timeout=CLIENT_TIMEOUT, **kw):
    """Runs a command with a timeout; a hang is a test failure, not a hung run."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        out = (e.stderr or b"")
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        pytest.fail("%s did not finish within %s s; last output:\n%s"
                    % (" ".join(cmd), timeout, out[-2000:]))


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read()


def classify(rgb):
    """'red', 'blue' or None for a mean RGB colour."""
    r, g, b = rgb[:3]
    if r > 180 and g < 80 and b < 80:
        return "red"
    if b > 180 and r < 80 and g < 80:
        return "blue"
    return None


def centre_rgb(im, cx=None, cy=None, half=4):
    """Mean RGB of a (2*half+1)-pixel square around (cx, cy), default the centre."""
    im = im.convert("RGB")
    if cx is None:
        cx, cy = im.width // 2, im.height // 2
    box = im.crop((cx - half, cy - half, cx + half + 1, cy + half + 1))
    px = list(box.getdata())
    return tuple(sum(p[i] for p in px) / len(px) for i in range(3))


def snapshot_colour(st, name="demo"):
    """Colour of the newest frame, as PIL (RGB) decodes /snapshot/NAME."""
    status, headers, body = get(st.url("snapshot/" + name))
    assert status == 200 and body[:2] == b"\xff\xd8", (status, headers)
    return classify(centre_rgb(Image.open(io.BytesIO(body))))


def bar_name(rgb, tolerance=60):
    best, dist = None, None
    for name, ref in BARS:
        d = sum((a - b) ** 2 for a, b in zip(rgb, ref)) ** 0.5
        if dist is None or d < dist:
            best, dist = name, d
    return best if dist <= tolerance else None


def bar_runs(row, min_len):
    """Bar names along one row of RGB pixels, runs shorter than min_len dropped
    (blends at the edges, the scaled-down borders)."""
    runs = []
    for px in row:
        n = bar_name(px)
        if runs and runs[-1][0] == n:
            runs[-1][1] += 1
        else:
            runs.append([n, 1])
    names = []
    for n, length in runs:
        if n is not None and length >= min_len and (not names or names[-1] != n):
            names.append(n)
    return names


def check_bar_order(names, what):
    """The bars must follow the pattern's order: a red/blue swap (RGB read as
    BGR anywhere) turns 'magenta, red, blue' into 'magenta, blue, red'."""
    assert len(names) >= 6, "%s: too few bars recognised: %s" % (what, names)
    assert "red" in names and "blue" in names, "%s: %s" % (what, names)
    for a, b in zip(names, names[1:]):
        assert b == NEXT_BAR[a], "%s: bar %s follows %s; expected order %s; seen %s" % (
            what, b, a, [n for n, _ in BARS], names)


def demo_runs(samples):
    """Runs of colour in (t, colour, ...) samples: [[colour, first_t, count], ...]."""
    runs = []
    for s in samples:
        if runs and runs[-1][0] == s[1]:
            runs[-1][2] += 1
        else:
            runs.append([s[1], s[0], 1])
    return runs


def alternation_at(samples):
    """Time of the first sample of the third run in red-blue-red or
    blue-red-blue, or None.  Samples that are neither colour break a run."""
    runs = demo_runs(samples)
    for i in range(len(runs) - 2):
        a, b, c = runs[i][0], runs[i + 1][0], runs[i + 2][0]
        if a in ("red", "blue") and b in ("red", "blue") and a != b and c == a:
            return runs[i + 2][1]
    return None


def live_again_at(samples):
    """alternation_at, ignoring the first run: what the screen showed when
    sampling began (a frozen last frame, or nothing) is no proof of life."""
    runs = demo_runs(samples)
    if len(runs) < 2:
        return None
    return alternation_at([s for s in samples if s[0] >= runs[1][1]])


def check_keeps_step(samples, what):
    """The screen shows the newest frame, not the one before: in samples of
    sample_frames (each taken while one frame had been the newest for
    FRAME_SETTLED_S), the screen's colour equals the snapshot's.  A page a
    frame behind shows the other colour in every one of them (measured with
    repeat_ms = 5000: 0 of 5); one miss is left for a hiccup of the
    machine."""
    same = sum(1 for s in samples if s[1] == s[2])
    print("%s: screen equals the snapshot in %d of %d samples" % (what, same, len(samples)),
          file=sys.stderr)
    assert len(samples) >= KEEP_STEP_SAMPLES and same >= len(samples) - 1, \
        "%s: screen equals the snapshot in %d of %d samples (time:screen/snapshot): %s" % (
            what, same, len(samples), describe(samples))


def describe(samples):
    return " ".join("%.2f:%s%s" % (s[0], s[1] or "-", ("/" + (s[2] or "-")) if len(s) > 2 else "")
                    for s in samples)


# ---- the stack -----------------------------------------------------------

@pytest.fixture(scope="module")
def stack():
    with running_stack() as st:
        yield st


# ---- ffmpeg / ffprobe ----------------------------------------------------

STREAMS = [("bars", 640, 480, 10), ("demo", 256, 256, 3)]


@pytest.mark.parametrize("name,width,height,frames", STREAMS)
def test_ffprobe(stack, name, width, height, frames):
    r = run(["ffprobe", "-v", "error", "-f", "mpjpeg", "-show_entries",
             "stream=codec_name,width,height", "-of", "json", stack.url("stream/" + name)],
            timeout=20)
    assert r.returncode == 0, r.stderr
    streams = json.loads(r.stdout)["streams"]
    assert len(streams) == 1, r.stdout
    assert (streams[0]["codec_name"], streams[0]["width"], streams[0]["height"]) == \
        ("mjpeg", width, height), r.stdout


@pytest.mark.parametrize("name,width,height,frames", STREAMS)
def test_ffmpeg_decodes_frames(stack, name, width, height, frames):
    # The live stream never ends: ffmpeg stops after N frames by itself.
    r = run(["ffmpeg", "-hide_banner", "-nostdin", "-f", "mpjpeg", "-i",
             stack.url("stream/" + name), "-frames:v", str(frames), "-f", "null", "-"],
            timeout=20)
    assert r.returncode == 0, r.stderr[-2000:]
    counts = re.findall(r"frame=\s*(\d+)", r.stderr)
    assert counts and int(counts[-1]) == frames, r.stderr[-2000:]
    assert "%dx%d" % (width, height) in r.stderr, r.stderr[-2000:]


# ---- GStreamer -----------------------------------------------------------

def test_gstreamer_multipartdemux_bars(stack):
    url = stack.url("stream/bars?frames=10")
    # -v prints each buffer fakesink receives and the negotiated caps.
    r = run(["gst-launch-1.0", "-v", "souphttpsrc", "location=" + url, "!", "multipartdemux",
             "!", "jpegdec", "!", "fakesink", "silent=false"], timeout=20)
    out = r.stdout + r.stderr
    if "no element \"souphttpsrc\"" in out:
        pytest.fail("GStreamer has no souphttpsrc: install gstreamer1.0-plugins-good")
    assert r.returncode == 0, out[-3000:]
    assert "Got EOS" in out, out[-3000:]   # ?frames=10 ended the stream cleanly
    chains = [ln for ln in out.splitlines() if "fakesink0: last-message = chain" in ln]
    assert len(chains) == 10, out[-3000:]
    caps = [ln for ln in out.splitlines() if "GstFakeSink:fakesink0.GstPad:sink: caps" in ln]
    assert caps and "width=(int)640" in caps[-1] and "height=(int)480" in caps[-1], caps


def test_gstreamer_png_of_demo(stack, tmp_path):
    png = tmp_path / "demo.png"
    before = snapshot_colour(stack)
    r = run(["gst-launch-1.0", "-q", "souphttpsrc",
             "location=" + stack.url("stream/demo?frames=1"), "!", "multipartdemux", "!",
             "jpegdec", "!", "videoconvert", "!", "video/x-raw,format=RGB", "!",
             "pngenc", "snapshot=true", "!", "filesink", "location=%s" % png], timeout=20)
    after = snapshot_colour(stack)
    assert r.returncode == 0, r.stdout + r.stderr
    im = Image.open(png)
    assert im.size == (256, 256)
    colour = classify(centre_rgb(im))
    assert colour in ("red", "blue"), centre_rgb(im)
    # red is red: the frame GStreamer decoded is the one the snapshot had
    assert colour in (before, after), (colour, before, after)


# ---- OpenCV --------------------------------------------------------------

# Runs in a child process, so that a capture that hangs is killed by the
# timeout.  OpenCV reads through its FFmpeg backend; after each frame the
# child fetches the snapshot and decodes it with PIL (RGB), independently.
OPENCV_CHILD = r"""
import io, json, sys, urllib.request
import cv2
from PIL import Image
url, snap, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
out = {"opened": cap.isOpened(), "backend": cap.getBackendName() if cap.isOpened() else None,
       "frames": []}
for _ in range(n):
    ok, frame = cap.read()
    if not ok:
        break
    h, w = frame.shape[:2]
    c = frame[h // 2 - 4:h // 2 + 5, w // 2 - 4:w // 2 + 5].reshape(-1, 3).mean(axis=0)
    f = {"w": w, "h": h, "bgr": [float(x) for x in c],
         "row": [[int(v) for v in px[::-1]] for px in frame[h // 2]]}
    if snap:
        with urllib.request.urlopen(snap, timeout=5) as r:
            im = Image.open(io.BytesIO(r.read())).convert("RGB")
        f["snap_rgb"] = list(im.getpixel((im.width // 2, im.height // 2)))
    out["frames"].append(f)
cap.release()
print(json.dumps(out))
"""


def opencv_read(stack, name, n, with_snapshot):
    r = run([PYTHON, "-c", OPENCV_CHILD, stack.url("stream/" + name),
             stack.url("snapshot/") + name if with_snapshot else "", str(n)], timeout=30)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["opened"], "cv2.VideoCapture did not open the stream: " + r.stderr[-2000:]
    assert out["backend"] == "FFMPEG", out["backend"]
    assert len(out["frames"]) == n, "read %d of %d frames: %s" % (len(out["frames"]), n,
                                                                 r.stderr[-2000:])
    return out["frames"]


def test_opencv_bars(stack):
    frames = opencv_read(stack, "bars", 5, False)
    for i, f in enumerate(frames):
        assert (f["w"], f["h"]) == (640, 480), f
        check_bar_order(bar_runs(f["row"], 12), "OpenCV frame %d" % i)


def test_opencv_demo(stack):
    frames = opencv_read(stack, "demo", 5, True)
    colours = []
    for f in frames:
        assert (f["w"], f["h"]) == (256, 256), (f["w"], f["h"])
        rgb = f["bgr"][::-1]          # OpenCV hands out BGR
        colour = classify(rgb)
        assert colour in ("red", "blue"), "centre BGR %s is neither red nor blue" % f["bgr"]
        colours.append((colour, classify(f["snap_rgb"])))
    # red is red: the frame OpenCV just decoded shows the snapshot's colour
    # (a frame buffered while the stream was probed may be one behind)
    same = sum(1 for a, b in colours if a == b)
    print("OpenCV demo (frame, snapshot): %s" % colours, file=sys.stderr)
    assert same >= 3, "OpenCV colour vs snapshot colour: %s" % colours


# ---- curl ----------------------------------------------------------------

def test_curl_frames(stack, tmp_path):
    f = tmp_path / "demo.mjpeg"
    r = run(["curl", "-sf", "--max-time", "20", "-D", str(tmp_path / "h"),
             stack.url("stream/demo?frames=3"), "-o", str(f)], timeout=25)
    assert r.returncode == 0, r.stderr
    headers = (tmp_path / "h").read_text()
    m = re.search(r"(?im)^content-type: multipart/x-mixed-replace;\s*boundary=(\S+)\s*$", headers)
    assert m, headers
    body = f.read_bytes()
    b = m.group(1).encode()
    assert body.startswith(b"--" + b + b"\r\n"), body[:80]
    assert body.endswith(b"--" + b + b"--\r\n"), body[-80:]
    assert body.count(b"--" + b + b"\r\n") == 3
    # and a real demuxer agrees
    p = run(["ffprobe", "-v", "error", "-f", "mpjpeg", "-count_frames", "-show_entries",
             "stream=nb_read_frames,width,height", "-of", "json", str(f)], timeout=20)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)["streams"][0]
    assert (int(s["nb_read_frames"]), s["width"], s["height"]) == (3, 256, 256), p.stdout


def test_curl_unknown_stream_fails(stack):
    r = run(["curl", "-sf", "--max-time", "10", stack.url("stream/nosuch"), "-o", os.devnull])
    assert r.returncode == 22, (r.returncode, r.stderr)


def test_curl_snapshot_is_a_still_camera(stack, tmp_path):
    # What Home Assistant's generic camera does with a still image URL.
    f = tmp_path / "snap.jpg"
    r = run(["curl", "-sf", "--max-time", "10", "-D", str(tmp_path / "h"),
             stack.url("snapshot/demo"), "-o", str(f)])
    assert r.returncode == 0, r.stderr
    headers = (tmp_path / "h").read_text().lower()
    assert "content-type: image/jpeg" in headers, headers
    im = Image.open(f)
    assert im.format == "JPEG" and im.size == (256, 256)
    assert classify(centre_rgb(im)) in ("red", "blue")


# ---- Chromium ------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium (fresh profile) for the module: starting one
    takes seconds, and every test loads its own page into it."""
    with browser_session() as drv:
        yield drv



@pytest.fixture
def browser(chromium):
    """The module's Chromium, for one test (browser.one_test)."""
    with browser_one_test(chromium) as drv:
        yield drv


def wait_for(what, fn, timeout, period=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(period)
    pytest.fail("timed out after %s s waiting for %s (last: %r)" % (timeout, what, last))


def img_state(drv, selector):
    return drv.execute_script("""
        const e = document.querySelector(arguments[0]);
        if (!e) return null;
        const r = e.getBoundingClientRect();
        return {x: r.left + r.width / 2, y: r.top + r.height / 2, w: r.width, h: r.height,
                left: r.left, top: r.top, dpr: window.devicePixelRatio,
                scrollX: window.scrollX, scrollY: window.scrollY,
                naturalWidth: e.naturalWidth, naturalHeight: e.naturalHeight,
                complete: e.complete, src: e.getAttribute('src')};""", selector)


def picture_shown(drv, selector):
    """img_state once the <img> has a decoded picture, else None."""
    st = img_state(drv, selector)
    return st if st and st["complete"] and st["naturalWidth"] > 0 else None


def screen(drv):
    return Image.open(io.BytesIO(drv.get_screenshot_as_png())).convert("RGB")


SCREEN_PATCH = 9            # CSS pixels: the square screen_colour looks at


def screen_colour(drv, selector):
    """What the screen shows at the centre of the element: 'red', 'blue' or
    None.  Chromium captures only a small square there (the page as
    composited, as in a whole screenshot): a whole page, encoded as PNG,
    takes over half a second on a busy machine, longer than a frame of the
    demo stays the newest after it has settled."""
    st = img_state(drv, selector)
    if not st or st["w"] == 0:
        return None
    half = SCREEN_PATCH / 2
    shot = drv.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png",
        "clip": {"x": st["scrollX"] + st["x"] - half, "y": st["scrollY"] + st["y"] - half,
                 "width": SCREEN_PATCH, "height": SCREEN_PATCH, "scale": 1}})
    im = Image.open(io.BytesIO(base64.b64decode(shot["data"])))
    return classify(centre_rgb(im, half=min(im.width, im.height) // 2 - 1))


def sample_screen(drv, selector, seconds, period=0.15, until=None):
    """Samples (t, screen colour) every `period` for `seconds`, or until
    until(samples) is true."""
    samples = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        t = time.monotonic()
        samples.append((t - t0, screen_colour(drv, selector)))
        if until and until(samples):
            break
        time.sleep(max(0.0, period - (time.monotonic() - t)))
    return samples


def newest_frame(st, name="demo"):
    """(X-Timestamp, colour) of the newest frame, from /snapshot/NAME."""
    status, headers, body = get(st.url("snapshot/" + name))
    assert status == 200 and body[:2] == b"\xff\xd8", (status, headers)
    return float(headers["X-Timestamp"]), classify(centre_rgb(Image.open(io.BytesIO(body))))


def sample_frames(drv, selector, st, frames=KEEP_STEP_SAMPLES):
    """One sample (t, screen colour, snapshot colour) for each of FRAMES
    frames of the demo: the screenshot is taken once the frame has been the
    newest for FRAME_SETTLED_S, and kept only when the frame is still the
    newest after it (a screenshot that a new frame overtook could show
    either).  Independent of how long a screenshot takes, as long as it
    ends before the next frame; gives up after SAMPLE_FRAME_S a frame (a
    busy machine loses some frames that way)."""
    samples = []
    done = None
    t0 = time.monotonic()
    deadline = t0 + SAMPLE_FRAME_S * frames + 2
    while len(samples) < frames and time.monotonic() < deadline:
        stamp, colour = newest_frame(st)
        age = time.time() - stamp
        if stamp == done or age < FRAME_SETTLED_S:
            time.sleep(0.05 if stamp == done else FRAME_SETTLED_S - age)
            continue
        t = time.monotonic() - t0
        shown = screen_colour(drv, selector)
        done = stamp
        if newest_frame(st)[0] == stamp:
            samples.append((t, shown, colour))
    return samples


def severe_console(drv):
    return [e for e in drv.get_log("browser")
            if e.get("level") == "SEVERE" and "favicon" not in e.get("message", "")]


def test_chromium_viewer_page(stack, browser):
    drv = browser
    drv.get(stack.url(""))
    st = wait_for("#stream-demo to show a picture", lambda: picture_shown(drv, "#stream-demo"), 10)
    assert st["naturalWidth"] == 256 and st["naturalHeight"] == 256, st
    assert drv.find_element(By.ID, "stream-demo").is_displayed()
    wait_for("#client-addr to say 127.0.0.1",
             lambda: drv.find_element(By.ID, "client-addr").text == "127.0.0.1", 6)
    # every stream of status gets a card; with bars in, the layout is final
    wait_for("the bars card", lambda: drv.find_elements(By.CSS_SELECTOR, "article.card#card-bars"),
             6)
    assert not drv.find_element(By.ID, "status-banner").is_displayed()

    # What the screen shows, against the newest frame at the same moment:
    # one sample a frame, five frames of the 1 fps demo
    samples = sample_frames(drv, "#stream-demo", stack)
    unclassified = [s for s in samples if s[1] is None]
    assert not unclassified, "screen neither red nor blue: " + describe(samples)
    assert alternation_at(samples) is not None, \
        "no red-blue-red (or blue-red-blue) on screen: " + describe(samples)
    check_keeps_step(samples, "viewer page")

    # The bars on screen are in the pattern's order (red left of blue).
    bars = img_state(drv, "#stream-bars")
    assert bars and bars["naturalWidth"] == 640, bars
    im = screen(drv)
    dpr = bars["dpr"]
    y = int(bars["y"] * dpr)
    x0, x1 = int(bars["left"] * dpr) + 2, int((bars["left"] + bars["w"]) * dpr) - 2
    row = [im.getpixel((x, y)) for x in range(x0, x1)]
    check_bar_order(bar_runs(row, max(4, int(bars["w"] * dpr / 8 / 4))), "Chromium screen")

    os.makedirs(ARTIFACTS, exist_ok=True)
    drv.save_screenshot(os.path.join(ARTIFACTS, "page.png"))
    assert not severe_console(drv), severe_console(drv)


def ensure_vue():
    if os.path.exists(VUE_BUILD):
        return
    r = run(["npm", "install", "--no-audit", "--no-fund"], timeout=180, cwd=VUE_DIR)
    if r.returncode != 0 or not os.path.exists(VUE_BUILD):
        pytest.fail("npm install in html/vue failed (%d), so the Vue example cannot load "
                    "%s:\n%s\n%s" % (r.returncode, os.path.relpath(VUE_BUILD, TOP),
                                     r.stdout[-2000:], r.stderr[-2000:]))


def test_chromium_vue_example(stack, browser):
    ensure_vue()
    drv = browser
    drv.get(stack.url("vue/"))
    st = wait_for("the Vue page's <img> to show a picture",
                  lambda: picture_shown(drv, "#stream-demo"), 10)
    assert (st["naturalWidth"], st["naturalHeight"], st["w"], st["h"]) == (256, 256, 256, 256), st
    assert drv.find_element(By.ID, "stream-demo").is_displayed()
    assert drv.find_element(By.ID, "stream-demo").tag_name == "img"
    wait_for("#client-addr to say 127.0.0.1",
             lambda: drv.find_element(By.ID, "client-addr").text == "127.0.0.1", 6)

    samples = sample_frames(drv, "#stream-demo", stack)
    seen = {s[1] for s in samples}
    assert {"red", "blue"} <= seen, "red and blue not both on screen: " + describe(samples)
    check_keeps_step(samples, "Vue example")

    # Stop unmounts the component: its src="" closes the connection, and the
    # server counts one viewer less.
    before = stack.viewers("demo")
    assert before >= 1
    drv.find_element(By.ID, "toggle").click()
    wait_for("the <img> to be removed", lambda: img_state(drv, "#stream-demo") is None, 3)
    wait_for("the server to see the viewer leave (demo viewers below %d)" % before,
             lambda: stack.viewers("demo") < before, 5, period=0.2)
    # Play mounts a new one, which streams again.
    drv.find_element(By.ID, "toggle").click()
    wait_for("the stream to show again", lambda: screen_colour(drv, "#stream-demo"), 5)

    assert not severe_console(drv), severe_console(drv)

    # A stream that fails (404) is retried with a cache buster after the
    # back-off table's delays: mount one more MjpegStream in the page.
    log = os.path.join(TOP, "run", str(stack.port), "nginx-access.log")
    log_start = os.path.getsize(log)
    ok = drv.execute_async_script("""
        const done = arguments[arguments.length - 1];
        Promise.all([import('vue'), import('./MjpegStream.js')]).then(([vue, m]) => {
            const el = document.createElement('div');
            document.body.append(el);
            window.__errors = [];
            vue.createApp({ render: () => vue.h(m.default, {
                src: '../stream/nosuch', id: 'stream-nosuch', backoffMs: [200, 400, 800],
                onError: (e) => window.__errors.push(e) }) }).mount(el);
            done(true);
        }, (e) => done(String(e)));""")
    assert ok is True, ok
    # the last delay of the table repeats
    errors = wait_for("four failed attempts", lambda: drv.execute_script(
        "return window.__errors.length >= 4 ? window.__errors : null"), 8)
    assert [e["delayMs"] for e in errors[:4]] == [200, 400, 800, 800], errors
    # nginx saw the first request and then retries, each with a new `_`
    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(log_start)
        asked = re.findall(r'"GET (/stream/nosuch\S*) HTTP', f.read())
    assert asked[:1] == ["/stream/nosuch"], asked
    busters = [re.fullmatch(r"/stream/nosuch\?_=(\w+)", a) for a in asked[1:]]
    assert len(busters) >= 2 and all(busters), asked
    assert len({b.group(1) for b in busters}) == len(busters), asked


def test_page_and_vue_component_share_the_reconnect_policy():
    """The viewer page and the Vue component reconnect alike: the same
    back-off table and the same watchdog numbers."""
    def constants(path):
        with open(os.path.join(TOP, "html", path), encoding="utf-8") as f:
            text = f.read()
        found = {}
        for name in ("BACKOFF_MS", "WATCHDOG_MS", "PER_PART_LOADS"):
            m = re.search(r"\bconst %s = ([^;]+);" % name, text)
            assert m, "%s: no const %s" % (path, name)
            found[name] = re.sub(r"\s+", "", m.group(1))
        return found

    page, component = constants("viewer.js"), constants("vue/MjpegStream.js")
    assert page == component, (page, component)


def test_chromium_page_survives_restart(stack, browser):
    """make stop + make start on the same port with the page open: the page
    notices (banner), reconnects by itself, and the demo is live again."""
    drv = browser
    drv.get(stack.url(""))
    pre = sample_screen(drv, "#stream-demo", 6, until=lambda s: alternation_at(s) is not None)
    assert alternation_at(pre) is not None, "not live before the restart: " + describe(pre)

    stack.stop()
    t_stop = time.monotonic()
    banner = drv.find_element(By.ID, "status-banner")
    wait_for("#status-banner while the server is down", banner.is_displayed, 8)
    t_banner = time.monotonic() - t_stop

    stack.start()
    t_up = time.monotonic()
    post = sample_screen(drv, "#stream-demo", RESTART_LIMIT_S + 5,
                         until=lambda s: live_again_at(s) is not None)
    t_live = live_again_at(post)
    if t_live is None or t_live > RESTART_LIMIT_S:
        waited = time.monotonic() - t_up
        pytest.fail("after make start the screen did not show the demo alternating again "
                    "within %d s (measured: %s; waited %.1f s): %s" % (
                        RESTART_LIMIT_S, "%.1f s" % t_live if t_live else "never", waited,
                        describe(post)))
    wait_for("#status-banner to go away", lambda: not banner.is_displayed(), 5)
    # keeps step again
    again = sample_frames(drv, "#stream-demo", stack)
    check_keeps_step(again, "viewer page after the restart")
    print("restart: banner after %.1f s down; live again %.1f s after make start returned "
          "(first new colour change at %.1f s)" % (
              t_banner, t_live, demo_runs(post)[1][1] if len(demo_runs(post)) > 1 else -1),
          file=sys.stderr)
