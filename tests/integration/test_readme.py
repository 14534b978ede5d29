"""The README's feeding snippets, run as written (only the port and the
/tmp/ directory are replaced), against a stack started with the README's
config blocks."""

import io
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
from PIL import Image
from stacks import TOP, free_port, running_stack


def snippets():
    with open(os.path.join(TOP, "README.md")) as f:
        text = f.read()
    found = dict(re.findall(r"<!-- test: ([\w-]+) -->\n```\w*\n(.*?)```", text, re.S))
    assert {"ingest-config", "ingest-python", "raw-config", "raw-ffmpeg", "mjpeg-config",
            "mjpeg-ffmpeg", "opencv-config", "opencv-python"} <= set(found), found.keys()
    return found


@pytest.fixture(scope="module")
def readme(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("readme")) + "/"
    port = free_port()
    blocks = {k: v.replace("/tmp/", tmp).replace("127.0.0.1:8080", "127.0.0.1:%d" % port)
              for k, v in snippets().items()}
    config = os.path.join(tmp, "frames.ini")
    with open(config, "w") as f:
        f.write("\n".join(blocks[k] for k in ("ingest-config", "raw-config", "mjpeg-config",
                                               "opencv-config")))
    # the FIFOs exist before the responder reads its config, as the
    # snippets' own mkfifo lines make them
    for name in ("testcard.fifo", "webcam.fifo", "plot.fifo"):
        os.mkfifo(tmp + name)
    with running_stack(port=port, config=config):
        yield port, blocks, tmp


def snapshot(port, name, timeout=20):
    """The first snapshot of a stream that answers 200, as (size, centre RGB)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # a stream request starts the stream's producer, as a viewer would
            with urllib.request.urlopen("http://127.0.0.1:%d/snapshot/%s" % (port, name),
                                        timeout=5) as r:
                img = Image.open(io.BytesIO(r.read())).convert("RGB")
                return img.size, img.getpixel((img.size[0] // 2, img.size[1] // 2))
        except OSError:
            time.sleep(0.2)
    raise AssertionError("no frame on stream %s" % name)


def run_snippet(code, shell, check):
    if shell:
        # the snippet's commands, each line as written, in one shell
        proc = subprocess.Popen(["bash", "-c", code.replace("\\\n", " ")],
                                stdin=subprocess.DEVNULL, start_new_session=True)
    else:
        proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        check()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def test_python_ingest_snippet_shows_red_and_blue(readme):
    port, blocks, _ = readme

    def check():
        seen = set()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(seen) < 2:
            try:
                size, (r, g, b) = snapshot(port, "cam", timeout=1)
            except AssertionError:
                continue
            assert size == (256, 256)
            if r > 200 and g < 60 and b < 60:
                seen.add("red")
            elif r < 60 and g < 60 and b > 200:
                seen.add("blue")
            time.sleep(0.2)
        assert seen == {"red", "blue"}, seen

    run_snippet(blocks["ingest-python"], False, check)


def test_ffmpeg_raw_snippet(readme):
    port, blocks, _ = readme
    run_snippet(blocks["raw-ffmpeg"], True,
                lambda: snapshot(port, "testcard")[0] == (640, 480) or pytest.fail("size"))


def test_ffmpeg_mjpeg_snippet(readme):
    port, blocks, _ = readme

    def check():
        assert snapshot(port, "webcam")[0] == (640, 480)

    run_snippet(blocks["mjpeg-ffmpeg"], True, check)


def test_opencv_snippet_red_is_red(readme):
    port, blocks, _ = readme

    def check():
        size, (r, g, b) = snapshot(port, "plot")
        assert size == (320, 240)
        # the centre may fall on the white digits; sample a corner instead
        with urllib.request.urlopen("http://127.0.0.1:%d/snapshot/plot" % port) as resp:
            img = Image.open(io.BytesIO(resp.read())).convert("RGB")
        r, g, b = img.getpixel((5, 5))
        assert r > 200 and g < 60 and b < 60, (r, g, b)

    run_snippet(blocks["opencv-python"], False, check)


def readme_blocks():
    """Every <!-- test: NAME --> block of the README, by name."""
    with open(os.path.join(TOP, "README.md")) as f:
        text = f.read()
    return dict(re.findall(r"<!-- test: ([\w-]+) -->\n```\w*\n(.*?)```", text, re.S))


def test_relay_recipes_as_written(tmp_path):
    """The camera and snapshot recipes, with a camera emulator in place of
    the cameras' addresses (and the recipe's own user and password, which
    it requires), and the chain recipe with its origin on a stack's port."""
    from camera import Camera
    blocks = readme_blocks()
    user = re.search(r"^user = (.*)$", blocks["relay-camera-config"], re.M).group(1)
    password = re.search(r"^password = (.*)$", blocks["relay-camera-config"], re.M).group(1)
    cam = Camera(free_port(), user=user, password=password).start()
    snap = Camera(free_port()).start()
    try:
        camera_block = re.sub(r"http://192\.168\.1\.64/\S*", cam.url("/std"),
                              blocks["relay-camera-config"])
        snapshot_block = re.sub(r"http://192\.168\.1\.65/", snap.url("/"),
                                blocks["relay-snapshot-config"])
        assert camera_block != blocks["relay-camera-config"]
        assert snapshot_block != blocks["relay-snapshot-config"]
        with running_stack() as origin:
            chain_block = blocks["relay-chain-config"].replace("127.0.0.1:8080",
                                                               "127.0.0.1:%d" % origin.port)
            config = tmp_path / "cameras.ini"
            config.write_text(camera_block + snapshot_block + chain_block)
            with running_stack(config=config) as st:
                for name in ("frontdoor", "garden", "bars"):
                    size, _ = snapshot(st.port, name)
                    assert size[0] > 0
                    assert st.stream(name)["upstream"]["state"] == "connected"
                assert snap.snapshots > 0
    finally:
        cam.stop()
        snap.stop()


# The push recipes' camera, replaced by a test source of the same size:
# (pattern in the recipe, replacement), 90 frames each.
PUSH_CAMERAS = {
    "push-ffmpeg": (r"-f v4l2 .*?-i /dev/video0\s+-c copy",
                    "-re -f lavfi -i testsrc=size=640x480:rate=30 -t 3 -c:v mjpeg"),
    "push-gstreamer": (r"v4l2src device=/dev/video0 ! image/jpeg,width=640,height=480,"
                       r"framerate=30/1",
                       "videotestsrc num-buffers=90 ! video/x-raw,width=640,height=480,"
                       "framerate=30/1 ! jpegenc"),
}


@pytest.mark.parametrize("recipe", sorted(PUSH_CAMERAS))
def test_push_recipes_as_written(tmp_path, recipe):
    """The Pi's push commands, with a test source in place of /dev/video0
    and the stack's address in place of the server's: every frame of the
    push is published on the stream of the recipe's config."""
    blocks = readme_blocks()
    config = tmp_path / "push.ini"
    config.write_text(blocks["push-config"])
    pattern, replacement = PUSH_CAMERAS[recipe]
    code = blocks[recipe].replace("\\\n", " ")
    code, n = re.subn(pattern, replacement, code)
    assert n == 1, code
    with running_stack(config=config) as st:
        code = code.replace("http://cams.example.org", "http://127.0.0.1:%d" % st.port)
        r = subprocess.run(["bash", "-c", "set -o pipefail; " + code], capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (r.stdout, r.stderr[-2000:])
        assert st.stream("pi")["frames_published"] == 90
        assert snapshot(st.port, "pi")[0] == (640, 480)


def test_push_chain_recipe_as_written(tmp_path):
    """The chain by push: ffmpeg reads an origin stack's bars and pushes
    them to the pi stream of another stack; its frames arrive there, bars'
    size and all, while the command runs (it runs until stopped)."""
    blocks = readme_blocks()
    config = tmp_path / "push.ini"
    config.write_text(blocks["push-config"])
    with running_stack() as origin, running_stack(config=config) as st:
        code = blocks["push-chain"].replace("127.0.0.1:8080", "127.0.0.1:%d" % origin.port)
        code = code.replace("http://cams.example.org", "http://127.0.0.1:%d" % st.port)

        def check():
            deadline = time.monotonic() + 30
            while st.stream("pi")["frames_published"] < 30:
                assert time.monotonic() < deadline, st.stream("pi")
                time.sleep(0.2)
            assert snapshot(st.port, "pi")[0] == (640, 480)

        run_snippet(code, True, check)


def test_tls_nginx_recipe_as_written(tmp_path):
    """The nginx TLS recipe in an nginx of its own, in front of a stack's
    responder: the stack's self-signed certificate in place of certbot's
    files, a free port in place of 443, the checkout's page and the
    stack's socket in place of the installed ones. curl reads the page,
    status and a stream over HTTP/2, checking the certificate."""
    import grp
    import pwd
    block = readme_blocks()["tls-nginx"]
    with running_stack(tls=True) as st:
        port = free_port()
        key = os.path.join(st.run_dir, "tls", "key.pem")
        sock = os.path.join(st.run_dir, "mjpeg-fcgi.sock")
        site = block
        for old, new in (("listen 443 ssl http2;", "listen 127.0.0.1:%d ssl http2;" % port),
                         ("/etc/letsencrypt/live/cams.example.org/fullchain.pem", st.cert),
                         ("/etc/letsencrypt/live/cams.example.org/privkey.pem", key),
                         ("/usr/local/share/mjpeg-fcgi/html", os.path.join(TOP, "html")),
                         ("unix:/run/mjpeg-fcgi/mjpeg-fcgi.sock", "unix:" + sock)):
            assert old in site, old
            site = site.replace(old, new)
        # What the recipe leaves to the system's nginx.conf: a main
        # context, its paths here, and Debian's fastcgi_params beside it.
        user = ""
        if os.geteuid() == 0:
            user = "user %s %s;" % (pwd.getpwuid(os.getuid()).pw_name,
                                    grp.getgrgid(os.getgid()).gr_name)
        tmp = str(tmp_path)
        with open("/etc/nginx/fastcgi_params") as f, \
                open(os.path.join(tmp, "fastcgi_params"), "w") as out:
            out.write(f.read())
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""%s
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 256; }
http {
    types { text/html html; text/css css; text/javascript js; }
    access_log off;
    client_body_temp_path %s/body; fastcgi_temp_path %s/fastcgi;
    proxy_temp_path %s/proxy; uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi;
%s
}
""" % ((user,) + (tmp,) * 7 + (site,)))
        nginx = subprocess.Popen(["nginx", "-p", tmp + "/", "-c", conf, "-e",
                                  os.path.join(tmp, "error.log"), "-g", "daemon off;"],
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            base = "https://127.0.0.1:%d/" % port

            def curl(path, *extra):
                return subprocess.run(["curl", "-sS", "--noproxy", "*", "--http2", "--cacert",
                                       st.cert, "-w", "\n%{http_version} %{http_code}"]
                                      + list(extra) + [base + path],
                                      capture_output=True, timeout=30)

            def up():
                r = curl("status", "--max-time", "2")
                return r if r.returncode == 0 else None

            deadline = time.monotonic() + 10
            r = None
            while r is None and time.monotonic() < deadline and nginx.poll() is None:
                r = up()
                time.sleep(0.1)
            with open(os.path.join(tmp, "error.log")) as f:
                log = f.read()
            assert r is not None, "the recipe's nginx did not answer (its stderr is above): " + log
            assert r.stdout.endswith(b"\n2 200"), r.stdout[-200:]
            r = curl("", "--max-time", "5")
            assert r.stdout.endswith(b"\n2 200") and b"viewer.js" in r.stdout, r.stdout[-200:]
            r = curl("stream/demo", "--max-time", "3")
            assert r.returncode == 28, r.stderr      # the stream went on until the time limit
            assert r.stdout.count(b"Content-Type: image/jpeg") >= 2, r.stdout[:300]
            assert r.stdout.endswith(b"\n2 200"), r.stdout[-100:]
        finally:
            if nginx.poll() is None:
                os.killpg(nginx.pid, signal.SIGTERM)
            nginx.wait(10)


def test_signed_link_snippets_play(tmp_path):
    """The README's minting snippets (Python, Node, shell) as written: each
    prints a link that opens the private stream of the README's config, and
    whose query opens its snapshot; the stream without a link is 403."""
    import mjpeg
    blocks = readme_blocks()
    config = tmp_path / "signed.ini"
    config.write_text(blocks["signed-config"])
    commands = {
        "signed-python": [sys.executable, "-c", blocks["signed-python"]],
        "signed-node": ["node", "-e", blocks["signed-node"]],
        "signed-shell": ["bash", "-c", blocks["signed-shell"]],
    }
    with running_stack(config=config) as st:
        assert st.get("/stream/backyard")[0] == 403
        for name, cmd in commands.items():
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, (name, r.stderr)
            link = r.stdout.strip()
            assert re.fullmatch(r"stream/backyard\?exp=\d+&sig=[0-9a-f]{64}", link), (name, link)
            with mjpeg.Viewer(st.port, "/" + link, deadline=time.monotonic() + 20) as v:
                assert v.status == 200, (name, v.status, v.resp.read()[:200])
                part = v.reader.next_part()
                assert part is not None, name
                mjpeg.decode_jpeg(part.body)
            status, _, body = st.get("/snapshot/backyard?" + link.split("?", 1)[1])
            assert status == 200, (name, status, body[:200])
            mjpeg.decode_jpeg(body)


def test_exec_recipes_as_written(tmp_path):
    """The exec: recipes.  The test picture and raw ones run as written.
    The RTSP camera's command line runs as written but for the camera's
    address: an RTSP server on loopback (GStreamer's RTSP server library,
    rtsp_server.py) serves a test picture there.  The USB webcam's needs a
    V4L2 device the tests do not have: its input (`-f v4l2 -input_format
    mjpeg -i /dev/video0`) is replaced by an MJPEG file made by ffmpeg, and
    the rest of the line (`-c copy -f mjpeg -`) runs as written: every
    frame a viewer gets is byte for byte a JPEG of that file (copied, not
    encoded again)."""
    from mjpeg import Viewer
    blocks = readme_blocks()
    webcam_input = "-f v4l2 -input_format mjpeg -i /dev/video0"
    rtsp_url = "rtsp://192.168.1.66:554/stream1"
    assert webcam_input in blocks["exec-webcam-config"]
    assert rtsp_url in blocks["exec-rtsp-config"]
    # a short path: the config line that names it must fit in 199 bytes
    clip_dir = tempfile.mkdtemp(prefix="exec")
    clip = pathlib.Path(clip_dir) / "w.mjpeg"
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
                    "-i", "testsrc=size=320x240:rate=10", "-frames:v", "20", "-q:v", "5",
                    "-f", "mjpeg", str(clip)], check=True, timeout=60)
    clip_bytes = clip.read_bytes()
    rtsp_port = free_port()
    rtsp = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__),
                                                          "rtsp_server.py"), str(rtsp_port)],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert rtsp.stdout.readline().strip() == "ready"
        config = tmp_path / "exec.ini"
        config.write_text(
            blocks["exec-testsrc-config"] + blocks["exec-raw-config"]
            + blocks["exec-rtsp-config"].replace(rtsp_url,
                                                 "rtsp://127.0.0.1:%d/stream1" % rtsp_port)
            + blocks["exec-webcam-config"].replace(
                webcam_input, "-stream_loop -1 -re -framerate 10 -f mjpeg -i %s" % clip))
        with running_stack(config=config) as st:
            for name, size in (("test", (640, 480)), ("rawtest", (320, 240)),
                               ("porch", (320, 240)), ("webcam", (320, 240))):
                got, _ = snapshot(st.port, name, timeout=30)
                assert got == size, (name, got, st.log_tail())
                assert st.stream(name)["upstream"]["state"] == "connected", name
            with Viewer(st.port, "/stream/webcam?frames=5", timeout=20) as v:
                assert v.status == 200
                for _ in range(5):
                    part = v.reader.next_part()
                    assert part is not None and part.body in clip_bytes
    finally:
        rtsp.kill()
        rtsp.wait(10)
        shutil.rmtree(clip_dir)
