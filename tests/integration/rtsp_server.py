"""An RTSP server on loopback for the tests, from GStreamer's RTSP server
library (not ours): `python3 rtsp_server.py PORT` serves a moving test
picture, 320x240 at 15 fps as RTP/JPEG, at rtsp://127.0.0.1:PORT/stream1,
and prints "ready" once it listens.  Runs until killed."""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PIPELINE = ("( videotestsrc is-live=true pattern=ball ! "
            "video/x-raw,format=I420,width=320,height=240,framerate=15/1 ! "
            "jpegenc ! rtpjpegpay name=pay0 pt=26 )")


def main():
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(sys.argv[1])
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/stream1", factory)
    if server.attach(None) == 0:
        sys.exit("rtsp_server: cannot listen on 127.0.0.1:%s" % sys.argv[1])
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
