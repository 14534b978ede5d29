"""Deployment recipes, each run for real (conf/ as shipped):

- Apache shared hosting: the .htaccess of conf/apache/ is what makes a plain
  directory with mjpeg.cgi serve streams, snapshots, status and ingest;
- lighttpd starts two responder processes (bin-path, max-procs) that share
  one producer, and `stop` ends them too;
- the per-stream viewer limit holds through every web server, however many
  responder processes it runs, and every ingest passes the token through;
- SIGTERM ends a viewer's stream with the closing boundary within 2 s;
- systemd socket activation (StandardInput=socket) and spawn-fcgi hand the
  responder its socket on fd 0, and the shipped units pass
  `systemd-analyze verify`.
"""

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
from PIL import Image

import mjpeg
import stacks
from fcgiwire import BIN, accepting, cgi_env, fcgi_request
from stacks import TOP, live_processes, start_stack

TIMEOUT = 5.0
TEST_TIME_LIMIT = 60
TOKEN = "deploy-test-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def time_limit():
    """Bounds every test of this module: nothing may hang."""
    with stacks.time_limit(TEST_TIME_LIMIT):
        yield


def jpeg_of(colour, size=(64, 48)):
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=90)
    return out.getvalue()


def processes_of(port):
    """Live processes that belong to the stack on PORT: responders whose
    arguments name its bus directory, CGI processes of its www/, and the
    servers whose command line names its run directory."""
    bus = "/dev/shm/mjpeg-fcgi-%d" % port
    run = os.path.join(TOP, "run", str(port))
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                args = f.read().split(b"\0")
            with open("/proc/%s/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        joined = b" ".join(args).decode(errors="replace")
        if ("--bus-dir " + bus) in joined or (run + "/") in joined:
            found.append((int(pid), joined))
    return found


def assert_stopped(st):
    """After stop: nothing of the stack runs and the port is free (stop
    waits for its processes; 10 s only bounds a failing run)."""
    deadline = time.monotonic() + 10
    while processes_of(st.port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_of(st.port), processes_of(st.port)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", st.port)) != 0, "port %d still answers" % st.port


# --- Apache shared hosting: the .htaccess recipe -------------------------------

@pytest.fixture(scope="module")
def hosting(tmp_path_factory):
    """SERVER=apache with a config holding an ingest stream: the document
    root is filled as README's hosting recipe says."""
    config = tmp_path_factory.mktemp("hosting") / "site.ini"
    config.write_text("[stream demo]\nsource = pattern:redblue\nsize = 256x256\nfps = 1\n\n"
                      "[stream cam]\nsource = ingest\ntoken = %s\n" % TOKEN)
    st = start_stack(config=config, server="apache")
    try:
        yield st
    finally:
        st.stop()
        assert_stopped(st)


def test_htaccess_recipe_is_what_stack_installs(hosting):
    www = os.path.join(hosting.run_dir, "www")
    with open(os.path.join(TOP, "conf", "apache", "htaccess"), "rb") as f:
        shipped = f.read()
    with open(os.path.join(www, ".htaccess"), "rb") as f:
        assert f.read() == shipped, "www/.htaccess is not conf/apache/htaccess"
    with open(BIN, "rb") as a, open(os.path.join(www, "mjpeg.cgi"), "rb") as b:
        assert a.read() == b.read(), "www/mjpeg.cgi is not the responder"
    assert os.access(os.path.join(www, "mjpeg.cgi"), os.X_OK)
    for page in ("index.html", "viewer.js", "style.css"):
        assert os.path.isfile(os.path.join(www, page)), page
    with open(os.path.join(www, "mjpeg-fcgi.ini")) as f:
        ini = f.read()
    with open(hosting.config) as f:
        assert f.read() in ini
    assert "bus_dir = /dev/shm/mjpeg-fcgi-%d" % hosting.port in ini
    # the server config leaves everything CGI to the .htaccess
    with open(os.path.join(hosting.run_dir, "apache.conf")) as f:
        conf = "\n".join(line for line in f if not line.lstrip().startswith("#"))
    for word in ("ExecCGI", "cgi-script", "RewriteRule", "CGIPassAuth", "ScriptAlias"):
        assert word not in conf, "%s in apache.conf: the recipe must not need it" % word
    assert "AllowOverride All" in conf


def test_htaccess_serves_page_streams_snapshot_status(hosting):
    status, headers, body = hosting.get("/")
    assert status == 200 and b"stream/demo" in body, (status, body[:200])
    doc = hosting.status()
    assert {s["name"] for s in doc["streams"]} == {"demo", "cam"}, doc
    with mjpeg.Viewer(hosting.port, "/stream/demo?frames=2", TIMEOUT,
                      deadline=time.monotonic() + 10) as v:
        assert v.status == 200, v.resp.read()
        parts = list(v.reader)
        v.reader.finish()
    assert len(parts) == 2
    assert mjpeg.decode_jpeg(parts[0].body).size == (256, 256)
    status, headers, body = hosting.get("snapshot/demo")
    assert status == 200 and headers["Content-Type"] == "image/jpeg", (status, headers)
    assert mjpeg.decode_jpeg(body).size == (256, 256)
    status, _, body = hosting.get("metrics")
    assert status == 200 and b"demo" in body, (status, body[:200])
    # the script itself is reached only through the rewrites, so that what
    # protects the URLs stream/... and status cannot be walked around
    for path in ("mjpeg.cgi", "mjpeg.cgi/status", "mjpeg.cgi/stream/demo?frames=1"):
        status, _, body = hosting.get(path)
        assert status == 404, (path, status, body[:200])


def test_htaccess_works_in_a_subdirectory(hosting):
    """The same four files in a subdirectory serve under its URL, as a user
    would put them into ~/public_html/cams/."""
    www = os.path.join(hosting.run_dir, "www")
    sub = os.path.join(www, "cams")
    os.mkdir(sub)
    try:
        for name in ("index.html", "viewer.js", "style.css", "mjpeg.cgi", "mjpeg-fcgi.ini",
                     ".htaccess"):
            shutil.copy2(os.path.join(www, name), os.path.join(sub, name))
        os.chmod(sub, 0o755)
        status, _, body = hosting.get("cams/")
        assert status == 200 and b"stream/demo" in body, (status, body[:200])
        with mjpeg.Viewer(hosting.port, "/cams/stream/demo?frames=1", TIMEOUT,
                          deadline=time.monotonic() + 10) as v:
            assert v.status == 200, v.resp.read()
            assert len(list(v.reader)) == 1
            v.reader.finish()
        status, _, body = hosting.get("cams/status")
        assert status == 200 and json.loads(body)["streams"], (status, body[:200])
    finally:
        shutil.rmtree(sub)


def test_htaccess_keeps_the_config_private(hosting):
    status, _, body = hosting.get("mjpeg-fcgi.ini")
    assert status == 403, (status, body[:200])
    assert TOKEN.encode() not in body


def test_htaccess_ingest_passes_the_token(hosting):
    frame = jpeg_of((0, 200, 0))
    status, _, body = hosting.request("POST", "ingest/cam", body=frame, headers={
        "Authorization": "Bearer " + TOKEN, "Content-Type": "image/jpeg"})
    assert status in (200, 201, 204), (status, body)
    status, _, body = hosting.get("snapshot/cam")
    assert status == 200, (status, body[:200])
    assert body == frame, "snapshot/cam is not the JPEG just posted"


@pytest.mark.parametrize("headers,code", [
    ({}, 401),
    ({"Authorization": "Bearer wrong-token-0123456789"}, 403),
])
def test_htaccess_ingest_errors_reach_the_client(hosting, headers, code):
    """A rejected ingest still answers cleanly through Apache CGI (the
    program answers before it has read the body)."""
    frame = jpeg_of((200, 0, 0))
    status, resp_headers, body = hosting.request(
        "POST", "ingest/cam", body=frame, headers=dict(headers, **{"Content-Type": "image/jpeg"}))
    assert status == code, (status, body)
    assert body.endswith(b"\n") and body.count(b"\n") == 1, body


def test_without_the_htaccess_nothing_runs(hosting):
    """The server config alone does not run the responder: the .htaccess
    is what makes the recipe work."""
    www = os.path.join(hosting.run_dir, "www")
    os.rename(os.path.join(www, ".htaccess"), os.path.join(www, "htaccess.off"))
    try:
        status, _, body = hosting.get("stream/demo?frames=1")
        assert status == 404, (status, body[:200])
        status, _, body = hosting.get("status")
        assert status == 404, (status, body[:200])
    finally:
        os.rename(os.path.join(www, "htaccess.off"), os.path.join(www, ".htaccess"))
    assert hosting.get("status")[0] == 200


# --- lighttpd: two responders, one producer --------------------------------------

def test_lighttpd_spawns_two_responders_sharing_one_producer():
    st = start_stack(server="lighttpd")
    viewers = []
    try:
        with open(os.path.join(st.run_dir, "lighttpd.pid")) as f:
            lighttpd = int(f.read())
        responders = [p for p in live_processes(ppid=lighttpd)
                      if os.path.basename(os.readlink("/proc/%d/exe" % p)).startswith("mjpeg")]
        assert len(responders) >= 2, "lighttpd (pid %d) runs responders %r" % (lighttpd, responders)

        for _ in range(8):
            v = mjpeg.Viewer(st.port, "/stream/bars", TIMEOUT, deadline=time.monotonic() + 20)
            viewers.append(v)
            assert v.status == 200
            assert v.reader.next_part() is not None
        # lighttpd spreads the viewers by load: the responder answering
        # status holds some of the 8, the other one the rest
        doc = st.status()
        assert doc["pid"] in responders, (doc["pid"], responders)
        assert st.stream("bars", doc)["viewers"] == 8, doc
        assert 0 < doc["viewers"] < 8, "responder %d holds %d of the 8 viewers" % (
            doc["pid"], doc["viewers"])

        before = st.stream("bars")
        t0 = time.monotonic()
        for v in viewers:             # everyone keeps reading meanwhile
            v.reader.next_part()
        time.sleep(2)
        for v in viewers:
            v.reader.next_part()
        after = st.stream("bars")
        elapsed = time.monotonic() - t0
        published = after["frames_published"] - before["frames_published"]
        encoded = after["frames_encoded"] - before["frames_encoded"]
        assert after["frames_encoded"] == after["frames_published"], after
        assert encoded == published, (before, after)
        # one producer at 30 fps, not one per process (twice as many); an
        # upper bound only, which a slower machine stays under
        assert 0 < published <= 30 * elapsed * 1.3 + 5, (published, elapsed)
        assert after["producer_pid"] in responders, (after["producer_pid"], responders)
        assert before["producer_pid"] == after["producer_pid"]
        assert after["viewers"] >= 8, after

        # stop ends every stream with its closing boundary, then the
        # responders lighttpd started are gone with it
        stopper = threading.Thread(target=st.stop)
        stopper.start()
        for v in viewers:
            while v.reader.next_part() is not None:
                pass
            v.reader.finish()
        stopper.join(15)
        assert_stopped(st)
    finally:
        for v in viewers:
            v.close()
        st.stop()


# --- the viewer limit and ingest, through every server ----------------------------

def test_stream_viewer_limit_holds_over_all_processes(server, stack_factory, tmp_path):
    """[stream] max_viewers counts viewers over every responder process: it
    holds whether the server runs one (nginx), two (lighttpd) or one per
    request (Apache CGI, mod_fcgid). Ingest passes the token through."""
    config = tmp_path / "few.ini"
    config.write_text("[stream bars]\nsource = pattern:bars\nmax_viewers = 3\n\n"
                      "[stream cam]\nsource = ingest\ntoken = %s\n" % TOKEN)
    st = stack_factory(str(config))
    opened = []
    try:
        frame = jpeg_of((0, 0, 200))
        status, _, body = st.request("POST", "ingest/cam", body=frame, headers={
            "Authorization": "Bearer " + TOKEN, "Content-Type": "image/jpeg"})
        assert status in (200, 201, 204), (status, body)
        assert st.get("snapshot/cam")[2] == frame

        for _ in range(3):
            v = mjpeg.Viewer(st.port, "/stream/bars", TIMEOUT, deadline=time.monotonic() + 10)
            opened.append(v)
            assert v.status == 200, v.resp.read()
            assert v.reader.next_part() is not None
        status, headers, body = st.get("stream/bars")
        assert status == 503, (status, headers, body[:200])
        assert (headers.get("Retry-After") or "").strip().isdigit(), headers
        assert b"bars" in body and body.count(b"\n") == 1, body

        opened.pop(0).close()
        opened.append(mjpeg.admitted_viewer(st.port, "/stream/bars", 10, TIMEOUT, retry_s=0.2))
    finally:
        for v in opened:
            v.close()
    st.stop()
    assert_stopped(st)


# --- SIGTERM -------------------------------------------------------------------------

def test_sigterm_ends_a_viewers_stream_with_the_closing_boundary():
    st = start_stack(server="nginx")
    try:
        with mjpeg.Viewer(st.port, "/stream/bars", TIMEOUT,
                          deadline=time.monotonic() + 10) as v:
            assert v.status == 200
            for _ in range(3):
                assert v.reader.next_part() is not None
            with open(os.path.join(st.run_dir, "mjpeg-fcgi.pid")) as f:
                responder = int(f.read())
            t0 = time.monotonic()
            os.kill(responder, signal.SIGTERM)
            while v.reader.next_part() is not None:
                pass
            v.reader.finish()
            took = time.monotonic() - t0
        # the README's promise; the writers are woken at once and the end
        # takes milliseconds, while one that waited for its next keepalive
        # or repeat would be late by that much
        assert took < 2.0, "the stream ended %.2f s after SIGTERM" % took
    finally:
        st.stop()


# --- standalone: systemd socket activation, spawn-fcgi ---------------------------------

def check_fd0_responder(sock, proc):
    """The responder behind SOCK answers status and a finite stream, then
    ends on SIGTERM with status 0."""
    headers, body = fcgi_request(sock, cgi_env("/status"))
    assert headers["status"].startswith("200"), (headers, body[:200])
    doc = json.loads(body)
    assert {s["name"] for s in doc["streams"]} == {"demo", "bars"}, doc
    headers, body = fcgi_request(sock, cgi_env("/stream/bars?frames=3"))
    assert headers["status"].startswith("200"), (headers, body[:200])
    reader = mjpeg.from_bytes(body, mjpeg.boundary_of(headers["content-type"]))
    parts = list(reader)
    reader.finish()
    assert len(parts) == 3
    assert mjpeg.decode_jpeg(parts[0].body).size == (640, 480)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(5) == 0


def check_fd0_launcher(cmd, sock, short_dir):
    """Runs CMD, a launcher that makes the socket SOCK and hands it to the
    responder on fd 0, and check_fd0_responder over it (its log in
    SHORT_DIR/log); whatever is left of it is killed at the end."""
    with open(os.path.join(short_dir, "log"), "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            assert stacks.wait_until(lambda: accepting(sock), 10, 0.05), (
                "nothing accepts on the socket %s made" % os.path.basename(cmd[0]))
            check_fd0_responder(sock, proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def short_dir():
    """A directory with a short path (unix socket paths are short)."""
    path = "/tmp/mjpeg-deploy-%d" % os.getpid()
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(path + "-bus", ignore_errors=True)


def test_systemd_socket_activation_hands_the_socket_on_fd0(short_dir):
    """mjpeg-fcgi.service takes its socket as StandardInput=socket; emulated
    with systemd-socket-activate --inetd, which listens, and at the first
    connection starts the program with the listening socket as standard
    input (and output), as systemd does. Runs the service's own ExecStart
    options (--workers 2) with the example config."""
    tool = shutil.which("systemd-socket-activate")
    if not tool:
        pytest.skip("systemd-socket-activate is not installed (package systemd)")
    with open(os.path.join(TOP, "conf", "mjpeg-fcgi.service")) as f:
        unit = f.read()
    assert "\nStandardInput=socket\n" in unit
    exec_start = [line for line in unit.splitlines() if line.startswith("ExecStart=")][0]
    args = exec_start.split("=", 1)[1].split()[1:]
    assert "--listen" not in args
    args = [os.path.join(TOP, "conf", "mjpeg-fcgi.ini.example") if a == "/etc/mjpeg-fcgi.ini"
            else a for a in args]
    sock = os.path.join(short_dir, "s.sock")
    check_fd0_launcher([tool, "--inetd", "-l", sock, "--", BIN] + args
                       + ["--bus-dir", short_dir + "-bus"], sock, short_dir)


def test_spawn_fcgi_hands_the_socket_on_fd0(short_dir):
    """The line of conf/spawn-fcgi.example, in the foreground (-n) and on a
    socket of its own."""
    tool = shutil.which("spawn-fcgi")
    if not tool:
        pytest.skip("spawn-fcgi is not installed (package spawn-fcgi)")
    with open(os.path.join(TOP, "conf", "spawn-fcgi.example")) as f:
        text = f.read()
    assert "-F 1" in text and "-- /usr/local/bin/mjpeg-fcgi --workers 2" in text
    sock = os.path.join(short_dir, "s.sock")
    check_fd0_launcher([tool, "-n", "-s", sock, "-M", "0600", "--", BIN, "--workers", "2",
                        "--bus-dir", short_dir + "-bus"], sock, short_dir)


def test_systemd_units_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("systemd-analyze is not installed (package systemd)")
    # verify wants ExecStart's program to exist: the repo's stands in
    for name in ("mjpeg-fcgi.socket", "mjpeg-fcgi.service"):
        with open(os.path.join(TOP, "conf", name)) as f:
            text = f.read().replace("/usr/local/bin/mjpeg-fcgi", BIN)
        (tmp_path / name).write_text(text)
    r = subprocess.run([tool, "verify", "mjpeg-fcgi.socket", "mjpeg-fcgi.service"],
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), (r.returncode, r.stdout, r.stderr)
