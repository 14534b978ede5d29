"""Churn: 10,000 viewers connect and leave, half of them cut in the middle
of a frame.  Afterwards the responder has the same threads, file
descriptors and memory (within a small bound) as before, and it logged
nothing but expected disconnects."""

import concurrent.futures
import os
import socket
import time

import pytest
from stacks import running_stack

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


def settle(st, pid, timeout=15):
    """Figures once no viewer is left and the thread pool shrank back."""
    deadline = time.monotonic() + timeout
    figures = proc_figures(pid)
    while time.monotonic() < deadline:
        if st.status()["viewers"] == 0:
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
    with running_stack() as st:
        yield st


def test_churn_leaves_nothing_behind(stack):
    port = stack.port
    pid = stack.pid()
    log_path = stack.log_path()
    # one warm-up round, so that lazily made things (the producer thread,
    # the encoder, allocator arenas) exist before the baseline
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda n: one_viewer(port, n), range(2000)))
    before = settle(stack, pid)
    log_before = os.path.getsize(log_path)

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda n: one_viewer(port, n), range(CONNECTIONS)))
    elapsed = time.monotonic() - t0
    after = settle(stack, pid)

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
