"""Where the anomaly agent's detection runs: in a worker process, or inline.

Detection costs about 3-9 µs a reading compiled, 8-20 as plain Python (edge/detection); on
the daemon's event loop that is CPU taken from every commit and acknowledgement, and it
capped ingest at a third of what the durable path does without it. So by default
(`detection.worker: process`) the models live in a child process (`python -m
edge.agents.detection_worker`) on the other core: the agent sends it batches of readings and
gets alert changes back, over the child's stdin and stdout, one call at a time
(length-prefixed pickles; parent and child are the same code).
`inline` keeps them on the loop (one core, or tests that drive a fake clock).

Both hosts offer the same typed calls (`DetectionSession`'s, awaited) and keep the engine's
counts from the last call. A worker that dies, or does not answer in time, raises
`DetectionWorkerError` on the call in flight; the agent starts a new one and recovers its
state as after a restart. A call abandoned half way (its task cancelled) leaves a reply in
the pipe that the next call would take for its own, so the worker is killed then too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import sys
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from edge.detection.engine import SnapshotReport
from edge.detection.lifecycle import AlertChange
from edge.detection.profiles import AssetProfile, SensorProfile
from edge.detection.session import DetectionSession, Row
from edge.detection.settings import DetectionSettings
from edge.errors import TemporarilyUnavailable
from edge.records import AlertRecord, Reading, ReadingRow

log = logging.getLogger(__name__)

_ROW = itemgetter(0, 1, 2, 3, 6, 7)  # Reading -> Row, in C: the agent's only per-reading cost
_BUFFERED_ROW = itemgetter(1, 2, 3, 4, 7, 8)  # ReadingRow (seq first) -> Row
_JUDGE_SLICE = 500  # inline: readings judged between two turns of the event loop (~5 ms)
HEADER_BYTES = 8  # a frame: its length (big-endian), then a pickle
# Calls whose work grows with the number of sensors or readings held (a snapshot of 20,000
# sensors takes ~10 s, relearning 200,000 readings ~4 s); every other call answers in well
# under a second, so a worker silent for longer than `call_timeout_s` is stuck.
_SLOW_CALLS = frozenset({"init", "snapshot", "load_snapshot", "learn"})


class DetectionWorkerError(TemporarilyUnavailable):
    """The detection worker process is gone (it crashed, was killed, or stopped answering);
    the agent starts a new one."""


def rows(readings: Iterable[Reading]) -> list[Row]:
    return list(map(_ROW, readings))


def buffered_rows(readings: Iterable[ReadingRow]) -> list[Row]:
    return list(map(_BUFFERED_ROW, readings))


class DetectionHost:
    """Typed, awaited calls to a `DetectionSession`; subclasses say where it runs."""

    open_count = 0
    sensor_count = 0

    async def start(self) -> None:
        """Ready for calls."""

    async def stop(self) -> None:
        """No more calls."""

    async def _call(self, name: str, *args: Any, timeout_s: float | None = None) -> Any:
        raise NotImplementedError

    async def judge(self, readings: Sequence[Reading]) -> list[AlertChange]:
        return await self.judge_rows(rows(readings))

    async def judge_buffered(self, readings: Sequence[ReadingRow]) -> list[AlertChange]:
        """`judge` for rows read back from the buffer (a catch-up)."""
        return await self.judge_rows(buffered_rows(readings))

    async def judge_rows(self, batch: list[Row]) -> list[AlertChange]:
        result: list[AlertChange] = await self._call("judge", batch)
        return result

    async def learn(self, readings: Sequence[Reading]) -> int:
        return await self.learn_rows(rows(readings))

    async def learn_rows(self, batch: list[Row]) -> int:
        result: int = await self._call("learn", batch)
        return result

    async def tick(self, now: float) -> list[AlertChange]:
        result: list[AlertChange] = await self._call("tick", now)
        return result

    async def release_idle(self, before: float) -> int:
        result: int = await self._call("release_idle", before)
        return result

    async def source_offline(self, source_id: str, sensor_ids: Sequence[str], ts: float,
                             reason: str) -> list[AlertChange]:
        result: list[AlertChange] = await self._call("source_offline", source_id,
                                                     list(sensor_ids), ts, reason)
        return result

    async def pause_silence(self, sensor_ids: Sequence[str]) -> None:
        await self._call("pause_silence", list(sensor_ids))

    async def source_online(self, source_id: str, ts: float) -> list[AlertChange]:
        result: list[AlertChange] = await self._call("source_online", source_id, ts)
        return result

    async def close(self, sensor_id: str, detector: str) -> bool:
        result: bool = await self._call("close", sensor_id, detector)
        return result

    async def take_decided(self, alert: AlertRecord) -> bool:
        result: bool = await self._call("take_decided", alert)
        return result

    async def set_feedback(self, book: list[dict[str, object]]) -> None:
        await self._call("set_feedback", book)

    async def restore(self, alerts: Sequence[AlertRecord]) -> None:
        await self._call("restore", list(alerts))

    async def restore_closed(self, alerts: Sequence[AlertRecord]) -> None:
        await self._call("restore_closed", list(alerts))

    async def drain_candidate_counts(self) -> dict[str, int]:
        result: dict[str, int] = await self._call("drain_candidate_counts")
        return result

    async def snapshot(self, timeout_s: float | None = None) -> bytes:
        """The models, serialised; `timeout_s` bounds the wait (a stop has a deadline)."""
        result: bytes = await self._call("snapshot", timeout_s=timeout_s)
        return result

    async def load_snapshot(self, data: bytes,
                            shard: tuple[int, int] | None = None) -> SnapshotReport:
        """`shard`: keep only what this worker of several owns (edge/agents/detection_shards.py)."""
        result: SnapshotReport = await self._call("load_snapshot", data, shard)
        return result


class InlineDetection(DetectionHost):
    """The session on the event loop, judging in slices with a loop turn between them."""

    def __init__(self, session: DetectionSession) -> None:
        self.session = session

    async def _call(self, name: str, *args: Any, timeout_s: float | None = None) -> Any:
        result = getattr(self.session, name)(*args)
        self.open_count, self.sensor_count = self.session.counts()
        return result

    async def judge_rows(self, batch: list[Row]) -> list[AlertChange]:
        """A large batch or a catch-up chunk (20,000 readings, ~0.2 s of judging) must not
        hold up the commits, acknowledgements and alerts of everything else meanwhile."""
        changes: list[AlertChange] = []
        for start in range(0, len(batch), _JUDGE_SLICE):
            if start:
                await asyncio.sleep(0)
            changes += self.session.judge(batch[start:start + _JUDGE_SLICE])
        self.open_count, self.sensor_count = self.session.counts()
        return changes

    async def snapshot(self, timeout_s: float | None = None) -> bytes:
        # In a worker thread: commits and acks go on meanwhile (20,000 sensors take ~10 s).
        # The agent's lock is held, so nothing changes the models during it.
        return await asyncio.to_thread(self.session.snapshot)


class WorkerDetection(DetectionHost):
    """The session in a child process; see the module docstring."""

    def __init__(self, gateway_id: str, settings: DetectionSettings,
                 profiles: Mapping[str, SensorProfile], assets: Mapping[str, AssetProfile],
                 *, command: Sequence[str] | None = None, call_timeout_s: float = 15.0,
                 slow_call_timeout_s: float = 120.0) -> None:
        self._init = (gateway_id, settings, dict(profiles), dict(assets))
        self._command = list(command or (sys.executable, "-m", "edge.agents.detection_worker"))
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()  # one call at a time on the pipe
        self._broken = False  # a call went unanswered: the pipe is out of step, killed
        self.pid: int | None = None
        # The longest a call may take before the worker counts as stuck (and is replaced),
        # far above the slowest real one: a stuck worker blinds detection (datasheet limits
        # included) and holds up operators' decisions until then.
        self.call_timeout_s = call_timeout_s
        self.slow_call_timeout_s = slow_call_timeout_s

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self._command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self.pid = self._process.pid
        self._broken = False
        self.open_count = self.sensor_count = 0
        await self._call("init", *self._init)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # end of input: the worker exits
        try:
            await asyncio.wait_for(process.wait(), 10.0)
        except TimeoutError:
            process.kill()
            await process.wait()

    def abandon(self) -> None:
        """Kill the worker and refuse calls until `restart` (it holds a half-built state)."""
        self._broken = True
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()

    async def restart(self) -> None:
        """A new worker with empty models (the agent restores them)."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        await self.start()

    async def _call(self, name: str, *args: Any, timeout_s: float | None = None) -> Any:
        if timeout_s is None:
            timeout_s = self.slow_call_timeout_s if name in _SLOW_CALLS else self.call_timeout_s
        async with self._lock:
            process = self._process
            if process is None or process.stdin is None or process.stdout is None \
                    or self._broken:
                raise DetectionWorkerError("the detection worker is not running")
            frame = pickle.dumps((name, args), protocol=pickle.HIGHEST_PROTOCOL)
            answered = False
            try:
                async with asyncio.timeout(timeout_s):  # a stopped worker's pipe fills up too
                    process.stdin.write(len(frame).to_bytes(HEADER_BYTES, "big"))
                    process.stdin.write(frame)
                    await process.stdin.drain()
                    size = int.from_bytes(await process.stdout.readexactly(HEADER_BYTES), "big")
                    reply = await process.stdout.readexactly(size)
                try:
                    ok, result, counts = pickle.loads(reply)
                except Exception as exc:  # an answer that cannot be read is no answer
                    raise DetectionWorkerError(
                        f"the detection worker (pid {process.pid}) answered {name!r} with an "
                        f"unreadable reply: {exc!r}") from exc
                answered = True
            except TimeoutError as exc:  # stopped or stuck: as good as dead
                raise DetectionWorkerError(
                    f"the detection worker (pid {process.pid}) did not answer {name!r} within "
                    f"{timeout_s:g} s; killed") from exc
            except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError) as exc:
                code = process.returncode
                raise DetectionWorkerError(
                    f"the detection worker (pid {process.pid}) is gone"
                    + (f", exit {code}" if code is not None else "")) from exc
            finally:
                if not answered:  # timed out, gone, or cancelled mid-call: out of step
                    self._broken = True
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
        self.open_count, self.sensor_count = counts
        if not ok:
            raise result
        return result
