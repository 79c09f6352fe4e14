"""Broker restarts, the broker's queue limit, a poison message in a backlog, SIGTERM under load."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.support.gateway import GatewayProcess, buffer_rows, gateway_config, wait_for_rows
from tests.support.load import BackgroundPublisher, reading_message, reconcile
from tests.support.publish import publish_all
from tests.support.services import Broker, running_broker


def _values(gateway: GatewayProcess) -> list[float]:
    return [v for (v,) in buffer_rows(gateway.buffer_path, "SELECT value FROM readings")]


def test_broker_restart_under_load_loses_nothing(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway()
    gateway.start()
    publisher = BackgroundPublisher(broker.port, 20_000).start()
    wait_for_rows(gateway.buffer_path, "readings", 5_000)
    broker.stop()  # SIGTERM: Mosquitto saves its persistent store
    time.sleep(1.0)
    broker.start()
    publisher.join()
    assert wait_for_rows(gateway.buffer_path, "readings", 20_000, timeout_s=90) == 20_000
    assert gateway.alive()
    assert gateway.terminate() == 0
    reconcile(20_000, _values(gateway), "buffer")


def _backlog_delivered(tmp_path: Path, recommended: bool, count: int) -> int:
    """Messages a stopped gateway gets back from a broker with or without our config."""
    with running_broker(tmp_path / f"broker-{recommended}",
                        use_recommended_config=recommended) as broker:
        gateway = GatewayProcess(tmp_path / f"gw-{recommended}",
                                 gateway_config(broker.port, tmp_path / f"gw-{recommended}.sqlite"))
        try:
            gateway.start()
            assert gateway.terminate() == 0  # the persistent session now exists
            publish_all(broker.port, (reading_message(k) for k in range(count)))
            gateway.start()
            delivered = wait_for_rows(gateway.buffer_path, "readings", count,
                                      timeout_s=20 if recommended else 6)
            assert gateway.terminate() == 0
        finally:
            if gateway.alive():
                gateway.kill()
        if not recommended:
            assert "Outgoing messages are being dropped" in broker.log_text()
        return delivered


def test_the_recommended_broker_config_keeps_what_mosquittos_default_drops(tmp_path: Path) -> None:
    default = _backlog_delivered(tmp_path, recommended=False, count=3_000)
    recommended = _backlog_delivered(tmp_path, recommended=True, count=3_000)
    print(f"\nreconciliation: published 3000 while the daemon was down / delivered with "
          f"Mosquitto defaults {default} / with config/mosquitto.conf {recommended}")
    assert default <= 1_100, "the default max_queued_messages (1000) drops the rest"
    assert recommended == 3_000


def test_a_poison_message_in_a_backlog_is_quarantined_and_the_rest_flows(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway()
    gateway.start()
    assert gateway.terminate() == 0
    backlog = [reading_message(k) for k in range(4_000)]
    backlog.insert(2_000, ("factory/site1/asset-1/vib", b"\xff\xfe{poison"))
    publish_all(broker.port, backlog)
    gateway.start()
    assert wait_for_rows(gateway.buffer_path, "readings", 4_000) == 4_000
    assert wait_for_rows(gateway.buffer_path, "quarantine", 1) == 1
    assert gateway.terminate() == 0
    gateway.start()  # nothing comes back: the poison message was acknowledged too
    time.sleep(1.0)
    assert gateway.terminate() == 0
    assert buffer_rows(gateway.buffer_path, "SELECT count(*) FROM quarantine")[0][0] == 1
    reconcile(4_000, _values(gateway), "buffer")


def test_sigterm_under_load_exits_0_within_the_deadline_and_loses_nothing(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway(gateway={"id": "gw-test", "shutdown_timeout_s": 10})
    gateway.start()
    publisher = BackgroundPublisher(broker.port, 30_000).start()
    wait_for_rows(gateway.buffer_path, "readings", 8_000)
    started = time.monotonic()
    assert gateway.terminate(timeout_s=30) == 0
    stopped_in = time.monotonic() - started
    assert stopped_in < 10 + 5, f"took {stopped_in:.1f} s"
    gateway.start()
    publisher.join()
    assert wait_for_rows(gateway.buffer_path, "readings", 30_000, timeout_s=90) == 30_000
    assert gateway.terminate() == 0
    print(f"\nSIGTERM under load: stopped in {stopped_in:.2f} s")
    reconcile(30_000, _values(gateway), "buffer")
