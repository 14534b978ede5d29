"""The benchmark's baseline: the seed's approach, made as fair as it can be.

The seed (a FastAPI app from a Stack Overflow question) streams JPEGs as
multipart/x-mixed-replace with a StreamingResponse over an async generator,
run by uvicorn. This app does exactly that, with three changes so that it
serves the same frames as the stack under test and the same client can
measure it:

- the frames are the stack's own: 640x480 bars JPEGs captured from its
  stream/bars before the run (BENCH_FRAMES_DIR, *.jpg in name order),
  cycled at BENCH_FPS (default 30);
- one publish clock for every client (a task that builds each part once,
  then wakes every generator), instead of a sleep per client, so all
  clients get the same frame at the same time, and a slow client skips to
  the newest frame instead of queueing;
- each part carries Content-Length and X-Timestamp (the publish time, as
  the responder writes it).

No JPEG is encoded here (the stack encodes every frame it serves), and each
part's bytes are built once per frame, not per client: this baseline is the
cheapest version of the seed's approach.

Run (Debian python3-fastapi, python3-uvicorn):

    BENCH_FRAMES_DIR=build/bench/frames /usr/bin/python3 -m uvicorn \\
        baseline_fastapi:app --app-dir tests/bench --host 127.0.0.1 --port 21500
"""

import asyncio
import glob
import os
import time

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

BOUNDARY = b"frame"  # the seed's
FPS = float(os.environ.get("BENCH_FPS", "30"))
FRAMES_DIR = os.environ.get("BENCH_FRAMES_DIR", "build/bench/frames")


def load_frames(directory):
    paths = sorted(glob.glob(os.path.join(directory, "*.jpg")))
    if not paths:
        raise SystemExit(f"baseline_fastapi: no .jpg files in {directory}")
    frames = []
    for path in paths:
        with open(path, "rb") as f:
            frames.append(f.read())
    return frames


class Publisher:
    """The one clock: the newest part and an event per publish."""

    def __init__(self, frames, fps):
        self.frames = frames
        self.period = 1.0 / fps
        self.seq = 0
        self.part = b""
        self.published = asyncio.Event()
        self.publish()

    def publish(self):
        jpeg = self.frames[self.seq % len(self.frames)]
        # time.time() is CLOCK_REALTIME, as the client's arrival time.
        head = b"Content-Type: image/jpeg\r\nContent-Length: %d\r\nX-Timestamp: %.6f\r\n\r\n" % (
            len(jpeg), time.time())
        self.part = head + jpeg + b"\r\n--" + BOUNDARY + b"\r\n"
        self.seq += 1
        event, self.published = self.published, asyncio.Event()
        event.set()

    async def run(self):
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.period
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            self.publish()
            next_at += self.period
            if next_at < loop.time():  # fell behind: skip, never burst
                next_at = loop.time() + self.period


app = FastAPI()
state = {}


@app.on_event("startup")
async def start_publisher():
    publisher = Publisher(load_frames(FRAMES_DIR), FPS)
    state["publisher"] = publisher
    state["task"] = asyncio.create_task(publisher.run())


@app.get("/stream/{name}")
async def stream(name: str):
    publisher = state["publisher"]

    async def generate_frames():
        yield b"--" + BOUNDARY + b"\r\n"
        seen = publisher.seq
        yield publisher.part  # the newest frame at once
        while True:
            if publisher.seq == seen:
                await publisher.published.wait()
            seen = publisher.seq
            yield publisher.part

    return StreamingResponse(generate_frames(),
                             media_type="multipart/x-mixed-replace;boundary=frame")
