"""Background QoS 1 load for fault tests, and the reconciliation line every fault test prints."""

from __future__ import annotations

import threading

import orjson

from tests.support.publish import publish_all

BASE_MS = 1_700_000_000_000


def reading_message(k: int, sensors: int = 200) -> tuple[str, bytes]:
    """Message k: a unique (sensor, ts) pair and value k, so any loss or duplicate shows."""
    return (f"factory/site1/asset-{k % 50}/vib",
            orjson.dumps({"sensor_id": f"sensor-{k % sensors}", "ts": BASE_MS + k, "value": k}))


class BackgroundPublisher:
    """Publishes messages [first, first+count) at QoS 1 on its own thread."""

    def __init__(self, port: int, count: int, first: int = 0, client_id: str = "load-publisher") -> None:
        self.count = count
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(port, first, client_id), daemon=True)

    def _run(self, port: int, first: int, client_id: str) -> None:
        try:
            publish_all(port, (reading_message(k) for k in range(first, first + self.count)),
                        client_id=client_id, timeout_s=300)
        except BaseException as exc:
            self.error = exc

    def start(self) -> BackgroundPublisher:
        self._thread.start()
        return self

    def join(self, timeout_s: float = 300) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "publisher did not finish"
        assert self.error is None, f"publisher failed: {self.error!r}"


def reconcile(published: int, stored_values: list[float], where: str) -> None:
    """Print the reconciliation line and assert: every value once, nothing else."""
    values = [int(v) for v in stored_values]
    duplicates = len(values) - len(set(values))
    print(f"\nreconciliation: published {published} / {where} {len(set(values))} / "
          f"duplicates {duplicates}")
    assert duplicates == 0
    assert set(values) == set(range(published)), \
        f"missing {len(set(range(published)) - set(values))} readings"
