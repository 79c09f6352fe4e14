"""The compiled detection build (setup.py, mypyc): what is compiled, and what crosses a pipe."""

from __future__ import annotations

import ast
import os
import pickle
from datetime import UTC, datetime
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from edge.detection import native
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


def test_stale_names_the_sources_edited_since_the_build_in_a_checkout_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled module's own source, and the ones it takes types from (settings.py is not
    compiled, records.py is outside the package): an edit to any of them needs a rebuild."""
    package = tmp_path / "edge" / "detection"
    package.mkdir(parents=True)
    for name in ("tails", "drift", "settings"):
        (package / f"{name}.py").write_text("")
        os.utime(package / f"{name}.py", (500, 500))  # built after its last edit
    (tmp_path / "edge" / "records.py").write_text("")
    os.utime(tmp_path / "edge" / "records.py", (500, 500))
    for name in ("tails", "drift"):
        extension = package / f"{name}{EXTENSION_SUFFIXES[0]}"
        extension.write_bytes(b"")
        os.utime(extension, (1_000, 1_000))
    monkeypatch.setattr(native, "_PACKAGE_DIR", str(package))
    assert native.compiled_modules() == ["drift", "tails"]
    os.utime(package / "tails.py", (2_000, 2_000))
    os.utime(package / "settings.py", (2_000, 2_000))
    os.utime(tmp_path / "edge" / "records.py", (2_000, 2_000))
    assert native.stale() == []  # no setup.py: an installed package, not a checkout
    (tmp_path / "setup.py").write_text("")
    assert native.stale() == ["edge/detection/settings.py", "edge/detection/tails.py",
                              "edge/records.py"]
