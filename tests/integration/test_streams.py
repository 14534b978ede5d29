"""Ten streams at once, and producers that pause when nobody watches."""

import io
import os
import threading
import time
import urllib.request

import pytest
from PIL import Image
from stacks import running_stack, wait_until

SIZES = [(160, 120), (320, 240), (640, 480), (256, 256), (200, 100),
         (96, 96), (480, 270), (64, 48), (800, 600), (128, 512)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    config = tmp_path_factory.mktemp("streams") / "ten.ini"
    config.write_text("[server]\nidle_pause_s = 1\n\n" + "".join(
        "[stream s%d]\nsource = pattern:%s\nsize = %dx%d\nfps = %d\n\n"
        % (i, "bars" if i % 3 else "redblue", w, h, 5 + 5 * i)
        for i, (w, h) in enumerate(SIZES)))
    with running_stack(config=config) as st:
        yield st


def read_parts(st, name, count, out):
    with urllib.request.urlopen(st.url("stream/%s?frames=%d" % (name, count)),
                                timeout=20) as r:
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
    doc = stack.status()
    assert len(doc["streams"]) == 10
    for s in doc["streams"]:
        assert s["frames_encoded"] == s["frames_published"] > 0
        assert s["producer_pid"] > 0


def published(st):
    return {s["name"]: s["frames_published"] for s in st.status()["streams"]}


def responder_activity(st):
    """(CPU clock ticks, voluntary context switches) of the responder so
    far, over all its threads: each switch is a thread going to sleep, so
    the switches count wake-ups whatever the machine's speed."""
    pid = st.pid()
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    switches = 0
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, task)) as f:
            switches += sum(int(line.split()[1]) for line in f
                            if line.startswith("voluntary_ctxt_switches:"))
    return ticks, switches


PAUSED_WINDOW_S = 3
# A paused producer looks at its stop flag every 0.5 s (PRODUCER_POLL_USEC
# in fcgi/producer.c): 6 wake-ups in the window for each of the ten, 60
# in all, and a few of the responder's other threads (measured: 63-67).
# A producer that kept waking at its fps without publishing would make 50
# a second for s9 alone (825 in the window for the ten); the bound is
# twice what the design makes plus 20, and wake-ups do not grow on a
# slower machine.  A producer that spins instead burns a third of a core
# (100 ticks in the window) even beside two busy loops; paused, the
# process used none.
PRODUCER_POLL_S = 0.5
PAUSED_WAKEUPS_MAX = 2 * len(SIZES) * PAUSED_WINDOW_S / PRODUCER_POLL_S + 20
PAUSED_TICKS_MAX = 30


def test_producers_pause_without_viewers(stack):
    read_parts(stack, "s9", 3, {})  # s9: 50 fps while watched

    def still():
        # 0.5 s: two frames of the slowest stream (5 fps)
        before = published(stack)
        time.sleep(0.5)
        return published(stack) == before

    # idle_pause_s = 1: the producers stop soon after the viewer left
    assert wait_until(still, 10), "producers still publishing 10 s after the last viewer"
    before = published(stack)
    ticks, wakeups = responder_activity(stack)
    time.sleep(PAUSED_WINDOW_S)
    after = published(stack)
    ticks, wakeups = [b - a for a, b in zip((ticks, wakeups), responder_activity(stack))]
    assert after == before, (before, after)
    assert wakeups <= PAUSED_WAKEUPS_MAX, wakeups
    assert ticks <= PAUSED_TICKS_MAX, ticks
    # and a new viewer wakes the producer at once (not at some idle poll;
    # two frames at 50 fps take 40 ms)
    t0 = time.monotonic()
    out = {}
    read_parts(stack, "s9", 2, out)
    assert out["s9"][0] == 2 and time.monotonic() - t0 < 2
