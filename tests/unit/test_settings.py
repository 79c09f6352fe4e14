"""Settings: YAML + environment, secrets from files, and exit code 2 naming the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge.cli import main
from edge.errors import ConfigError
from edge.settings import load_settings
from tests.support.services import REPO_ROOT, env_without_edge_vars

VALID = {
    "gateway": {"id": "gw-1"},
    "mqtt": {"subscriptions": [{"topic": "factory/#", "template": "factory/{site}/{asset}/{sensor}"}]},
}


def _write(tmp_path: Path, config: object, name: str = "edge.yaml") -> Path:
    path = tmp_path / name
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def _with(section: str, **values: object) -> dict[str, object]:
    config = yaml.safe_load(yaml.safe_dump(VALID))
    config.setdefault(section, {}).update(values)
    return config


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("EDGE_"):
            monkeypatch.delenv(name)


# (case, config, text the error line must contain)
BROKEN_CONFIGS: list[tuple[str, object, str]] = [
    ("unknown top-level key", {**VALID, "mqqt": {}}, "mqqt: unknown key"),
    ("unknown nested key", _with("mqtt", hots="x"), "mqtt.hots: unknown key"),
    ("port out of range", _with("mqtt", port=70000), "mqtt.port"),
    ("port not a number", _with("mqtt", port="eighty"), "mqtt.port"),
    ("missing gateway id", {"mqtt": VALID["mqtt"], "gateway": {}}, "gateway.id: required key is missing"),
    ("bad gateway id", _with("gateway", id="has spaces"), "gateway.id"),
    ("bad qos", _with("mqtt", subscriptions=[{"topic": "a/#", "qos": 3}]), "mqtt.subscriptions.0.qos"),
    ("bad wildcard", _with("mqtt", subscriptions=[{"topic": "a/#/b"}]), "mqtt.subscriptions.0.topic"),
    ("template placeholder", _with("mqtt", subscriptions=[{"topic": "a/+", "template": "a/{machine}"}]),
     "mqtt.subscriptions.0.template"),
    ("synchronous level", _with("buffer", synchronous="OFF"), "buffer.synchronous"),
    ("negative batch delay", _with("buffer", max_batch_delay_ms=-1), "buffer.max_batch_delay_ms"),
    ("unknown unit", {**VALID, "sensors": {"p1/t": {"unit": "furlongs"}}}, "sensors.p1/t.unit"),
    ("missing password file", _with("mqtt", password_file="/nonexistent/secret"), "mqtt"),
    ("tls cert without key", _with("mqtt", tls={"enabled": True, "cert_file": "/c.pem"}), "mqtt.tls"),
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
