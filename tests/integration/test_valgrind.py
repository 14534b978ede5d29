"""A streaming session with the responder under valgrind's memcheck,
behind nginx: viewers, snapshots, status, ingest errors, a viewer cut
mid-frame, then SIGTERM.  memcheck must report no error and no leak."""

import os
import re
import shutil
import socket
import urllib.error
import urllib.request

import pytest
from stacks import TOP, start_stack


def fetch(port, path, data=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind is not installed")
def test_streaming_session_is_memcheck_clean(tmp_path):
    log = tmp_path / "memcheck.%p.log"
    wrapper = tmp_path / "mjpeg-fcgi"
    # stack.sh runs $BIN with the responder's arguments; valgrind runs the
    # real binary with them (a plain exec keeps the pid file's pid right)
    wrapper.write_text("#!/bin/sh\nexec valgrind --tool=memcheck --leak-check=full "
                       "--errors-for-leak-kinds=definite,indirect --error-exitcode=99 "
                       "--log-file=%s %s \"$@\"\n" % (log, os.path.join(TOP, "fcgi",
                                                                         "mjpeg-fcgi")))
    wrapper.chmod(0o755)
    st = start_stack(responder=wrapper)
    port = st.port
    try:
        assert fetch(port, "/status")[0] == 200
        assert fetch(port, "/stream/demo?frames=2")[0] == 200
        assert fetch(port, "/stream/bars?frames=5")[0] == 200
        assert fetch(port, "/snapshot/bars")[0] == 200
        assert fetch(port, "/metrics")[0] == 200
        assert fetch(port, "/stream/bars?fps=abc")[0] == 400
        assert fetch(port, "/stream/nosuch")[0] == 404
        assert fetch(port, "/ingest/demo", b"x")[0] == 403
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /stream/bars HTTP/1.0\r\n\r\n")
        s.recv(20000)
        s.close()  # cut mid-frame
    finally:
        st.stop()
    logs = list(tmp_path.glob("memcheck.*.log"))
    assert logs, "valgrind wrote no log"
    text = "".join(p.read_text() for p in logs)
    print(text[-1500:])  # the summary, shown with pytest -s
    summary = re.findall(r"ERROR SUMMARY: (\d+) errors", text)
    assert summary and all(n == "0" for n in summary), errors_of(text)
    assert "definitely lost: 0 bytes" in text or "All heap blocks were freed" in text, \
        errors_of(text)


def errors_of(text):
    """The records of a memcheck log that count as errors (everything but
    possibly lost and reachable blocks), with the summaries."""
    records = re.split(r"\n==\d+== \n", text)
    keep = [r for r in records if "possibly lost in loss record" not in r
            and "still reachable in loss record" not in r]
    return "\n==\n".join(keep)[-12000:]
