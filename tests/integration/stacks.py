"""The stack of `make start` for the integration tests, in one place: the
repo top, a free port, `make start`/`make stop`, and a Stack with the small
HTTP helpers every module uses (status, snapshots, the responder's pid and
log). conftest.py builds its fixtures on these; a module that needs a stack
with its own config starts one with start_stack()."""

import contextlib
import http.client
import json
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAKE_TIMEOUT = 180        # start builds the responder first when needed
HTTP_TIMEOUT = 5.0        # every single network operation


PORT_BLOCK = 1000         # ports per pytest-xdist worker
_next_port = {}


def _port_block():
    """(first, end) of this process's own ports: under pytest-xdist, worker
    gwN takes the Nth block of PORT_BLOCK below the kernel's range for
    outgoing connections, so that neither another worker nor a client's
    ephemeral port can take a port between free_port's check and the
    server's bind.  None when the range leaves no room below it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    end = low - index * PORT_BLOCK
    first = end - PORT_BLOCK
    return (first, end) if first >= 1024 else None


def _bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port():
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago, from
    this worker's block (_port_block), taken in turn from a random start;
    the kernel's pick when there is no block or it is all taken."""
    block = _port_block()
    if block:
        first, end = block
        cursor = _next_port.get(block, first + random.randrange(PORT_BLOCK))
        for i in range(PORT_BLOCK):
            port = first + (cursor - first + i) % PORT_BLOCK
            if _bindable(port):
                _next_port[block] = port + 1
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_processes(ppid=None, pgid=None):
    """Pids (sorted) of the live, not zombie, processes with parent PPID
    and process group PGID (either may be None: any), read from
    /proc/PID/stat."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z":
            continue
        if (ppid is None or int(fields[1]) == ppid) and (pgid is None or int(fields[2]) == pgid):
            out.append(int(p))
    return sorted(out)


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


class TimeLimitExceeded(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    """Bounds a block (a test, through an autouse fixture): SIGALRM after
    SECONDS raises TimeLimitExceeded, so a blocked read fails the test
    instead of hanging the suite."""
    def expired(signum, frame):
        raise TimeLimitExceeded("test ran over %d s" % seconds)

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def wait_until(predicate, timeout, period=0.1):
    """Polls predicate() until it returns something true (returned) or
    `timeout` seconds passed (None). For things that happen "soon": the
    timeout only bounds a failing run, a passing one returns at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value or None
        time.sleep(period)


class Stack:
    """A stack on PORT: `make start PORT=port SERVER=server [CONFIG=config]
    [WORKERS=n] [RESPONDER=path] [TLS=1]`, and small HTTP helpers against it
    (over https, verifying the stack's own certificate, with TLS).
    `with st.start():` stops it when the block ends, however it ends."""

    def __init__(self, port, server="nginx", config=None, workers=None, responder=None,
                 tls=False):
        self.port = port
        self.server = server
        self.config = config
        self.workers = workers
        self.responder = responder
        self.tls = tls
        self.base = "%s://127.0.0.1:%d/" % ("https" if tls else "http", port)
        self.run_dir = os.path.join(TOP, "run", str(port))
        self.cert = os.path.join(self.run_dir, "tls", "cert.pem")
        self.stopped = True

    # --- start and stop ---------------------------------------------------

    def start(self):
        """`make start`; fails the test with make's output (after stopping
        whatever half started). Also starts the stack again after stop()."""
        args = ["start", "PORT=%d" % self.port, "SERVER=%s" % self.server]
        if self.config:
            args.append("CONFIG=%s" % self.config)
        if self.workers:
            args.append("WORKERS=%d" % self.workers)
        if self.responder:
            args.append("RESPONDER=%s" % self.responder)
        if self.tls:
            args.append("TLS=1")
        r = make(*args)
        if r.returncode != 0:
            make("stop", "PORT=%d" % self.port)
            pytest.fail("make %s failed (exit %s):\n%s\n%s"
                        % (" ".join(args), r.returncode, r.stdout[-3000:], r.stderr[-3000:]),
                        pytrace=False)
        self.stopped = False
        return self

    def stop(self):
        """`make stop PORT=port`, once per start; later calls do nothing."""
        if self.stopped:
            return
        self.stopped = True
        r = make("stop", "PORT=%d" % self.port)
        assert r.returncode == 0, "make stop PORT=%d failed:\n%s\n%s" % (
            self.port, r.stdout, r.stderr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # --- HTTP -------------------------------------------------------------

    def url(self, path):
        return self.base + path.lstrip("/")

    def request(self, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
        """One complete request: (status, HTTPMessage headers, body bytes).
        Not for endless streams."""
        if self.tls:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ssl.create_default_context(cafile=self.cert))
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, "/" + path.lstrip("/"), body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def get(self, path, timeout=HTTP_TIMEOUT):
        return self.request("GET", path, timeout=timeout)

    def status(self):
        """The /status document (asserts a 200 JSON answer)."""
        status, _, body = self.get("status")
        assert status == 200, (status, body[:300])
        return json.loads(body)

    def stream(self, name, doc=None):
        """The entry of stream NAME in /status (or in DOC)."""
        for s in (doc or self.status())["streams"]:
            if s["name"] == name:
                return s
        raise KeyError(name)

    def viewers(self, name):
        return self.stream(name)["viewers"]

    # --- the responder ----------------------------------------------------

    def pid(self):
        """The pid of the responder stack.sh started (nginx, apache-proxy)."""
        with open(os.path.join(self.run_dir, "mjpeg-fcgi.pid")) as f:
            return int(f.read())

    def log_path(self, name=None):
        """The responder's log (Apache: its error log, which takes the
        responders' standard error)."""
        if name is None:
            name = "apache-error.log" if self.server.startswith("apache") else "mjpeg-fcgi.log"
        return os.path.join(self.run_dir, name)

    def log(self, name=None):
        with open(self.log_path(name), errors="replace") as f:
            return f.read()

    def log_tail(self, name=None, lines=30):
        try:
            return "".join(self.log(name).splitlines(True)[-lines:])
        except OSError as e:
            return "(%s)" % e


def start_stack(port=None, config=None, server="nginx", workers=None, responder=None,
                tls=False):
    """A started Stack (on a free port unless PORT is given)."""
    return Stack(port or free_port(), server, config and str(config), workers,
                 responder and str(responder), tls).start()


def running_stack(**kw):
    """`with running_stack(config=...) as st:` a started Stack (start_stack's
    arguments), stopped when the block ends, however it ends."""
    return start_stack(**kw)


def edit(path, edits):
    """Applies (pattern, replacement) regex substitutions to the file at
    PATH (a stack's rendered config), each of which must match."""
    with open(path) as f:
        text = f.read()
    for pattern, replacement in edits:
        text, n = re.subn(pattern, replacement, text, flags=re.M)
        assert n, "%s: no match for %r" % (path, pattern)
    with open(path, "w") as f:
        f.write(text)
