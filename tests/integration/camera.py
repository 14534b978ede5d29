"""A camera on loopback for the relay tests: an HTTP server that streams
solid-colour JPEGs in the layouts real cameras and servers use, so the
relay is tested against bytes our own responder never writes.

Paths (GET):
  /std        multipart/x-mixed-replace;boundary=frame, "--frame" before
              each part, Content-Type and Content-Length (most cameras)
  /nolength   the same parts without Content-Length (mjpg-streamer's old
              layout, many cheap cameras)
  /quoted     boundary="my cam" quoted, and a space in it
  /noleading  no boundary before the first part: its headers come first,
              the boundary after each part (Axis-style)
  /lf         LF line ends only, boundary declared with its leading
              "--" (boundary=--lfcam) and written as "--lfcam" (some
              ESP32-CAM sketches)
  /octet      application/octet-stream, chunked, bare JPEGs back to back
  /cut        three parts, then half of a fourth and the connection closes
  /stamped    parts with X-Timestamp: the time the frame was made
  /hang       one part, then nothing, the connection kept open
  /snapshot.jpg  image/jpeg: one frame per request (snapshot cameras)
The n-th frame served on a connection (n = 0, 1, ...) has colour
COLOURS[n % len(COLOURS)]; /snapshot.jpg serves the colour
COLOURS[requests % len(COLOURS)].

Camera(...).start() serves in daemon threads; stop() closes the listening
socket and every open connection at once (a camera unplugged), and start()
serves again on the same port.  The counters say how many connections
were made and how many are open, per path."""

import base64
import collections
import io
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]


def solid_jpeg(colour, size=(64, 48), quality=90):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


class Camera:
    def __init__(self, port, fps=20.0, size=(64, 48), user=None, password=None, token=None,
                 certfile=None, keyfile=None):
        self.port, self.fps = port, fps
        self.frames = [solid_jpeg(c, size) for c in COLOURS]
        self.user, self.password, self.token = user, password, token
        self.certfile, self.keyfile = certfile, keyfile
        self.lock = threading.Lock()
        self.connections = collections.Counter()  # path -> connections made
        self.open = collections.Counter()         # path -> connections open now
        self.max_open = collections.Counter()     # path -> most open at once
        self.refused = 0                          # requests refused for credentials
        self.snapshots = 0
        self.sockets = set()
        self.server = None
        self.thread = None

    # --- life --------------------------------------------------------------

    def start(self):
        camera = self

        class Handler(CameraHandler):
            cam = camera

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        self.server.allow_reuse_address = True
        self.server.daemon_threads = True
        self.server.server_bind()
        self.server.server_activate()
        if self.certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.certfile, self.keyfile)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Gone at once: the listening socket and every connection."""
        if not self.server:
            return
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            socks = list(self.sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, path, scheme="http"):
        return "%s://127.0.0.1:%d%s" % (scheme, self.port, path)

    def wait_open(self, path, count, timeout):
        """True once exactly COUNT connections to PATH are open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.open[path] == count:
                    return True
            time.sleep(0.05)
        return False


class CameraHandler(BaseHTTPRequestHandler):
    cam = None
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):  # quiet
        pass

    def authorised(self):
        cam = self.cam
        got = self.headers.get("Authorization", "")
        if cam.token and got != "Bearer " + cam.token:
            return False
        if cam.user:
            want = "Basic " + base64.b64encode(("%s:%s" % (cam.user, cam.password)).encode()).decode()
            if got != want:
                return False
        return True

    def do_GET(self):
        cam = self.cam
        path = self.path.split("?")[0]
        if not self.authorised():
            with cam.lock:
                cam.refused += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="camera"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/snapshot.jpg":
            with cam.lock:
                n = cam.snapshots
                cam.snapshots += 1
            body = cam.frames[n % len(cam.frames)]
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        layout = LAYOUTS.get(path)
        if layout is None:
            self.send_error(404)
            return
        with cam.lock:
            cam.connections[path] += 1
            cam.open[path] += 1
            cam.max_open[path] = max(cam.max_open[path], cam.open[path])
            cam.sockets.add(self.connection)
        try:
            layout(self)
        except OSError:
            pass
        finally:
            with cam.lock:
                cam.open[path] -= 1
                cam.sockets.discard(self.connection)

    # --- layouts -----------------------------------------------------------

    def frames(self, limit=None):
        """The frames of this connection at the camera's fps."""
        n = 0
        period = 1.0 / self.cam.fps
        due = time.monotonic()
        while limit is None or n < limit:
            due += period
            yield n, self.cam.frames[n % len(self.cam.frames)]
            n += 1
            time.sleep(max(0.0, due - time.monotonic()))

    def head(self, content_type, chunked=False):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def std(self):
        self.head("multipart/x-mixed-replace;boundary=frame")
        for _, jpeg in self.frames():
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                             % len(jpeg) + jpeg + b"\r\n")

    def nolength(self):
        self.head("multipart/x-mixed-replace; boundary=frame")
        for _, jpeg in self.frames():
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg + b"\r\n")

    def quoted(self):
        self.head('multipart/x-mixed-replace; boundary="my cam"')
        for _, jpeg in self.frames():
            self.wfile.write(b"--my cam\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                             % len(jpeg) + jpeg + b"\r\n")

    def noleading(self):
        self.head("multipart/x-mixed-replace;boundary=myboundary")
        for _, jpeg in self.frames():
            self.wfile.write(b"Content-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                             % len(jpeg) + jpeg + b"\r\n--myboundary\r\n")

    def lf(self):
        self.head("multipart/x-mixed-replace;boundary=--lfcam")
        for _, jpeg in self.frames():
            self.wfile.write(b"--lfcam\nContent-Type: image/jpeg\nContent-Length: %d\n\n"
                             % len(jpeg) + jpeg + b"\n")

    def octet(self):
        self.protocol_version = "HTTP/1.1"
        self.head("application/octet-stream", chunked=True)
        for _, jpeg in self.frames():
            self.wfile.write(b"%x\r\n" % len(jpeg) + jpeg + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def cut(self):
        self.head("multipart/x-mixed-replace;boundary=frame")
        for n, jpeg in self.frames(limit=4):
            part = (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                    % len(jpeg) + jpeg + b"\r\n")
            if n == 3:
                self.wfile.write(part[:len(part) // 2])
                self.wfile.flush()
                return
            self.wfile.write(part)

    def hang(self):
        """One frame, then nothing, connection open (a camera that froze)."""
        self.head("multipart/x-mixed-replace;boundary=frame")
        jpeg = self.cam.frames[0]
        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                         % len(jpeg) + jpeg + b"\r\n")
        self.wfile.flush()
        while self.cam.server is not None and self.connection.fileno() >= 0:
            if self.connection.recv(1, socket.MSG_PEEK) == b"":
                return  # the relay hung up

    def stamped(self):
        self.head("multipart/x-mixed-replace;boundary=frame")
        for _, jpeg in self.frames():
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n"
                             b"X-Timestamp: %.6f\r\n\r\n" % (len(jpeg), time.time())
                             + jpeg + b"\r\n")


LAYOUTS = {
    "/std": CameraHandler.std,
    "/nolength": CameraHandler.nolength,
    "/quoted": CameraHandler.quoted,
    "/noleading": CameraHandler.noleading,
    "/lf": CameraHandler.lf,
    "/octet": CameraHandler.octet,
    "/cut": CameraHandler.cut,
    "/stamped": CameraHandler.stamped,
    "/hang": CameraHandler.hang,
}
