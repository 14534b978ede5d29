"""SIGHUP re-reads the config: streams added and removed, viewers of
unchanged streams keep watching, viewers of removed or changed streams get
the closing boundary; a config with errors changes nothing."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from stacks import free_port

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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


class Viewer(threading.Thread):
    def __init__(self, port, name):
        super().__init__(daemon=True)
        self.port, self.name = port, name
        self.data = b""
        self.ended = threading.Event()
        self.stop = threading.Event()

    def run(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
        s.sendall(b"GET /stream/%s HTTP/1.0\r\n\r\n" % self.name.encode())
        while not self.stop.is_set():
            try:
                d = s.recv(1 << 16)
            except socket.timeout:
                continue
            if not d:
                self.ended.set()
                break
            self.data += d
        s.close()

    def parts(self):
        return self.data.count(b"X-Timestamp: ")

    def closed_properly(self):
        head = self.data.split(b"\r\n\r\n", 1)[0]
        boundary = head.split(b"boundary=")[1].split(b"\r\n")[0]
        return self.data.endswith(b"--" + boundary + b"--\r\n")


def status(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/status" % port, timeout=5) as r:
        return json.load(r)


def code(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture(params=["1", "2"], ids=["one-process", "two-workers"])
def stack(request, tmp_path):
    config = tmp_path / "reload.ini"
    config.write_text(BEFORE)
    port = free_port()
    r = subprocess.run(["make", "-s", "-C", TOP, "start", "PORT=%d" % port,
                        "CONFIG=%s" % config, "WORKERS=%s" % request.param],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(os.path.join(TOP, "run", str(port), "mjpeg-fcgi.pid")) as f:
        pid = int(f.read())
    try:
        yield port, config, pid
    finally:
        subprocess.run(["make", "-s", "-C", TOP, "stop", "PORT=%d" % port],
                       capture_output=True, timeout=60)


def names(port):
    return sorted(s["name"] for s in status(port)["streams"])


def wait_for(predicate, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_sighup_adds_removes_and_keeps(stack):
    port, config, pid = stack
    viewers = {n: Viewer(port, n) for n in ("demo", "bars", "old")}
    for v in viewers.values():
        v.start()
    time.sleep(1.5)
    assert all(v.parts() > 0 for v in viewers.values())

    config.write_text(AFTER)
    os.kill(pid, signal.SIGHUP)
    assert wait_for(lambda: names(port) == ["bars", "demo", "fresh"]), names(port)

    # removed and changed streams: their viewers got the closing boundary
    for name in ("old", "bars"):
        assert viewers[name].ended.wait(5), name
        assert viewers[name].closed_properly(), name
    # the changed stream's new producer runs at once: nothing keeps the
    # retired stream (and its producer's lock) alive once its viewers left
    assert code(port, "/snapshot/bars") == 200
    # the unchanged stream's viewer goes on, on the same connection
    before = viewers["demo"].parts()
    time.sleep(2.2)
    assert not viewers["demo"].ended.is_set()
    assert viewers["demo"].parts() >= before + 2
    for v in viewers.values():
        v.stop.set()

    assert code(port, "/stream/old?frames=1") == 404
    assert code(port, "/stream/fresh?frames=1") == 200
    bars = [s for s in status(port)["streams"] if s["name"] == "bars"][0]
    assert bars["fps"] == 10


def test_sighup_with_a_broken_config_changes_nothing(stack):
    port, config, pid = stack
    config.write_text(BEFORE + "\n[stream broken]\nsource = nowhere:at-all\n")
    os.kill(pid, signal.SIGHUP)
    log = os.path.join(TOP, "run", str(port), "mjpeg-fcgi.log")
    assert wait_for(lambda: "keeping the running config" in open(log).read()), \
        open(log).read()[-1500:]
    assert names(port) == ["bars", "demo", "old"]
    assert code(port, "/stream/old?frames=1") == 200
