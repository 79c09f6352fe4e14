"""Field trial: configuration mistakes are caught at load time and name their real source."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from tests.field.support import run_cli, write_config
from tests.support.gateway import GatewayProcess

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


def test_an_empty_environment_variable_is_blamed_on_the_variable(tmp_path: Path) -> None:
    """Item 18: EDGE_CENTRAL__DSN= (empty) was blamed on the YAML file."""
    config = write_config(tmp_path / "edge.yaml", {**BASE, **_mqtt({"topic": "#"})})
    result = run_cli("check-config", "--config", str(config), env={"EDGE_CENTRAL__DSN": ""})
    assert result.returncode == 2
    assert "EDGE_CENTRAL__DSN" in result.stderr, result.stderr
    assert f"(in {config})" not in result.stderr, result.stderr


def test_duplicate_yaml_keys_are_an_error(tmp_path: Path) -> None:
    """Item 18: duplicate YAML keys were accepted (the last one silently won)."""
    config = tmp_path / "edge.yaml"
    config.write_text("gateway: {id: gw}\nmqtt:\n  subscriptions: [{topic: '#'}]\n"
                      "buffer:\n  path: /tmp/a.sqlite\n  path: /tmp/b.sqlite\n")
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2, result.stdout
    assert "duplicate key 'path'" in result.stderr and f"{config}:6" in result.stderr, result.stderr


def test_a_sensor_naming_an_undefined_asset_is_an_error(tmp_path: Path) -> None:
    """Item 18: sensors.x.asset: nosuch was accepted."""
    config = write_config(tmp_path / "edge.yaml", {
        **BASE, **_mqtt({"topic": "#"}), "assets": {"pump-1": {"criticality": "high"}},
        "sensors": {"pump-1/temp": {"asset": "pump-1"}, "x": {"asset": "nosuch"}}})
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2, result.stdout
    assert "sensors.x.asset" in result.stderr and "nosuch" in result.stderr, result.stderr


def test_check_config_shows_which_environment_variables_override_the_file(tmp_path: Path) -> None:
    """Item 18: the systemd unit's Environment=EDGE_BUFFER__PATH silently overrode buffer.path."""
    config = write_config(tmp_path / "edge.yaml", {**BASE, **_mqtt({"topic": "#"})})
    result = run_cli("check-config", "--config", str(config),
                     env={"EDGE_BUFFER__PATH": "/var/lib/edge-gateway/buffer.sqlite"})
    assert result.returncode == 0, result.stderr
    assert "EDGE_BUFFER__PATH overrides buffer.path" in result.stderr, result.stderr
    assert "/tmp/edge-field-unused/buffer.sqlite" in result.stderr, "the file's value is named too"


SECRET_SECTION = '{"dsn": "postgresql://edge:S3cretPw@127.0.0.1:1/db", "sslmode": "disable"}'


def test_check_config_masks_the_secrets_of_a_whole_section_from_the_environment(
    tmp_path: Path,
) -> None:
    """Review of item 18: masking looked at the variable's name only, so
    EDGE_CENTRAL='{"dsn": "postgresql://edge:S3cretPw@..."}' printed the password."""
    config = write_config(tmp_path / "edge.yaml", {
        **BASE, **_mqtt({"topic": "#"}),
        "central": {"dsn": "postgresql://edge:FileSecret@127.0.0.1:1/db"}})
    result = run_cli("check-config", "--config", str(config), env={"EDGE_CENTRAL": SECRET_SECTION})
    assert result.returncode == 0, result.stderr
    assert "EDGE_CENTRAL overrides central" in result.stderr, result.stderr
    output = result.stdout + result.stderr
    assert "S3cretPw" not in output and "FileSecret" not in output, output
    assert "sslmode" in result.stderr, "the rest of the section is still shown"


def test_the_daemon_log_masks_the_secrets_of_a_whole_section_from_the_environment(
    make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Review of item 18: `run` logged EDGE_CENTRAL's password at INFO."""
    gateway = make_gateway()
    gateway.env = {"EDGE_CENTRAL": SECRET_SECTION}
    gateway.start()
    assert gateway.terminate() == 0
    started = [r for r in gateway.log_records() if r.get("message") == "settings from the environment"]
    assert started and "EDGE_CENTRAL" in str(started[0]["overrides"]), gateway.log_text()
    assert "S3cretPw" not in gateway.log_text()


def test_an_error_blames_only_the_variable_that_set_the_failing_field(tmp_path: Path) -> None:
    """Review of item 18: any variable below the failing section was blamed: a bad dsn in
    the file with EDGE_CENTRAL__BATCH_ROWS=100 said 'in environment EDGE_CENTRAL__BATCH_ROWS'."""
    config = write_config(tmp_path / "edge.yaml", {
        **BASE, **_mqtt({"topic": "#"}), "central": {"dsn": "mysql://x/y"}})
    result = run_cli("check-config", "--config", str(config),
                     env={"EDGE_CENTRAL__BATCH_ROWS": "100"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"config error: central.dsn: dsn must start with postgresql:// (in {config})"), result.stderr
    whole = run_cli("check-config", "--config", str(config),
                    env={"EDGE_CENTRAL": '{"dsn": "mysql://x/z"}'})
    assert whole.returncode == 2
    assert "central.dsn" in whole.stderr and "(in environment EDGE_CENTRAL)" in whole.stderr, \
        whole.stderr


def test_yaml_merge_keys_load_and_duplicate_keys_are_still_errors(tmp_path: Path) -> None:
    """Review of item 18: the duplicate-key check broke YAML merge keys ('could not
    determine a constructor for the tag tag:yaml.org,2002:merge')."""
    merged = tmp_path / "edge.yaml"
    merged.write_text(
        "gateway: {id: gw}\n"
        "mqtt:\n"
        "  subscriptions:\n"
        "    - &sub {topic: 'a/#', qos: 0, template: 'a/{asset}/{sensor}'}\n"
        "    - <<: *sub\n"
        "      topic: 'b/#'\n"
        "      template: 'b/{asset}/{sensor}'\n")
    result = run_cli("check-config", "--config", str(merged))
    assert result.returncode == 0, result.stderr
    subscriptions = yaml.safe_load(result.stdout)["mqtt"]["subscriptions"]
    assert [(s["topic"], s["qos"]) for s in subscriptions] == [("a/#", 0), ("b/#", 0)]
    duplicate = tmp_path / "duplicate.yaml"
    duplicate.write_text(merged.read_text() + "      topic: 'c/#'\n")
    result = run_cli("check-config", "--config", str(duplicate))
    assert result.returncode == 2, result.stdout
    assert "duplicate key 'topic'" in result.stderr and f"{duplicate}:8" in result.stderr, \
        result.stderr


def test_a_template_that_yields_no_sensor_id_is_warned_about(tmp_path: Path) -> None:
    """Review of item 13: a template with neither {sensor} nor a sensor_id format (tm/+/+,
    tm/{site}/{asset}) passed silently; every bare number on it is quarantined."""
    config = write_config(tmp_path / "edge.yaml", {
        **BASE, **_mqtt({"topic": "tm/+/+", "template": "tm/{site}/{asset}"},
                        {"topic": "ok/+/+", "template": "ok/{asset}/{sensor}"})})
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "mqtt.subscriptions.0" in warnings[0] and "missing_sensor_id" in warnings[0]
    assert "sensor_id" in warnings[0] and "{sensor}" in warnings[0]
