"""A second local user against every file and socket the responder and the
stack create: the frame bus directory and its stream files, the unix
socket, the pid file.

Another user (nobody, or www-data) plants directories, files and links
where the responder will look, in /dev/shm as an attacker would; the
responder must refuse them at start-up with a line naming the path and
what is wrong, exit non-zero, and leave what was planted (and whatever a
link points at) as it was.  A running stack must leave that user nothing
to read, write or connect to.

The tests need root (to act as the other users) and skip otherwise."""

import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
import uuid

import pytest
from conftest import SERVERS
from fcgiwire import BIN
from stacks import free_port, running_stack

START_TIMEOUT = 10  # s: a refused start exits at once; this only bounds a hang
PLANTED = b"planted by another user\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as other users")


def uid_of(user):
    return pwd.getpwnam(user).pw_uid


def as_user(user, script):
    """Runs a shell script as another user; asserts it worked."""
    r = subprocess.run(["runuser", "-u", user, "--", "sh", "-ec", script],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture
def shm():
    """Unique names under /dev/shm (sticky, writable by everyone), removed
    afterwards whoever made them."""
    made = []

    def name(tag):
        path = "/dev/shm/mjpeg-fcgi-test-%s-%s" % (tag, uuid.uuid4().hex[:8])
        made.append(path)
        return path
    yield name
    for path in made:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)  # a file, a link or a socket


def start_responder(tmp_path, bus_dir, user=None, extra=()):
    """Runs the responder as it is deployed (its own socket, a pid file);
    returns (CompletedProcess, socket path, pid file path).  A refused start
    exits by itself; a start that was not refused is stopped by the time-out
    and reported as such."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    if user:
        os.chown(run_dir, uid_of(user), -1)
    sock, pid_file = run_dir / "s.sock", run_dir / "r.pid"
    cmd = [BIN, "--listen", "unix:%s" % sock, "--bus-dir", bus_dir,
           "--pid-file", str(pid_file)] + list(extra)
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("the responder started with bus dir %s instead of refusing it" % bus_dir)
    return r, sock, pid_file


def assert_refused(r, sock, pid_file, *words):
    assert r.returncode != 0, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
    assert "cannot use the frame bus" in r.stderr, r.stderr
    # refused before anything else was made
    assert not os.path.lexists(sock)
    assert not os.path.lexists(pid_file)


def content(path):
    with open(path, "rb") as f:
        return f.read()


# --- the bus directory --------------------------------------------------------

def test_directory_of_another_user(tmp_path, shm):
    """The case of the report: nobody makes the directory 0777 and a
    stream file 0666 in it before the responder starts."""
    d = shm("dir")
    as_user("nobody", "mkdir -m 0777 %s; printf 'planted by another user\\n' >%s/demo; "
            "chmod 666 %s/demo" % (d, d, d))
    r, sock, pid_file = start_responder(tmp_path, d)
    assert_refused(r, sock, pid_file, "%s is owned by uid %d" % (d, uid_of("nobody")),
                   "refusing it as the bus directory")
    assert content(d + "/demo") == PLANTED
    assert os.listdir(d) == ["demo"]
    assert os.stat(d + "/demo").st_uid == uid_of("nobody")


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777], ids=["0777", "0775", "1777"])
def test_own_directory_others_may_write(tmp_path, shm, mode):
    d = shm("mode")
    os.mkdir(d)
    os.chmod(d, mode)
    r, sock, pid_file = start_responder(tmp_path, d)
    assert_refused(r, sock, pid_file, "%s has mode %04o" % (d, mode))
    assert os.listdir(d) == []


def test_symlinked_directory(tmp_path, shm):
    """nobody points the bus path at a directory of root's: the responder
    must not create or grow files there (it grew one to 16 MiB)."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "demo").write_bytes(PLANTED)
    d = shm("link")
    as_user("nobody", "ln -s %s %s" % (victim, d))
    r, sock, pid_file = start_responder(tmp_path, d)
    assert_refused(r, sock, pid_file, "%s is a symbolic link, not a directory" % d)
    assert (victim / "demo").read_bytes() == PLANTED
    assert sorted(os.listdir(victim)) == ["demo"]


def test_unprivileged_responder_refuses_another_users_directory(tmp_path, shm):
    """The same rule holds for a responder that is not root: nobody's
    responder, www-data's directory."""
    d = shm("www")
    as_user("www-data", "mkdir -m 0777 %s" % d)
    r, sock, pid_file = start_responder(tmp_path, d, user="nobody")
    assert_refused(r, sock, pid_file, "%s is owned by uid %d, not by this process's uid %d"
                   % (d, uid_of("www-data"), uid_of("nobody")))
    assert os.listdir(d) == []


# --- stream files in a directory of ours -------------------------------------

def own_dir(shm):
    d = shm("files")
    os.mkdir(d, 0o700)
    return d


def test_stream_file_of_another_user(tmp_path, shm):
    d = own_dir(shm)
    with open(d + "/demo", "wb") as f:
        f.write(PLANTED)
    os.chown(d + "/demo", uid_of("nobody"), -1)
    os.chmod(d + "/demo", 0o666)
    r, sock, pid_file = start_responder(tmp_path, d)
    assert_refused(r, sock, pid_file, "%s/demo is owned by uid %d" % (d, uid_of("nobody")),
                   "refusing it as a stream file")
    assert content(d + "/demo") == PLANTED


def test_stream_file_of_ours_with_mode_0666(tmp_path, shm):
    d = own_dir(shm)
    with open(d + "/demo", "wb") as f:
        f.write(PLANTED)
    os.chmod(d + "/demo", 0o666)
    r, sock, pid_file = start_responder(tmp_path, d)
    assert_refused(r, sock, pid_file, "%s/demo has mode 0666, not 0600" % d)
    assert content(d + "/demo") == PLANTED


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo", "directory"])
def test_stream_file_of_another_kind(tmp_path, shm, kind):
    d = own_dir(shm)
    victim = d + "/victim"   # the same file system, for the hard link
    with open(victim, "wb") as f:
        f.write(PLANTED)
    os.chmod(victim, 0o600)
    path = d + "/demo"
    words = {"symlink": "is a symbolic link", "hardlink": "has 2 links",
             "fifo": "is a FIFO", "directory": "is a directory"}[kind]
    if kind == "symlink":
        os.symlink(victim, path)
    elif kind == "hardlink":
        os.link(victim, path)
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    else:
        os.mkdir(path, 0o700)
    r, sock, pid_file = start_responder(tmp_path, d)
    assert_refused(r, sock, pid_file, "%s %s" % (path, words))
    assert content(victim) == PLANTED


# --- the unix socket path (--listen unix:PATH) --------------------------------

@pytest.mark.parametrize("kind", ["file", "symlink", "directory"])
def test_listen_path_that_is_not_a_socket(tmp_path, shm, kind):
    """Connecting to what is at PATH fails for all of these; the responder
    used to delete it and bind there."""
    victim = tmp_path / "victim"
    victim.write_bytes(PLANTED)
    path = shm("sock")
    what = {"file": "a regular file", "symlink": "a symbolic link",
            "directory": "a directory"}[kind]
    if kind == "file":
        as_user("nobody", "printf 'planted by another user\\n' >%s" % path)
    elif kind == "symlink":
        as_user("nobody", "ln -s %s %s" % (victim, path))
    else:
        as_user("nobody", "mkdir %s; touch %s/inside" % (path, path))
    bus = shm("bus")
    try:
        r = subprocess.run([BIN, "--listen", "unix:%s" % path, "--bus-dir", bus],
                           capture_output=True, text=True, timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("the responder replaced %s and listened there" % path)
    assert r.returncode != 0
    assert "%s exists and is %s, not a socket; not removing it" % (path, what) in r.stderr, \
        r.stderr
    if kind == "file":
        assert content(path) == PLANTED
    elif kind == "symlink":
        assert os.readlink(path) == str(victim)
    else:
        assert os.listdir(path) == ["inside"]
    assert victim.read_bytes() == PLANTED


def test_listen_replaces_only_a_stale_socket(tmp_path, shm):
    """A socket nobody listens on any more is replaced; one with a live
    listener is refused."""
    path = str(tmp_path / "s.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()
    live = socket.socket(socket.AF_UNIX)
    bus = shm("bus")
    p = subprocess.Popen([BIN, "--listen", "unix:%s" % path, "--bus-dir", bus],
                         stderr=subprocess.PIPE, text=True)
    try:
        # the responder binds a new socket there: connecting works
        for _ in range(100):
            try:
                live.connect(path)
                break
            except OSError:
                p.poll()
                assert p.returncode is None, p.stderr.read()
                time.sleep(0.05)
        else:
            pytest.fail("the stale socket was not replaced")
        live.close()
        r = subprocess.run([BIN, "--listen", "unix:%s" % path, "--bus-dir", bus],
                           capture_output=True, text=True, timeout=START_TIMEOUT)
        assert r.returncode != 0
        assert "another process is listening there" in r.stderr, r.stderr
    finally:
        p.terminate()
        p.wait(10)
    assert not os.path.lexists(path)  # removed at exit


def test_socket_mode_has_no_access_for_others(shm):
    """Whatever the umask, others cannot connect (write access to the socket
    file is what connecting takes).  In /dev/shm, which nobody can reach."""
    path = shm("sock")
    bus = shm("bus")
    p = subprocess.Popen(["sh", "-c", 'umask 0; exec "$@"', "sh", BIN, "--listen",
                          "unix:%s" % path, "--bus-dir", bus], stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            if os.path.exists(path):
                break
            time.sleep(0.05)
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        assert mode & 0o007 == 0, oct(mode)
        assert mode & 0o660 == 0o660, oct(mode)  # the group (the web server's) may
        r = subprocess.run(["runuser", "-u", "nobody", "--", "python3", "-c",
                            "import socket; socket.socket(socket.AF_UNIX).connect(%r)" % path],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode != 0 and "PermissionError" in r.stderr, r.stderr
    finally:
        p.terminate()
        p.wait(10)


# --- the pid file -------------------------------------------------------------

def test_pid_file_symlink_is_not_followed(tmp_path, shm):
    victim = tmp_path / "victim"
    victim.write_bytes(PLANTED)
    pid_file = shm("pid")
    as_user("nobody", "ln -s %s %s" % (victim, pid_file))
    sock = tmp_path / "s.sock"
    try:
        r = subprocess.run([BIN, "--listen", "unix:%s" % sock, "--bus-dir", shm("bus"),
                            "--pid-file", pid_file],
                           capture_output=True, text=True, timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("the responder wrote its pid through the link and ran")
    assert r.returncode != 0
    assert "pid file %s is a symbolic link; not writing through it" % pid_file in r.stderr, \
        r.stderr
    assert victim.read_bytes() == PLANTED
    assert not os.path.lexists(sock)


def test_pid_file_of_another_user_is_not_rewritten(tmp_path, shm):
    pid_file = shm("pid")
    as_user("nobody", "printf 'planted by another user\\n' >%s; chmod 666 %s"
            % (pid_file, pid_file))
    try:
        r = subprocess.run([BIN, "--listen", "unix:%s" % (tmp_path / "s.sock"), "--bus-dir",
                            shm("bus"), "--pid-file", pid_file],
                           capture_output=True, text=True, timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("the responder took another user's pid file")
    assert r.returncode != 0
    assert "pid file %s is not a regular file of uid 0" % pid_file in r.stderr, r.stderr
    assert content(pid_file) == PLANTED


# --- a running stack ----------------------------------------------------------

# The servers whose stack.sh starts the responder itself (its socket and
# pid file are in run/PORT/); with the others the server spawns it.
OWN_RESPONDER = {"nginx", "apache-proxy"}
# Apache started as root runs its CGI and mod_fcgid responders as this user
APACHE_USER = "www-data"


@pytest.fixture(params=SERVERS)
def any_stack(request):
    server = request.param
    port = free_port()
    bus = "/dev/shm/mjpeg-fcgi-%d" % port
    # what a second user left at the stack's bus path before the start
    as_user("nobody", "mkdir -m 0777 %s; touch %s/demo; chmod 666 %s/demo" % (bus, bus, bus))
    try:
        with running_stack(port=port, server=server) as stack:
            yield stack, bus
    finally:
        if os.path.lexists(bus):
            shutil.rmtree(bus)


def nobody_can(script):
    r = subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c", script],
                       capture_output=True, text=True, timeout=10)
    return r.returncode == 0


def test_running_stack_leaves_a_second_user_nothing(any_stack):
    stack, bus = any_stack
    status, _, jpeg = stack.get("snapshot/demo")
    assert status == 200 and jpeg.startswith(b"\xff\xd8")
    owner = os.geteuid()
    if stack.server in ("apache", "apache-fcgid"):
        owner = uid_of(APACHE_USER)

    # the planted directory was not used: the stack's own is private
    st = os.lstat(bus)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == owner
    assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
    names = os.listdir(bus)
    assert "demo" in names
    for name in names:
        st = os.lstat(os.path.join(bus, name))
        assert stat.S_ISREG(st.st_mode) and st.st_uid == owner and st.st_nlink == 1, name
        assert stat.S_IMODE(st.st_mode) == 0o600, (name, oct(st.st_mode))
    assert not nobody_can("ls %s" % bus)
    assert not nobody_can("cat %s/demo >/dev/null" % bus)
    assert not nobody_can("touch %s/forged" % bus)
    assert not nobody_can(": >%s/demo" % bus)

    # the run directory: nobody may add or replace entries in it
    st = os.lstat(stack.run_dir)
    assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o022 == 0, oct(st.st_mode)
    assert not nobody_can("touch %s/planted" % stack.run_dir)
    if stack.server not in OWN_RESPONDER:
        return
    # the responder's socket and pid file
    sock = os.path.join(stack.run_dir, "mjpeg-fcgi.sock")
    pid_file = os.path.join(stack.run_dir, "mjpeg-fcgi.pid")
    st = os.lstat(sock)
    assert stat.S_ISSOCK(st.st_mode) and st.st_uid == os.geteuid()
    assert stat.S_IMODE(st.st_mode) & 0o007 == 0, oct(st.st_mode)
    assert not nobody_can("python3 -c 'import socket; socket.socket(socket.AF_UNIX)"
                          ".connect(\"%s\")'" % sock)
    st = os.lstat(pid_file)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
    assert stat.S_IMODE(st.st_mode) & 0o022 == 0, oct(st.st_mode)
    assert not nobody_can("echo 1 >%s" % pid_file)
