"""Following committed readings: what agents that judge readings share.

The pipeline never waits for an agent: when an agent's bus queue is full, the event is
dropped for it. An agent that must see every reading remembers the buffer sequence number
of the last one it took, and reads what it missed from the buffer, in order, in chunks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from edge.records import Reading, ReadingRow

CATCH_UP_CHUNK = 20_000


class ReadingsSource(Protocol):
    """The buffer's readings, for warm-ups after a restart and for catching up."""

    async def recent_readings(self, since_received_us: int, up_to_seq: int,
                              limit: int = ...) -> list[Reading]: ...

    async def readings_after(self, after_seq: int, limit: int) -> list[ReadingRow]: ...

    async def last_seq(self) -> int: ...


async def catch_up(source: ReadingsSource, after_seq: int, up_to_seq: int,
                   take: Callable[[list[Reading], int], Awaitable[None]],
                   chunk: int = CATCH_UP_CHUNK) -> None:
    """Hand the readings after `after_seq` up to `up_to_seq` to `take`, chunk by chunk,
    with the seq of the chunk's last reading (the caller's new position once taken).

    The target is fixed by the caller, so a long backlog does not run after a moving end;
    `take` runs per chunk, so results (alerts) go out early.
    """
    async def take_readings(rows: list[ReadingRow], position: int) -> None:
        await take([Reading._make(row[1:]) for row in rows], position)

    await catch_up_rows(source, after_seq, up_to_seq, take_readings, chunk)


async def catch_up_rows(source: ReadingsSource, after_seq: int, up_to_seq: int,
                        take: Callable[[list[ReadingRow], int], Awaitable[None]],
                        chunk: int = CATCH_UP_CHUNK) -> None:
    """`catch_up` with the buffer's rows as they come (no conversion per reading)."""
    position = after_seq
    while position < up_to_seq:
        rows = await source.readings_after(position, chunk)
        if rows and rows[-1].seq > up_to_seq:
            rows = [row for row in rows if row.seq <= up_to_seq]
        if not rows:
            break
        position = rows[-1].seq
        await take(rows, position)
