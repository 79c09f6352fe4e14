"""The detection worker process: `python -m edge.agents.detection_worker` (started by the
anomaly agent, see edge/agents/detection_host.py; never by hand).

It reads frames (8-byte big-endian length, then a pickle of `(call, args)`) on stdin and
answers each on stdout with `(ok, result or exception, (open alerts, tracked sensors))`.
The first call is `init` with the session's arguments. It exits at the end of its input,
which is also what happens when the daemon dies, even by SIGKILL. It ignores SIGINT and
SIGTERM: a Ctrl-C or a `systemctl stop` reaches the whole process group, and the daemon
still needs its worker to save the models while it stops.
"""

from __future__ import annotations

import pickle
import signal
import sys
import time
from typing import Any, BinaryIO

from edge.agents.detection_host import HEADER_BYTES
from edge.detection.session import CALLS, DetectionSession


def _read_frame(stream: BinaryIO) -> Any:
    header = stream.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES:
        return None
    size = int.from_bytes(header, "big")
    body = stream.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)


def _answer(stream: BinaryIO, reply: tuple[bool, Any, tuple[int, int]]) -> None:
    try:
        frame = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception that does not pickle still gets answered
        frame = pickle.dumps((False, RuntimeError(repr(reply[1])), reply[2]))
    stream.write(len(frame).to_bytes(HEADER_BYTES, "big"))
    stream.write(frame)
    stream.flush()


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    session: DetectionSession | None = None
    while (request := _read_frame(requests)) is not None:
        name, args = request
        try:
            if name == "init":
                gateway_id, settings, profiles, assets = args
                session = DetectionSession(gateway_id, settings, profiles, assets, time.time)
                result: Any = None
            elif session is None or name not in CALLS:
                raise RuntimeError(f"detection worker: unknown call {name!r} (or before init)")
            else:
                result = getattr(session, name)(*args)
            ok = True
        except Exception as exc:
            ok, result = False, exc
        _answer(replies, (ok, result, session.counts() if session is not None else (0, 0)))


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames may reach the reply pipe
    serve(requests, replies)


if __name__ == "__main__":
    main()
