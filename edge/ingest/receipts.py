"""MessageTrace: what happened to each message of a sink that answers a client (HTTP).

The answer to an HTTP request must say what the commit did, not what validation expected:
a reading that the buffer quarantines as `conflicting_duplicate` (same sensor and ts as
another reading, in the store or in the same batch) is not accepted (review of field trial
item 12). For such a sink the pipeline notes, per message, which element became which
reading of the batch and which elements were refused; the receipts are then settled from
the `CommitResult`'s conflicts.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge.errors import PayloadError
from edge.ingest.ports import AckToken, MessageReceipt, Rejected


class MessageTrace:
    """One message: the batch index of its first reading, and each reading's element index."""

    __slots__ = ("elements", "first", "rejected", "token")

    def __init__(self, token: AckToken, first: int) -> None:
        self.token = token
        self.first = first
        self.elements: list[int] = []
        self.rejected: list[Rejected] = []

    def reject(self, index: int | None, error: PayloadError) -> None:
        self.rejected.append(Rejected(index, error.reason, error.detail))

    def receipt(self, conflicts: Mapping[int, str]) -> MessageReceipt:
        """The receipt, given the batch indices (and details) of conflicting readings."""
        rejected = list(self.rejected)
        for offset, element in enumerate(self.elements):
            detail = conflicts.get(self.first + offset)
            if detail is not None:
                rejected.append(Rejected(element, "conflicting_duplicate", detail))
        rejected.sort(key=lambda r: -1 if r.position is None else r.position)
        return MessageReceipt(len(self.elements) - (len(rejected) - len(self.rejected)), rejected)


def settle(traces: list[MessageTrace],
           conflicts: Mapping[int, str]) -> dict[AckToken, MessageReceipt]:
    return {trace.token: trace.receipt(conflicts) for trace in traces}
