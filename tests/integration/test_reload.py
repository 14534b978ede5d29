"""SIGHUP re-reads the config: streams added and removed, viewers of
unchanged streams keep watching, viewers of removed or changed streams get
the closing boundary; a config with errors changes nothing."""

import os
import signal

import pytest

import mjpeg
from stacks import running_stack, wait_until

BEFORE = """[stream demo]
source = pattern:redblue

[stream bars]
source = pattern:bars

[stream old]
source = pattern:bars
size = 320x240
"""

AFTER = """[stream demo]
source = pattern:redblue

[stream bars]
source = pattern:bars
fps = 10

[stream fresh]
source = pattern:bars
size = 160x120
"""


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def stack(request, tmp_path):
    config = tmp_path / "reload.ini"
    config.write_text(BEFORE)
    with running_stack(config=config, workers=request.param) as st:
        st.config = config
        yield st


def names(st):
    return sorted(s["name"] for s in st.status()["streams"])


def code(st, path):
    return st.get(path)[0]


# Waits for what a reload does "at once": generous, since a passing run
# returns as soon as it happened; a reload that never happens still fails.
RELOAD_WAIT_S = 10


def test_sighup_adds_removes_and_keeps(stack):
    viewers = {n: mjpeg.Watcher(stack.port, "/stream/" + n, reconnect=False)
               for n in ("demo", "bars", "old")}
    try:
        for v in viewers.values():
            v.start()
        assert wait_until(lambda: all(v.parts > 0 for v in viewers.values()),
                          RELOAD_WAIT_S), {n: v.parts for n, v in viewers.items()}

        stack.config.write_text(AFTER)
        os.kill(stack.pid(), signal.SIGHUP)
        assert wait_until(lambda: names(stack) == ["bars", "demo", "fresh"], RELOAD_WAIT_S), \
            names(stack)

        # removed and changed streams: their viewers got the closing boundary
        for name in ("old", "bars"):
            assert viewers[name].ended.wait(RELOAD_WAIT_S), name
            assert viewers[name].closed_properly, name
        # the changed stream's new producer runs at once: nothing keeps the
        # retired stream (and its producer's lock) alive once its viewers left
        assert code(stack, "/snapshot/bars") == 200
        # the unchanged stream's viewer goes on, on the same connection:
        # two more parts (the 1 fps demo sends one at least every second)
        before = viewers["demo"].parts
        assert wait_until(lambda: viewers["demo"].parts >= before + 2, RELOAD_WAIT_S), \
            (before, viewers["demo"].parts)
        assert not viewers["demo"].ended.is_set()
    finally:
        for v in viewers.values():
            v.stop.set()

    assert code(stack, "/stream/old?frames=1") == 404
    assert code(stack, "/stream/fresh?frames=1") == 200
    assert stack.stream("bars")["fps"] == 10


def test_sighup_with_a_broken_config_changes_nothing(stack):
    stack.config.write_text(BEFORE + "\n[stream broken]\nsource = nowhere:at-all\n")
    os.kill(stack.pid(), signal.SIGHUP)
    assert wait_until(lambda: "keeping the running config" in stack.log(), RELOAD_WAIT_S), \
        stack.log()[-1500:]
    assert names(stack) == ["bars", "demo", "old"]
    assert code(stack, "/stream/old?frames=1") == 200
