"""HTTPS and HTTP/2: the stacks of `make start TLS=1` (conf/stack.sh), read by
real clients (curl over HTTP/2 and HTTP/1.1, ffprobe, OpenCV, each checking
the stack's self-signed certificate rather than ignoring it), and the viewer
page in headless Chromium: over HTTP/2 every one of 16 streams plays live
(the screen changes at each picture), over HTTP/1.1 four do and the rest
show snapshots, without errors in the console."""

import io
import os
import re
import select
import subprocess
import tempfile
import time

import pytest
from PIL import Image, ImageChops, ImageStat
from selenium.common.exceptions import (ElementClickInterceptedException,
                                        ElementNotInteractableException,
                                        StaleElementReferenceException)

from browser import one_test as browser_one_test
from browser import session as browser_session
from stacks import TOP, free_port, running_stack, wait_until

PYTHON = "/usr/bin/python3"
ARTIFACTS = os.path.join(TOP, "tests", "artifacts")

CLIENT_TIMEOUT = 30        # any one client command
WALL_STREAMS = 16
# Small and slow, to keep 16 encoders cheap: 2 frames a second of moving
# bars (every frame differs), 160x120.
WALL_CONFIG = "".join("[stream cam%02d]\nsource = pattern:bars\nsize = 160x120\nfps = 2\n"
                      "quality = 60\n\n" % (i + 1) for i in range(WALL_STREAMS))
PICTURES_WAIT_S = 30       # every <img> shows its first picture within this
# Screenshots are taken about SHOT_GAP_S apart until each picture's region
# has changed between two of them at least once, for at most CHANGE_WAIT_S.
# At 2 fps a region changes between any two screenshots 1 s apart (two new
# frames); a busy machine (3x slower) that takes 2 s per screenshot still
# leaves 5 chances in CHANGE_WAIT_S, where one is needed.
SHOT_GAP_S = 1.0
CHANGE_WAIT_S = 10.0
# Mean absolute difference (0-255, over the region's RGB channels) above
# which a region counts as changed: the bars move by several pixels a frame
# and the frame number and time change, far above this; two screenshots of
# the same picture differ by 0.
REGION_CHANGED = 2.0
# HTTP/1.1 keeps four streams live (MAX_LIVE_HTTP1 in html/viewer.js).
HTTP1_LIVE = 4
# The first part of a stream (sent as soon as the request arrives) is
# complete at the client within this, through TLS and HTTP/2. It takes
# 0.01 to 0.07 s here behind every server, so a 3x slower machine fits
# many times over; a server holding the demo's output back (about 3.5 KiB
# a second: 1.7 KiB parts, twice a second) in a buffer of 14 KiB or more
# delivers it later (nginx's 64k fastcgi buffer, mod_fcgid's 64 KiB
# default: about 18 s). Measured first on a fresh stack: mod_fcgid, whose
# processes are all busy for a moment after a viewer left, waits a second
# before it starts another.
FIRST_PART_S = 4.0
# HTTP versions each server negotiates for curl --http2: lighttpd 1.4.69
# allows only 8 concurrent streams per HTTP/2 connection, so its TLS stack
# offers HTTP/1.1 only (conf/lighttpd.conf.in, README Deploying).
H2_VERSION = {"nginx": "2", "lighttpd": "1.1", "apache": "2", "apache-fcgid": "2",
              "apache-proxy": "2"}


def run(cmd, timeout=CLIENT_TIMEOUT, **kw):
    """Runs a command with a timeout; a hang is a test failure, not a hung run."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        pytest.fail("%s did not finish within %d s" % (cmd[0], timeout))


@pytest.fixture(scope="module")
def wall_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("tls") / "wall.ini"
    path.write_text(WALL_CONFIG)
    return path


@pytest.fixture(scope="module")
def tls_stack():
    """nginx with TLS=1 and the built-in streams (demo, bars)."""
    with running_stack(tls=True) as st:
        yield st


# ---- clients over TLS ------------------------------------------------------


def curl_stream(st, path, version, seconds=3):
    """curl VERSION (--http2, --http1.1) reads the stream for SECONDS,
    verifying the stack's certificate: (negotiated HTTP version, body)."""
    out = tempfile.NamedTemporaryFile(prefix="mjpeg-tls-", delete=False)
    out.close()
    try:
        r = run(["curl", "-sS", "--noproxy", "*", version, "--cacert", st.cert,
                 "--max-time", str(seconds), "-o", out.name, "-w", "%{http_version}",
                 st.url(path)])
        # 28: the time limit ended the endless stream, as intended
        assert r.returncode in (0, 28), (r.returncode, r.stderr)
        with open(out.name, "rb") as f:
            return r.stdout.strip(), f.read()
    finally:
        os.unlink(out.name)


def jpeg_parts(body):
    return body.count(b"Content-Type: image/jpeg")


@pytest.mark.parametrize("version, expect", [("--http2", "2"), ("--http1.1", "1.1")])
def test_curl_reads_a_stream_over_tls(tls_stack, version, expect):
    got, body = curl_stream(tls_stack, "stream/demo", version)
    assert got == expect, "curl %s negotiated HTTP/%s" % (version, got)
    assert jpeg_parts(body) >= 2, body[:300]
    assert b"\xff\xd8" in body and b"\xff\xd9" in body


def test_curl_refuses_an_unknown_certificate(tls_stack):
    """The stack really serves its own certificate: a client that trusts
    only the system's authorities refuses it."""
    r = run(["curl", "-sS", "--noproxy", "*", "--max-time", "5", "-o", "/dev/null",
             tls_stack.url("status")])
    assert r.returncode == 60, (r.returncode, r.stderr)   # peer certificate not trusted


def test_plain_http_is_not_served_on_a_tls_port(tls_stack):
    r = run(["curl", "-sS", "--noproxy", "*", "--max-time", "5", "-o", "/dev/null",
             "-w", "%{http_code}", "http://127.0.0.1:%d/status" % tls_stack.port])
    # nginx answers a plain request on an ssl port with 400
    assert r.stdout.strip() != "200", r.stdout


def test_ffprobe_over_tls(tls_stack):
    r = run(["ffprobe", "-v", "error", "-tls_verify", "1", "-ca_file", tls_stack.cert,
             "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height",
             "-of", "csv=p=0", tls_stack.url("stream/bars")])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "mjpeg,640,480", r.stdout


def test_ffmpeg_over_tls_verifies_the_certificate(tls_stack):
    """ffmpeg checks the certificate only when told (-tls_verify 1); told
    to, without the stack's certificate it refuses: the check above is real."""
    r = run(["ffprobe", "-v", "error", "-tls_verify", "1", tls_stack.url("stream/bars")])
    assert r.returncode != 0 and "verif" in r.stderr, (r.returncode, r.stderr)


def test_opencv_over_tls(tls_stack):
    code = (
        "import cv2, sys\n"
        "cap = cv2.VideoCapture(sys.argv[1], cv2.CAP_FFMPEG)\n"
        "assert cap.isOpened(), 'not opened'\n"
        "shapes = set()\n"
        "for _ in range(3):\n"
        "    ok, frame = cap.read()\n"
        "    assert ok, 'read failed'\n"
        "    shapes.add(frame.shape)\n"
        "print(sorted(shapes))\n")
    env = dict(os.environ)
    # OpenCV hands these to ffmpeg's https reader (key;value|key;value)
    env["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "tls_verify;1|ca_file;" + tls_stack.cert
    r = run([PYTHON, "-c", code, tls_stack.url("stream/bars")], env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[(480, 640, 3)]", r.stdout


def first_part_after(st, version):
    """Seconds from starting curl VERSION to the end of the first JPEG of
    stream/demo on its output, and the negotiated version; curl writes
    what arrives at once (-N)."""
    cmd = ["curl", "-sS", "-N", "--noproxy", "*", version, "--cacert", st.cert,
           "--max-time", "10", "-w", "\n%{http_version}", st.url("stream/demo")]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    data = b""
    first = None
    try:
        while time.monotonic() - t0 < 10:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            data += chunk
            if first is None and b"\xff\xd9" in data:
                first = time.monotonic() - t0
                # read on for a second: the stream goes on after it
                t0_more = time.monotonic()
                while time.monotonic() - t0_more < 1.5:
                    if select.select([proc.stdout], [], [], 0.2)[0]:
                        more = os.read(proc.stdout.fileno(), 65536)
                        if not more:
                            break
                        data += more
                break
    finally:
        proc.kill()
        proc.wait()
    return first, data


@pytest.mark.usefixtures("server")
def test_each_server_streams_over_tls(server):
    """Every server shape: https on the stack's port, HTTP/2 where it
    offers it (H2_VERSION), the first part of a stream there while the
    stream still runs (nothing holds it back), and HTTP/1.1 on the same
    port."""
    with running_stack(server=server, tls=True) as st:
        first, data = first_part_after(st, "--http2")
        assert first is not None, "%s: no complete part in 10 s: %r" % (server, data[:300])
        assert first <= FIRST_PART_S, "%s: first part after %.2f s" % (server, first)
        assert jpeg_parts(data) >= 2, "%s: the stream stopped after its first part" % server

        got, body = curl_stream(st, "stream/demo", "--http2")
        assert got == H2_VERSION[server], "%s: curl --http2 negotiated HTTP/%s" % (server, got)
        assert jpeg_parts(body) >= 2, body[:300]

        got, body = curl_stream(st, "stream/demo", "--http1.1")
        assert got == "1.1" and jpeg_parts(body) >= 2, (server, got, body[:300])
        status, _, doc = st.get("status")
        assert status == 200 and b'"streams"' in doc


# ---- refusals ------------------------------------------------------------------


def refused_start(env):
    """conf/stack.sh start on a free port with ENV added: must fail and
    leave nothing running or recorded; its message."""
    port = free_port()
    run_dir = os.path.join(TOP, "run", str(port))
    # a stack that ran on this port before left its certificate (kept)
    cert = os.path.join(run_dir, "tls", "cert.pem")
    had_cert = os.path.exists(cert)
    r = run(["conf/stack.sh", "start", str(port)], cwd=TOP, env=dict(os.environ, **env),
            timeout=60)
    try:
        assert r.returncode != 0, r.stdout + r.stderr
        for name in ("server", "server.pgid", "responder.pgid"):
            assert not os.path.exists(os.path.join(run_dir, name)), name
        assert had_cert or not os.path.exists(cert)
        assert not os.path.exists("/dev/shm/mjpeg-fcgi-%d" % port)
        status = run(["curl", "-sS", "--noproxy", "*", "--max-time", "2", "-k", "-o",
                      "/dev/null", "https://127.0.0.1:%d/status" % port])
        assert status.returncode == 7, status.stderr     # nothing listens
        return r.stderr
    finally:
        run(["conf/stack.sh", "stop", str(port)], cwd=TOP)


def test_tls_value_is_checked():
    assert "TLS must be 0 or 1, not 'yes'" in refused_start({"TLS": "yes"})


def test_tls_without_openssl_is_refused():
    err = refused_start({"TLS": "1", "OPENSSL": "/nonexistent/openssl"})
    assert "/nonexistent/openssl not found (install openssl" in err, err


def test_tls_certificate_failure_is_refused():
    err = refused_start({"TLS": "1", "OPENSSL": "/bin/false"})
    assert "openssl could not make the certificate in" in err, err


def test_tls_lighttpd_without_mod_openssl_is_refused():
    err = refused_start({"TLS": "1", "SERVER": "lighttpd", "LIGHTTPD_MODDIR": "/nonexistent"})
    assert "/nonexistent/mod_openssl.so missing (install lighttpd-mod-openssl" in err, err


def test_tls_apache_without_mod_http2_is_refused(tmp_path):
    # a module directory with everything of Debian's but mod_http2
    for m in os.listdir("/usr/lib/apache2/modules"):
        if m != "mod_http2.so":
            os.symlink(os.path.join("/usr/lib/apache2/modules", m), tmp_path / m)
    err = refused_start({"TLS": "1", "SERVER": "apache-proxy", "APACHE_MODDIR": str(tmp_path)})
    assert "mod_http2.so missing" in err, err


# ---- the page in Chromium ---------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium (fresh profile) that accepts the stacks'
    self-signed certificates."""
    with browser_session(extra_args=("--ignore-certificate-errors",)) as drv:
        yield drv


@pytest.fixture
def browser(chromium):
    """The module's Chromium, for one test (browser.one_test)."""
    with browser_one_test(chromium) as drv:
        yield drv


DEMO_404 = re.compile(r"/(stream|snapshot)/demo(\?_=\d+)? - .* 404 ")


def severe_console(drv):
    """Errors in the console, but for 404s of stream/demo and snapshot/demo:
    index.html holds the demo's card so that it plays before (and without)
    JavaScript, and these configs have no stream demo. Until the first
    status answer, which drops the card, the script treats it as any
    other (a snapshot, a reconnect after the failed stream)."""
    return [e for e in drv.get_log("browser")
            if e.get("level") == "SEVERE" and "favicon" not in e.get("message", "")
            and not DEMO_404.search(e.get("message", ""))]


PAGE_STATE = """
    const nav = performance.getEntriesByType('navigation')[0];
    const pics = [...document.querySelectorAll('#streams .card:not([hidden]) .frame img')];
    return {
        protocol: nav ? nav.nextHopProtocol : null,
        banner: !document.getElementById('status-banner').hidden,
        pictures: pics.map((e) => {
            const r = e.getBoundingClientRect();
            return {id: e.id, cls: e.className, src: e.getAttribute('src') || '',
                    shown: e.complete && e.naturalWidth > 0,
                    left: r.left, top: r.top, w: r.width, h: r.height};
        }),
        dpr: window.devicePixelRatio,
        vw: window.innerWidth, vh: window.innerHeight,
    };"""


def page_state(drv):
    return drv.execute_script(PAGE_STATE)


def screen(drv):
    return Image.open(io.BytesIO(drv.get_screenshot_as_png())).convert("RGB")


def region(im, pic, dpr):
    """The screen pixels of a picture, 2 CSS pixels inside its edges."""
    box = (int((pic["left"] + 2) * dpr), int((pic["top"] + 2) * dpr),
           int((pic["left"] + pic["w"] - 2) * dpr), int((pic["top"] + pic["h"] - 2) * dpr))
    return im.crop(box)


def region_change(a, b):
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def click_picture(drv, name):
    """Clicks the picture of stream NAME's card, as a person would: once it
    shows one (while a stream reconnects, its <img> is hidden)."""
    def clicked():
        try:
            drv.find_element("css selector", "#card-%s .frame img" % name).click()
            return True
        except (ElementNotInteractableException, ElementClickInterceptedException,
                StaleElementReferenceException):
            return False
    assert wait_until(clicked, 10), "the picture of %s could not be clicked for 10 s" % name


def test_page_plays_16_streams_live_over_http2(wall_config, browser):
    drv = browser
    with running_stack(config=wall_config, tls=True) as st:
        drv.get(st.url("") + "#wall")

        def all_shown():
            s = page_state(drv)
            live = [p for p in s["pictures"] if p["cls"] == "stream" and p["shown"]]
            return s if len(live) == WALL_STREAMS else None

        s = wait_until(all_shown, PICTURES_WAIT_S)
        last = page_state(drv)
        assert s, "not every stream plays a picture within %d s: %r" % (
            PICTURES_WAIT_S, [(p["id"], p["cls"], p["shown"]) for p in last["pictures"]])
        assert s["protocol"] == "h2", s["protocol"]
        assert not s["banner"]
        pics = s["pictures"]
        assert all(p["src"].startswith("stream/cam") for p in pics), [p["src"] for p in pics]
        # the wall fits every picture into the window
        for p in pics:
            assert p["left"] >= 0 and p["top"] >= 0 and p["w"] > 20 and \
                p["left"] + p["w"] <= s["vw"] and p["top"] + p["h"] <= s["vh"], p
        # the server sees one viewer per stream: 16 streams over one connection
        doc = st.status()
        assert sorted(x["viewers"] for x in doc["streams"]) == [1] * WALL_STREAMS, doc

        changed = set()
        shots = 0
        prev = screen(drv)
        deadline = time.monotonic() + CHANGE_WAIT_S
        while len(changed) < WALL_STREAMS and time.monotonic() < deadline:
            time.sleep(SHOT_GAP_S)
            cur = screen(drv)
            shots += 1
            for p in pics:
                if region_change(region(prev, p, s["dpr"]), region(cur, p, s["dpr"])) > \
                        REGION_CHANGED:
                    changed.add(p["id"])
            prev = cur
        os.makedirs(ARTIFACTS, exist_ok=True)
        cur.save(os.path.join(ARTIFACTS, "wall-h2.png"))
        still = sorted(p["id"] for p in pics if p["id"] not in changed)
        assert not still, "pictures that never changed in %d screenshots over %.0f s: %s" % (
            shots + 1, CHANGE_WAIT_S, still)
        assert not severe_console(drv), severe_console(drv)


@pytest.mark.parametrize("view", ["cards", "wall"])
def test_page_keeps_four_live_over_http1(wall_config, browser, view):
    drv = browser
    with running_stack(config=wall_config) as st:
        drv.get(st.url("") + "#" + view)

        def settled():
            s = page_state(drv)
            pics = s["pictures"]
            if len(pics) != WALL_STREAMS or not all(p["shown"] for p in pics):
                return None
            return s

        s = wait_until(settled, PICTURES_WAIT_S)
        last = page_state(drv)
        assert s, "the page did not settle within %d s: %r" % (
            PICTURES_WAIT_S, [(p["id"], p["cls"], p["shown"]) for p in last["pictures"]])
        assert s["protocol"] == "http/1.1", s["protocol"]
        live = [p for p in s["pictures"] if p["cls"] == "stream"]
        thumbs = [p for p in s["pictures"] if p["cls"] == "thumb"]
        assert len(live) == HTTP1_LIVE and len(thumbs) == WALL_STREAMS - HTTP1_LIVE, \
            [(p["id"], p["cls"]) for p in s["pictures"]]
        assert all(p["src"].startswith("blob:") for p in thumbs), [p["src"] for p in thumbs]
        # the status poll still gets through beside the four streams
        time.sleep(3)
        assert not page_state(drv)["banner"]
        live_viewers = sum(x["viewers"] for x in st.status()["streams"])
        assert live_viewers == HTTP1_LIVE, live_viewers
        if view == "wall":
            # a snapshot tile clicked plays live at full size; the stream
            # live longest gives way, so four still play
            last = thumbs[-1]["id"].replace("thumb-", "")
            click_picture(drv, last)

            def swapped():
                pics = page_state(drv)["pictures"]
                mine = [p for p in pics if p["id"] == "stream-" + last and p["shown"]]
                live_now = [p for p in pics if p["cls"] == "stream"]
                return mine and len(live_now) == HTTP1_LIVE

            assert wait_until(swapped, 10), page_state(drv)["pictures"]
        assert not severe_console(drv), severe_console(drv)


# The wall config with cam02 made on the server as cam01's scaled copy.
SCALED_CONFIG = WALL_CONFIG.replace(
    "[stream cam02]\nsource = pattern:bars\nsize = 160x120\n",
    "[stream cam02]\nsource = scale:cam01\nsize = 80x60\n")
assert SCALED_CONFIG != WALL_CONFIG

TILES = """
return Object.fromEntries([...document.querySelectorAll('#streams .card')].map((c) => {
    const img = c.querySelector('.frame img');
    return [c.dataset.stream, {hidden: c.hidden, cls: img && img.className,
                               src: img && img.getAttribute('src') || ''}];
}));"""


def test_wall_shows_a_streams_scaled_copy(tmp_path, browser):
    """On the wall, a stream whose source is scale:cam01 plays in cam01's
    tile and has none of its own; at full size (a click) the tile plays
    cam01 itself, and again the copy after; the cards view shows both."""
    drv = browser
    config = tmp_path / "scaled.ini"
    config.write_text(SCALED_CONFIG)
    with running_stack(config=config, tls=True) as st:
        assert st.stream("cam02")["source"] == "scale:cam01"
        drv.get(st.url("") + "#wall")

        def tiles_where(pred):
            t = drv.execute_script(TILES)
            return t if len(t) == WALL_STREAMS and pred(t) else None

        def plays(t, name, stream):
            return t[name]["cls"] == "stream" and \
                t[name]["src"].startswith("stream/%s?" % stream)

        t = wait_until(lambda: tiles_where(lambda t: plays(t, "cam01", "cam02")),
                       PICTURES_WAIT_S)
        assert t, drv.execute_script(TILES)
        assert t["cam02"]["hidden"] and t["cam02"]["src"] == "", t["cam02"]
        assert plays(t, "cam03", "cam03"), t["cam03"]
        # the tile shows the copy's pictures (80x60), made by the server
        width = """return document.querySelector(
            '#streams .card[data-stream=cam01] .frame img').naturalWidth;"""
        assert wait_until(lambda: drv.execute_script(width) == 80, PICTURES_WAIT_S), \
            drv.execute_script(width)

        click_picture(drv, "cam01")
        assert wait_until(lambda: tiles_where(lambda t: plays(t, "cam01", "cam01")), 10), \
            drv.execute_script(TILES)
        drv.execute_script("""
            if (document.fullscreenElement) document.exitFullscreen();
            for (const z of document.querySelectorAll('.frame.zoomed'))
                z.classList.remove('zoomed');
            document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}));""")
        assert wait_until(lambda: tiles_where(lambda t: plays(t, "cam01", "cam02")), 10), \
            drv.execute_script(TILES)

        drv.find_element("css selector", "button[data-view=cards]").click()
        t = wait_until(lambda: tiles_where(lambda t: plays(t, "cam01", "cam01") and
                                           plays(t, "cam02", "cam02")), 10)
        assert t and not t["cam02"]["hidden"], drv.execute_script(TILES)
        assert not severe_console(drv), severe_console(drv)
