"""The exec: source with real commands (ffmpeg, sh, sleep, cat): started on
the first viewer, stopped after idle_pause_s, restarted after kill -9 of the
command, gone with its whole process group after kill -9 of the responder
(also when it never writes), back-off without a busy loop when the command
fails at once or writes garbage, no descriptor leaked into it, its
standard error in the log, raw frames with format and size."""

import os
import re
import signal
import time

import pytest
from mjpeg import Viewer, Watcher, decode_jpeg
from stacks import live_processes, start_stack, wait_until

# Waits for things that happen at once on an idle machine; generous so a
# machine under two busy loops and ASan still passes (they only bound a
# failing run).
SETTLE_S = 15
IDLE_PAUSE_S = 1
FFMPEG = ("ffmpeg -nostdin -hide_banner -loglevel error -re -f lavfi "
          "-i testsrc=size=%s:rate=15")
# Each command carries a marker in its argv, found in /proc/PID/cmdline.
STREAMS = {
    "cam": "exec:" + FFMPEG % "320x240" + " -f mjpeg -q:v 5 -",
    "raw": "exec:" + FFMPEG % "160x120" + " -f rawvideo -pix_fmt rgb24 -",
    # fails at once, after a line of standard error; counts its starts
    "quick": "exec:sh -c 'echo start >> \"$0\"; echo quick-oops >&2; exit 3' {dir}/quick.starts",
    # writes bytes that hold no JPEG, without end; counts its starts
    "garbage": "exec:sh -c 'echo start >> \"$0\"; exec cat /dev/urandom' {dir}/garbage.starts",
    # never writes (a shell and its sleep): restarted after upstream_stall_ms
    "quiet": "exec:sh -c 'echo start >> \"$0\"; sleep 987651; echo never' {dir}/quiet.starts",
}


def write_config(dirpath, names, extra=""):
    cfg = "[server]\nidle_pause_s = %d\n%s" % (IDLE_PAUSE_S, extra)
    for name in names:
        cfg += "[stream %s]\nsource = %s\n" % (name, STREAMS[name].format(dir=dirpath))
        if name == "raw":
            cfg += "format = rgb24\nsize = 160x120\n"
        if name == "quiet":
            cfg += "upstream_stall_ms = 1000\n"
    path = dirpath / "exec.ini"
    path.write_text(cfg)
    return path


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def group_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[2])
    except OSError:
        return None


def commands_of(st, marker):
    """The live processes of the commands the responder of ST runs (its
    guards' children, and the rest of their process groups) whose command
    line holds MARKER: this stack's, not another test's."""
    out = set()
    for guard in live_processes(ppid=st.pid()):
        for child in live_processes(ppid=guard):
            group = group_of(child)
            for p in live_processes(pgid=group) if group else []:
                if marker in cmdline(p):
                    out.add(p)
    return sorted(out)


def this_run_log(st):
    """The responder's log since this stack started (a run directory, and
    its log, may be a port's earlier stack's too)."""
    text = st.log()
    return text[text.rfind("stack.sh start"):]


def started_pids(st, name):
    return [int(m) for m in re.findall(r"exec %s: started pid (\d+)" % name, this_run_log(st))]


def log_lines(st, pattern, since=0):
    """Lines of this stack's log matching PATTERN, from offset SINCE (a
    log_mark: the module's stacks serve several tests)."""
    return [line for line in this_run_log(st)[since:].splitlines() if re.search(pattern, line)]


def log_mark(st):
    return len(this_run_log(st))


def read_parts(port, path, count, timeout=SETTLE_S):
    with Viewer(port, path, timeout=timeout) as v:
        assert v.status == 200, (path, v.status)
        parts = []
        while len(parts) < count:
            p = v.reader.next_part()
            assert p is not None, "%s ended after %d parts" % (path, len(parts))
            parts.append(p)
        return parts


def cpu_seconds(pid):
    """utime + stime of PID, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def starts(path):
    try:
        return len(path.read_text().splitlines())
    except OSError:
        return 0


@pytest.fixture(scope="module")
def exec_stack(tmp_path_factory):
    d = tmp_path_factory.mktemp("exec")
    st = start_stack(config=write_config(d, ["cam", "raw", "quick", "garbage", "quiet"]))
    try:
        yield st, d
    finally:
        st.stop()


def test_started_on_first_viewer_stopped_when_idle(exec_stack):
    """No command before anyone watches; the first viewer starts it (its
    frames pass through whole); idle_pause_s after the last viewer left,
    the command and its whole process group are gone."""
    st, _ = exec_stack
    marker = "testsrc=size=320x240"
    # (another test of the module may have watched it: it stops at idle)
    assert wait_until(lambda: not commands_of(st, marker)
                      and st.stream("cam")["upstream"]["state"] == "idle",
                      IDLE_PAUSE_S + SETTLE_S)
    before = len(started_pids(st, "cam"))
    parts = read_parts(st.port, "/stream/cam?frames=10", 10)
    for p in parts:
        assert decode_jpeg(p.body).size == (320, 240)
    pids = started_pids(st, "cam")[before:]
    assert len(pids) == 1, st.log_tail()
    running = commands_of(st, marker)
    assert running in ([], pids), (running, pids)
    if running:
        assert group_of(pids[0]) == pids[0]  # a group of its own
    up = st.stream("cam")["upstream"]
    assert up["state"] in ("connected", "idle"), up
    # the viewer left: stopped after idle_pause_s
    assert wait_until(lambda: log_lines(st, r"exec cam: stopped pid %d" % pids[0]),
                      IDLE_PAUSE_S + SETTLE_S), st.log_tail()
    assert not live_processes(pgid=pids[0])
    assert wait_until(lambda: st.stream("cam")["upstream"]["state"] == "idle", SETTLE_S)
    # and a new viewer starts it again
    read_parts(st.port, "/stream/cam?frames=2", 2)
    assert len(started_pids(st, "cam")) == before + 2


def test_raw_frames_with_format_and_size(exec_stack):
    """format and size: the command's output is raw rgb24 frames, encoded
    by the responder; ffmpeg's testsrc has colour bars, so the frame is
    not one flat colour."""
    st, _ = exec_stack
    parts = read_parts(st.port, "/stream/raw?frames=5", 5)
    for p in parts:
        img = decode_jpeg(p.body).convert("RGB")
        assert img.size == (160, 120)
        assert len(set(img.getdata())) > 8


def test_restarted_after_kill_9_of_the_command(exec_stack):
    """kill -9 of the command while watched: one log line for the outage,
    one when it is back, a new command, frames flow again to the viewer
    that stayed connected, /status counts the restart."""
    st, _ = exec_stack
    marker = "testsrc=size=320x240"
    mark = log_mark(st)
    w = Watcher(st.port, "/stream/cam", reconnect=False)
    w.start()
    try:
        assert wait_until(lambda: w.parts >= 3, SETTLE_S), st.log_tail()
        victims = commands_of(st, marker)
        assert len(victims) == 1, victims
        before = st.stream("cam")["upstream"]["reconnects"]
        os.kill(victims[0], signal.SIGKILL)
        assert wait_until(lambda: commands_of(st, marker) and
                          commands_of(st, marker) != victims, SETTLE_S), st.log_tail()
        parts = w.parts
        assert wait_until(lambda: w.parts > parts + 3, SETTLE_S), st.log_tail()
        assert not w.ended.is_set() and not w.bad
        assert len(log_lines(st, r"exec cam: command .*: killed by signal KILL; "
                                 r"restarting it every 500 to 2000 ms", mark)) == 1, \
            st.log_tail()
        assert wait_until(lambda: log_lines(st, r"exec cam: command .* is back after", mark),
                          SETTLE_S), st.log_tail()
        up = st.stream("cam")["upstream"]
        assert up["reconnects"] == before + 1, up
        assert up["state"] == "connected", up
        assert "killed by signal KILL" in up["last_error"], up
    finally:
        w.stop.set()
        w.join(SETTLE_S)


def test_no_descriptor_leaked_into_the_command(exec_stack):
    """The command has stdin on /dev/null, stdout and stderr on pipes, and
    nothing else of the responder's (its sockets, bus files, log)."""
    st, d = exec_stack
    w = Watcher(st.port, "/stream/quiet", reconnect=False)
    w.start()
    try:
        # the shell and the sleep it started (restarted every second or
        # two by upstream_stall_ms: read while both are there)
        def descriptors():
            pids = commands_of(st, "sleep 987651")
            if len(pids) != 2:
                return None
            try:
                return {pid: {int(fd): os.readlink("/proc/%d/fd/%s" % (pid, fd))
                              for fd in os.listdir("/proc/%d/fd" % pid)} for pid in pids}
            except OSError:
                return None
        found = wait_until(descriptors, SETTLE_S)
        assert found, st.log_tail()
        for pid, fds in found.items():
            assert sorted(fds) == [0, 1, 2], fds
            assert fds[0] == "/dev/null"
            assert fds[1].startswith("pipe:") and fds[2].startswith("pipe:"), fds
    finally:
        w.stop.set()
        w.join(SETTLE_S)


def test_silent_command_restarted_after_stall(exec_stack):
    """A command that never writes is stopped after upstream_stall_ms (1 s
    here) and started again; one line for the whole outage."""
    st, d = exec_stack
    # (another test may have watched it: its outage ends when it idles)
    assert wait_until(lambda: st.stream("quiet")["upstream"]["state"] == "idle",
                      IDLE_PAUSE_S + SETTLE_S)
    mark = log_mark(st)
    w = Watcher(st.port, "/stream/quiet", reconnect=False)
    w.start()
    try:
        first = starts(d / "quiet.starts")
        assert wait_until(lambda: starts(d / "quiet.starts") >= first + 2, SETTLE_S), \
            st.log_tail()
        lines = log_lines(st, r"exec quiet: command .*: no output for 1000 ms", mark)
        assert len(lines) == 1, lines
        assert st.stream("quiet")["upstream"]["state"] == "away"
    finally:
        w.stop.set()
        w.join(SETTLE_S)


@pytest.mark.parametrize("name,why", [
    ("quick", r"exited with status 3 before its first frame"),
    ("garbage", r"bytes of output without a JPEG .*stopped, killed by signal TERM"),
])
def test_failing_command_backs_off(exec_stack, name, why):
    """A command that exits at once, or writes bytes with no JPEG in them:
    restarted after a capped back-off (0.5 s doubling to 2 s, each less up
    to 25 % jitter), never in a busy loop; one log line for the outage;
    viewers stay connected; /status says why.

    The starts are counted by the command itself (a line appended per
    start).  Over WINDOW_S the back-off allows at most about
    1 + WINDOW_S / 1.5 of them (the waits are at least 0.375, 0.75, then
    1.5 s), however slow the machine: a slow machine makes fewer, never
    more; a restart loop without back-off makes thousands.  The
    responder's CPU time over the same window is bounded too, at 25 % of
    a core: the issue asks for < 2 %, which the idle machine gives (each
    start costs a fork and, for garbage, reading frame_bytes_max bytes),
    but the bound must hold with ASan and two busy neighbours; a busy loop
    (100 % of a core) still fails it four times over."""
    st, d = exec_stack
    WINDOW_S = 6
    mark = log_mark(st)
    w = Watcher(st.port, "/stream/%s" % name, reconnect=False)
    w.start()
    try:
        assert wait_until(lambda: starts(d / ("%s.starts" % name)) >= 1, SETTLE_S)
        pid = st.pid()
        first, cpu0, t0 = starts(d / ("%s.starts" % name)), cpu_seconds(pid), time.monotonic()
        time.sleep(WINDOW_S)
        made = starts(d / ("%s.starts" % name)) - first
        cpu = cpu_seconds(pid) - cpu0
        elapsed = time.monotonic() - t0
        assert 1 <= made <= 1 + elapsed / 1.5 + 1, made
        assert cpu < 0.25 * elapsed, "responder used %.2f s of CPU in %.1f s" % (cpu, elapsed)
        assert not w.ended.is_set(), "the viewer's stream ended"
        lines = log_lines(st, r"exec %s: command " % name, mark)
        assert len(lines) == 1, lines
        # what the garbage run dropped is reported before the outage began
        # (at most a line now and one held back by the rate limit), not
        # again at every restart
        dropped = log_lines(st, r"source %s: the command's output: dropped" % name, mark)
        assert len(dropped) <= 2, dropped
        assert re.search(why + r"; restarting it every 500 to 2000 ms until it is back",
                         lines[0]), lines
        up = st.stream(name)["upstream"]
        assert up["state"] == "away", up
        assert re.search(why, up["last_error"]), up
        if name == "quick":
            # its standard error reaches the log (rate-limited: 20 lines
            # in 10 s at most, however often it restarts)
            said = log_lines(st, r"exec quick: quick-oops", mark)
            assert 1 <= len(said) <= 20 * (1 + (time.monotonic() - t0) // 10 + 1), said
    finally:
        w.stop.set()
        w.join(SETTLE_S)


def test_gone_after_kill_9_of_the_responder(tmp_path):
    """kill -9 of the responder while commands run, one writing frames and
    one that never writes (no broken pipe would ever reach it): each
    command's whole process group is gone within the stop grace period
    (here 1 s) and a margin, the guards too."""
    d = tmp_path
    cfg = write_config(d, ["cam", "quiet"])
    cfg.write_text(cfg.read_text().replace("upstream_stall_ms = 1000\n",
                                           "upstream_stall_ms = 600000\n")
                   + "upstream_stop_grace_ms = 1000\n")
    st = start_stack(config=cfg)
    watchers = []
    try:
        # first, a command that never writes stops idle_pause_s after its
        # viewer left, not only after upstream_stall_ms (600 s here)
        w = Watcher(st.port, "/stream/quiet")
        w.start()
        assert wait_until(lambda: len(commands_of(st, "sleep 987651")) == 2, SETTLE_S), \
            st.log_tail()
        group = group_of(commands_of(st, "sleep 987651")[0])
        w.stop.set()
        w.join(SETTLE_S)
        assert wait_until(lambda: not live_processes(pgid=group), IDLE_PAUSE_S + SETTLE_S), \
            st.log_tail()
        assert wait_until(lambda: log_lines(
            st, r"exec quiet: stopped pid \d+ \(killed by signal TERM\)"), SETTLE_S)
        for name in ("cam", "quiet"):
            w = Watcher(st.port, "/stream/%s" % name)
            w.start()
            watchers.append(w)
        cam, quiet = "testsrc=size=320x240", "sleep 987651"
        # ffmpeg; the shell and the sleep it started
        assert wait_until(lambda: len(commands_of(st, cam)) == 1
                          and len(commands_of(st, quiet)) == 2, SETTLE_S), st.log_tail()
        commands = commands_of(st, cam) + commands_of(st, quiet)
        groups = {group_of(p) for p in commands}
        assert len(groups) == 2, commands
        responder = st.pid()
        guards = live_processes(ppid=responder)
        assert len(guards) == 2, guards
        os.kill(responder, signal.SIGKILL)
        assert wait_until(lambda: not any(live_processes(pgid=g) for g in groups),
                          1 + SETTLE_S), [live_processes(pgid=g) for g in groups]
        assert wait_until(lambda: not any(p in live_processes() for p in guards), SETTLE_S)
    finally:
        for w in watchers:
            w.stop.set()
        for w in watchers:
            w.join(SETTLE_S)
        st.stop()


def test_reload_that_removes_the_stream_stops_the_command(tmp_path):
    """SIGHUP with a config whose stream is no longer exec:: its producer
    ends, and the command with it, while the viewer is still there."""
    cfg = write_config(tmp_path, ["cam"])
    st = start_stack(config=cfg)
    w = Watcher(st.port, "/stream/cam", reconnect=False)
    w.start()
    try:
        marker = "testsrc=size=320x240"
        assert wait_until(lambda: commands_of(st, marker), SETTLE_S), st.log_tail()
        group = group_of(commands_of(st, marker)[0])
        cfg.write_text(cfg.read_text().replace(STREAMS["cam"], "pattern:bars"))
        os.kill(st.pid(), signal.SIGHUP)
        assert wait_until(lambda: not live_processes(pgid=group), SETTLE_S), st.log_tail()
        # (logged once the guard reported: just after the group went)
        assert wait_until(lambda: log_lines(st, r"exec cam: stopped pid %d" % group),
                          SETTLE_S), st.log_tail()
    finally:
        w.stop.set()
        w.join(SETTLE_S)
        st.stop()
