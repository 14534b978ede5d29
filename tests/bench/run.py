#!/usr/bin/python3
"""make bench: the MJPEG load benchmark, end to end (standard library only).

Builds the responder and the C tools (build/bench/), starts the real stack
(nginx + responder, `make start`), captures 60 of its 640x480 bars frames,
and runs the same scenarios against three servers:

  stack     nginx in front of mjpeg-fcgi (WORKERS=1, then WORKERS=2)
  fastapi   the seed's approach (FastAPI StreamingResponse + uvicorn, no proxy)
            serving the captured frames at 30 fps (baseline_fastapi.py)
  raw       one epoll thread writing the same bytes to every socket, nothing
            else (baseline_raw.c): the floor

Scenarios: idle CPU (no viewers), 1 viewer (memory base), 500 viewers (fps,
starvation, memory), 100 viewers (publish-to-arrival delay), a ramp
(the most viewers all held at >= 29 fps), encodes per published frame.

Encode time: encodebench (encodebench.c: the responder's own encode_frame()
on one 640x480 bars frame) against tjbench (libjpeg-turbo's benchmark) on the
same picture, quality, 4:2:0 subsampling and fast DCT, alternated and the
best of each taken; the responder's own mean encode time under load (from
/metrics) is reported beside them.  encodebench also times encode_validate()
(what every JPEG not encoded by the responder costs) and a full decode on the
JPEG it made: validation is reported as a ratio to the encode of the same
frame in the same run.

Server CPU per delivered frame = utime+stime (from /proc/PID/stat) of the
server's processes (responder and its children, nginx master and workers;
uvicorn; baseline_raw) over the client's measurement window, divided by the
parts the client received in that window. The client (loadclient) reports
its own CPU too, and the machine's busy share is sampled from /proc/stat:
a saturated client or a saturated machine is reported as such.

Prints a table (figure, value, target, met?, ratio to FastAPI, ratio to
raw) and writes build/bench/results.json.

Viewers per edge: an origin with 640x480 and 1280x720 bars at 30 fps and an
edge relaying all of its streams ([relay] origin = ...), 200 viewers of each
size on the origin, then on the edge: the edge's CPU per delivered frame
(responder and nginx), the viewers one core of an edge serves at 30 fps
from it, the bandwidth per viewer, as ratios to the origin's.

    /usr/bin/python3 tests/bench/run.py [--quick] [--no-workers2] [--perf]
        [--edges-only] [--port-base 21000] [--out build/bench/results.json]
"""

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(TOP, "build", "bench")
# The run works from a private copy of the tools, the frames and the client
# outputs (a `make clean` elsewhere cannot pull them away mid-run); the
# outputs are copied to build/bench/ at the end.
WORK = tempfile.mkdtemp(prefix="mjpeg-bench-")
FRAMES_DIR = os.path.join(WORK, "frames")
PYTHON = "/usr/bin/python3"

STREAM = "bars"          # 640x480, 30 fps: the built-in test stream
FPS = 30.0
FPS_TARGET = 29.0        # a viewer "keeps up" at this many new frames per second
CAPTURE_FRAMES = 60
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
IDLE_PAUSE_S = 5         # the responder's default idle_pause_s, set explicitly below
MAX_VIEWERS = 4000       # the responder's max_viewers for the bench (default 500)
# Ramp steps; each server runs the steps above its known pass and below its
# known failure, in order, and stops at the first failure.
RAMP_STEPS = [25, 50, 100, 200, 400, 500, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000,
              2400, 2800, 3200, 3600, 4000]
SETTLE_S = 1.0           # pause after a run before the next one starts
ENCODE_TARGET = 1.10     # encode_frame() may take at most 10% longer than tjbench
ENCODE_ROUNDS = 2        # encodebench and tjbench alternate; the best of each counts
ENCODE_WARMUP_S = 0.5    # untimed encoding before each timed window
TIME_BUDGET_S = 540      # make bench must end within 10 minutes, build included
RELAY_VIEWERS = 100      # viewers of the origin, then of the edge, in the relay runs
RELAY_ROUNDS = 2         # origin and edge alternate this many times
RELAY_WARMUP_S = 3.0     # the relay runs' client warm-up
RELAY_ADDED_P50_MS = 2.0 # a relay hop may add this much to the p50 delay on loopback
# Viewers per edge: an edge relaying every stream of an origin ([relay]),
# EDGE_VIEWERS viewers of each size on the origin, then on the edge.
EDGE_SIZES = (("bars", "640x480"), ("hd", "1280x720"))
EDGE_VIEWERS = 200


def say(msg):
    print(f"bench: {msg}", flush=True)


# --- processes and /proc ------------------------------------------------------

def children_of(pid):
    """Direct children of pid, from /proc/*/stat."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def with_children(pids):
    out = []
    for pid in pids:
        out.append(pid)
        out.extend(children_of(pid))
    return out


def cpu_seconds(pid):
    """utime + stime of a process (all its threads, live and exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_seconds(pid):
    """CPU time of a process's live threads, from schedstat (nanoseconds):
    finer than stat's clock ticks, but blind to threads that have exited."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def idle_cpu_pct(pids, seconds):
    """CPU of pids over seconds, in % of a core: the larger of the clock-tick
    figure (every thread, 10 ms steps) and the schedstat one (live threads,
    nanoseconds), so that neither a thread exiting nor the tick hides any."""
    t0 = time.monotonic()
    ticks0 = {pid: cpu_seconds(pid) for pid in pids}
    fine0 = {pid: thread_cpu_seconds(pid) for pid in pids}
    time.sleep(seconds)
    span = time.monotonic() - t0
    ticks = sum(cpu_seconds(pid) - ticks0[pid] for pid in pids)
    fine = sum(max(0.0, thread_cpu_seconds(pid) - fine0[pid]) for pid in pids)
    return 100.0 * max(ticks, fine) / span, span


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return 0


def nofile_limit(pid):
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError):
        pass
    return None


def machine_cpu():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Server:
    """Something under test: a name and how to find its processes."""

    def __init__(self, name, port, pids_fn, responder_pids_fn=None):
        self.name = name
        self.port = port
        self.pids_fn = pids_fn                    # every process of the server
        self.responder_pids_fn = responder_pids_fn or pids_fn

    def sample(self):
        pids = self.pids_fn()
        resp = self.responder_pids_fn()
        busy, total = machine_cpu()
        return {
            "t": time.monotonic(),
            "cpu": {pid: cpu_seconds(pid) for pid in pids},
            "responder_pids": resp,
            "rss": sum(rss_bytes(pid) for pid in resp),
            "machine_busy": busy,
            "machine_total": total,
        }


def cpu_delta(a, b, pids=None):
    keys = b["cpu"].keys() if pids is None else pids
    return sum(b["cpu"].get(pid, 0.0) - a["cpu"].get(pid, b["cpu"].get(pid, 0.0))
               for pid in keys)


# --- the client ---------------------------------------------------------------

def run_client(server, viewers, duration, warmup=15.0, path=f"/stream/{STREAM}",
               on_start=None, on_end=None):
    """Runs loadclient; samples the server at the window's start and end
    (and calls on_start and on_end there)."""
    out_path = os.path.join(WORK, "clients", f"{server.name}-{viewers}.json")
    cmd = [os.path.join(WORK, "loadclient"), "--port", str(server.port), "--viewers",
           str(viewers), "--duration", str(duration), "--warmup", str(warmup), "--path", path,
           "--fps-target", str(FPS)]
    samples = {}
    stderr_lines = []
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True)
        killer = threading.Timer(duration + warmup + 60, proc.kill)
        killer.start()
        try:
            for line in proc.stderr:
                if line.startswith("WINDOW START"):
                    samples["start"] = server.sample()
                    if on_start:
                        on_start()
                elif line.startswith("WINDOW END"):
                    samples["end"] = server.sample()
                    if on_end:
                        on_end()
                else:
                    stderr_lines.append(line.rstrip())
            proc.wait()
        finally:
            killer.cancel()
    if proc.returncode != 0 or "end" not in samples:
        raise RuntimeError(f"loadclient failed ({proc.returncode}): {' '.join(stderr_lines)}")
    with open(out_path) as f:
        result = json.load(f)
    a, b = samples["start"], samples["end"]
    window = b["t"] - a["t"]
    server_cpu = cpu_delta(a, b)
    result["server_cpu_s"] = server_cpu
    result["server_cpu_pct"] = 100.0 * server_cpu / window if window > 0 else 0.0
    result["responder_cpu_s"] = cpu_delta(a, b, b["responder_pids"])
    result["server_cpu_by_pid"] = {str(pid): b["cpu"][pid] - a["cpu"].get(pid, b["cpu"][pid])
                                   for pid in b["cpu"]}
    result["server_cpu_us_per_frame"] = (1e6 * server_cpu / result["parts"]
                                         if result["parts"] else None)
    result["responder_rss_bytes"] = b["rss"]
    total = b["machine_total"] - a["machine_total"]
    result["machine_busy_pct"] = (100.0 * (b["machine_busy"] - a["machine_busy"]) / total
                                  if total else 0.0)
    result["machine_cores"] = os.cpu_count()
    # what neither the server nor the client used: other work on the machine
    result["other_cpu_pct"] = max(0.0, result["machine_busy_pct"] * os.cpu_count()
                                  - result["server_cpu_pct"] - result["client_cpu_pct"])
    result["held"] = held(result)
    # the raw per-viewer rows stay in the client's own file
    result.pop("per_viewer", None)
    result["client_file"] = os.path.join("build", "bench", "clients",
                                         os.path.basename(out_path))
    time.sleep(SETTLE_S)  # the server lets the closed viewers go
    return result


def held(r):
    """Every viewer connected, none starved or failed, each >= FPS_TARGET."""
    return (r["viewers_with_frame"] == r["viewers"] and r["viewers_failed"] == 0
            and r["starved"] == 0 and r["fps"]["min"] >= FPS_TARGET)


def summary_line(name, r):
    return (f"{name}: {r['viewers']} viewers: fps min {r['fps']['min']:.2f} median "
            f"{r['fps']['median']:.2f}, starved {r['starved']}, failed {r['viewers_failed']}, "
            f"delay p50 {r['delay_ms']['p50']:.2f} p99 {r['delay_ms']['p99']:.2f} ms, "
            f"server {r['server_cpu_pct']:.0f}% ({fmt(r['server_cpu_us_per_frame'], 1)} us/frame), "
            f"client {r['client_cpu_pct']:.0f}%, other processes {r['other_cpu_pct']:.0f}% "
            f"(% of one core)")


def fmt(v, digits=2):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}f}"


# --- building -----------------------------------------------------------------

def build():
    say("building the responder and the bench tools (make all bench-tools)")
    # bench.mk builds the tools: encodebench links the responder's objects
    subprocess.run(["make", "-C", TOP, "--no-print-directory", "all", "bench-tools"],
                   check=True)
    os.makedirs(os.path.join(WORK, "clients"))
    for name in ("loadclient", "baseline_raw", "encodebench"):
        shutil.copy2(os.path.join(BUILD, name), os.path.join(WORK, name))


def free_port(start):
    for port in range(start, 22000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if os.path.exists(os.path.join(TOP, "run", str(port), "nginx.pid")) and \
           os.path.getsize(os.path.join(TOP, "run", str(port), "nginx.pid")) > 0:
            continue
        return port
    raise RuntimeError("no free port in 21000-21999")


def wait_port(port, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answers on port {port}")


# --- the stack ----------------------------------------------------------------

class Stack:
    def __init__(self, port, workers, config):
        self.port = port
        self.workers = workers
        self.config = config
        self.run_dir = os.path.join(TOP, "run", str(port))
        self.started = False

    def start(self):
        cmd = ["make", "-C", TOP, "--no-print-directory", "start", f"PORT={self.port}",
               f"CONFIG={self.config}"]
        if self.workers > 1:
            cmd.append(f"WORKERS={self.workers}")
        self.started = True
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        if self.workers > 1:  # the supervisor forks its workers just after start
            deadline = time.monotonic() + 5
            while len(children_of(self.responder_pid())) < self.workers and \
                    time.monotonic() < deadline:
                time.sleep(0.05)

    def stop(self):
        if self.started:
            subprocess.run(["make", "-C", TOP, "--no-print-directory", "stop",
                            f"PORT={self.port}"], stdout=subprocess.DEVNULL)
            self.started = False

    def pid_file(self, name):
        with open(os.path.join(self.run_dir, name)) as f:
            return int(f.read().strip())

    def responder_pid(self):
        return self.pid_file("mjpeg-fcgi.pid")

    def responder_pids(self):
        return with_children([self.responder_pid()])

    def nginx_pids(self):
        return with_children([self.pid_file("nginx.pid")])

    def server(self, name):
        return Server(name, self.port, lambda: self.responder_pids() + self.nginx_pids(),
                      self.responder_pids)

    def status(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=5) as r:
            doc = json.load(r)
        for s in doc["streams"]:
            if s["name"] == STREAM:
                s["t"] = time.monotonic()
                s["encode_seconds"], s["encode_count"] = self.encode_metrics()
                return s
        raise RuntimeError(f"/status has no stream {STREAM}")

    def encode_metrics(self):
        """mjpeg_encode_seconds_sum and _count of the stream, from one read of
        /metrics, so that they agree (None where missing)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        found = {}
        for key in ("sum", "count"):
            prefix = f'mjpeg_encode_seconds_{key}{{stream="{STREAM}"}} '
            for line in text.splitlines():
                if line.startswith(prefix):
                    found[key] = float(line[len(prefix):])
        return found.get("sum"), found.get("count")


def capture_frames(port):
    """The stack's own frames, for the baselines: CAPTURE_FRAMES parts."""
    shutil.rmtree(FRAMES_DIR, ignore_errors=True)
    os.makedirs(FRAMES_DIR)
    url = f"http://127.0.0.1:{port}/stream/{STREAM}?frames={CAPTURE_FRAMES}"
    with urllib.request.urlopen(url, timeout=20) as r:
        data = r.read()
    at, n, sizes = 0, 0, []
    while n < CAPTURE_FRAMES:
        end = data.find(b"\r\n\r\n", at)
        if end < 0:
            break
        length = None
        for line in data[at:end].split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length is None:
            break
        jpeg = data[end + 4:end + 4 + length]
        if jpeg[:2] != b"\xff\xd8" or jpeg[-2:] != b"\xff\xd9":
            raise RuntimeError("captured part is not a JPEG")
        with open(os.path.join(FRAMES_DIR, f"{n:04d}.jpg"), "wb") as f:
            f.write(jpeg)
        sizes.append(length)
        n += 1
        at = end + 4 + length
    if n < CAPTURE_FRAMES:
        raise RuntimeError(f"captured only {n} frames")
    return sizes


def encode_usec_mean(a, b):
    """The responder's own mean encode time between two /status samples, in
    microseconds (None when /metrics lacks it or nothing was encoded)."""
    if None in (a["encode_seconds"], b["encode_seconds"], a["encode_count"],
                b["encode_count"]) or b["encode_count"] == a["encode_count"]:
        return None
    return 1e6 * (b["encode_seconds"] - a["encode_seconds"]) / (
        b["encode_count"] - a["encode_count"])


# --- encode time against tjbench ----------------------------------------------

def parse_tjbench(text):
    """Picture size, JPEG bytes and compression throughput from tjbench's
    verbose output (libjpeg-turbo 2.1):

        Image size: 640 x 480
        Compress      --> Frame rate:         2607.715249 fps
                          Output image size:  15518 bytes
                          ...
                          Throughput:         801.090124 Megapixels/sec
    """
    out = {}
    compress = False
    for line in text.splitlines():
        words = line.split()
        if line.startswith("Image size:"):
            out["width"], out["height"] = int(words[2]), int(words[4])
        elif line.startswith("Compress"):
            compress = True
        elif line.startswith("Decomp") or line.startswith("Transform"):
            compress = False
        elif compress and "Output image size:" in line:
            out["jpeg_bytes"] = int(words[3])
        elif compress and "Throughput:" in line and words[-1] == "Megapixels/sec":
            out["mpixels_per_s"] = float(words[1])
    if len(out) != 4 or out["mpixels_per_s"] <= 0:
        raise ValueError(f"tjbench output not understood: {text!r}")
    # Megapixels per second to microseconds per picture
    out["encode_usec_mean"] = out["width"] * out["height"] / out["mpixels_per_s"]
    return out


def encode_bench(quality, seconds):
    """encodebench and tjbench on the same bars frame, quality, 4:2:0 and fast
    DCT, alternating ENCODE_ROUNDS times.  The best of each counts: other
    work on the machine can only slow a run down."""
    ppm = os.path.join(WORK, "bars.ppm")
    out = {"quality": quality, "seconds": seconds, "rounds": ENCODE_ROUNDS,
           "encodebench": [], "tjbench": []}
    tjbench = shutil.which("tjbench")
    if not tjbench:
        out["error"] = "tjbench not installed (Debian libjpeg-turbo-progs)"
        return out
    # -rgb: tjbench reads the PPM into RGB, the producer's pixel format
    tj_cmd = [tjbench, ppm, str(quality), "-rgb", "-subsamp", "420", "-fastdct",
              "-componly", "-nowrite", "-warmup", str(ENCODE_WARMUP_S),
              "-benchtime", str(seconds)]
    out["tjbench_command"] = " ".join(tj_cmd)
    try:
        for n in range(ENCODE_ROUNDS):
            cmd = [os.path.join(WORK, "encodebench"), "--quality", str(quality),
                   "--seconds", str(seconds), "--warmup", str(ENCODE_WARMUP_S)]
            if n == 0:  # the picture tjbench reads
                cmd += ["--ppm", ppm]
            r = subprocess.run(cmd, capture_output=True, text=True, check=True)
            out["encodebench"].append(json.loads(r.stdout))
            r = subprocess.run(tj_cmd, capture_output=True, text=True, check=True, cwd=WORK)
            out["tjbench"].append(parse_tjbench(r.stdout))
    except (subprocess.CalledProcessError, ValueError) as e:
        detail = getattr(e, "stderr", None) or ""
        out["error"] = f"{e} {detail}".strip()
        return out
    ours = min(r["encode_usec_mean"] for r in out["encodebench"])
    theirs = min(r["encode_usec_mean"] for r in out["tjbench"])
    out["encode_usec"] = ours
    out["tjbench_usec"] = theirs
    out["ratio"] = ours / theirs
    # validation against the encode of the same frame, best of each
    out["validate_usec"] = min(r["validate_usec_mean"] for r in out["encodebench"])
    out["decode_full_usec"] = min(r["decode_full_usec_mean"] for r in out["encodebench"])
    out["validate_ratio"] = out["validate_usec"] / ours
    # the same JPEG size says that both encoded the same picture the same way
    out["same_jpeg_bytes"] = (out["encodebench"][0]["jpeg_bytes"] ==
                              out["tjbench"][0]["jpeg_bytes"])
    return out


# --- scenarios ----------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        self.results = {}
        self.main_s = 4.0 if args.quick else 8.0    # window of the 100/500 runs
        self.step_s = 3.0 if args.quick else 5.0    # window of a ramp step
        self.idle_s = 3.0 if args.quick else 5.0

    def elapsed(self):
        return time.monotonic() - self.t0

    def left(self):
        return TIME_BUDGET_S - self.elapsed()

    def ramp(self, server, known, label, reserve_s, top=None):
        """Steps between what is known; stops at the first failure, a saturated
        client, the time budget (keeping reserve_s for what follows), or top."""
        passing = [n for n, r in known.items() if held(r)]
        failing = [n for n, r in known.items() if not held(r)]
        lo = max(passing, default=0)
        hi = min(failing, default=10**9)
        steps = {}
        stopped = "the last step"
        for n in RAMP_STEPS:
            if n <= lo or n >= hi:
                continue
            if top and n > top:
                stopped = f"the cap of {top} viewers"
                break
            # a step takes its window plus connect, warm-up and tear-down
            if self.left() - reserve_s < self.step_s + 4 + n / 500:
                stopped = "the time budget"
                break
            r = run_client(server, n, self.step_s)
            steps[n] = r
            say(summary_line(f"{label} ramp", r))
            if held(r):
                lo = n
                if r["client_saturated"]:
                    stopped = "a saturated client"
                    break
            else:
                hi = n
                stopped = "viewers falling behind"
                if r["client_saturated"]:
                    stopped = "a saturated client (not the server)"
                break
        all_steps = {**known, **steps}
        return {
            "max_viewers_held": lo,
            "first_failing": hi if hi < 10**9 else None,
            "stopped_by": stopped,
            "steps": {str(n): {"viewers": n, "held": held(r), "fps_min": r["fps"]["min"],
                               "fps_median": r["fps"]["median"], "starved": r["starved"],
                               "failed": r["viewers_failed"],
                               "client_cpu_pct": r["client_cpu_pct"],
                               "client_saturated": r["client_saturated"],
                               "server_cpu_pct": r["server_cpu_pct"],
                               "machine_busy_pct": r["machine_busy_pct"],
                               "server_cpu_us_per_frame": r["server_cpu_us_per_frame"]}
                      for n, r in sorted(all_steps.items())},
            "step_results": {str(n): r for n, r in steps.items()},
        }

    def stack_run(self, port, workers, config, full, reserve_s):
        label = f"stack(workers={workers})"
        stack = Stack(port, workers, config)
        out = {"workers": workers, "port": port}
        try:
            stack.start()
            server = stack.server(label)
            for pid in [stack.responder_pid()] + stack.nginx_pids()[1:]:
                out.setdefault("nofile_limits", {})[str(pid)] = nofile_limit(pid)
            status0 = stack.status()
            if full:
                # fresh: no viewer has ever asked, the producer has not started
                out["idle_fresh_cpu_pct"], _ = idle_cpu_pct(stack.responder_pids(),
                                                             self.idle_s / 2)
                out["frame_sizes"] = capture_frames(port)
            # the memory base: one viewer, the producer and encoder running
            out["one"] = run_client(server, 1, 2.0)
            out["rss_one"] = out["one"]["responder_rss_bytes"]
            s1 = stack.status()
            out["v500"] = run_client(server, 500, self.main_s)
            say(summary_line(label, out["v500"]))
            s2 = stack.status()
            out["v100"] = run_client(server, 100, self.main_s)
            say(summary_line(label, out["v100"]))
            s3 = stack.status()
            # The baselines encode nothing: the stack's CPU per frame without
            # its encodes, from the encode time /metrics counts.
            for key, a, b in (("v100", s2, s3), ("v500", s1, s2)):
                r = out[key]
                if a["encode_seconds"] is not None and b["encode_seconds"] is not None and \
                        r["parts"]:
                    per_s = (b["encode_seconds"] - a["encode_seconds"]) / (b["t"] - a["t"])
                    r["encode_cpu_pct"] = 100 * per_s
                    r["server_cpu_us_per_frame_without_encode"] = (
                        r["server_cpu_us_per_frame"] - 1e6 * per_s * r["window_s"] / r["parts"])
            out["encode_windows"] = {
                "v500": {"published": s2["frames_published"] - s1["frames_published"],
                         "encoded": s2["frames_encoded"] - s1["frames_encoded"],
                         "seconds": s2["t"] - s1["t"],
                         "encode_usec_mean": encode_usec_mean(s1, s2)},
                "v100": {"published": s3["frames_published"] - s2["frames_published"],
                         "encoded": s3["frames_encoded"] - s2["frames_encoded"],
                         "seconds": s3["t"] - s2["t"],
                         "encode_usec_mean": encode_usec_mean(s2, s3)},
            }
            if self.args.perf and full:
                out["perf"] = self.perf_profile(stack, server)
            limit = min(MAX_VIEWERS * workers,
                        (nofile_limit(stack.responder_pid()) or 10**6) * workers - 64)
            out["ramp"] = self.ramp(server, {100: out["v100"], 500: out["v500"]}, label,
                                    reserve_s, top=limit)
            s4 = stack.status()
            out["encode_windows"]["ramp"] = {
                "published": s4["frames_published"] - s3["frames_published"],
                "encoded": s4["frames_encoded"] - s3["frames_encoded"],
                "seconds": s4["t"] - s3["t"]}
            if full:
                # idle after viewers: once the producer has paused
                time.sleep(IDLE_PAUSE_S + 1.5)
                resp = stack.responder_pids()
                out["idle_cpu_pct"], out["idle_s"] = idle_cpu_pct(resp, self.idle_s)
                out["idle_nginx_cpu_pct"], _ = idle_cpu_pct(stack.nginx_pids(), 1.0)
            s5 = stack.status()
            out["status_start"] = status0
            out["status_end"] = s5
            out["encoded_total"] = s5["frames_encoded"] - status0["frames_encoded"]
            out["published_total"] = s5["frames_published"] - status0["frames_published"]
        finally:
            stack.stop()
        return out

    def perf_profile(self, stack, server):
        """perf record (all CPUs) over the window of a 500-viewer run: where the
        stack's time goes, by process, library and symbol."""
        if not shutil.which("perf"):
            return {"error": "perf not installed (Debian linux-perf)"}
        data = os.path.join(WORK, "perf.data")
        rec = {}

        def start():
            rec["proc"] = subprocess.Popen(
                ["perf", "record", "-a", "-g", "-F", "499", "-o", data],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            rec["proc"].send_signal(signal.SIGINT)
            rec["proc"].wait(timeout=30)

        try:
            r = run_client(server, 500, self.step_s, on_start=start, on_end=stop)
        finally:
            if "proc" in rec and rec["proc"].poll() is None:
                rec["proc"].kill()
                rec["proc"].wait()
        out = {"server_cpu_us_per_frame": r["server_cpu_us_per_frame"]}
        for key, extra in (("by_process", ["--sort", "comm,dso"]),
                           ("top", ["--sort", "comm,dso,sym", "--comms", "mjpeg-fcgi,nginx",
                                    "--percentage", "relative"])):
            rep = subprocess.run(
                ["perf", "report", "-i", data, "--stdio", "--no-children", *extra,
                 "-g", "none", "--percent-limit", "0.7"], capture_output=True, text=True)
            out[key] = [ln.strip() for ln in rep.stdout.splitlines()
                        if ln.strip() and not ln.startswith("#")][:30]
        return out

    def relay_run(self, port_origin, port_edge, config):
        """An origin stack and an edge stack whose bars stream relays the
        origin's (source = http://...): 100 viewers on the origin, then 100 on
        the edge, RELAY_ROUNDS times.  The edge passes the origin's
        X-Timestamp on, so its viewers' delay is from the origin's publish:
        the difference of the two p50s is what the relay hop adds.  CPU per
        delivered frame of each stack's own processes, side by side."""
        origin = Stack(port_origin, 1, config)
        edge_config = os.path.join(WORK, "edge.ini")
        with open(edge_config, "w") as f:
            f.write(open(config).read() +
                    f"[stream {STREAM}]\nsource = http://127.0.0.1:{port_origin}/stream/{STREAM}\n")
        edge = Stack(port_edge, 1, edge_config)
        out = {"origin": [], "edge": []}
        try:
            origin.start()
            edge.start()
            servers = {"origin": origin.server("origin"), "edge": edge.server("edge(relay)")}
            for _ in range(RELAY_ROUNDS):
                for name in ("origin", "edge"):
                    r = run_client(servers[name], RELAY_VIEWERS, self.main_s,
                                   warmup=RELAY_WARMUP_S)
                    say(summary_line(f"relay: {name}", r))
                    out[name].append(r)
            out["edge_upstream"] = edge.status().get("upstream")
        finally:
            edge.stop()
            origin.stop()
        return out

    def edges_run(self, port_origin, port_edge, config):
        """Viewers per edge: an origin with a stream of each EDGE_SIZES and an
        edge that relays all of the origin's streams ([relay] origin = ...);
        EDGE_VIEWERS viewers of each size on the origin, then on the edge.
        The edge passes frames on without encoding, so its CPU per frame is
        what sizes it; the origin's in the same run is the baseline."""
        base = open(config).read()
        origin_config = os.path.join(WORK, "origin-sizes.ini")
        with open(origin_config, "w") as f:
            f.write(base + "".join(f"[stream {name}]\nsource = pattern:bars\nsize = {size}\n"
                                   f"fps = {FPS:g}\n" for name, size in EDGE_SIZES))
        edge_config = os.path.join(WORK, "edge-relay.ini")
        with open(edge_config, "w") as f:
            f.write(base + f"[relay]\norigin = http://127.0.0.1:{port_origin}\n")
        origin = Stack(port_origin, 1, origin_config)
        edge = Stack(port_edge, 1, edge_config)
        out = {}
        try:
            origin.start()
            edge.start()
            servers = {"origin": origin.server("origin"), "edge": edge.server("edge")}
            for name, size in EDGE_SIZES:
                out[name] = {"size": size}
                for side in ("origin", "edge"):
                    # a ramp step's window: CPU per frame settles within it
                    r = run_client(servers[side], EDGE_VIEWERS, self.step_s,
                                   warmup=RELAY_WARMUP_S, path=f"/stream/{name}")
                    say(summary_line(f"edges: {size} {side}", r))
                    out[name][side] = r
        finally:
            edge.stop()
            origin.stop()
        return out

    def fastapi_run(self, port, reserve_s, top):
        # no __pycache__ left in tests/bench
        env = dict(os.environ, BENCH_FRAMES_DIR=FRAMES_DIR, BENCH_FPS=str(FPS),
                   PYTHONDONTWRITEBYTECODE="1")
        return self.baseline_run(
            "fastapi", port, reserve_s, top,
            [PYTHON, "-m", "uvicorn", "baseline_fastapi:app", "--app-dir", HERE, "--host",
             "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
             "--backlog", "4096"], env)

    def raw_run(self, port, reserve_s, top):
        return self.baseline_run(
            "raw", port, reserve_s, top,
            [os.path.join(WORK, "baseline_raw"), "--port", str(port), "--frames", FRAMES_DIR,
             "--fps", str(FPS)])

    def baseline_run(self, name, port, reserve_s, top, cmd, env=None):
        """The baseline server CMD, listening on PORT (its log WORK/NAME.log),
        through baseline_scenarios; terminated at the end (killed if it has
        not exited 10 s later)."""
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(WORK, name + ".log"), "w"))
        out = {"port": port}
        try:
            wait_port(port)
            server = Server(name, port, lambda: [proc.pid])
            out.update(self.baseline_scenarios(server, reserve_s, top))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return out

    def baseline_scenarios(self, server, reserve_s, top):
        out = {}
        out["one"] = run_client(server, 1, 2.0)
        out["rss_one"] = out["one"]["responder_rss_bytes"]
        out["v500"] = run_client(server, 500, self.main_s)
        say(summary_line(server.name, out["v500"]))
        out["v100"] = run_client(server, 100, self.main_s)
        say(summary_line(server.name, out["v100"]))
        out["idle_cpu_pct"], _ = idle_cpu_pct(server.pids_fn(), self.idle_s / 2)
        out["ramp"] = self.ramp(server, {100: out["v100"], 500: out["v500"]}, server.name,
                                reserve_s, top=top)
        return out


# --- the table ----------------------------------------------------------------

def derive_viewers(f, r, v, n):
    """Into F, the figures every run of N viewers has (V: its results, R:
    the server's run)."""
    f["fps_min_%d" % n] = v["fps"]["min"]
    for what in ("gap", "delay"):
        for q in ("p50", "p99", "max"):
            f["%s_%s_%d" % (what, q, n)] = v[what + "_ms"][q]
    for q in ("p50", "max"):
        f["ttff_%s_%d" % (q, n)] = v["ttff_ms"][q]
    f["cpu_frame_%d" % n] = v["server_cpu_us_per_frame"]
    # the baselines encode nothing: their figure is the same
    f["cpu_frame_noenc_%d" % n] = v.get("server_cpu_us_per_frame_without_encode",
                                        None if "encode_windows" in r else
                                        v["server_cpu_us_per_frame"])
    f["server_cpu_%d" % n] = v["server_cpu_pct"]
    f["client_cpu_%d" % n] = v["client_cpu_pct"]


def derive(r):
    """The figures of one server's run, by name (None where not measured)."""
    v100, v500 = r.get("v100"), r.get("v500")
    f = {}
    if v500:
        derive_viewers(f, r, v500, 500)
        f["fps_median_500"] = v500["fps"]["median"]
        f["starved_500"] = v500["starved"]
        if v500["server_cpu_s"]:
            f["responder_share_500"] = 100 * v500["responder_cpu_s"] / v500["server_cpu_s"]
        f["machine_500"] = v500["machine_busy_pct"]
        f["other_500"] = v500["other_cpu_pct"]
    if v100:
        derive_viewers(f, r, v100, 100)
    if "ramp" in r:
        f["max_viewers"] = r["ramp"]["max_viewers_held"]
    if v500 and "rss_one" in r:
        f["rss_one_mib"] = r["rss_one"] / 2**20
        f["rss_500_mib"] = v500["responder_rss_bytes"] / 2**20
        growth = (v500["responder_rss_bytes"] - r["rss_one"]) / 499 / 1024
        # Viewers hold no frame buffer of their own (a writer thread
        # keeps one copy of each frame for all its viewers), so the whole
        # growth counts against the target.
        f["rss_growth_kib"] = growth
    if "idle_cpu_pct" in r:
        f["idle_cpu"] = r["idle_cpu_pct"]
    if "published_total" in r:
        f["encodes_per_frame"] = (r["encoded_total"] / r["published_total"]
                                  if r["published_total"] else None)
        f["encodes_exact"] = r["encoded_total"] == r["published_total"] and all(
            w["encoded"] == w["published"] for w in r["encode_windows"].values())
        w = r["encode_windows"]["v500"]
        f["published_fps_500"] = w["published"] / w["seconds"]
        f["encode_load_us_500"] = w.get("encode_usec_mean")
    return f


# (key, label, unit, target text, check(value, FastAPI's figures) -> bool or
# None, whether ratios to the baselines mean anything for this figure)
ROWS = [
    ("fps_min_500", "500 viewers: fps per viewer, min", "fps", ">= 29",
     lambda v, fa: v >= FPS_TARGET, True),
    ("fps_median_500", "500 viewers: fps per viewer, median", "fps", ">= 29",
     lambda v, fa: v >= FPS_TARGET, True),
    ("starved_500", "500 viewers: viewers starved", "", "0", lambda v, fa: v == 0, False),
    ("gap_p50_500", "500 viewers: gap between frames p50", "ms", "", None, True),
    ("gap_p99_500", "500 viewers: gap between frames p99", "ms", "", None, True),
    ("gap_max_500", "500 viewers: gap between frames max", "ms", "", None, True),
    ("delay_p50_500", "500 viewers: publish-to-arrival p50", "ms", "", None, True),
    ("delay_p99_500", "500 viewers: publish-to-arrival p99", "ms", "", None, True),
    ("delay_max_500", "500 viewers: publish-to-arrival max", "ms", "", None, True),
    ("ttff_p50_500", "500 viewers: time to first frame p50", "ms", "", None, True),
    ("ttff_max_500", "500 viewers: time to first frame max", "ms", "", None, True),
    ("delay_p50_100", "100 viewers: publish-to-arrival p50", "ms", "< 2",
     lambda v, fa: v < 2, True),
    ("delay_p99_100", "100 viewers: publish-to-arrival p99", "ms", "< 10",
     lambda v, fa: v < 10, True),
    ("delay_max_100", "100 viewers: publish-to-arrival max", "ms", "", None, True),
    ("gap_p50_100", "100 viewers: gap between frames p50", "ms", "", None, True),
    ("gap_p99_100", "100 viewers: gap between frames p99", "ms", "", None, True),
    ("gap_max_100", "100 viewers: gap between frames max", "ms", "", None, True),
    ("ttff_p50_100", "100 viewers: time to first frame p50", "ms", "", None, True),
    ("ttff_max_100", "100 viewers: time to first frame max", "ms", "", None, True),
    ("cpu_frame_100", "100 viewers: server CPU per delivered frame", "us", "<= FastAPI's",
     lambda v, fa: fa.get("cpu_frame_100") is not None and v <= fa["cpu_frame_100"], True),
    ("cpu_frame_500", "500 viewers: server CPU per delivered frame", "us", "<= FastAPI's",
     lambda v, fa: fa.get("cpu_frame_500") is not None and v <= fa["cpu_frame_500"], True),
    ("cpu_frame_noenc_100", "  100 viewers: the same without the JPEG encodes", "us", "", None,
     True),
    ("cpu_frame_noenc_500", "  500 viewers: the same without the JPEG encodes", "us", "", None,
     True),
    ("server_cpu_500", "500 viewers: server CPU (nginx + responder)", "% core", "", None, True),
    ("responder_share_500", "  of which the responder", "%", "", None, False),
    ("client_cpu_500", "500 viewers: client CPU (loadclient)", "% core", "< 90 (not saturated)",
     lambda v, fa: v < 90, True),
    ("machine_500", "500 viewers: machine busy (all cores)", "%", "", None, False),
    ("other_500", "500 viewers: other processes' CPU (noise)", "% core", "", None, False),
    ("max_viewers", "most viewers all at >= 29 fps (ramp)", "viewers", ">= 2x FastAPI's",
     lambda v, fa: fa.get("max_viewers") is not None and v >= 2 * fa["max_viewers"], True),
    ("encodes_per_frame", "encodes per published frame (/status)", "", "exactly 1",
     lambda v, fa: None, False),  # checked with encodes_exact in print_table
    ("published_fps_500", "500 viewers: frames published per second", "fps", "", None, False),
    ("encode_ratio", "JPEG encode time / tjbench's (same frame and settings)", "",
     f"<= {ENCODE_TARGET:.2f}", lambda v, fa: v <= ENCODE_TARGET, False),
    ("encode_us", "  encode_frame(), one bars frame (encodebench)", "us", "", None, False),
    ("encode_tjbench_us", "  tjbench, the same frame, quality, 4:2:0, fast DCT", "us", "",
     None, False),
    ("encode_load_us_500", "500 viewers: the responder's mean encode (/metrics)", "us", "",
     None, False),
    ("validate_ratio", "JPEG validation time / encode time (same frame, same run)", "", "",
     None, False),
    ("validate_us", "  encode_validate(): a 1/8-scale decode checking every scan", "us", "",
     None, False),
    ("decode_full_us", "  a full RGB decode of the same JPEG, for comparison", "us", "", None,
     False),
    ("rss_one_mib", "responder RSS, 1 viewer", "MiB", "", None, True),
    ("rss_500_mib", "responder RSS, 500 viewers", "MiB", "", None, True),
    ("rss_growth_kib", "responder RSS growth per viewer (no frame buffer of its own)", "KiB",
     "< 64", lambda v, fa: v < 64, True),
    ("idle_cpu", "no viewers: responder + producer CPU", "% core", "< 0.5",
     lambda v, fa: v < 0.5, False),
]


def ratio(v, base):
    if v is None or base is None or isinstance(v, bool):
        return "-"
    if base == 0:
        return "-" if v != 0 else "1.00"
    return f"{v / base:.2f}"


def print_table(title, figs, fa, raw, prefix=""):
    rows = []
    missed = []
    for key, label, unit, target, check, ratios in ROWS:
        if key not in figs or figs[key] is None:
            continue
        v = figs[key]
        if key == "encodes_per_frame":
            met = figs.get("encodes_exact")
        else:
            met = check(v, fa) if check else None
        if met is False:
            missed.append(prefix + label.strip())
        digits = 3 if key == "encodes_per_frame" else (0 if unit == "viewers" else 2)
        value = fmt(v, digits) + (f" {unit}" if unit else "")
        rows.append((prefix + label, value, target,
                     "-" if met is None else ("yes" if met else "NO"),
                     ratio(v, fa.get(key)) if ratios else "",
                     ratio(v, raw.get(key)) if ratios else ""))
    head = ("figure", "value", "target", "met?", "x FastAPI", "x raw")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(6)]
    line = "  ".join("-" * w for w in widths)
    print()
    print(title)
    print(line)
    print("  ".join(str(h).ljust(w) for h, w in zip(head, widths)).rstrip())
    print(line)
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    print(line)
    return missed


def print_relay(relay):
    """The relay hop's figures: the median over the rounds of each side's
    delay p50 and CPU per frame, and their difference and ratio."""
    def median(values):
        values = sorted(v for v in values if v is not None)
        return values[len(values) // 2] if values else None

    fig = {}
    for name in ("origin", "edge"):
        runs = relay[name]
        fig[name] = {"delay_p50": median(r["delay_ms"]["p50"] for r in runs),
                     "delay_p99": median(r["delay_ms"]["p99"] for r in runs),
                     "cpu_frame": median(r["server_cpu_us_per_frame"] for r in runs),
                     "fps_min": min(r["fps"]["min"] for r in runs)}
    o, e = fig["origin"], fig["edge"]
    added = e["delay_p50"] - o["delay_p50"] if None not in (e["delay_p50"], o["delay_p50"]) \
        else None
    cpu_ratio = e["cpu_frame"] / o["cpu_frame"] if o["cpu_frame"] and e["cpu_frame"] else None
    relay["figures"] = {"origin": o, "edge": e, "added_delay_p50_ms": added,
                        "edge_cpu_frame_ratio": cpu_ratio}
    print()
    print(f"relay hop: {RELAY_VIEWERS} viewers of the origin, then of an edge relaying it "
          f"(http: source), {RELAY_ROUNDS} rounds each, medians; delay from the origin's "
          "publish")
    for name, f in (("origin", o), ("edge", e)):
        print(f"  {name:7s} delay p50 {fmt(f['delay_p50'])} ms, p99 {fmt(f['delay_p99'])} ms, "
              f"server CPU {fmt(f['cpu_frame'], 1)} us per delivered frame, fps min "
              f"{fmt(f['fps_min'])}")
    met = added is not None and added <= RELAY_ADDED_P50_MS
    print(f"  added by the hop: delay p50 {fmt(added)} ms (target <= {RELAY_ADDED_P50_MS:g} ms: "
          f"{'yes' if met else 'NO'}), CPU per frame x{fmt(cpu_ratio)} of the origin's")
    return [] if met else ["relay hop delay p50"]


def print_edges(edges):
    """Viewers per edge, per size: the edge's CPU per delivered frame, the
    viewers one core serves at FPS from it, the bandwidth per viewer; the
    origin's CPU per frame in the same run is the baseline."""
    print()
    print(f"viewers per edge: an edge relaying all of an origin's streams ([relay]), "
          f"{EDGE_VIEWERS} viewers at {FPS:g} fps, then the same on the origin; "
          "per core: 1 s of CPU / (CPU per frame x fps)")
    print(f"  {'size':9s} {'JPEG':>9s} {'per viewer':>11s} {'edge CPU/frame':>15s} "
          f"{'viewers/core':>13s} {'fps min':>8s} {'x origin':>9s}")
    figures = {}
    for name, size in EDGE_SIZES:
        if name not in edges:
            continue
        o, e = edges[name]["origin"], edges[name]["edge"]
        cpu = e["server_cpu_us_per_frame"]
        per_core = 1e6 / (cpu * FPS) if cpu else None
        mbit = e["mean_part_bytes"] * FPS * 8 / 1e6
        ratio = cpu / o["server_cpu_us_per_frame"] if cpu and o["server_cpu_us_per_frame"] \
            else None
        figures[name] = {"size": size, "mean_part_bytes": e["mean_part_bytes"],
                         "mbit_per_viewer": mbit, "edge_cpu_us_per_frame": cpu,
                         "origin_cpu_us_per_frame": o["server_cpu_us_per_frame"],
                         "viewers_per_core": per_core, "edge_fps_min": e["fps"]["min"],
                         "edge_cpu_ratio_to_origin": ratio,
                         "edge_delay_p50_ms": e["delay_ms"]["p50"],
                         "origin_delay_p50_ms": o["delay_ms"]["p50"]}
        print(f"  {size:9s} {e['mean_part_bytes'] / 1024:7.1f} KiB {mbit:6.1f} Mbit/s "
              f"{fmt(cpu, 1):>12s} us {fmt(per_core and round(per_core)):>13s} "
              f"{fmt(e['fps']['min']):>8s} {fmt(ratio):>9s}")
    edges["figures"] = figures


def print_baselines(fa, raw):
    keys = [("fps_min_500", "fps"), ("delay_p50_100", "ms"), ("delay_p99_100", "ms"),
            ("cpu_frame_100", "us"), ("cpu_frame_500", "us"), ("max_viewers", "viewers"),
            ("rss_one_mib", "MiB"), ("rss_500_mib", "MiB"), ("idle_cpu", "% core")]
    print()
    print("baselines (same client, same frames, no proxy)")
    for key, unit in keys:
        print(f"  {key:16s} FastAPI {fmt(fa.get(key)):>10s}   raw {fmt(raw.get(key)):>10s}  {unit}")


def versions():
    out = {}
    try:
        r = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
        out["nginx"] = r.stderr.strip().split("/")[-1]
    except OSError:
        pass
    r = subprocess.run([PYTHON, "-c", "import fastapi, uvicorn, sys; "
                        "print(fastapi.__version__, uvicorn.__version__, sys.version.split()[0])"],
                       capture_output=True, text=True)
    if r.returncode == 0:
        out["fastapi"], out["uvicorn"], out["python"] = r.stdout.split()
    return out


def save(results, out):
    """results.json, the client outputs and the logs, into build/bench/."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    clients = os.path.join(BUILD, "clients")
    os.makedirs(clients, exist_ok=True)
    for name in os.listdir(os.path.join(WORK, "clients")) if os.path.isdir(
            os.path.join(WORK, "clients")) else []:
        shutil.copy2(os.path.join(WORK, "clients", name), os.path.join(clients, name))
    for name in ("fastapi.log", "raw.log"):
        if os.path.exists(os.path.join(WORK, name)):
            shutil.copy2(os.path.join(WORK, name), os.path.join(BUILD, name))


# --- main ---------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter windows (a smoke run)")
    ap.add_argument("--no-workers2", action="store_true", help="skip the WORKERS=2 stack")
    ap.add_argument("--perf", action="store_true",
                    help="perf record the stack during a 500-viewer run")
    ap.add_argument("--edges-only", action="store_true",
                    help="only the relay hop and viewers per edge (for sizing a cluster)")
    ap.add_argument("--port-base", type=int, default=21000)
    ap.add_argument("--out", default=os.path.join(BUILD, "results.json"))
    args = ap.parse_args()

    # every viewer is a descriptor here, in the baselines, and in the stack
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    top = nofile - 64 if nofile != resource.RLIM_INFINITY else None

    bench = Bench(args)
    build()
    config = os.path.join(WORK, "bench.ini")
    with open(config, "w") as f:
        f.write("# written by tests/bench/run.py: the defaults, but room for the ramp\n"
                "[server]\n"
                f"max_viewers = {MAX_VIEWERS}\n"
                f"idle_pause_s = {IDLE_PAUSE_S}\n")

    meta = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cores": os.cpu_count(), "kernel": platform.release(),
                    "python": platform.python_version()},
        "client_nofile": nofile,
        "stream": STREAM, "fps": FPS, "fps_target": FPS_TARGET,
        "windows_s": {"main": bench.main_s, "ramp_step": bench.step_s, "idle": bench.idle_s},
        "config": open(config).read(),
    }
    # Other work on the machine shows in every figure: measure it first.
    a = machine_cpu()
    time.sleep(1.0)
    b = machine_cpu()
    meta["machine_busy_before_pct"] = 100.0 * (b[0] - a[0]) / max(1, b[1] - a[1])
    if meta["machine_busy_before_pct"] > 10:
        say(f"warning: the machine is {meta['machine_busy_before_pct']:.0f}% busy before the "
            "bench starts; other work will skew the figures")
    meta["versions"] = versions()
    results = {"meta": meta}
    port = args.port_base
    if args.edges_only:
        try:
            port = free_port(port)
            edge_port = free_port(port + 1)
            results["relay"] = bench.relay_run(port, edge_port, config)
            port = free_port(edge_port + 1)
            edge_port = free_port(port + 1)
            results["edges"] = bench.edges_run(port, edge_port, config)
        finally:
            results["elapsed_s"] = bench.elapsed()
            save(results, args.out)
        print_relay(results["relay"])
        print_edges(results["edges"])
        save(results, args.out)
        return 0
    try:
        port = free_port(port)
        say(f"stack (nginx + responder, WORKERS=1) on port {port}")
        encode_s = 1.0 if args.quick else 2.0
        encode_cost_s = ENCODE_ROUNDS * 2 * (encode_s + ENCODE_WARMUP_S + 0.3)
        stack1 = bench.stack_run(port, 1, config, full=True, reserve_s=200 + encode_cost_s)
        results["stack"] = stack1
        frame_bytes = sum(stack1["frame_sizes"]) / len(stack1["frame_sizes"])
        meta["mean_frame_bytes"] = frame_bytes

        # the quality the stack's bars stream encodes at (its /status)
        quality = stack1["status_start"]["quality"]
        say(f"encode time: encodebench against tjbench (quality {quality}, "
            f"{ENCODE_ROUNDS} x {encode_s:g} s each)")
        results["encode"] = enc = encode_bench(quality, encode_s)
        if "error" in enc:
            say(f"encode time: {enc['error']}")
        else:
            say(f"encode time: encode_frame() {enc['encode_usec']:.1f} us, tjbench "
                f"{enc['tjbench_usec']:.1f} us per frame (best of {ENCODE_ROUNDS}), ratio "
                f"{enc['ratio']:.3f}")
            say(f"validation: encode_validate() {enc['validate_usec']:.1f} us per frame, "
                f"{enc['validate_ratio']:.2f} x the encode (a full decode: "
                f"{enc['decode_full_usec']:.1f} us)")
            if not enc["same_jpeg_bytes"]:
                say("encode time: warning: the two JPEGs differ in size: not the same "
                    "picture or settings")
            status = stack1["status_start"]
            ours = enc["encodebench"][0]
            if (status["width"], status["height"]) != (ours["width"], ours["height"]):
                say(f"encode time: warning: encodebench encodes {ours['width']}x"
                    f"{ours['height']}, the stack's {STREAM} stream is {status['width']}x"
                    f"{status['height']}")

        port = free_port(port + 1)
        say(f"FastAPI baseline (uvicorn, no proxy) on port {port}")
        results["fastapi"] = bench.fastapi_run(port, reserve_s=110, top=top)

        port = free_port(port + 1)
        say(f"raw baseline (one epoll thread, no proxy) on port {port}")
        # the floor needs no ramp beyond the stack's and FastAPI's results
        raw_top = max(stack1["ramp"]["max_viewers_held"],
                      results["fastapi"]["ramp"]["max_viewers_held"])
        raw_top = min(raw_top + 400, top) if top else raw_top + 400
        results["raw"] = bench.raw_run(port, reserve_s=80, top=raw_top)

        if bench.left() > 60 + RELAY_ROUNDS * 2 * (bench.main_s + RELAY_WARMUP_S + 3):
            port = free_port(port + 1)
            edge_port = free_port(port + 1)
            say(f"relay: origin stack on port {port}, edge stack relaying it on {edge_port}")
            results["relay"] = bench.relay_run(port, edge_port, config)
            port = edge_port
        else:
            say("relay runs skipped: not enough of the time budget left")

        if bench.left() > 20 + len(EDGE_SIZES) * 2 * (bench.step_s + RELAY_WARMUP_S + 3):
            port = free_port(port + 1)
            edge_port = free_port(port + 1)
            say(f"viewers per edge: origin stack on port {port}, edge on {edge_port}")
            results["edges"] = bench.edges_run(port, edge_port, config)
            port = edge_port
        else:
            say("viewers per edge skipped: not enough of the time budget left")

        if not args.no_workers2 and bench.left() > 90:
            port = free_port(port + 1)
            say(f"stack (nginx + responder, WORKERS=2) on port {port}")
            results["stack_workers2"] = bench.stack_run(port, 2, config, full=False,
                                                        reserve_s=5)
        elif not args.no_workers2:
            say("WORKERS=2 skipped: not enough of the time budget left")
    finally:
        results["elapsed_s"] = bench.elapsed()
        save(results, args.out)

    frame_bytes = meta["mean_frame_bytes"]
    figs = derive(results["stack"])
    enc = results.get("encode", {})
    if "ratio" in enc:
        figs["encode_ratio"] = enc["ratio"]
        figs["encode_us"] = enc["encode_usec"]
        figs["encode_tjbench_us"] = enc["tjbench_usec"]
        figs["validate_ratio"] = enc["validate_ratio"]
        figs["validate_us"] = enc["validate_usec"]
        figs["decode_full_us"] = enc["decode_full_usec"]
    fa = derive(results["fastapi"])
    raw = derive(results["raw"])
    results["figures"] = {"stack": figs, "fastapi": fa, "raw": raw}
    missed = print_table(
        f"mjpeg-fcgi behind nginx, WORKERS=1 ({STREAM}: 640x480, {FPS:g} fps, mean JPEG "
        f"{frame_bytes / 1024:.1f} KiB, {os.cpu_count()} cores)", figs, fa, raw)
    if "stack_workers2" in results:
        figs2 = derive(results["stack_workers2"])
        results["figures"]["stack_workers2"] = figs2
        missed += print_table("mjpeg-fcgi behind nginx, WORKERS=2", figs2, fa, raw,
                              prefix="[w2] ")
    print_baselines(fa, raw)
    if "relay" in results:
        missed += print_relay(results["relay"])
    if "edges" in results:
        print_edges(results["edges"])
    ramp_notes = []
    for name in ("stack", "stack_workers2", "fastapi", "raw"):
        if name in results and "ramp" in results[name]:
            rp = results[name]["ramp"]
            ramp_notes.append(f"  {name:15s} held {rp['max_viewers_held']:5d}, first failing "
                              f"{rp['first_failing'] or '-'}, stopped by {rp['stopped_by']}")
    print()
    print("ramps (steps: " + ", ".join(str(n) for n in RAMP_STEPS if n >= 100) + ")")
    print("\n".join(ramp_notes))
    if results["stack"].get("perf", {}).get("top"):
        print()
        print("perf record -a, stack at 500 viewers: share of all samples by process "
              "(swapper = idle), then of the stack's samples by symbol (>= 0.7%):")
        for line in results["stack"]["perf"]["by_process"][:12]:
            print("  " + line)
        print()
        for line in results["stack"]["perf"]["top"][:25]:
            print("  " + line)
    noisy = []
    for name in ("stack", "stack_workers2", "fastapi", "raw"):
        for key, r in results.get(name, {}).items():
            if isinstance(r, dict) and "other_cpu_pct" in r and r["other_cpu_pct"] > 10:
                noisy.append((r["other_cpu_pct"], f"{name} {key}"))
        for n, r in results.get(name, {}).get("ramp", {}).get("step_results", {}).items():
            if r["other_cpu_pct"] > 10:
                noisy.append((r["other_cpu_pct"], f"{name} ramp {n}"))
    if noisy:
        worst = max(noisy)
        print()
        print(f"warning: other processes used more than 10% of a core during {len(noisy)} "
              f"runs (worst {worst[0]:.0f}% in {worst[1]}): fps, delays and the ramps are "
              "skewed by that; CPU per frame much less so. Run again on a quiet machine.")
    results["noisy_runs"] = [{"other_cpu_pct": v, "run": k} for v, k in sorted(noisy)]
    elapsed = bench.elapsed()
    total = elapsed
    # make bench passes the time it started, so that the build counts too
    if os.environ.get("BENCH_T0", "").isdigit():
        total = time.time() - int(os.environ["BENCH_T0"])
    print()
    print(f"make bench took {total:.0f} s, the scenarios {elapsed:.0f} s "
          f"(target < 600 s: {'yes' if total < 600 else 'NO'})")
    if total >= 600:
        missed.append("make bench under 10 minutes")
    if "error" in enc:
        missed.append(f"encode time against tjbench ({enc['error']})")
    if missed:
        print("targets missed: " + "; ".join(missed))
    else:
        print("every target met")
    results["elapsed_s"] = elapsed
    results["total_s"] = total
    results["targets_missed"] = missed
    save(results, args.out)
    print(f"results: {os.path.relpath(args.out, TOP)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
