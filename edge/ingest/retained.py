"""RetainedMemory: what the pipeline took from topics that carry retained MQTT messages.

The broker resends a topic's retained message on every (re-)subscribe (MQTT 3.1.1) or for
a new subscription (MQTT 5); taking it again would store the same value once more, stamped
with a new arrival (field trial item 8). So per topic that carries retained messages, the
digest of what it last delivered is remembered (table `retained_taken`):
- a message with the retain flag whose payload was taken before is skipped; a new one is
  taken and written in the same transaction as its readings (rare: only on subscribe);
- a live message on such a topic updates the memory too: a value published while the
  gateway was away arrives once queued and once more as the retained copy. Those updates
  are written once a minute and at shutdown, not one upsert per live message; after a
  kill -9 the last minute's may be lost, and such a copy is then taken once more (flagged);
- a replayed quarantine row never touches it (the broker did not deliver it now);
- it stays bounded: topics not seen for `ingest.sensor_idle_release_s` are forgotten, and at
  most `ingest.max_sensors` topics are kept, the least recently seen going first.
"""

from __future__ import annotations

import hashlib

from edge.ingest.ports import ReadingsWriter
from edge.records import RetainedTaken

PERSIST_EVERY_US = 60_000_000


class RetainedMemory:
    def __init__(self, max_topics: int, forget_after_s: float) -> None:
        self._max = max_topics
        self._forget_us = int(forget_after_s * 1_000_000)
        self._seen: dict[str, RetainedTaken] = {}
        self._unwritten: dict[str, RetainedTaken] = {}  # live updates not yet in the buffer
        self._next_write_us = 0

    def __contains__(self, topic: str) -> bool:
        return topic in self._seen

    async def load(self, writer: ReadingsWriter, now_us: int) -> None:
        """Recall what was taken before (the buffer forgets what is stale or beyond the cap)."""
        self._seen = await writer.retained_taken(now_us - self._forget_us, self._max)
        self._next_write_us = now_us + PERSIST_EVERY_US

    def taken_before(self, topic: str, payload: bytes, received_us: int, retained: bool,
                     to_write: list[RetainedTaken]) -> bool:
        """True for a retained copy of what was taken; notes the message otherwise.

        A retained message that is taken goes into `to_write` (its batch's transaction).
        """
        entry = RetainedTaken(topic, hashlib.blake2b(payload, digest_size=16).digest(),
                              received_us)
        known = self._seen.get(topic)
        self._seen[topic] = entry
        if retained and known is not None and known.digest == entry.digest:
            self._unwritten[topic] = entry  # seen again: not to be forgotten as stale
            return True
        if retained:
            to_write.append(entry)
            self._unwritten.pop(topic, None)
        else:
            self._unwritten[topic] = entry
        if len(self._seen) > self._max:
            self._keep_most_recent(self._max)
        return False

    def due(self, now_us: int, final: bool = False) -> list[RetainedTaken]:
        """Live updates to write now: once a minute, and all of them at the end."""
        if not self._unwritten or (not final and now_us < self._next_write_us):
            return []
        self._next_write_us = now_us + PERSIST_EVERY_US
        due = list(self._unwritten.values())
        self._unwritten.clear()
        cutoff_us = now_us - self._forget_us
        self._seen = {t: e for t, e in self._seen.items() if e.taken_us >= cutoff_us}
        return due

    def _keep_most_recent(self, count: int) -> None:
        recent = sorted(self._seen.values(), key=lambda e: e.taken_us, reverse=True)[:count]
        self._seen = {entry.topic: entry for entry in recent}
        self._unwritten = {t: e for t, e in self._unwritten.items() if t in self._seen}
