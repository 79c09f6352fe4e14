"""Field trial: configuration mistakes are caught at load time and name their real source."""

from __future__ import annotations

from pathlib import Path

from tests.field.support import run_cli, write_config

BASE = {"gateway": {"id": "gw"}, "buffer": {"path": "/tmp/edge-field-unused/buffer.sqlite"}}


def _mqtt(*subscriptions: dict[str, object]) -> dict[str, object]:
    return {"mqtt": {"subscriptions": list(subscriptions)}}


def test_a_template_that_can_never_match_its_topic_filter_is_a_config_error(tmp_path: Path) -> None:
    """Item 13: topic tm/+/+ with template tm/{asset}: every message would be quarantined."""
    config = write_config(tmp_path / "edge.yaml", {
        **BASE, **_mqtt({"topic": "tm/+/+", "template": "tm/{asset}"})})
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2, result.stdout
    assert "mqtt.subscriptions.0" in result.stderr and "tm/{asset}" in result.stderr
    fine = write_config(tmp_path / "fine.yaml", {**BASE, **_mqtt(
        {"topic": "tm/+/+", "template": "tm/{asset}/{sensor}"},
        {"topic": "plant/#", "template": "plant/{site}/{asset}/{sensor}"})})
    assert run_cli("check-config", "--config", str(fine)).returncode == 0
