"""Derived streams end to end through nginx: scale: (colours in the right
places, one encode per source frame whatever the viewers, a lower fps) and
mosaic: (each input in its tile; a stopped input turns grey with "no
signal" while the others go on), both run only while watched, and a reload
makes anew the streams made from a stream that changed."""

import http.client
import io
import os
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest
import mjpeg
from PIL import Image
from stacks import Stack, free_port, time_limit, wait_until

TOKEN = "derived-token-0123456789abcdef"
AUTH = {"Authorization": "Bearer " + TOKEN, "Content-Type": "image/jpeg"}
BARS_FPS = 5
SLOW_FPS = 1
# The mosaic's inputs, by quadrant (layout 2x2, filled row by row).
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220),
           "white": (235, 235, 235)}
# How far a decoded solid colour may be from what was encoded (JPEG, 4:2:0
# and two scalings on the way).
COLOUR_SLACK = 40
# What the responder states (MOSAIC_NO_SIGNAL_USEC): an input silent this
# long is drawn "no signal".
NO_SIGNAL_S = 5
# Every wait below only bounds a failing run; a passing one returns as
# soon as the thing happened.  Generous: a busy machine (3x slower) or a
# sanitizer build must not fail them.
WAIT_S = 30
TEST_TIME_LIMIT = 120


@pytest.fixture(autouse=True)
def limit():
    with time_limit(TEST_TIME_LIMIT):
        yield


class DerivedStack(Stack):
    def __init__(self, tmp):
        config = os.path.join(tmp, "derived.ini")
        ingest = "".join("[stream %s]\nsource = ingest\ntoken = %s\n\n" % (name, TOKEN)
                         for name in COLOURS)
        with open(config, "w") as f:
            f.write(
                "[server]\nidle_pause_s = 1\n\n"
                "[stream bars]\nsource = pattern:bars\nsize = 640x480\nfps = %d\n\n"
                "[stream small]\nsource = scale:bars\nsize = 320x240\n\n"
                "[stream slow]\nsource = scale:bars\nsize = 160x120\nfps = %d\n\n"
                "%s"
                "[stream wall]\nsource = mosaic:red,green,blue,white\nsize = 320x240\n"
                "fps = 5\n\n"
                "[stream quiet]\nsource = pattern:bars\nsize = 320x240\nfps = 10\n\n"
                "[stream quiet_small]\nsource = scale:quiet\nsize = 160x120\n"
                % (BARS_FPS, SLOW_FPS, ingest))
        super().__init__(free_port(), config=config)

    def snapshot(self, name):
        """(X-Timestamp, PIL image) of snapshot/NAME."""
        status, headers, body = self.get("snapshot/" + name, timeout=15)
        assert status == 200, (name, status, body[:200])
        return headers["X-Timestamp"], Image.open(io.BytesIO(body)).convert("RGB")

    def counters(self, *names):
        doc = self.status()
        return {n: self.stream(n, doc) for n in names}

    def push(self, name, colour):
        img = Image.new("RGB", (160, 120), colour)
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=90)
        req = urllib.request.Request(self.url("ingest/" + name), data=out.getvalue(),
                                     headers=AUTH, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status in (200, 204), r.status


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with DerivedStack(str(tmp_path_factory.mktemp("derived"))).start() as st:
        yield st


class Viewer(threading.Thread):
    """Reads stream/NAME part after part until stopped."""

    def __init__(self, stack, name):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=WAIT_S)
        self.conn.request("GET", "/stream/" + name)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        self.parts = 0
        self.stop = threading.Event()
        self.start()

    def run(self):
        try:
            for _ in mjpeg.from_response(self.resp):
                self.parts += 1
                if self.stop.is_set():
                    break
        except (OSError, mjpeg.ProtocolError):
            pass

    def close(self):
        self.stop.set()
        self.conn.close()
        self.join(WAIT_S)


def tile_means(img, cols, rows):
    """Mean colour of each tile of a cols x rows grid, row by row."""
    w, h = img.size
    out = []
    for r in range(rows):
        for c in range(cols):
            box = (c * w // cols, r * h // rows, (c + 1) * w // cols, (r + 1) * h // rows)
            tile = img.crop(box).resize((1, 1), Image.BOX)
            out.append(tile.getpixel((0, 0)))
    return out


def far(a, b, slack=COLOUR_SLACK):
    return max(abs(x - y) for x, y in zip(a, b)) > slack


def test_scale_keeps_colours_in_place(stack):
    # The same frame of both: the scaled copy carries its input's
    # X-Timestamp.  Bars change 5 times a second; two snapshots in a row
    # soon fall within one frame.
    def same_frame():
        ts_small, small = stack.snapshot("small")
        ts_bars, bars = stack.snapshot("bars")
        return (small, bars) if ts_small == ts_bars else None

    pair = wait_until(same_frame, WAIT_S, period=0.05)
    assert pair, "no snapshot of small and bars of the same frame"
    small, bars = pair
    assert small.size == (320, 240) and bars.size == (640, 480)
    want = tile_means(bars, 16, 12)
    got = tile_means(small, 16, 12)
    wrong = [(i, w, g) for i, (w, g) in enumerate(zip(want, got)) if far(w, g, 24)]
    assert not wrong, wrong
    # the comparison can fail: the picture has distinct colours across
    # it, and the mirror image does not match
    mirrored = tile_means(small.transpose(Image.FLIP_LEFT_RIGHT), 16, 12)
    assert sum(far(w, g, 24) for w, g in zip(want, mirrored)) > 48


def test_scale_encodes_once_per_source_frame(stack):
    viewers = [Viewer(stack, "small") for _ in range(3)] + [Viewer(stack, "slow")]
    try:
        assert wait_until(lambda: all(v.parts >= 2 for v in viewers), WAIT_S)
        before = stack.counters("bars", "small", "slow")
        t0 = time.monotonic()
        assert wait_until(lambda: stack.stream("bars")["frames_published"]
                          >= before["bars"]["frames_published"] + 4 * BARS_FPS, WAIT_S)
        after = stack.counters("bars", "small", "slow")
        seconds = time.monotonic() - t0
    finally:
        for v in viewers:
            v.close()

    def delta(name, key):
        return after[name][key] - before[name][key]

    source = delta("bars", "frames_published")
    scaled = delta("small", "frames_encoded")
    # Never more than one encode per source frame, however many watch
    # (the 2 allow for the two /status reads landing between a source
    # publish and the scaled copy's); at least half of them on a machine
    # so busy that the scaler sometimes finds two new frames at once.
    assert scaled <= source + 2, (source, scaled)
    assert scaled >= source // 2, (source, scaled)
    assert delta("small", "frames_published") == scaled
    # slow: at most its own fps (one frame of slack at each end)
    slow = delta("slow", "frames_encoded")
    assert 1 <= slow <= seconds * SLOW_FPS + 2, (slow, seconds)


class Pusher(threading.Thread):
    """Posts a frame of its colour to an ingest stream 5 times a second."""

    def __init__(self, stack, name):
        super().__init__(daemon=True)
        self.stack, self.name = stack, name
        self.stop = threading.Event()
        self.last = None
        self.start()

    def run(self):
        while not self.stop.is_set():
            self.stack.push(self.name, COLOURS[self.name])
            self.last = time.monotonic()
            self.stop.wait(0.2)


def quadrant_colours(img):
    """Each tile's colour away from its centre (where "no signal" is
    written), as the mean of its top-left corner."""
    w, h = img.size
    out = []
    for i in range(4):
        x0, y0 = (i % 2) * w // 2, (i // 2) * h // 2
        box = (x0 + w // 40, y0 + h // 40, x0 + w // 8, y0 + h // 8)
        out.append(img.crop(box).resize((1, 1), Image.BOX).getpixel((0, 0)))
    return out


GREY = (128, 128, 128)


def test_mosaic_tiles_and_no_signal(stack):
    names = list(COLOURS)
    pushers = {n: Pusher(stack, n) for n in names}
    viewer = Viewer(stack, "wall")
    try:
        def all_live():
            got = quadrant_colours(stack.snapshot("wall")[1])
            return all(not far(g, COLOURS[n]) for g, n in zip(got, names)) and got

        assert wait_until(all_live, WAIT_S), quadrant_colours(stack.snapshot("wall")[1])
        pushers["blue"].stop.set()
        pushers["blue"].join(WAIT_S)
        stopped_at = pushers["blue"].last
        before = stack.counters("wall", "red", "green", "white")

        def blue_grey():
            got = quadrant_colours(stack.snapshot("wall")[1])
            return not far(got[2], GREY, 12) and got

        got = wait_until(blue_grey, WAIT_S)
        assert got, quadrant_colours(stack.snapshot("wall")[1])
        # not before the stated time (less a little: the last frame's
        # publish time is a little before the pusher noted it)
        assert time.monotonic() - stopped_at >= NO_SIGNAL_S - 0.5
        # the others keep their colours, and their streams and the mosaic
        # go on
        for i, n in enumerate(names):
            if n != "blue":
                assert not far(got[i], COLOURS[n]), (n, got)
        after = stack.counters("wall", "red", "green", "white")
        for n in before:
            assert after[n]["frames_published"] > before[n]["frames_published"], n
        # the stream's name and "no signal" are drawn in the grey tile:
        # white and black pixels near its centre
        img = stack.snapshot("wall")[1]
        centre = img.crop((0, 120, 160, 240)).getcolors(160 * 120)
        assert any(c[1][0] > 200 and c[1][2] > 200 for c in centre)
        assert any(max(c[1]) < 50 for c in centre)
        # the input comes back: its tile too
        pushers["blue"] = Pusher(stack, "blue")
        assert wait_until(lambda: not far(quadrant_colours(stack.snapshot("wall")[1])[2],
                                          COLOURS["blue"]), WAIT_S)
    finally:
        viewer.close()
        for p in pushers.values():
            p.stop.set()
        for p in pushers.values():
            p.join(WAIT_S)


def test_derived_runs_only_while_watched(stack):
    def counts():
        c = stack.counters("quiet", "quiet_small")
        return c["quiet"]["frames_published"], c["quiet_small"]["frames_encoded"]

    # nobody watched either yet: neither ever ran
    assert counts() == (0, 0)
    status, _, body = stack.get("stream/quiet_small?frames=5", timeout=WAIT_S)
    assert status == 200 and body.endswith(b"--\r\n")
    source, scaled = counts()
    # the input ran for its derived stream alone (nobody watched it)
    assert source > 0 and scaled >= 5, (source, scaled)

    def both_paused():
        log = stack.log()
        return ("producer quiet_small: no viewers, paused" in log
                and "producer quiet: no viewers, paused" in log)

    assert wait_until(both_paused, WAIT_S), stack.log_tail()
    paused = counts()
    # An observation window, not a wait for something: a paused producer
    # that still made frames would show in 2 s at 10 fps.
    time.sleep(2)
    assert counts() == paused


RELOAD_BEFORE = """[stream bars]
source = pattern:bars
size = 320x240
fps = 10

[stream small]
source = scale:bars
size = 160x120

[stream tiny]
source = scale:small
size = 80x60

[stream demo]
source = pattern:redblue

[stream demo_small]
source = scale:demo
size = 64x64
"""


def test_reload_remakes_streams_made_from_a_changed_one(tmp_path):
    """bars changes: small (made from it) and tiny (made from small) are
    made anew, their viewers ended properly; demo_small, whose input did
    not change, goes on.  Then a config with a cycle changes nothing."""
    config = tmp_path / "reload.ini"
    config.write_text(RELOAD_BEFORE)
    with Stack(free_port(), config=str(config)).start() as st:
        viewers = {n: mjpeg.Watcher(st.port, "/stream/" + n, reconnect=False)
                   for n in ("small", "tiny", "demo_small")}
        try:
            for v in viewers.values():
                v.start()
            assert wait_until(lambda: all(v.parts > 0 for v in viewers.values()), WAIT_S), \
                {n: v.parts for n, v in viewers.items()}
            # only bars' own settings change: small's and tiny's are the
            # same as before (fps included), yet they are made from it
            config.write_text(RELOAD_BEFORE.replace("size = 320x240", "size = 240x180"))
            os.kill(st.pid(), signal.SIGHUP)
            for name in ("small", "tiny"):
                assert viewers[name].ended.wait(WAIT_S), name
                assert viewers[name].closed_properly, name
            before = viewers["demo_small"].parts
            assert wait_until(lambda: viewers["demo_small"].parts >= before + 2, WAIT_S)
            assert not viewers["demo_small"].ended.is_set()
            assert "reload: 2 streams kept, 3 opened, 3 retired" in st.log(), st.log_tail()
            # the new streams play, from the new bars
            status, _, body = st.get("stream/tiny?frames=2", timeout=WAIT_S)
            assert status == 200 and body.endswith(b"--\r\n")
            # the new bars' producer runs once the retired streams let go of
            # its lock (the last viewer of the retired tiny frees tiny, then
            # small, then bars)
            assert wait_until(lambda: st.stream("bars")["width"] == 240, WAIT_S), \
                st.stream("bars")
            assert st.stream("small")["width"] == 160
        finally:
            for v in viewers.values():
                v.stop.set()

        config.write_text(RELOAD_BEFORE.replace("source = pattern:redblue",
                                                "source = scale:demo_small\nsize = 64x64"))
        os.kill(st.pid(), signal.SIGHUP)
        assert wait_until(lambda: "keeping the running config" in st.log(), WAIT_S), \
            st.log_tail()
        assert "derived streams in a cycle: demo -> demo_small -> demo" in st.log()
        assert sorted(s["name"] for s in st.status()["streams"]) == [
            "bars", "demo", "demo_small", "small", "tiny"]
        assert st.get("snapshot/demo_small")[0] == 200


# demo: the stream the Vue example page itself plays
PAGE_CONFIG = """[stream demo]
source = pattern:redblue

[stream bars]
source = pattern:bars
size = 640x480
fps = 10

[stream small]
source = scale:bars
size = 320x240

[stream wall]
source = mosaic:bars,small
size = 640x240
"""


def test_page_and_vue_component_show_derived_streams(tmp_path):
    """The viewer page gives derived streams cards like any other, and the
    Vue component plays one: pictures of their own sizes, no console
    errors."""
    from selenium.webdriver.common.by import By
    from test_clients import (browser_session, ensure_vue, img_state, picture_shown,
                              severe_console, wait_for)

    config = tmp_path / "page.ini"
    config.write_text(PAGE_CONFIG)
    with Stack(free_port(), config=str(config)).start() as st, browser_session() as drv:
        drv.get(st.url(""))
        for name, size in (("small", (320, 240)), ("wall", (640, 240)), ("bars", (640, 480))):
            shown = wait_for("#stream-%s to show a picture" % name,
                             lambda n=name: picture_shown(drv, "#stream-" + n), WAIT_S)
            assert (shown["naturalWidth"], shown["naturalHeight"]) == size, (name, shown)
            assert drv.find_elements(By.CSS_SELECTOR, "article.card#card-" + name)
        assert not severe_console(drv), severe_console(drv)

        ensure_vue()
        drv.get(st.url("vue/"))
        ok = drv.execute_async_script("""
            const done = arguments[arguments.length - 1];
            Promise.all([import('vue'), import('./MjpegStream.js')]).then(([vue, m]) => {
                const el = document.createElement('div');
                document.body.append(el);
                vue.createApp({ render: () => vue.h(m.default, {
                    src: '../stream/small', id: 'stream-small-vue' }) }).mount(el);
                done(true);
            }, (e) => done(String(e)));""")
        assert ok is True, ok
        shown = wait_for("the component's <img> to show small",
                         lambda: picture_shown(drv, "#stream-small-vue"), WAIT_S)
        assert (shown["naturalWidth"], shown["naturalHeight"]) == (320, 240), shown
        assert img_state(drv, "#stream-small-vue")["src"].endswith("stream/small")
        assert not severe_console(drv), severe_console(drv)
