"""Fixtures for the integration tests: the mjpeg-fcgi stack of `make start`
behind each web server (SERVER=nginx, lighttpd, apache (CGI), apache-fcgid,
apache-proxy (mod_proxy_fcgi)), on a free port, stopped again at the end of
the session.

MJPEG_TEST_SERVERS (comma-separated) narrows the servers the `stack` and
`server` fixtures run over, e.g. MJPEG_TEST_SERVERS=nginx."""

import http.client
import os
import subprocess

import pytest
from stacks import free_port

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAKE_TIMEOUT = 180        # start builds the responder first when needed
HTTP_TIMEOUT = 5.0        # every single network operation
ALL_SERVERS = ["nginx", "lighttpd", "apache", "apache-fcgid", "apache-proxy"]
SERVERS = [s.strip() for s in os.environ.get("MJPEG_TEST_SERVERS", ",".join(ALL_SERVERS))
           .split(",") if s.strip()]


def make(*args):
    """Runs `make -s ARGS` at the repo top; the CompletedProcess (text)."""
    try:
        return subprocess.run(["make", "-s"] + list(args), cwd=TOP, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=MAKE_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return subprocess.CompletedProcess(e.cmd, -1, out, "timed out after %ds" % MAKE_TIMEOUT)


class Stack:
    """A running stack: port, server, base URL and small HTTP helpers."""

    def __init__(self, port, server="nginx"):
        self.port = port
        self.server = server
        self.base = "http://127.0.0.1:%d/" % port
        self.run_dir = os.path.join(TOP, "run", str(port))
        self.stopped = False

    def url(self, path):
        return self.base + path.lstrip("/")

    def request(self, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
        """One complete request: (status, HTTPMessage headers, body bytes).
        Not for endless streams."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, "/" + path.lstrip("/"), body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def get(self, path, timeout=HTTP_TIMEOUT):
        return self.request("GET", path, timeout=timeout)

    def stop(self):
        """`make stop PORT=port`, once; later calls do nothing."""
        if self.stopped:
            return
        self.stopped = True
        r = make("stop", "PORT=%d" % self.port)
        assert r.returncode == 0, "make stop PORT=%d failed:\n%s\n%s" % (
            self.port, r.stdout, r.stderr)

    def log_tail(self, name=None, lines=30):
        """The end of the responder's log (Apache: its error log, which
        takes the responders' standard error)."""
        if name is None:
            name = "apache-error.log" if self.server.startswith("apache") else "mjpeg-fcgi.log"
        try:
            with open(os.path.join(self.run_dir, name), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return "(%s)" % e


def start_stack(port, config=None, server="nginx", workers=None):
    """`make start PORT=port SERVER=server [CONFIG=config] [WORKERS=n]`;
    fails the test with make's output (after stopping whatever half
    started)."""
    args = ["start", "PORT=%d" % port, "SERVER=%s" % server]
    if config:
        args.append("CONFIG=%s" % config)
    if workers:
        args.append("WORKERS=%d" % workers)
    r = make(*args)
    if r.returncode != 0:
        make("stop", "PORT=%d" % port)
        pytest.fail("make %s failed (exit %s):\n%s\n%s"
                    % (" ".join(args), r.returncode, r.stdout, r.stderr), pytrace=False)
    return Stack(port, server)


@pytest.fixture(scope="session", params=SERVERS)
def server(request):
    """The web server of this run of a test: every test that uses `stack`,
    `stack_factory` or this fixture runs once per server (ids by name)."""
    return request.param


@pytest.fixture(scope="session")
def stack(server):
    """The default stack behind SERVER (no config file: streams demo and
    bars). One per server, kept for the whole session; pytest runs the tests
    server by server, so only one of them runs at a time."""
    st = start_stack(free_port(), server=server)
    try:
        yield st
    finally:
        st.stop()


@pytest.fixture
def stack_factory(server):
    """start(config_path) -> a Stack of its own behind the same SERVER, on
    another free port; every stack started this way is stopped at the end of
    the test at the latest."""
    started = []

    def start(config=None):
        st = start_stack(free_port(), config, server=server)
        started.append(st)
        return st

    try:
        yield start
    finally:
        for st in started:
            st.stop()
