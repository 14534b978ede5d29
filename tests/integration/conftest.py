"""Fixtures for the integration tests: the mjpeg-fcgi stack of `make start`
(stacks.py) behind each web server (SERVER=nginx, lighttpd, apache (CGI), apache-fcgid,
apache-proxy (mod_proxy_fcgi)), on a free port, stopped again at the end of
the session.

MJPEG_TEST_SERVERS (comma-separated) narrows the servers the `stack` and
`server` fixtures run over, e.g. MJPEG_TEST_SERVERS=nginx."""

import os

import pytest
from stacks import start_stack

ALL_SERVERS = ["nginx", "lighttpd", "apache", "apache-fcgid", "apache-proxy"]
SERVERS = [s.strip() for s in os.environ.get("MJPEG_TEST_SERVERS", ",".join(ALL_SERVERS))
           .split(",") if s.strip()]


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
    with start_stack(server=server) as st:
        yield st


@pytest.fixture
def stack_factory(server):
    """start(config_path) -> a Stack of its own behind the same SERVER, on
    another free port; every stack started this way is stopped at the end of
    the test at the latest."""
    started = []

    def start(config=None):
        st = start_stack(config=config, server=server)
        started.append(st)
        return st

    try:
        yield start
    finally:
        for st in started:
            st.stop()
