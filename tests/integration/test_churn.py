"""Churn: 10,000 viewers connect and leave, half of them cut in the middle
of a frame.  Afterwards the responder has the same threads, file
descriptors and memory (within a small bound) as before, and it logged
nothing but expected disconnects."""

import concurrent.futures
import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest
from stacks import free_port

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONNECTIONS = 10000
PARALLEL = 32
# RSS may settle a little higher after the first burst (allocator arenas,
# thread stacks kept for reuse); more than this is a leak.
RSS_GROWTH_MAX_KIB = 8 * 1024


def proc_figures(pid):
    with open("/proc/%d/status" % pid) as f:
        fields = dict(line.split(":", 1) for line in f)
    return {
        "threads": int(fields["Threads"]),
        "rss_kib": int(fields["VmRSS"].split()[0]),
        "fds": len(os.listdir("/proc/%d/fd" % pid)),
    }


def viewers(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/status" % port, timeout=5) as r:
        return json.load(r)["viewers"]


def settle(port, pid, timeout=15):
    """Figures once no viewer is left and the thread pool shrank back."""
    deadline = time.time() + timeout
    figures = proc_figures(pid)
    while time.time() < deadline:
        if viewers(port) == 0:
            time.sleep(0.5)
            figures = proc_figures(pid)
            if figures["threads"] <= 8:
                break
        time.sleep(0.25)
    return figures


def one_viewer(port, n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"GET /stream/bars HTTP/1.0\r\n\r\n")
        if n % 2:
            # cut in the middle of a frame: the bars frames are ~40 KiB
            got = 0
            while got < 20000:
                d = s.recv(65536)
                if not d:
                    break
                got += len(d)
        else:
            s.recv(100)  # the response has begun: leave at once
    finally:
        s.close()


@pytest.fixture(scope="module")
def stack():
    port = free_port()
    r = subprocess.run(["make", "-s", "-C", TOP, "start", "PORT=%d" % port],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        yield port
    finally:
        subprocess.run(["make", "-s", "-C", TOP, "stop", "PORT=%d" % port],
                       capture_output=True, timeout=60)


def test_churn_leaves_nothing_behind(stack):
    port = stack
    run = os.path.join(TOP, "run", str(port))
    with open(os.path.join(run, "mjpeg-fcgi.pid")) as f:
        pid = int(f.read())
    log_path = os.path.join(run, "mjpeg-fcgi.log")
    # one warm-up round, so that lazily made things (the producer thread,
    # the encoder, allocator arenas) exist before the baseline
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda n: one_viewer(port, n), range(2000)))
    before = settle(port, pid)
    log_before = os.path.getsize(log_path)

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda n: one_viewer(port, n), range(CONNECTIONS)))
    elapsed = time.time() - t0
    after = settle(port, pid)

    print("churn: %d connections in %.1f s; before %s; after %s"
          % (CONNECTIONS, elapsed, before, after))
    assert os.path.exists("/proc/%d" % pid), "the responder died"
    assert after["fds"] == before["fds"], (before, after)
    assert after["threads"] <= before["threads"] + 2, (before, after)
    # Under AddressSanitizer freed memory sits in its quarantine, so RSS
    # says nothing there; leaks are LeakSanitizer's to report at exit.
    if "ASAN_OPTIONS" not in os.environ:
        assert after["rss_kib"] - before["rss_kib"] < RSS_GROWTH_MAX_KIB, (before, after)
    with open(log_path, errors="replace") as f:
        f.seek(log_before)
        new_lines = [l for l in f.read().splitlines() if l.strip()]
    unexpected = [l for l in new_lines if " error: " in l or "fatal" in l]
    assert not unexpected, unexpected[:5]
