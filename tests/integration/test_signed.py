"""Private streams behind every web server: a signed link (exp, sig, ip)
opens a stream with a view_secret, in curl-like clients and in an <img> of
headless Chromium; a wrong, expired, other-stream or other-address link
gets 403 and no stream bytes; a stream ends at its link's exp with the
closing boundary; a new secret in the config ends the streams opened with
the old one (SIGHUP; under plain CGI, the program notices the file
changed); /status and /metrics show private streams only with the
status_token."""

import base64
import hashlib
import hmac
import io
import json
import os
import signal
import subprocess
import tempfile
import time

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.remote_connection import RemoteConnection

import mjpeg
from stacks import TOP, wait_until

BIN = os.path.join(TOP, "fcgi", "mjpeg-fcgi")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

SECRET = "cam-secret-0123456789abcdefghijklmnop"
SECRET_NEW = "cam-secret-rotated-9876543210zyxwvuts"
OTHER_SECRET = "other-secret-0123456789abcdefghijklm"
STATUS_TOKEN = "status-token-0123456789"

CONFIG = """[server]
status_token = %s

[stream cam]
source = pattern:redblue
view_secret = %s

[stream other]
source = pattern:bars
size = 160x120
fps = 5
view_secret = %s

[stream demo]
source = pattern:redblue
"""


def config_text(cam_secret=SECRET):
    return CONFIG % (STATUS_TOKEN, cam_secret, OTHER_SECRET)


# Waits for what happens "at once" (a reload, a first frame): a passing run
# returns as soon as it happened; only a failing one waits this long.
WAIT_S = 15
# Each read of a Watcher: a first frame may take a keepalive (1 s) and
# more when another process produces the stream (mod_fcgid, lighttpd).
WATCH_TIMEOUT_S = 5
# A stream ends at its link's exp "within a second"; the check allows
# 2.5 s after exp, for a machine three times slower than this one (the
# writer wakes at exp; the bytes still pass the web server). A stream that
# does not end at exp runs on for ever, so the bug is still caught.
END_LATE_S = 2.5
# exp is whole seconds and the responder ends the stream at exp on its
# own clock, the same clock as this process's: never before it (the
# margin is for the rounding of time.time() against the monotonic clock).
END_EARLY_S = 0.05


def sign(name, exp, secret, ip=None):
    """A link's query, minted here with Python's hmac, independently of
    the responder: sig = HMAC-SHA256(secret, "NAME\\nEXP[\\nIP]")."""
    message = "%s\n%d" % (name, exp) + ("\n" + ip if ip else "")
    sig = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return "exp=%d&sig=%s" % (exp, sig) + ("&ip=" + ip if ip else "")


def link(name="cam", ttl=300, secret=SECRET, ip=None, kind="stream"):
    return "/%s/%s?%s" % (kind, name, sign(name, int(time.time()) + ttl, secret, ip))


@pytest.fixture(scope="module")
def signed_stack(server, tmp_path_factory):
    """One stack with the private streams for the module's read-only tests."""
    from stacks import start_stack
    config = tmp_path_factory.mktemp("signed") / "signed.ini"
    config.write_text(config_text())
    st = start_stack(config=config, server=server)
    try:
        yield st
    finally:
        st.stop()


def stream_parts(st, path, n):
    """The first N parts of a stream at PATH (status 200 asserted)."""
    with mjpeg.Viewer(st.port, path, deadline=time.monotonic() + WAIT_S) as v:
        assert v.status == 200, (v.status, v.resp.read()[:200])
        parts = [v.reader.next_part() for _ in range(n)]
    assert all(parts), parts
    for p in parts:
        mjpeg.decode_jpeg(p.body)
    return parts


def test_sign_command_link_plays_and_snapshots(signed_stack):
    out = subprocess.run([BIN, "sign", "--config", signed_stack.config, "cam", "--ttl", "120"],
                         capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    assert out.startswith("stream/cam?exp=") and "&sig=" in out, out
    stream_parts(signed_stack, "/" + out, 2)
    status, headers, body = signed_stack.get("/snapshot/cam?" + out.split("?", 1)[1])
    assert status == 200 and headers["Content-Type"] == "image/jpeg", (status, body[:200])
    mjpeg.decode_jpeg(body)
    # a public stream needs nothing, and the unsigned parameters go with a link
    stream_parts(signed_stack, "/stream/demo", 1)
    stream_parts(signed_stack, link() + "&fps=5&_=1", 1)


def test_link_bound_to_the_client_address(signed_stack):
    # every stack here is reached from 127.0.0.1 (REMOTE_ADDR)
    stream_parts(signed_stack, link(ip="127.0.0.1"), 1)


def refused_cases():
    now = int(time.time())
    good = sign("cam", now + 300, SECRET)
    exp, sig = good.split("&")
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    return {
        "no link": ("/stream/cam", "invalid signature"),
        "no sig": ("/stream/cam?" + exp, "invalid signature"),
        "wrong sig": ("/stream/cam?%s&%s" % (exp, flipped), "invalid signature"),
        "upper-case sig": ("/stream/cam?%s&%s" % (exp, sig.upper().replace("SIG=", "sig=")),
                           "invalid signature"),
        "moved exp": ("/stream/cam?exp=%d&%s" % (now + 301, sig), "invalid signature"),
        "wrong secret": ("/stream/cam?" + sign("cam", now + 300, SECRET + "x"),
                         "invalid signature"),
        "other stream's link": ("/stream/cam?" + sign("other", now + 300, OTHER_SECRET),
                                "invalid signature"),
        "cam's link on other": ("/stream/other?" + good, "invalid signature"),
        # past exp and past the 30 s grace
        "expired": ("/stream/cam?" + sign("cam", now - 120, SECRET), "link expired"),
        "other address": ("/stream/cam?" + sign("cam", now + 300, SECRET, "127.0.0.2"),
                          "link not valid from this address"),
        "snapshot, no link": ("/snapshot/cam", "invalid signature"),
        "snapshot, expired": ("/snapshot/cam?" + sign("cam", now - 120, SECRET),
                              "link expired"),
    }


def test_refused_links_get_403_and_no_stream(signed_stack):
    for what, (path, reason) in refused_cases().items():
        status, headers, body = signed_stack.get(path)
        assert status == 403, (what, status, body[:200])
        assert headers["Content-Type"].startswith("text/plain"), (what, headers["Content-Type"])
        assert body == reason.encode() + b"\n", (what, body[:200])
        assert b"\xff\xd8" not in body and b"--" not in body, what


def test_stream_ends_at_exp_with_closing_boundary(signed_stack):
    exp = int(time.time()) + 3
    path = "/stream/cam?" + sign("cam", exp, SECRET)
    with mjpeg.Viewer(signed_stack.port, path, deadline=time.monotonic() + 3 + WAIT_S) as v:
        assert v.status == 200, v.resp.read()[:200]
        parts = 0
        while v.reader.next_part() is not None:
            parts += 1
        ended = time.time()
        v.reader.finish()   # the closing boundary, and nothing after it
    assert parts >= 2, parts  # the 1 fps demo, repeated: several parts in 3 s
    assert exp - END_EARLY_S <= ended <= exp + END_LATE_S, (exp, ended)
    # within the grace the same link still opens (clock skew), but the
    # stream is over at once: one part at most, then the closing boundary
    with mjpeg.Viewer(signed_stack.port, path, deadline=time.monotonic() + WAIT_S) as v:
        assert v.status == 200, v.resp.read()[:200]
        late = 0
        while v.reader.next_part() is not None:
            late += 1
        v.reader.finish()
    assert late <= 1, late


def status_doc(st, token=None):
    headers = {"Authorization": "Bearer " + token} if token else {}
    status, _, body = st.request("GET", "/status", headers=headers)
    assert status == 200, (status, body[:200])
    return json.loads(body), body


def metrics_doc(st, token=None):
    headers = {"Authorization": "Bearer " + token} if token else {}
    status, _, body = st.request("GET", "/metrics", headers=headers)
    assert status == 200, (status, body[:200])
    return body.decode()


def test_status_and_metrics_hide_private_streams(signed_stack):
    watcher = mjpeg.Watcher(signed_stack.port, link(), reconnect=False, timeout=WATCH_TIMEOUT_S)
    watcher.start()
    try:
        assert wait_until(lambda: watcher.parts > 0, WAIT_S), "no part of the private stream"
        for token in (None, "wrong-token-0123456789"):
            doc, raw = status_doc(signed_stack, token)
            assert [s["name"] for s in doc["streams"]] == ["demo"], doc["streams"]
            # its viewer is not in this process's total either (nobody
            # watches demo, the one public stream)
            assert doc["viewers"] == 0, doc
            assert b"cam" not in raw and b"other" not in raw, raw
            text = metrics_doc(signed_stack, token)
            assert 'stream="cam"' not in text and 'stream="other"' not in text, text
            assert "mjpeg_process_viewers 0\n" in text, text
        # with the token (which every server passes on): all of them
        doc, raw = status_doc(signed_stack, STATUS_TOKEN)
        assert sorted(s["name"] for s in doc["streams"]) == ["cam", "demo", "other"], doc
        assert wait_until(lambda: signed_stack.stream("cam", status_doc(
            signed_stack, STATUS_TOKEN)[0])["viewers"] >= 1, WAIT_S)
        assert 'stream="cam"' in metrics_doc(signed_stack, STATUS_TOKEN)
        # secrets are never shown, token or not
        for secret in (SECRET, OTHER_SECRET, STATUS_TOKEN):
            assert secret.encode() not in raw
    finally:
        watcher.stop.set()
        watcher.join(10)


# ---- a new secret ends the streams opened with the old one ---------------

def responders(port):
    """Pids of this stack's responder processes (their command line names
    the stack's own bus directory)."""
    bus = b"/dev/shm/mjpeg-fcgi-%d" % port
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and os.path.basename(args[0]) == b"mjpeg-fcgi" and bus in args:
            pids.append(int(p))
    return pids


def rotate_secret(st):
    """Writes SECRET_NEW for cam into the config the stack's responders
    read, and tells them as each deployment does: SIGHUP to the responder
    (nginx, apache-proxy: its pid file; lighttpd and mod_fcgid: the
    processes they spawned); plain CGI reads its file again by itself."""
    if st.server == "apache":
        path = os.path.join(st.run_dir, "www", "mjpeg-fcgi.ini")
    elif st.server == "apache-fcgid":
        path = os.path.join(st.run_dir, "mjpeg-fcgi.ini")
    else:
        path = st.config
    with open(path) as f:
        text = f.read()
    assert SECRET in text, path
    with open(path, "w") as f:
        f.write(text.replace(SECRET, SECRET_NEW))
    if st.server in ("nginx", "apache-proxy"):
        os.kill(st.pid(), signal.SIGHUP)
    elif st.server != "apache":
        pids = responders(st.port)
        assert pids, "no responder process of port %d" % st.port
        for pid in pids:
            os.kill(pid, signal.SIGHUP)


def test_new_secret_ends_streams_of_the_old_one(server, stack_factory, tmp_path):
    config = tmp_path / "rotate.ini"
    config.write_text(config_text())
    st = stack_factory(config)
    old = mjpeg.Watcher(st.port, link(), reconnect=False, timeout=WATCH_TIMEOUT_S)
    kept = mjpeg.Watcher(st.port, link("other", secret=OTHER_SECRET), reconnect=False,
                         timeout=WATCH_TIMEOUT_S)
    for w in (old, kept):
        w.start()
    try:
        assert wait_until(lambda: old.parts > 0 and kept.parts > 0, WAIT_S), \
            (old.parts, kept.parts)
        rotate_secret(st)
        assert old.ended.wait(WAIT_S), "the stream of the old secret goes on"
        assert old.closed_properly
        # the new secret's links open, the old ones no longer
        assert wait_until(lambda: st.get(link(kind="snapshot", secret=SECRET_NEW))[0] == 200,
                          WAIT_S)
        assert st.get(link(kind="snapshot"))[0] == 403
        # the stream whose secret did not change plays on
        before = kept.parts
        assert wait_until(lambda: kept.parts > before + 1, WAIT_S), kept.parts
        assert not kept.ended.is_set()
    finally:
        for w in (old, kept):
            w.stop.set()
            w.join(10)


# ---- Chromium: a signed link in an <img> ----------------------------------

@pytest.fixture(scope="module")
def chromium():
    RemoteConnection.set_timeout(30)
    with tempfile.TemporaryDirectory(prefix="mjpeg-chromium-") as profile:
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--user-data-dir=" + profile, "--window-size=800,600"):
            opts.add_argument(a)
        drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        try:
            drv.set_page_load_timeout(15)
            drv.set_script_timeout(10)
            yield drv
        finally:
            try:
                drv.quit()
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass


SCREEN_PATCH = 9   # CSS pixels around the <img>'s centre


def screen_colour(drv, img_id):
    """'red', 'blue' or None: what the screen shows at the <img>'s centre."""
    box = drv.execute_script("""
        const r = document.getElementById(arguments[0]).getBoundingClientRect();
        return [r.left + r.width / 2 + window.scrollX, r.top + r.height / 2 + window.scrollY];
        """, img_id)
    half = SCREEN_PATCH / 2
    shot = drv.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "clip": {"x": box[0] - half, "y": box[1] - half,
                                  "width": SCREEN_PATCH, "height": SCREEN_PATCH, "scale": 1}})
    im = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    px = list(im.getdata())
    r, g, b = (sum(p[i] for p in px) / len(px) for i in range(3))
    if r > 180 and g < 80 and b < 80:
        return "red"
    if b > 180 and r < 80 and g < 80:
        return "blue"
    return None


def test_chromium_img_shows_signed_stream(signed_stack, chromium):
    drv = chromium
    drv.get(signed_stack.url("/index.html"))   # any page of the stack's origin
    drv.execute_script("""
        document.body.innerHTML = '';
        for (const [id, src] of [['signed', arguments[0]], ['forged', arguments[1]]]) {
            const img = document.createElement('img');
            img.id = id; img.src = src; img.style.width = img.style.height = '128px';
            img.onerror = () => { img.dataset.failed = '1'; };
            document.body.appendChild(img);
        }""", signed_stack.url(link()), signed_stack.url("/stream/cam?" +
                                                           sign("cam", int(time.time()) + 300,
                                                                SECRET + "x")))
    try:
        # the demo pattern: red and blue, a second each; both seen on screen
        seen = set()
        deadline = time.monotonic() + WAIT_S
        while seen != {"red", "blue"} and time.monotonic() < deadline:
            seen.add(screen_colour(drv, "signed"))
            time.sleep(0.2)
        assert {"red", "blue"} <= seen, seen
        # the forged link shows nothing: the <img> failed (a 403)
        assert wait_until(lambda: drv.execute_script(
            "return document.getElementById('forged').dataset.failed === '1'"), WAIT_S)
        assert drv.execute_script("return document.getElementById('forged').naturalWidth") == 0
    finally:
        drv.execute_script("for (const i of document.images) i.src = '';")
        drv.get("about:blank")


def test_vue_component_renews_a_signed_link(signed_stack, chromium):
    """MjpegStream with a function for src: it asks for a link for every
    connection, and for a fresh one before the link's exp, so the picture
    goes on past the first link's expiry."""
    if signed_stack.server != "nginx":
        pytest.skip("the Vue example is served from html/vue by the nginx stack; the "
                    "component is the same behind every server")
    from test_clients import ensure_vue
    ensure_vue()
    drv = chromium
    drv.get(signed_stack.url("/vue/"))
    first_exp = int(time.time()) + 6
    links = [signed_stack.url("/stream/cam?" + sign("cam", first_exp, SECRET)),
             signed_stack.url(link())]
    ok = drv.execute_async_script("""
        const done = arguments[arguments.length - 1];
        window.__links = arguments[0];
        window.__calls = 0;
        Promise.all([import('vue'), import('./MjpegStream.js')]).then(([vue, m]) => {
            const el = document.createElement('div');
            document.body.prepend(el);
            vue.createApp({ render: () => vue.h(m.default, {
                id: 'signed-vue', width: 128, height: 128, renewBeforeS: 2,
                src: () => { window.__calls++; return Promise.resolve(window.__links.shift()); },
            }) }).mount(el);
            done(true);
        }, (e) => done(String(e)));""", links)
    assert ok is True, ok
    try:
        # live on the first link, then, past its exp (when the server ends
        # that stream), live on the second: red and blue both seen again
        for until in (first_exp - 1, first_exp + 1.5 + WAIT_S):
            seen = set()
            while seen != {"red", "blue"} and time.time() < until:
                seen.add(screen_colour(drv, "signed-vue"))
                time.sleep(0.2)
            assert {"red", "blue"} <= seen, (seen, time.time() - first_exp)
            if until == first_exp - 1:
                # wait for the first link to have expired
                time.sleep(max(0.0, first_exp + 1.5 - time.time()))
        assert drv.execute_script("return window.__calls") == 2
    finally:
        drv.execute_script("for (const i of document.images) i.src = '';")
        drv.get("about:blank")


def test_sign_command(tmp_path):
    """mjpeg-fcgi sign: the link it prints, and each way it refuses."""
    config = tmp_path / "sign.ini"
    config.write_text(config_text())

    def sign_cmd(*args):
        return subprocess.run([BIN, "sign"] + list(args), capture_output=True, text=True,
                              timeout=10)

    before = int(time.time())
    r = sign_cmd("--config", str(config), "cam", "--ttl", "60", "--ip", "::1")
    assert r.returncode == 0, r.stderr
    query = r.stdout.strip().split("?", 1)[1]
    exp = int(query.split("&")[0][len("exp="):])
    assert before + 60 <= exp <= int(time.time()) + 60, (before, exp)
    # the same link as Python's hmac makes for the same exp and address
    assert r.stdout == "stream/cam?%s\n" % sign("cam", exp, SECRET, "::1")
    r = sign_cmd("--config", str(config), "cam")   # default ttl: an hour
    assert r.returncode == 0 and "exp=" in r.stdout, r.stderr
    assert int(r.stdout.split("exp=")[1].split("&")[0]) >= before + 3600

    refused = [
        ((), 2, "usage: mjpeg-fcgi sign"),
        (("cam",), 2, "usage: mjpeg-fcgi sign"),
        (("--config", str(config)), 2, "usage: mjpeg-fcgi sign"),
        (("--config", str(config), "cam", "other"), 2, "usage: mjpeg-fcgi sign"),
        (("--config", str(config), "cam", "--ttl", "0"), 2, "--ttl 0: must be"),
        (("--config", str(config), "cam", "--ttl", "31622401"), 2, "from 1 to 31622400"),
        (("--config", str(config), "cam", "--ip", "example.org"), 2, "not an IPv4 or IPv6"),
        (("--config", str(config), "nosuch"), 1, "no stream 'nosuch'"),
        (("--config", str(config), "demo"), 1, "stream 'demo' has no view_secret"),
        (("--config", str(tmp_path / "missing.ini"), "cam"), 1, "cannot open"),
    ]
    for args, status, message in refused:
        r = sign_cmd(*args)
        assert r.returncode == status, (args, r.returncode, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert r.stdout == "", (args, r.stdout)
