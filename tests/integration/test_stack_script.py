"""conf/stack.sh finds a stack's processes by the process groups it started
them in (run/PORT/responder.pgid, run/PORT/server.pgid), never by name:

- every server runs in the foreground in its group, and everything it
  forks (workers, the responders it spawns, CGI processes) stays there;
- `stop` ends every process of those groups, also after the masters died by
  SIGKILL and left their workers behind, and touches no other stack;
- `start` refuses a port where a stack runs, where processes of a dead
  stack still run, or that another program holds.
"""

import os
import signal
import socket
import time

import pytest

import mjpeg
import stacks
from conftest import SERVERS
from stacks import free_port, live_processes, make, start_stack

TIMEOUT = 5.0
TEST_TIME_LIMIT = 90


@pytest.fixture(autouse=True)
def time_limit():
    """Bounds every test of this module: nothing may hang."""
    with stacks.time_limit(TEST_TIME_LIMIT):
        yield


def groups(st):
    """{role: process group} that stack.sh recorded for the stack ST."""
    out = {}
    for role in ("responder", "server"):
        try:
            with open(os.path.join(st.run_dir, role + ".pgid")) as f:
                out[role] = int(f.read().split()[0])
        except OSError:
            pass
    return out


def members(pgid):
    """The live (not zombie) processes of process group PGID."""
    return live_processes(pgid=pgid)


def port_answers(port):
    with socket.socket() as s:
        s.settimeout(TIMEOUT)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def neighbour():
    """A stack on another port (nginx, two responder processes) that must
    keep running, untouched, while the tests start and stop theirs."""
    with start_stack(server="nginx", workers=2) as st:
        yield st


def neighbour_snapshot(st):
    found = {pgid: members(pgid) for pgid in groups(st).values()}
    assert len(found) == 2 and all(found.values()), found
    return found


def start_fails(port, server, message):
    r = make("start", "PORT=%d" % port, "SERVER=%s" % server)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert message in out, out


# servers whose responder stack.sh starts itself (nginx, apache-proxy) get
# two responder processes, so that a killed master leaves workers behind
OWN_RESPONDER = ("nginx", "apache-proxy")


@pytest.mark.parametrize("server", SERVERS)
def test_stop_ends_the_groups_after_their_leaders_died_by_sigkill(server, neighbour):
    before = neighbour_snapshot(neighbour)
    st = start_stack(server=server, workers=2 if server in OWN_RESPONDER + ("lighttpd",) else None)
    viewer = None
    try:
        recorded = groups(st)
        assert set(recorded) == ({"responder", "server"} if server in OWN_RESPONDER
                                 else {"server"}), recorded
        # a viewer: Apache then runs a responder (CGI, mod_fcgid) for it
        viewer = mjpeg.Viewer(st.port, "/stream/bars", TIMEOUT,
                              deadline=time.monotonic() + 30)
        assert viewer.status == 200
        assert viewer.reader.next_part() is not None
        for pgid in recorded.values():
            # the leader ran setsid: it leads its group and its session
            with open("/proc/%d/stat" % pgid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            assert int(fields[2]) == pgid and int(fields[3]) == pgid, fields
        # every process the server forks stays in its group: the web
        # server's workers, and the responders it spawns
        srv = recorded["server"]
        assert len(members(srv)) >= 2, members(srv)
        if server == "nginx" or server == "apache-proxy":
            assert len(members(recorded["responder"])) >= 3, members(recorded["responder"])
        start_fails(st.port, server, "a stack already runs on port %d" % st.port)

        for pgid in recorded.values():
            os.kill(pgid, signal.SIGKILL)   # the leaders: masters, not groups
        assert stacks.wait_until(
            lambda: not any(os.path.exists("/proc/%d/stat" % p) and
                            open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()[0] != "Z"
                            for p in recorded.values()), 10), "a leader survived SIGKILL"
        left = {pgid: members(pgid) for pgid in recorded.values()}
        assert any(left.values()), "nothing outlived the masters: %r" % left
        start_fails(st.port, server, "processes of a dead stack still run for port %d" % st.port)
    finally:
        if viewer is not None:
            viewer.close()
        st.stop()
    for pgid in recorded.values():
        assert members(pgid) == [], "process group %d of the stack still runs" % pgid
    assert not port_answers(st.port), "port %d still answers" % st.port
    for name in ("responder.pgid", "server.pgid", "server"):
        assert not os.path.exists(os.path.join(st.run_dir, name)), name
    # the other stack on its own port saw nothing of this
    assert neighbour_snapshot(neighbour) == before
    assert neighbour.status()["streams"]


@pytest.mark.parametrize("server", SERVERS)
def test_stop_leaves_nothing_and_touches_no_other_stack(server, neighbour):
    before = neighbour_snapshot(neighbour)
    st = start_stack(server=server)
    recorded = groups(st)
    try:
        with mjpeg.Viewer(st.port, "/stream/bars", TIMEOUT,
                          deadline=time.monotonic() + 30) as viewer:
            assert viewer.status == 200
            assert viewer.reader.next_part() is not None
    finally:
        st.stop()
    for pgid in recorded.values():
        assert members(pgid) == [], "process group %d of the stack still runs" % pgid
    assert neighbour_snapshot(neighbour) == before
    assert neighbour.status()["streams"]


def test_stop_of_an_idle_port_says_nothing_runs():
    r = make("stop", "PORT=%d" % free_port())
    assert r.returncode == 0, r.stderr
    assert "nothing runs on port" in r.stdout, r.stdout


def test_start_refuses_a_port_another_program_holds():
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        start_fails(port, "nginx", "port %d is already taken by another program" % port)
        assert not os.path.exists(os.path.join(stacks.TOP, "run", str(port), "server"))
