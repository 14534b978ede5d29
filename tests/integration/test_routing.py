"""Routing is strict, so a web server's access control per location means
what it says (README, Security).

The responder answers a request only when the whole path below its mount
point is stream/NAME, snapshot/NAME, ingest/NAME, status or metrics, and the
shipped configs pass only those shapes to it. Checked here:

- behind every shipped server, every crossing of path kinds (a kind's path
  under another kind's path, extra segments, trailing slashes, dot segments,
  encodings) is refused and never served as another kind;
- behind every shipped server, protected locations as README's Security
  section sets them up (passwords on stream/ and snapshot/, an address
  allow-list on status and metrics; ingest keeps its token) hold against
  every crossing, with and without the viewer password;
- behind nginx with prefix locations (`location /ingest/`, as older configs
  had them), the responder itself refuses the crossings;
- plain CGI routes PATH_INFO only, FastCGI SCRIPT_NAME + PATH_INFO below
  `--mount`;
- streams named status and metrics are streams like any other.
"""

import base64
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

import mjpeg
import stacks
from fcgiwire import BIN, cgi_env, fcgi_request, own_responder
from stacks import edit, live_processes, start_stack

TIMEOUT = 5.0
TEST_TIME_LIMIT = 120
TOKEN = "routing-test-token-0123456789abcdef"
USER, PASSWORD = "viewer", "correct-horse-battery"
MONITOR = "10.0.0.5"      # the only address allowed to status and metrics
RELOAD_SECONDS = 15       # a reloaded server takes the new config within this

CONFIG = ("[stream bars]\nsource = pattern:bars\nsize = 160x120\nfps = 10\n\n"
          "[stream cam]\nsource = ingest\ntoken = %s\n" % TOKEN)

# What each kind answers with when it is served: enough to tell them apart.
STREAM, SNAPSHOT, STATUS, METRICS = "stream", "snapshot", "status", "metrics"

# The paths that routed before routing was strict, each naming the kind it
# reached. None of them may be served as that kind (or any kind) now.
CROSSINGS = [
    ("/ingest/stream/bars?frames=1", STREAM),
    ("/ingest/snapshot/bars", SNAPSHOT),
    ("/ingest/status", STATUS),
    ("/ingest/metrics", METRICS),
    ("/ingest/x/stream/bars?frames=1", STREAM),
    ("/ingest/x/snapshot/bars", SNAPSHOT),
    ("/ingest/cam/status", STATUS),
    ("/stream/status", STATUS),
    ("/stream/metrics", METRICS),
    ("/stream/x/snapshot/bars", SNAPSHOT),
    ("/stream/bars/status", STATUS),
    ("/snapshot/metrics", METRICS),
    ("/snapshot/status", STATUS),
    ("/snapshot/x/stream/bars?frames=1", STREAM),
    ("/snapshot/bars/metrics", METRICS),
    ("/status/stream/bars?frames=1", STREAM),
    ("/metrics/snapshot/bars", SNAPSHOT),
    ("/x/status", STATUS),
    ("/cams/stream/bars?frames=1", STREAM),
    ("/index.html/stream/bars?frames=1", STREAM),
    ("/mjpeg.cgi/stream/bars?frames=1", STREAM),
    ("/mjpeg.cgi/status", STATUS),
    ("/stream/bars/extra?frames=1", STREAM),
    ("/stream/bars/?frames=1", STREAM),
    ("/snapshot/bars/", SNAPSHOT),
    ("/status/", STATUS),
    ("/stream/?frames=1", STREAM),
    ("/snapshot/", SNAPSHOT),
    ("/ingest/", STREAM),
    ("/metrics/", METRICS),
    ("/ingest/%2e%2e/x/stream/bars?frames=1", STREAM),
    ("/stream/bars%2Fstatus", STATUS),
]

# Paths that web servers normalise into a real path of a kind (dot segments,
# double slashes, percent-encoding): served, if at all, as the kind of the
# normalised path, and only through that kind's location.
NORMALISED = [
    ("/ingest/../stream/bars?frames=1", STREAM),
    ("/ingest/..%2Fstream/bars?frames=1", STREAM),
    ("/status/../snapshot/bars", SNAPSHOT),
    ("/stream/./bars?frames=1", STREAM),
    ("/stream//bars?frames=1", STREAM),
    ("/%73tream/bars?frames=1", STREAM),
    ("/stream/../status", STATUS),
    ("/snapshot/../metrics", METRICS),
    ("/%73tatus", STATUS),
]


@pytest.fixture(autouse=True)
def time_limit():
    """Bounds every test of this module: nothing may hang."""
    with stacks.time_limit(TEST_TIME_LIMIT):
        yield


def kind_of(status, headers, body):
    """Which kind of answer this is, or None for an error or anything
    else (the static page, a server's own error page)."""
    if status != 200:
        return None
    ctype = headers.get("Content-Type", "")
    if ctype.startswith("multipart/x-mixed-replace"):
        return STREAM
    if ctype == "image/jpeg" and body[:2] == b"\xff\xd8":
        return SNAPSHOT
    if ctype.startswith("application/json") and b'"streams"' in body:
        return STATUS
    if b"mjpeg_" in body and ctype.startswith("text/plain"):
        return METRICS
    return None


def fetch(port, path, auth=False):
    """(status, headers, body) of GET path, sent as it is (no
    normalisation on the client's side)."""
    import http.client
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(
            ("%s:%s" % (USER, PASSWORD)).encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def assert_not_served(port, path, kind, auth=False):
    """path is refused, or (lighttpd: /index.html/stream/...) answered by
    the web server with the static page; never served by the responder."""
    status, headers, body = fetch(port, path, auth)
    assert kind_of(status, headers, body) is None, (
        "%s answered %d as %s (%s)" % (path, status, kind_of(status, headers, body), kind))
    if status == 200:
        assert body.startswith(b"<!DOCTYPE html>"), (path, status, body[:200])
    else:
        assert status in (401, 403, 404, 405), (path, status, body[:200])
    return status


def ingest_ok(port):
    """POST one JPEG to ingest/cam with its token: the publish path is
    unaffected by any of the viewer protections."""
    import http.client
    jpeg = mjpeg_jpeg()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("POST", "/ingest/cam", body=jpeg,
                     headers={"Authorization": "Bearer " + TOKEN,
                              "Content-Type": "image/jpeg"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def mjpeg_jpeg():
    import io
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 30)).save(out, "JPEG", quality=90)
    return out.getvalue()


# --- every shipped server, as shipped ------------------------------------------------

def test_crossings_are_refused(stack):
    """The shipped config of each server: the five shapes are served as
    their kind; no crossing is served as any kind."""
    for path, kind in [("/stream/bars?frames=1", STREAM), ("/snapshot/bars", SNAPSHOT),
                       ("/status", STATUS), ("/metrics", METRICS)]:
        status, headers, body = fetch(stack.port, path)
        assert kind_of(status, headers, body) == kind, (path, status, body[:200])
    for path, kind in CROSSINGS:
        assert_not_served(stack.port, path, kind)
    # normalised paths: only as the kind their normalised path names
    for path, kind in NORMALISED:
        status, headers, body = fetch(stack.port, path)
        assert kind_of(status, headers, body) in (None, kind), (path, status, body[:200])


# --- protected locations, as README's Security section sets them up ------------------

def htpasswd_file(directory):
    """The viewer's password file in directory (the stack's run directory,
    which the server's user can read: Apache runs as www-data under root,
    and a pytest tmp_path is closed to it)."""
    path = os.path.join(directory, "cams.htpasswd")
    line = subprocess.run(["htpasswd", "-nbs", USER, PASSWORD], capture_output=True,
                          text=True, check=True).stdout.strip()
    with open(path, "w") as f:
        f.write(line + "\n")
    os.chmod(path, 0o644)
    return path


NGINX_VIEWERS = ('auth_basic "cameras"; auth_basic_user_file "%s";')
NGINX_MONITOR = "allow %s; deny all;" % MONITOR


def protect_nginx_locations(st, passwords, stream, snapshot, edits=()):
    """EDITS to the stack's nginx.conf, then the viewers' password on the
    locations that start as STREAM and SNAPSHOT (regexes) and the monitor's
    address on status and metrics; nginx reloads the config."""
    conf = os.path.join(st.run_dir, "nginx.conf")
    viewers = NGINX_VIEWERS % passwords
    edit(conf, list(edits) + [(r"^(\s*%s \{)" % stream, r"\1 " + viewers),
                              (r"^(\s*%s \{)" % snapshot, r"\1 " + viewers),
                              (r"^(\s*location = /status \{)", r"\1 " + NGINX_MONITOR),
                              (r"^(\s*location = /metrics \{)", r"\1 " + NGINX_MONITOR)])
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    subprocess.run([nginx, "-p", st.run_dir + "/", "-c", conf, "-e",
                    os.path.join(st.run_dir, "nginx-error.log"), "-s", "reload"],
                   check=True, capture_output=True, timeout=TIMEOUT)


def protect_nginx(st, passwords):
    protect_nginx_locations(st, passwords, r"location ~ \^/stream/\[A-Za-z0-9_-\]\+\$",
                            r"location ~ \^/snapshot/\[A-Za-z0-9_-\]\+\$")


def protect_lighttpd(st, passwords):
    conf = os.path.join(st.run_dir, "lighttpd.conf")
    edit(conf, [(r'^server\.modules = \( "mod_fastcgi"',
                 'server.modules = ( "mod_access", "mod_auth", "mod_authn_file", "mod_fastcgi"')])
    with open(conf, "a") as f:
        f.write('\nauth.backend = "htpasswd"\n'
                'auth.backend.htpasswd.userfile = "%s"\n'
                'auth.require = ( "/stream/" => ( "method" => "basic", "realm" => "cameras",'
                ' "require" => "valid-user" ),\n'
                '                 "/snapshot/" => ( "method" => "basic", "realm" => "cameras",'
                ' "require" => "valid-user" ) )\n'
                '$HTTP["url"] =~ "^/(status|metrics)$" {\n'
                '    $HTTP["remoteip"] != "%s" { url.access-deny = ( "" ) }\n'
                '}\n' % (passwords, MONITOR))
    # a graceful restart re-reads the config (and respawns the responders)
    with open(os.path.join(st.run_dir, "lighttpd.pid")) as f:
        os.kill(int(f.read().strip()), signal.SIGUSR1)


HTACCESS = """
# viewers need a password; status and metrics only for the monitoring host
<If "%%{REQUEST_URI} =~ m#/(stream|snapshot)/[^/]*$#">
    AuthType Basic
    AuthName "cameras"
    AuthUserFile "%s"
    Require valid-user
</If>
<If "%%{REQUEST_URI} =~ m#/(status|metrics)$#">
    Require ip %s
</If>
"""

APACHE_MODULES = "".join('LoadModule %s_module "/usr/lib/apache2/modules/mod_%s.so"\n' % (m, m)
                         for m in ("authn_core", "authn_file", "auth_basic", "authz_user",
                                   "authz_host"))

APACHE_LOCATIONS = """
# viewers need a password; status and metrics only for the monitoring host
<LocationMatch "^/(stream|snapshot)/[A-Za-z0-9_-]+$">
    AuthType Basic
    AuthName "cameras"
    AuthUserFile "%s"
    Require valid-user
</LocationMatch>
<LocationMatch "^/(status|metrics)$">
    Require ip %s
</LocationMatch>
"""


def protect_apache_cgi(st, passwords):
    with open(os.path.join(st.run_dir, "www", ".htaccess"), "a") as f:
        f.write(HTACCESS % (passwords, MONITOR))


def protect_apache_server(st, passwords):
    conf = os.path.join(st.run_dir, "apache.conf")
    with open(conf) as f:
        text = f.read()
    text = text.replace('LoadModule authz_core_module', APACHE_MODULES
                        + 'LoadModule authz_core_module', 1)
    text += APACHE_LOCATIONS % (passwords, MONITOR)
    with open(conf, "w") as f:
        f.write(text)
    apache = shutil.which("apache2") or "/usr/sbin/apache2"
    subprocess.run([apache, "-f", conf, "-k", "graceful"], check=True, capture_output=True,
                   timeout=TIMEOUT)


PROTECT = {
    "nginx": protect_nginx,
    "lighttpd": protect_lighttpd,
    "apache": protect_apache_cgi,
    "apache-fcgid": protect_apache_server,
    "apache-proxy": protect_apache_server,
}


# The pid file of the server whose master stays through a reload, while
# every child of it is replaced (nginx -s reload, Apache's graceful restart).
MASTER_PIDFILES = {"nginx": "nginx.pid", "apache-fcgid": "apache2.pid",
                   "apache-proxy": "apache2.pid"}


def old_generation(st, server):
    """The children of the server's master before a reload: until they are
    gone, one of them may still accept a connection and answer it with the
    old config.  [] where no master stays (lighttpd re-reads its config in
    one process after it stopped accepting; Apache CGI reads .htaccess per
    request)."""
    if server not in MASTER_PIDFILES:
        return []
    with open(os.path.join(st.run_dir, MASTER_PIDFILES[server])) as f:
        return live_processes(ppid=int(f.read().strip()))


def wait_protected(port, old=()):
    """Until the processes of OLD (old_generation, before the reload) are
    gone, the reloaded server refuses status (it is served meanwhile) and
    serves a snapshot to the viewer again (mod_fcgid answers 500 for a
    moment after a graceful restart, while its process manager
    restarts)."""
    deadline = time.monotonic() + RELOAD_SECONDS
    while True:
        try:
            if (not set(old) & set(live_processes())
                    and fetch(port, "/status")[0] == 403
                    and fetch(port, "/snapshot/bars", auth=True)[0] == 200):
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "the protection did not take within %d s" % (
            RELOAD_SECONDS)
        time.sleep(0.2)


def check_protected(port):
    # each kind through its own location: password, address, token
    for path in ("/stream/bars?frames=1", "/snapshot/bars"):
        assert fetch(port, path)[0] == 401, path
    status, headers, body = fetch(port, "/stream/bars?frames=1", auth=True)
    assert kind_of(status, headers, body) == STREAM, (status, body[:200])
    status, headers, body = fetch(port, "/snapshot/bars", auth=True)
    assert kind_of(status, headers, body) == SNAPSHOT, (status, body[:200])
    for path in ("/status", "/metrics"):
        assert fetch(port, path)[0] == 403, path
        assert fetch(port, path, auth=True)[0] == 403, path
    status, body = ingest_ok(port)
    assert status in (200, 204), (status, body)
    # every crossing and every normalised path, with and without the
    # viewer's password: never a kind its location does not protect
    for path, kind in CROSSINGS + NORMALISED:
        assert_not_served(port, path, kind)
        status, headers, body = fetch(port, path, auth=True)
        served = kind_of(status, headers, body)
        if kind in (STATUS, METRICS):
            assert served is None, (path, status, served)
        else:
            assert served in (None, kind), (path, status, served)


def test_protected_locations_hold(server, tmp_path):
    config = tmp_path / "cams.ini"
    config.write_text(CONFIG)
    with start_stack(config=config, server=server) as st:
        passwords = htpasswd_file(st.run_dir)
        old = old_generation(st, server)
        PROTECT[server](st, passwords)
        wait_protected(st.port, old)
        check_protected(st.port)


# --- the responder itself, behind prefix locations -----------------------------------

def test_prefix_locations_do_not_cross(tmp_path):
    """nginx with prefix locations (location /ingest/ and friends, as
    configs had them before) passes every path under them to the
    responder: the responder itself must refuse the crossings."""
    config = tmp_path / "cams.ini"
    config.write_text(CONFIG)
    with start_stack(config=config, server="nginx") as st:
        old = old_generation(st, "nginx")
        protect_nginx_locations(
            st, htpasswd_file(st.run_dir), "location /stream/", "location /snapshot/",
            [(r"location ~ \^/(stream|snapshot|ingest)/\[A-Za-z0-9_-\]\+\$ \{",
              r"location /\1/ {")])
        wait_protected(st.port, old)
        check_protected(st.port)
        # these reached the responder, which said 404 (GET on an ingest
        # path is 405: the ingest kind, never another)
        for path in ("/ingest/stream/bars?frames=1", "/ingest/x/status",
                     "/stream/bars/extra?frames=1"):
            assert fetch(st.port, path, auth=True)[0] in (404, 405), path


# --- CGI and FastCGI: what the path below the mount point is -------------------------

def run_cgi(path_info, script_name="/cams/mjpeg.cgi", query="", bus_dir=None):
    env = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET",
           "SCRIPT_NAME": script_name, "PATH_INFO": path_info, "QUERY_STRING": query,
           "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if path_info is None:
        del env["PATH_INFO"]
    r = subprocess.run([BIN, "--bus-dir", bus_dir], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20)
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


@pytest.fixture
def bus_dir():
    path = "/tmp/mjpeg-routing-%d-bus" % os.getpid()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_cgi_routes_path_info_only(bus_dir):
    """Plain CGI: the script is the mount point; only PATH_INFO of one of
    the shapes routes, wherever the script is."""
    head, body = run_cgi("/status", bus_dir=bus_dir)
    assert head.startswith("Status: 200") or "Status" not in head, head
    assert json.loads(body)["streams"], body[:200]
    head, body = run_cgi("/stream/bars", query="frames=1", bus_dir=bus_dir)
    assert "multipart/x-mixed-replace" in head, head
    for path_info in ("/ingest/x/stream/bars", "/ingest/stream/bars", "/x/status",
                      "/stream/bars/", "/stream/bars/extra", "status", "", None):
        head, body = run_cgi(path_info, query="frames=1" if path_info and "stream/" in
                             path_info else "", bus_dir=bus_dir)
        assert head.startswith("Status: 404"), (path_info, head, body[:200])
    # SCRIPT_NAME never routes by itself
    head, body = run_cgi("", script_name="/status", bus_dir=bus_dir)
    assert head.startswith("Status: 404"), head


def test_fastcgi_mount():
    """FastCGI: SCRIPT_NAME + PATH_INFO below --mount; nothing else."""
    with own_responder("--mount", "/cams/") as r:
        def status_of(script_name, path_info=None):
            env = cgi_env(script_name)
            if path_info is not None:
                env["PATH_INFO"] = path_info
            headers, body = fcgi_request(r.socket, env)
            return int(headers["status"].split()[0]), body

        assert status_of("/cams/status")[0] == 200
        assert status_of("/cams", "/metrics")[0] == 200
        assert status_of("", "/cams/snapshot/bars")[0] == 200
        assert status_of("/cams/stream/bars?frames=1")[0] == 200
        for script_name in ("/status", "/stream/bars?frames=1", "/camsx/status",
                            "/cams/ingest/stream/bars?frames=1", "/cams/x/status",
                            "/other/cams/status", "/cams/status/", "/cams//status"):
            assert status_of(script_name)[0] == 404, script_name


def test_mount_option_refused_when_invalid(bus_dir):
    for mount in ("cams", "/cams", "/a//b/", "/../", "/a b/"):
        r = subprocess.run([BIN, "--mount", mount, "--bus-dir", bus_dir, "--listen",
                            "unix:/tmp/mjpeg-routing-never.sock"], capture_output=True,
                           text=True, timeout=10, stdin=subprocess.DEVNULL)
        assert r.returncode != 0 and "--mount" in r.stderr, (mount, r.returncode, r.stderr)


# --- streams called status and metrics -----------------------------------------------

def test_streams_named_status_and_metrics(tmp_path):
    config = tmp_path / "named.ini"
    config.write_text("[stream status]\nsource = pattern:bars\nsize = 160x120\nfps = 10\n\n"
                      "[stream metrics]\nsource = pattern:redblue\n")
    with start_stack(config=config, server="nginx") as st:
        status, headers, body = fetch(st.port, "/status")
        assert kind_of(status, headers, body) == STATUS
        assert {s["name"] for s in json.loads(body)["streams"]} == {"status", "metrics"}
        assert kind_of(*fetch(st.port, "/metrics")) == METRICS
        assert kind_of(*fetch(st.port, "/stream/status?frames=1")) == STREAM
        assert kind_of(*fetch(st.port, "/snapshot/metrics")) == SNAPSHOT
        with mjpeg.Viewer(st.port, "/stream/metrics?frames=1", TIMEOUT,
                          deadline=time.monotonic() + 10) as v:
            assert v.status == 200
            parts = list(v.reader)
            v.reader.finish()
        assert mjpeg.decode_jpeg(parts[0].body).size == (256, 256)


# --- config files that are not config files ------------------------------------------

@pytest.mark.parametrize("path,why", [("/dev/zero", "not a regular file"),
                                      ("/proc/self/mem", "cannot read")])
def test_config_that_cannot_be_read_is_refused(path, why):
    r = subprocess.run([BIN, "--config", path, "--listen", "unix:/tmp/mjpeg-routing-never.sock"],
                       capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and path in r.stderr and why in r.stderr, (r.returncode, r.stderr)
