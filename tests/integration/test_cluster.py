"""A cluster on loopback, as `make cluster` starts it: an origin, three edges
that relay all of its streams ([relay] origin = ..., conf/edge.ini.example)
and the nginx balancer (conf/nginx-balancer.conf.example) in front of them.
300 viewers watch through the balancer, each a reconnecting client (as the
page is) on one asyncio loop; then an edge is killed, the origin restarted
and a stream added at the origin, all under that load.

One test, in phases: they share the cluster and the viewers, and each phase
starts from where the last one left the cluster (pytest-xdist would spread
separate tests over workers, each with a cluster of its own)."""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
from mjpeg import decode_jpeg
from stacks import TOP, free_port, time_limit, wait_until

VIEWERS = 300
EDGES = 3
STREAM = "cam"
# The origin publishes 20 fps; each viewer asks for ?fps=4, a new part every
# 250 ms (and 50 ms at most until the next frame): a modest rate for 300
# viewers in one Python process, and 750 ms of room under the 1 s bound on
# gaps below, for a machine three times slower than an idle one.
ORIGIN_FPS = 20
VIEWER_FPS = 4
# Bounds from the issue: a viewer whose edge died has frames again within
# 3 s; viewers of the other edges never wait over 1 s; after the origin's
# return every viewer has new frames within 3 s.  Why they hold on a busy
# 2-core machine: the client reconnects 0.5 s after losing its edge (the
# page's first back-off step), the balancer takes it to a live edge in one
# try (the dead one refuses at once: proxy_next_upstream error), and that
# edge's relay is running, so the newest frame goes out at once; 2.5 s of
# room.  An edge retries the origin every 0.25 s doubling up to 1 s (each
# wait up to 25% shorter: conf/edge.ini.example), so it is back within 1 s
# of the origin plus a connect: 2 s of room.  The other edges' viewers are
# served by their own edge's writer threads, untouched by the dead edge.
RECONNECT_BOUND_S = 3.0
GAP_BOUND_S = 1.0
RESUME_BOUND_S = 3.0
# Reconnect delays of the client, as html/mjpeg.js: 0.5 s, then 1 s.
BACKOFF_S = (0.5, 1.0)
# Generous: only a failing run waits this long.  300 viewers connect at
# once (one asyncio loop), in about a second on an idle machine; beside two
# busy loops, or with the sanitizer build, many times that.
CONNECT_DEADLINE_S = 60
SETTLE_S = 20
TEST_LIMIT_S = 300
SPREAD = 0.20  # viewers per edge within +-20% of even


class Viewer:
    """One reconnecting viewer: every part's arrival (monotonic) and
    X-Timestamp, every connection with the edge that served it, and every
    protocol error (a torn or non-JPEG part, a bad header)."""

    def __init__(self, index):
        self.index = index
        self.parts = []        # (arrival monotonic, X-Timestamp, connection index)
        self.conns = []        # dicts: edge, opened, first_part, closed
        self.errors = []
        self.samples = []      # a few whole JPEGs, decoded at the end

    def edge(self):
        """The edge of the current (last) connection, or None."""
        return self.conns[-1]["edge"] if self.conns else None


def served_edge(value):
    """The edge that answered, from X-Edge ($upstream_addr: every edge
    tried, the one that answered last)."""
    return value.split(",")[-1].strip() if value else None


async def watch(viewer, port, path):
    attempt = 0
    while True:
        conn = {"edge": None, "opened": time.monotonic(), "first_part": None, "closed": None}
        writer = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            if not head.startswith("HTTP/1.1 200"):
                raise ConnectionError(head.splitlines()[0])
            edge = re.search(r"(?im)^X-Edge:\s*(.+?)\s*$", head)
            boundary = re.search(r"boundary=([A-Za-z0-9]+)", head)
            if not boundary:
                viewer.errors.append("no boundary in %r" % head[:200])
                return
            conn["edge"] = served_edge(edge.group(1) if edge else None)
            viewer.conns.append(conn)
            delimiter = b"--" + boundary.group(1).encode()
            while True:
                try:
                    part_head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    break  # the end, or an edge that died: reconnect
                if delimiter not in part_head:
                    viewer.errors.append("part head without the boundary: %r" % part_head[:100])
                    return
                length = re.search(rb"(?i)Content-Length: (\d+)", part_head)
                stamp = re.search(rb"(?i)X-Timestamp: ([0-9.]+)", part_head)
                if not length or not stamp:
                    viewer.errors.append("part head without length or stamp: %r"
                                         % part_head[:200])
                    return
                try:
                    body = await reader.readexactly(int(length.group(1)))
                except asyncio.IncompleteReadError:
                    break  # cut by the edge's death: never counted as a part
                if body[:2] != b"\xff\xd8" or body[-2:] != b"\xff\xd9":
                    viewer.errors.append("part is not a whole JPEG: %r..%r"
                                         % (body[:4], body[-4:]))
                    return
                now = time.monotonic()
                if conn["first_part"] is None:
                    conn["first_part"] = now
                    if len(viewer.samples) < 2 and viewer.index % 10 == 0:
                        viewer.samples.append(body)
                viewer.parts.append((now, float(stamp.group(1)), len(viewer.conns) - 1))
                attempt = 0
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            conn["closed"] = time.monotonic()
            if writer:
                writer.close()
        await asyncio.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
        attempt += 1


class Audience:
    """VIEWERS viewers of /stream/NAME?fps=N through the balancer, on an
    asyncio loop in a thread of their own."""

    def __init__(self, port, path):
        self.viewers = [Viewer(i) for i in range(VIEWERS)]
        self.loop = asyncio.new_event_loop()
        self.tasks = []
        self.thread = threading.Thread(target=self._run, args=(port, path), daemon=True)

    def _run(self, port, path):
        asyncio.set_event_loop(self.loop)
        self.tasks = [self.loop.create_task(watch(v, port, path)) for v in self.viewers]
        self.loop.run_forever()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        def cancel():
            for t in self.tasks:
                t.cancel()
            self.loop.call_later(0.2, self.loop.stop)
        self.loop.call_soon_threadsafe(cancel)
        self.thread.join(10)

    def watching(self):
        """Viewers whose current connection has had a part."""
        return sum(1 for v in self.viewers
                   if v.conns and v.conns[-1]["first_part"] and not v.conns[-1]["closed"])


def get_json(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d/%s" % (port, path), timeout=5) as r:
        return json.loads(r.read())


def stream_entry(doc, name):
    for s in doc["streams"]:
        if s["name"] == name:
            return s
    return None


def run(*args, env=None, timeout=120):
    r = subprocess.run(list(args), cwd=TOP, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(args), r.stdout, r.stderr)
    return r


def kill_stack(run_dir):
    """kill -9 of a stack: its responder's and its nginx's process groups
    (run/PORT/*.pgid, "PGID STARTTIME")."""
    for role in ("responder", "server"):
        with open(os.path.join(run_dir, role + ".pgid")) as f:
            pgid = int(f.read().split()[0])
        os.killpg(pgid, signal.SIGKILL)


def port_answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def free_block(count):
    """COUNT consecutive free ports (the balancer's, then the origin's and
    the edges')."""
    for _ in range(50):
        first = free_port()
        socks = []
        try:
            for p in range(first, first + count):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no %d consecutive free ports" % count)


ORIGIN_CONFIG = """\
[stream %s]
source = pattern:bars
size = 320x240
fps = %d
""" % (STREAM, ORIGIN_FPS)


@pytest.fixture
def cluster(tmp_path):
    port = free_block(EDGES + 2)
    origin_ini = tmp_path / "origin.ini"
    origin_ini.write_text(ORIGIN_CONFIG)
    # the shipped edge config, with the stream list read every second
    # instead of every 10 s, so that the added stream shows up quickly
    edge_ini = tmp_path / "edge.ini"
    with open(os.path.join(TOP, "conf", "edge.ini.example")) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^refresh_s = \d+$", "refresh_s = 1", text)
    assert n == 1
    edge_ini.write_text(text)
    env = dict(os.environ, EDGE_CONFIG=str(edge_ini))
    if os.environ.get("RESPONDER"):
        env["BIN"] = os.environ["RESPONDER"]
    try:
        run("conf/cluster.sh", "start", str(port), str(EDGES), str(origin_ini), env=env)
        yield {"port": port, "origin": port + 1,
               "edges": [port + 2 + i for i in range(EDGES)],
               "origin_ini": origin_ini, "edge_ini": edge_ini, "env": env}
    finally:
        subprocess.run(["conf/cluster.sh", "stop", str(port)], cwd=TOP, capture_output=True,
                       timeout=120)


def test_cluster_under_load(cluster):
    port, origin, edges = cluster["port"], cluster["origin"], cluster["edges"]
    edge_config_before = cluster["edge_ini"].read_text()
    rendered_edge_ini = os.path.join(TOP, "run", str(port), "edge.ini")
    rendered_before = open(rendered_edge_ini).read()
    with time_limit(TEST_LIMIT_S):
        audience = Audience(port, "/stream/%s?fps=%d" % (STREAM, VIEWER_FPS)).start()
        try:
            phases(cluster, audience, rendered_edge_ini, rendered_before)
        finally:
            audience.stop()
    assert cluster["edge_ini"].read_text() == edge_config_before

    # Every part was a whole JPEG (checked as it came), a sample decodes,
    # and every viewer's frames came in publish order, over all of its
    # connections (the relays pass the origin's X-Timestamp on).
    errors = [(v.index, e) for v in audience.viewers for e in v.errors]
    assert not errors, errors[:10]
    samples = [s for v in audience.viewers for s in v.samples]
    assert samples
    for body in samples:
        decode_jpeg(body)
    for v in audience.viewers:
        stamps = [p[1] for p in v.parts]
        backwards = [(a, b) for a, b in zip(stamps, stamps[1:]) if b < a]
        assert not backwards, "viewer %d: frames out of order: %s" % (v.index, backwards[:3])


def phases(cluster, audience, rendered_edge_ini, rendered_before):
    port, origin, edges = cluster["port"], cluster["origin"], cluster["edges"]

    # --- 300 viewers, spread over the edges ------------------------------
    assert wait_until(lambda: audience.watching() == VIEWERS, CONNECT_DEADLINE_S, 0.5), \
        "%d of %d viewers have frames after %d s" % (audience.watching(), VIEWERS,
                                                     CONNECT_DEADLINE_S)
    per_edge = {}

    def counted():
        per_edge.clear()
        for e in edges:
            per_edge[e] = stream_entry(get_json(e, "status"), STREAM)["viewers"]
        return sum(per_edge.values()) == VIEWERS

    assert wait_until(counted, SETTLE_S, 0.2), per_edge
    even = VIEWERS / EDGES
    for e, n in per_edge.items():
        assert abs(n - even) <= SPREAD * even, "edge %d has %d viewers of %d: %s" % (
            e, n, VIEWERS, per_edge)

    # The balancer's /status is an edge's own: its port tells which.
    doc = get_json(port, "status")
    assert doc["server_port"] in edges and doc["pid"] > 0

    # The origin serves one connection per edge, whatever the viewers.
    def origin_viewers():
        return stream_entry(get_json(origin, "status"), STREAM)["viewers"]

    assert origin_viewers() == EDGES
    for e in edges:
        assert stream_entry(get_json(e, "status"), STREAM)["upstream"]["state"] == "connected"

    # --- kill -9 an edge under load ----------------------------------------
    victim = edges[0]
    victim_addr = "127.0.0.1:%d" % victim
    on_victim = [v for v in audience.viewers if v.edge() == victim_addr]
    others = [v for v in audience.viewers if v.edge() != victim_addr]
    assert on_victim and others
    killed_at = time.monotonic()
    kill_stack(os.path.join(TOP, "run", str(victim)))
    survivors = edges[1:]

    def reconnected():
        return all(any(c["first_part"] and c["opened"] > killed_at for c in v.conns)
                   for v in on_victim)

    assert wait_until(reconnected, SETTLE_S, 0.2), "%d of %d viewers of the dead edge " \
        "have frames again" % (sum(1 for v in on_victim if v.edge() != victim_addr),
                               len(on_victim))
    window_end = time.monotonic() + 2.0  # the others are watched for 2 s more
    time.sleep(max(0.0, window_end - time.monotonic()))
    late = []
    for v in on_victim:
        back = min(c["first_part"] for c in v.conns if c["first_part"] and c["opened"] > killed_at)
        if back - killed_at > RECONNECT_BOUND_S:
            late.append((v.index, round(back - killed_at, 2)))
        moved = [c["edge"] for c in v.conns if c["opened"] > killed_at]
        assert victim_addr not in moved, "viewer %d sent back to the dead edge" % v.index
    assert not late, "viewers of the dead edge waited over %g s: %s" % (RECONNECT_BOUND_S,
                                                                      late[:10])
    gaps = []
    for v in others:
        arrivals = [p[0] for p in v.parts if killed_at - GAP_BOUND_S <= p[0] <= window_end]
        arrivals.append(window_end)
        worst = max(b - a for a, b in zip(arrivals, arrivals[1:]))
        if worst > GAP_BOUND_S:
            gaps.append((v.index, round(worst, 2)))
    assert not gaps, "viewers of the other edges waited over %g s: %s" % (GAP_BOUND_S, gaps[:10])
    # the balancer keeps serving: every viewer is watching again
    assert wait_until(lambda: audience.watching() == VIEWERS, SETTLE_S, 0.2)

    # --- restart the origin under load -------------------------------------
    conns_before = sum(len(v.conns) for v in audience.viewers)
    run("conf/stack.sh", "stop", str(origin), env=cluster["env"])
    stopped_wall = time.time()
    back = {}

    def poll_back():
        while "at" not in back:
            if port_answers(origin):
                back["at"] = time.monotonic()
            time.sleep(0.02)

    poller = threading.Thread(target=poll_back, daemon=True)
    poller.start()
    run("conf/stack.sh", "start", str(origin), str(cluster["origin_ini"]), env=cluster["env"])
    poller.join(SETTLE_S)
    returned_at = back["at"]

    def resumed(v):
        fresh = [p[0] for p in v.parts if p[1] > stopped_wall]
        return fresh[0] if fresh else None

    assert wait_until(lambda: all(resumed(v) for v in audience.viewers), SETTLE_S, 0.2), \
        "%d of %d viewers have new frames after the origin's return" % (
            sum(1 for v in audience.viewers if resumed(v)), VIEWERS)
    slow = [(v.index, round(resumed(v) - returned_at, 2)) for v in audience.viewers
            if resumed(v) - returned_at > RESUME_BOUND_S]
    assert not slow, "frames resumed over %g s after the origin's return: %s" % (
        RESUME_BOUND_S, slow[:10])
    # the edges kept their viewers through it
    assert sum(len(v.conns) for v in audience.viewers) == conns_before
    assert wait_until(lambda: origin_viewers() == len(survivors), SETTLE_S, 0.2), \
        "the restarted origin has %d connections for %d edges" % (origin_viewers(),
                                                                  len(survivors))

    # --- a stream added at the origin appears at every edge -----------------
    with open(cluster["origin_ini"], "a") as f:
        f.write("\n[stream added]\nsource = pattern:bars\nsize = 160x120\nfps = 5\n")
    with open(os.path.join(TOP, "run", str(origin), "mjpeg-fcgi.pid")) as f:
        os.kill(int(f.read()), signal.SIGHUP)

    def listed_everywhere():
        return all(stream_entry(get_json(e, "status"), "added") for e in survivors)

    assert wait_until(listed_everywhere, SETTLE_S, 0.2), \
        "the added stream is not in every edge's /status"
    with urllib.request.urlopen("http://127.0.0.1:%d/snapshot/added" % port, timeout=10) as r:
        assert r.status == 200
        decode_jpeg(r.read())
    assert open(rendered_edge_ini).read() == rendered_before
    # and the viewers of the kept stream stayed through the reload
    assert sum(len(v.conns) for v in audience.viewers) == conns_before


def test_cluster_script_refuses_bad_arguments():
    """conf/cluster.sh names what is wrong and starts nothing."""
    for args, message in ((["start", "0", "3"], "PORT must be"),
                          (["start", "18000", "0"], "EDGES must be"),
                          (["start", "18000", "x"], "EDGES must be"),
                          (["start", "65534", "3"], "over 65535"),
                          (["frob", "18000"], "usage")):
        r = subprocess.run(["conf/cluster.sh"] + args, cwd=TOP, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode != 0 and message in r.stderr, (args, r.stderr)
    r = subprocess.run(["conf/cluster.sh", "stop", "18000"], cwd=TOP, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "no cluster on port 18000" in r.stdout, r
    # the balancer alone needs its edges
    port = free_port()
    for edges, message in (("", "BALANCER_EDGES must list"), ("8082 x", "'x' is not a port"),
                           ("70000", "'70000' is not a port")):
        env = dict(os.environ, SERVER="balancer", BALANCER_EDGES=edges)
        r = subprocess.run(["conf/stack.sh", "start", str(port)], cwd=TOP, env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and message in r.stderr, (edges, r.stderr)
        assert not port_answers(port)
