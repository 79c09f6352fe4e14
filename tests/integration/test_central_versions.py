"""The central alert and task rows hold the newest version by the gateway buffer's order,
not by time: a later version stamped earlier (two clocks) or at the same microsecond, or
the versions of a fresh buffer after a corrupt one was moved aside, still win. Real SQLite
buffers, the real syncer, the machine's real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from edge.buffer import SqliteBuffer
from edge.records import AlertRecord, DecisionRecord, TaskRecord
from edge.settings import BufferSettings, CentralSettings
from tests.integration.test_central_sync import sync_buffer
from tests.support.central import T0, central_rows, dsn_for, fresh_database


@pytest.fixture
def central_db() -> Iterator[str]:
    with fresh_database() as name:
        yield name


def _central(database: str) -> CentralSettings:
    return CentralSettings(dsn=dsn_for(database), sslmode="disable",  # type: ignore[arg-type]
                           idle_interval_s=0.05)


def _alert(state: str, updated_s: float, note: str) -> AlertRecord:
    return AlertRecord(alert_id="alert-1", asset_id="pump-1", sensor_id="pump-1/temp",
                       detector="limits", severity="critical", state=state,  # type: ignore[arg-type]
                       reason="above max", details={"note": note}, opened_at=T0,
                       updated_at=T0 + timedelta(seconds=updated_s),
                       resolved_at=T0 + timedelta(seconds=updated_s) if state != "open" else None)


def _task(state: str, updated_s: float) -> TaskRecord:
    return TaskRecord(task_id="task-1", asset_id="pump-1", cause="out_of_range", priority="high",
                      state=state, description="inspect", created_at=T0,  # type: ignore[arg-type]
                      updated_at=T0 + timedelta(seconds=updated_s))


async def _state(database: str) -> tuple[str, str]:
    rows = await central_rows(database, "SELECT (SELECT state FROM anomaly_alerts), "
                                        "(SELECT state FROM maintenance_tasks)")
    return rows[0][0], rows[0][1]


async def _append(path: Path, alerts: list[AlertRecord], tasks: list[TaskRecord]) -> None:
    async with SqliteBuffer(BufferSettings(path=path), "gw-1") as buffer:
        for alert in alerts:
            await buffer.alerts.append([alert])
        for task in tasks:
            await buffer.tasks.append([task])


async def test_a_later_version_with_an_earlier_or_equal_time_replaces_the_central_row(
    tmp_path: Path, central_db: str,
) -> None:
    path = tmp_path / "buffer.sqlite"
    central = _central(central_db)
    # Acknowledged on the gateway's clock (10 s), then resolved at the reading time (5 s).
    await _append(path, [_alert("open", 10, "acknowledged")], [_task("acknowledged", 10)])
    await sync_buffer(path, "gw-1", central)
    await _append(path, [_alert("resolved", 5, "resolved")], [_task("done", 10)])
    await sync_buffer(path, "gw-1", central)
    assert await _state(central_db) == ("resolved", "done")


async def test_a_fresh_buffers_versions_win_over_an_old_files_higher_seqs(
    tmp_path: Path, central_db: str,
) -> None:
    central = _central(central_db)
    old = tmp_path / "old.sqlite"
    await _append(old, [_alert("open", k, f"v{k}") for k in range(30)], [_task("open", 30)])
    await sync_buffer(old, "gw-1", central)
    # The old file was moved aside; its last version is salvaged into a fresh buffer.
    fresh = tmp_path / "fresh.sqlite"
    await _append(fresh, [_alert("closed", 1, "salvaged")], [_task("cancelled", 1)])
    await sync_buffer(fresh, "gw-1", central)
    assert await _state(central_db) == ("closed", "cancelled")
    rows = await central_rows(central_db, "SELECT version_seq FROM anomaly_alerts")
    assert rows[0][0] == 1


def _decision(target: str, action: str) -> DecisionRecord:
    return DecisionRecord(decision_id="wo-1001", target_kind="task", target_id=target,
                          action=action, actor="floor", note="", params={}, origin="gateway",
                          decided_at=T0, received_at=T0, outcome="applied",
                          outcome_detail="task open -> acknowledged")


async def test_one_decision_id_on_two_gateways_is_two_decisions_and_settles_no_other(
    tmp_path: Path, central_db: str,
) -> None:
    """Decision ids are chosen by whoever decides (work-order numbers): keyed by the id alone,
    the second gateway's decision was lost and could settle a pending central decision of
    another gateway or of other content (issue 12 review F1)."""
    settings = _central(central_db)
    await sync_buffer(tmp_path / "empty.sqlite", "gw-2", settings)  # the schema, gw-2 known
    await central_rows(central_db, (
        "INSERT INTO maintenance_decisions (decision_id, gateway_id, target_kind, target_id, "
        "action, actor, decided_at) VALUES ('wo-1001', 'gw-2', 'task', 'task-9', 'cancel', "
        "'office', now())"))
    for gateway, action in (("gw-1", "acknowledge"), ("gw-2", "acknowledge")):
        async with SqliteBuffer(BufferSettings(path=tmp_path / f"{gateway}.sqlite"),
                                gateway) as buffer:
            await buffer.decisions.append(_decision("task-1", action))
        await sync_buffer(tmp_path / f"{gateway}.sqlite", gateway, settings)
    rows = await central_rows(central_db, "SELECT gateway_id, target_id, action, outcome "
                                          "FROM maintenance_decisions ORDER BY gateway_id")
    assert [tuple(r) for r in rows] == [("gw-1", "task-1", "acknowledge", "applied"),
                                        ("gw-2", "task-9", "cancel", None)], \
        "gw-1's decision arrives; gw-2's pending cancel stays pending for gw-2 to answer"
