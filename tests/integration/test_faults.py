"""Faults: the frame-bus file removed or truncated under running
responders, an unusable bus directory, a full /dev/shm, and the responder
killed behind nginx.  Each gives a clear log line and recovers, or exits
with a clear message; none serves a corrupt frame."""

import io
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from PIL import Image

import mjpeg
from stacks import TOP, running_stack, start_stack, wait_until

BIN = os.path.join(TOP, "fcgi", "mjpeg-fcgi")
# Frames of bars come at 30 fps; a wait for "frames flow" only bounds a
# failing run (a passing one returns as soon as they do).
FLOW_WAIT_S = 15


def get(port, path, timeout=5):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


@pytest.fixture
def workers_stack():
    with running_stack(workers=2) as st:
        yield st


def frames_flow_again(watcher, since, timeout=FLOW_WAIT_S):
    return wait_until(lambda: sum(1 for t in watcher.times if t > since + 0.5) >= 10, timeout)


@pytest.mark.parametrize("damage", ["remove", "truncate"])
def test_bus_file_damaged_under_running_workers(workers_stack, damage):
    port = workers_stack.port
    w = mjpeg.Watcher(port, "/stream/bars", timeout=2)
    w.start()
    try:
        assert wait_until(lambda: w.parts > 10, FLOW_WAIT_S), w.parts
        path = "/dev/shm/mjpeg-fcgi-%d/bars" % port
        if damage == "remove":
            os.unlink(path)
        else:
            os.truncate(path, 0)
        at = time.monotonic()
        assert frames_flow_again(w, at), "no frames after the damage"
    finally:
        w.stop.set()
        w.join(5)
    assert not w.bad, w.bad

    # Each is logged soon; frames may flow again first (through the other
    # worker), so each is waited for.
    def logged(*lines):
        return wait_until(lambda: any(line in workers_stack.log() for line in lines),
                          FLOW_WAIT_S)

    if damage == "remove":
        assert logged("was removed while in use"), workers_stack.log()[-2000:]
    else:
        assert logged("was truncated", "SIGBUS: a frame-bus file was truncated"), \
            workers_stack.log()[-2000:]
    # the supervisor restarts the worker that exited
    assert logged("starting another"), workers_stack.log()[-2000:]


def test_unusable_bus_dir_is_a_clear_error(tmp_path):
    r = subprocess.run([BIN, "--listen", "unix:%s" % (tmp_path / "s.sock"),
                        "--bus-dir", "/etc/hostname/bus"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "bus: mkdir(/etc/hostname/bus): Not a directory" in r.stderr, r.stderr


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mnt = tmp_path / "shm"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here: %s" % r.stderr.strip())
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_shm_exits_with_a_clear_message(tiny_tmpfs, tmp_path):
    """Frames larger than what the file system holds: the first page that
    cannot be allocated faults (SIGBUS); the process says why and exits,
    and whatever it sent before is a complete JPEG."""
    (tmp_path / "mjpeg-fcgi.ini").write_text(
        "[server]\nbus_dir = %s/bus\nframe_bytes_max = 8388608\n\n"
        "[stream big]\nsource = pattern:bars\nsize = 2048x2048\nquality = 100\nfps = 30\n"
        % tiny_tmpfs)
    script = tmp_path / "mjpeg.cgi"
    os.symlink(BIN, script)
    env = dict(os.environ, GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="GET",
               SCRIPT_FILENAME=str(script), PATH_INFO="/stream/big",
               QUERY_STRING="frames=20")
    r = subprocess.run([str(script)], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)
    assert r.returncode == 75, (r.returncode, r.stderr[-500:])
    assert b"SIGBUS: a frame-bus file was truncated, or its file system (/dev/shm) is full" \
        in r.stderr
    # every part that was sent whole decodes
    for chunk in r.stdout.split(b"Content-Length: ")[1:]:
        n = int(chunk[:chunk.index(b"\r\n")])
        body = chunk[chunk.index(b"\r\n\r\n") + 4:][:n]
        if len(body) == n:
            Image.open(io.BytesIO(body)).load()


def dead(pid):
    """PID has exited (gone, or a zombie nobody reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_responder_killed_behind_nginx_gives_502_then_recovers():
    st = start_stack()
    try:
        pid = st.pid()
        os.kill(pid, signal.SIGKILL)
        # gone once the kernel reaped it: then nobody accepts on its socket
        assert wait_until(lambda: dead(pid), 10), "pid %d still alive after SIGKILL" % pid
        status, _ = get(st.port, "/status")
        assert status == 502
        # what a user does: stop and start the stack again
        st.stop()
        st.start()
        status, body = get(st.port, "/snapshot/bars")
        assert status == 200
        Image.open(io.BytesIO(body)).load()
    finally:
        st.stop()
