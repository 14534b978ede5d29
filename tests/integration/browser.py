"""Headless Chromium for the tests that look at the page as a user does."""

import contextlib
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.remote_connection import RemoteConnection

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextlib.contextmanager
def session(extra_args=(), size=(1280, 900)):
    """A headless Chromium with a fresh profile and a window of size,
    keeping the console log, quit at the end of the block. extra_args go
    on its command line (--ignore-certificate-errors for a test
    certificate)."""
    RemoteConnection.set_timeout(30)   # no WebDriver command waits longer
    with tempfile.TemporaryDirectory(prefix="mjpeg-chromium-") as profile:
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--user-data-dir=" + profile, "--window-size=%d,%d" % size) + tuple(extra_args):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        try:
            drv.set_window_size(*size)
            drv.set_page_load_timeout(15)
            drv.set_script_timeout(10)
            yield drv
        finally:
            try:
                drv.quit()
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass


@contextlib.contextmanager
def one_test(drv):
    """A session, for one test of a module that shares it: the console log
    of earlier tests read and dropped, and the page left (about:blank,
    which closes its streams) at the end."""
    drv.get_log("browser")
    try:
        yield drv
    finally:
        try:
            drv.get("about:blank")
        except Exception:  # noqa: BLE001 - the next test's get() reports it
            pass
