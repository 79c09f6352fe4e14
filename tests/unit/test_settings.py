"""Settings: YAML + environment, secrets from files, and exit code 2 naming the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.cli import main
from edge.detection.settings import merged
from edge.errors import ConfigError
from edge.settings import config_warnings, load_settings
from tests.support.services import REPO_ROOT, env_without_edge_vars

VALID = {
    "gateway": {"id": "gw-1"},
    "mqtt": {"subscriptions": [{"topic": "factory/#", "template": "factory/{site}/{asset}/{sensor}"}]},
}


def _write(tmp_path: Path, config: object, name: str = "edge.yaml") -> Path:
    path = tmp_path / name
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def _with(section: str, **values: object) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(VALID))
    config.setdefault(section, {}).update(values)
    return config


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("EDGE_"):
            monkeypatch.delenv(name)


def _mapped(mapping: dict[str, object], template: str = "p/{site}/{asset}",
            topic: str = "p/+/+") -> dict[str, Any]:
    """VALID with one `codec: mapping` subscription."""
    return _with("mqtt", subscriptions=[{"topic": topic, "template": template,
                                         "codec": "mapping", "mapping": mapping}])


_WIDE = {"path": "values.*", "sensor": "x/{key}"}
# Review of issue 13 (F1, F14, F15): mappings that passed check-config, then crashed the
# daemon or quarantined every message.
MAPPING_CONFIGS: list[tuple[str, object, str]] = [
    ("topic level named key", _mapped({"values": [_WIDE]}, "h/m6/{key}", "h/m6/+"),
     "mqtt.subscriptions.0.template: {key} and {index} are reserved"),
    ("topic level named index", _mapped({"values": [{"path": "v", "sensor": "{site}/temp"}]},
                                        "p/{site}/{index}/t", "p/+/+/t"),
     "mqtt.subscriptions.0.template: {key} and {index} are reserved"),
    (".* with {index}", _mapped({"values": [{"path": "values.*", "sensor": "{asset}/{index}"}]}),
     "mqtt.subscriptions.0.mapping.values.0.sensor: a .* path maps many values: "
     "the sensor template needs {key}"),
    ("[*] with {key}", _mapped({"values": [{"path": "arr[*]", "sensor": "{asset}/a{key}"}]}),
     "mqtt.subscriptions.0.mapping.values.0.sensor: a [*] path maps many values: "
     "the sensor template needs {index}"),
    ("asset from {key}", _mapped({"asset": "{key}", "values": [_WIDE]}),
     "mqtt.subscriptions.0.mapping.asset"),
    ("wildcard ts path", _mapped({"ts": {"path": "times.*", "format": "epoch_ms"},
                                  "values": [_WIDE]}),
     "mqtt.subscriptions.0.mapping.ts.path"),
    ("wildcard quality path", _mapped({"quality": {"path": "q[*]"}, "values": [_WIDE]}),
     "mqtt.subscriptions.0.mapping.quality.path"),
    ("bad strftime directive", _mapped({"ts": {"path": "t", "format": "strftime:%Q %H",
                                               "zone": "UTC"}, "values": [_WIDE]}),
     "mqtt.subscriptions.0.mapping.ts.format: strftime format '%Q %H' cannot read"),
    ("scale not finite", _mapped({"values": [{**_WIDE, "scale": float("nan")}]}),
     "mqtt.subscriptions.0.mapping.values.0.scale: Input should be a finite number"),
    ("offset not finite", _mapped({"values": [{**_WIDE, "offset": float("inf")}]}),
     "mqtt.subscriptions.0.mapping.values.0.offset: Input should be a finite number"),
    ("states with kind number", _mapped({"values": [
        {"path": "s", "sensor": "x/s", "states": {"A": "a"}, "kind": "number"}]}),
     "mqtt.subscriptions.0.mapping.values.0.kind: kind: number contradicts states"),
    ("scale with states", _mapped({"values": [
        {"path": "s", "sensor": "x/s", "states": {"A": "a"}, "scale": 0.1}]}),
     "mqtt.subscriptions.0.mapping.values.0.states: states are names"),
    ("unit with kind state", _mapped({"values": [
        {"path": "s", "sensor": "x/s", "unit": "A", "kind": "state"}]}),
     "mqtt.subscriptions.0.mapping.values.0.kind: kind: state contradicts ['unit']"),
    ("YAML boolean states", _mapped({"values": [
        {"path": "s", "sensor": "x/s", "states": {True: "running", False: "stopped"}}]}),
     "quote it, e.g. {'true': running"),
    ("sparkplug sensor_id without metric", {**VALID, "sparkplug": {"sensor_id": "{group}/{node}"}},
     "sparkplug.sensor_id: needs {metric}"),
]

# (case, config, text the error line must contain)
BROKEN_CONFIGS: list[tuple[str, object, str]] = [*MAPPING_CONFIGS,
    ("unknown top-level key", {**VALID, "mqqt": {}}, "mqqt: unknown key"),
    ("unknown nested key", _with("mqtt", hots="x"), "mqtt.hots: unknown key"),
    ("port out of range", _with("mqtt", port=70000), "mqtt.port"),
    ("empty broker host", _with("mqtt", host=""), "mqtt.host: String should have at least 1 character"),
    ("empty http host", _with("http", host=""), "http.host: String should have at least 1 character"),
    ("port not a number", _with("mqtt", port="eighty"), "mqtt.port"),
    ("missing gateway id", {"mqtt": VALID["mqtt"], "gateway": {}}, "gateway.id: required key is missing"),
    ("bad gateway id", _with("gateway", id="has spaces"), "gateway.id"),
    ("bad qos", _with("mqtt", subscriptions=[{"topic": "a/#", "qos": 3}]), "mqtt.subscriptions.0.qos"),
    ("bad wildcard", _with("mqtt", subscriptions=[{"topic": "a/#/b"}]), "mqtt.subscriptions.0.topic"),
    ("template placeholder", _with("mqtt", subscriptions=[{"topic": "a/+", "template": "a/{machine}"}]),
     "mqtt.subscriptions.0.template"),
    ("synchronous level", _with("buffer", synchronous="OFF"), "buffer.synchronous"),
    ("infinite learning time", _with("detection", learning={"duration_s": float("inf")}),
     "detection.learning.duration_s: Input should be a finite number"),
    ("NaN resolve time", _with("detection", resolve_after_s=float("nan")),
     "detection.resolve_after_s: Input should be a finite number"),
    ("infinite keep_synced_s", _with("central", keep_synced_s=float("inf")),
     "central.keep_synced_s: Input should be a finite number"),
    ("infinite forecast horizon", _with("prediction", horizon_s=float("inf")),
     "prediction.horizon_s: Input should be a finite number"),
    ("negative batch delay", _with("buffer", max_batch_delay_ms=-1), "buffer.max_batch_delay_ms"),
    ("unknown unit", {**VALID, "sensors": {"p1/t": {"unit": "furlongs"}}}, "sensors.p1/t.unit"),
    ("missing password file", _with("mqtt", password_file="/nonexistent/secret"), "mqtt"),
    ("tls cert without key", _with("mqtt", tls={"enabled": True, "cert_file": "/c.pem"}), "mqtt.tls"),
    ("drift spans reversed", {**VALID, "detection": {"defaults": {"drift": {"fast_span": 2000}}}},
     "detection.defaults: drift: fast_span (2000) must be below slow_span (1000)"),
    ("override drift spans reversed once merged",
     {**VALID, "detection": {"defaults": {"drift": {"slow_span": 300}}},
      "sensors": {"p1/t": {"detection": {"drift": {"fast_span": 500}}}}},
     "sensors.p1/t.detection.drift: fast_span (500) must be below slow_span (300)"),
    ("asset sensors reversed", {**VALID, "detection": {"asset_model": {"min_sensors": 40}}},
     "detection.asset_model: min_sensors must be <= max_sensors"),
    ("not a mapping", "- just\n- a list\n", "top level must be a mapping"),
    ("invalid YAML", "gateway: {id: [unclosed\n", "invalid YAML"),
]


@pytest.mark.parametrize(("case", "config", "expected"), BROKEN_CONFIGS,
                         ids=[case for case, _, _ in BROKEN_CONFIGS])
def test_broken_config_exits_2_naming_the_field_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, config: object, expected: str
) -> None:
    path = _write(tmp_path, config)
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert str(path) in err


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_every_problem_gets_its_own_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _with("mqtt", port=0, keepalive_s=1)
    assert main(["check-config", "--config", str(_write(tmp_path, config))]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert any("mqtt.port" in line for line in lines) and any("mqtt.keepalive_s" in line for line in lines)


def test_environment_overrides_yaml_with_double_underscore_nesting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_MQTT__HOST", "broker.plant")
    monkeypatch.setenv("EDGE_BUFFER__SYNCHRONOUS", "NORMAL")
    settings = load_settings(_write(tmp_path, VALID))
    assert settings.mqtt.host == "broker.plant"
    assert settings.buffer.synchronous == "NORMAL"
    assert settings.gateway.id == "gw-1"


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_MQTT__PORT", "not-a-port")
    with pytest.raises(ConfigError) as error:
        load_settings(_write(tmp_path, VALID))
    assert "mqtt.port" in str(error.value) and "EDGE_MQTT__PORT" in str(error.value)


def test_unknown_environment_section_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_MQQT__HOST", "x")
    with pytest.raises(ConfigError, match="EDGE_MQQT__HOST"):
        load_settings(_write(tmp_path, VALID))


def test_secret_from_file_is_used_and_masked_in_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "mqtt_password"
    secret.write_text("s3cr3t-Pa55\n")
    path = _write(tmp_path, _with("mqtt", username="edge", password_file=str(secret)))
    settings = load_settings(path)
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "s3cr3t-Pa55"
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t-Pa55" not in out
    assert "password: '**********'" in out


def test_password_and_password_file_together_is_an_error(tmp_path: Path) -> None:
    secret = tmp_path / "p"
    secret.write_text("x")
    with pytest.raises(ConfigError, match="not both"):
        load_settings(_write(tmp_path, _with("mqtt", password="a", password_file=str(secret))))


@pytest.mark.parametrize("name", ["edge.yaml", "edge.example.yaml"])
def test_shipped_configs_validate_against_the_model(name: str) -> None:
    settings = load_settings(REPO_ROOT / "config" / name)
    assert settings.gateway.id


def test_run_with_bad_config_exits_2_as_a_process(tmp_path: Path) -> None:
    path = _write(tmp_path, _with("mqtt", port=-1))
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(path)],
                            check=False, capture_output=True, text=True, timeout=30, cwd=REPO_ROOT,
                            env=env_without_edge_vars())
    assert result.returncode == 2
    assert "mqtt.port" in result.stderr and str(path) in result.stderr


def test_no_sensor_id_warning_for_mapping_and_sparkplug_subscriptions(tmp_path: Path) -> None:
    """F15: every `codec: mapping` subscription got the warning that only payloads with a
    sensor_id are accepted, which is about `auto` only (5 spurious lines for the cookbook)."""
    config = _mapped({"values": [{"path": "*", "sensor": "{asset}/{key}"}]})
    config["mqtt"]["subscriptions"] += [
        {"topic": "spBv1.0/G/#", "codec": "sparkplug_b"}, {"topic": "a/+", "template": "a/{asset}"}]
    warnings = config_warnings(load_settings(_write(tmp_path, config)))
    assert [w.split(":")[0] for w in warnings] == ["mqtt.subscriptions.2"], warnings


def test_check_config_warns_when_a_wildcard_and_a_path_give_one_field_one_sensor_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """F13: `*` took `state` raw while `state` was also mapped with `states`: the mapped
    value was refused as conflicting_duplicate on every message."""
    config = _mapped({"values": [
        {"path": "*", "sensor": "{asset}/{key}", "exclude": ["ts"]},
        {"path": "state", "sensor": "{asset}/state", "states": {"RUNNING": "running"}}]})
    assert main(["check-config", "--config", str(_write(tmp_path, config))]) == 0
    err = capsys.readouterr().err
    assert "mqtt.subscriptions.0.mapping: values.0 ('*') also maps 'state', which values.1 " \
           "reads, into the same sensor '{asset}/state': one of the two values is refused " \
           "(conflicting_duplicate) on every message with that field (add exclude: [state] " \
           "to values.0)" in err, err
    config["mqtt"]["subscriptions"][0]["mapping"]["values"][0]["exclude"] = ["ts", "state"]
    assert config_warnings(load_settings(_write(tmp_path, config))) == []
    # The cookbook's shape 2: another object's field, another id: no warning.
    assert config_warnings(load_settings(_write(tmp_path, _mapped({"values": [
        {"path": "data.motor.current", "sensor": "{asset}/motor_current", "scale": 0.1},
        {"path": "data.motor.temps.*", "sensor": "{asset}/{key}"},
        {"path": "arr[*]", "sensor": "{asset}/a{index}"},
        {"path": "arr[2]", "sensor": "{asset}/third"}]})))) == []
    assert config_warnings(load_settings(_write(tmp_path, _mapped({"values": [
        {"path": "arr[*]", "sensor": "{asset}/a{index}"},
        {"path": "arr[2]", "sensor": "{asset}/a2", "kind": "number"}]})))) == [
        "mqtt.subscriptions.0.mapping: values.0 ('arr[*]') also maps 'arr[2]', which values.1 "
        "reads, into the same sensor '{asset}/a2': one of the two values is refused "
        "(conflicting_duplicate) on every message with that field"]


def test_check_config_warns_when_subscriptions_with_other_codecs_overlap(tmp_path: Path) -> None:
    """A topic two subscriptions match is read by the first listed only: `ov/#` (auto) before
    `ov/+/t` (mapping) silently never used the mapping (issue 13 review F15)."""
    config = _mapped({"values": [_WIDE]}, "ov/{asset}/t", "ov/+/t")
    mapped = config["mqtt"]["subscriptions"][0]
    config["mqtt"]["subscriptions"] = [{"topic": "ov/#", "qos": 1}, mapped]
    [warning] = config_warnings(load_settings(_write(tmp_path, config)))
    assert warning.startswith("mqtt.subscriptions.1: topic 'ov/+/t' (codec mapping) overlaps "
                              "mqtt.subscriptions.0: 'ov/#' (codec auto)"), warning
    config["mqtt"]["subscriptions"] = [mapped, {"topic": "other/#", "qos": 1}]
    assert config_warnings(load_settings(_write(tmp_path, config))) == []


def test_a_partial_drift_override_is_judged_merged_onto_the_defaults(tmp_path: Path) -> None:
    """slow_span 20 alone is below the class default fast span (30), but the configured
    defaults make the fast span 10: merged, the sensor's drift is valid."""
    config = {**VALID, "detection": {"defaults": {"drift": {"fast_span": 10}}},
              "sensors": {"p1/t": {"detection": {"drift": {"slow_span": 20}}}}}
    settings = load_settings(_write(tmp_path, config))
    override = settings.sensors["p1/t"].detection
    assert override is not None
    drift = merged(settings.detection.defaults, override).drift
    assert (drift.fast_span, drift.slow_span) == (10, 20)
