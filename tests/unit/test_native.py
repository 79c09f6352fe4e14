"""The compiled detection build (setup.py, mypyc): what is compiled, and what crosses a pipe."""

from __future__ import annotations

import ast
import os
import pickle
from datetime import UTC, datetime
from pathlib import Path

from edge.detection.engine import SnapshotReport
from edge.detection.lifecycle import AlertChange
from edge.detection.native import COMPILED, build, stale
from edge.records import AlertRecord

ROOT = Path(__file__).resolve().parents[2]


def test_setup_compiles_exactly_the_modules_the_package_reports() -> None:
    tree = ast.parse((ROOT / "setup.py").read_text())
    listed = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "COMPILED" for t in node.targets))
    assert ast.literal_eval(listed) == list(COMPILED)


def test_the_checkout_runs_the_compiled_models_and_they_are_fresh() -> None:
    """`make install` compiles them; a test run on stale ones would test old code."""
    if os.environ.get("EDGE_PURE_PYTHON") != "1":
        assert build() == "compiled (mypyc)"
    assert stale() == []


def test_what_the_worker_sends_back_unpickles() -> None:
    """A compiled frozen class unpickles through its constructor only (its __reduce__)."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    alert = AlertRecord(alert_id="a1", asset_id=None, sensor_id="s1", detector="outlier",
                        severity="warning", state="open", reason="level", opened_at=now,
                        updated_at=now, value=1.0, details={"accepted": "extreme"})
    change = pickle.loads(pickle.dumps(AlertChange("open", alert)))
    assert (change.change, change.alert) == ("open", alert)
    report = pickle.loads(pickle.dumps(SnapshotReport(3, 1, {"s9": "settings changed"})))
    assert (report.sensors_restored, report.assets_restored, report.skipped) == \
        (3, 1, {"s9": "settings changed"})
