"""The composition root: builds every part from the settings and runs them together.

Start order: buffer, webhook, agents, bus, HTTP, pipeline, MQTT, central sync. Stop order
is the reverse, in phases, all within `gateway.shutdown_timeout_s`: intake stops and what
arrived is committed and acknowledged; the agents handle what the bus holds while MQTT is
still connected (so their notifications go out); MQTT leaves; the syncer makes a last sync;
then the bus workers are cancelled and the agents stop (saving their positions).
This is the only module of `edge` that reaches `cloud_sync`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from typing import TYPE_CHECKING

from edge import __version__
from edge.agents import AgentRegistry
from edge.agents.anomaly import AnomalyDetectionAgent
from edge.agents.maintenance import MaintenanceSchedulerAgent
from edge.agents.notification import NotificationAgent
from edge.agents.prediction import PredictionAgent
from edge.api import DaemonApi
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.native import build as detection_build
from edge.detection.native import stale as stale_detection_modules
from edge.http.app import create_app
from edge.http.server import HttpServer
from edge.ingest.http_source import HttpSource
from edge.ingest.mqtt_source import MqttSource
from edge.ingest.pipeline import IngestPipeline
from edge.ingest.replay import QuarantineReplay
from edge.ingest.sensors import SensorRegistry
from edge.ingest.sparkplug.codec import SparkplugCodec
from edge.ingest.topics import NotificationTopics, TopicMapper
from edge.ingest.validation import ReadingValidator
from edge.metrics import GatewayMetrics
from edge.notify.webhook import WebhookSender
from edge.operator.commands import CommandHandler
from edge.operator.service import AlertRouter, Decider, DecisionService
from edge.prediction.predictor import DETECTOR as FORECAST
from edge.records import TargetKind
from edge.settings import Settings
from edge.systemd import SystemdNotifier

if TYPE_CHECKING:
    from cloud_sync.syncer import CentralSyncer

log = logging.getLogger(__name__)


class Gateway:
    """All running parts of one gateway, wired from its settings."""

    def __init__(self, settings: Settings, metrics: GatewayMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or GatewayMetrics()
        self.bus = EventBus(self.metrics)
        self.agents = AgentRegistry()
        self.buffer = SqliteBuffer(settings.buffer, settings.gateway.id, self.metrics)
        mapper = TopicMapper(settings.mqtt.subscriptions, NotificationTopics(
            settings.notifications.topic_prefix, settings.gateway.id))
        validator = ReadingValidator(settings.ingest, settings.sensors, SensorRegistry(
            settings.ingest.max_sensors, settings.ingest.sensor_idle_release_s, settings.sensors))
        self.sparkplug = SparkplugCodec(settings.sparkplug) if any(
            sub.codec == "sparkplug_b" for sub in settings.mqtt.subscriptions) else None
        self.pipeline = IngestPipeline(self.bus, self.metrics, writer=self.buffer.readings,
                                       mapper=mapper, validator=validator,
                                       limits=settings.ingest, batching=settings.buffer,
                                       sparkplug=self.sparkplug)
        self.mqtt = MqttSource(settings.mqtt, settings.mqtt_client_id, self.pipeline,
                               self.metrics)
        if self.sparkplug is not None:
            self.sparkplug.attach(self.mqtt.publish)
            online, offline = (self.sparkplug.state_message(True),
                               self.sparkplug.state_message(False))
            if online is not None and offline is not None:
                self.mqtt.announce_presence(online, offline)
        self.http_source = HttpSource(self.pipeline, settings.http.commit_timeout_s)
        self.webhook = (WebhookSender(settings.notifications.webhook, self.metrics)
                        if settings.notifications.webhook.url else None)
        self._register_agents()
        self.decisions = DecisionService(self._deciders(), self.buffer.decisions, self.bus,
                                         self.metrics)
        self.commands = CommandHandler(self.decisions, self.mqtt, settings.notification_prefix,
                                       self.metrics)
        self.mqtt.route_commands(f"{settings.notification_prefix}/commands", self.commands)
        self.syncer = self._build_syncer()
        self.replay = QuarantineReplay(self.pipeline, self.buffer.quarantine, mapper=mapper,
                                       validator=validator, limits=settings.ingest,
                                       commit_timeout_s=settings.http.commit_timeout_s)
        self.api = DaemonApi(settings, self.metrics, buffer=self.buffer, pipeline=self.pipeline,
                             http_source=self.http_source, replay=self.replay,
                             decisions=self.decisions, mqtt=self.mqtt,
                             agents=self.agents, bus=self.bus, central=self.syncer)
        self.http: HttpServer | None = None
        self.notifier = SystemdNotifier(
            lambda: self.pipeline.progressing(settings.systemd.watchdog_stall_s))

    def _register_agents(self) -> None:
        s = self.settings
        gateway_id = s.gateway.id
        if s.detection.enabled:
            self.agents.register(AnomalyDetectionAgent(
                "anomaly-detection", self.bus, self.metrics, gateway_id=gateway_id,
                settings=s.detection, sensors=s.sensors, assets=s.assets,
                alerts=self.buffer.alerts, readings=self.buffer.readings,
                positions=self.buffer.meta, worker=s.detection.worker == "process"))
        if s.prediction.enabled:
            self.agents.register(PredictionAgent(
                "prediction", self.bus, self.metrics, gateway_id=gateway_id,
                settings=s.prediction, sensors=s.sensors, alerts=self.buffer.alerts,
                readings=self.buffer.readings, state=self.buffer.meta))
        if s.maintenance.enabled:
            self.agents.register(MaintenanceSchedulerAgent(
                "maintenance-scheduler", self.bus, self.metrics, gateway_id=gateway_id,
                settings=s.maintenance, assets=s.assets, store=self.buffer.tasks,
                alerts=self.buffer.alerts))
        if s.notifications.enabled:
            self.agents.register(NotificationAgent(
                "notification", self.bus, self.metrics, topic_prefix=s.notification_prefix,
                qos=s.notifications.qos, publisher=self.mqtt, webhook=self.webhook))

    def _build_syncer(self) -> CentralSyncer | None:
        if self.settings.central.dsn is None:
            return None
        # The composition root is the only place where edge reaches cloud_sync.
        from cloud_sync.decisions_pull import DecisionPuller
        from cloud_sync.syncer import CentralSyncer

        return CentralSyncer(self.settings.central, self.settings.gateway.id, __version__,
                             source=self.buffer.sync, metrics=self.metrics,
                             decisions=DecisionPuller(self.decisions, self.metrics))

    def _deciders(self) -> dict[TargetKind, Decider]:
        """Who applies decisions about alerts (detection; forecasts: prediction) and tasks
        (the scheduler)."""
        deciders: dict[TargetKind, Decider] = {}
        by_detector: dict[str, Decider] = {}
        for agent in self.agents:
            if isinstance(agent, AnomalyDetectionAgent):
                deciders["alert"] = agent
            elif isinstance(agent, PredictionAgent):
                by_detector[FORECAST] = agent
            elif isinstance(agent, MaintenanceSchedulerAgent):
                deciders["task"] = agent
        if by_detector:
            deciders["alert"] = AlertRouter(self.buffer.alerts, deciders.get("alert"), by_detector)
        return deciders

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down in order."""
        async with contextlib.AsyncExitStack() as resources:
            await resources.enter_async_context(self.buffer)
            if self.webhook is not None:
                await resources.enter_async_context(self.webhook)
            await self.agents.start_all()  # they subscribe; the bus starts their workers
            resources.push_async_callback(self.agents.stop_all)
            await self.bus.start()
            resources.push_async_callback(self.bus.stop, 0.0)  # drained before, in _run_tasks
            if self.settings.http.enabled:
                self.http = await resources.enter_async_context(
                    HttpServer(self.settings.http, create_app(self.api, self.settings.http)))
            # What start-up built (modules, settings, detection models restored from the
            # snapshot: ~30 kB a sensor) lives as long as the daemon: out of the collector's
            # sight, so a full collection does not scan it while readings wait (a 20,000-sensor
            # snapshot would make every such collection a pause of hundreds of ms).
            gc.collect()
            gc.freeze()
            await self._run_tasks(stop)
        log.info("gateway stopped")

    async def _run_tasks(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            pipeline = tasks.create_task(self.pipeline.run(), name="ingest-pipeline")
            mqtt = tasks.create_task(self.mqtt.run(), name="mqtt")
            sync = tasks.create_task(self.syncer.run(), name="central-sync") if self.syncer else None
            housekeeping = [tasks.create_task(self._announce_ready(), name="ready"),
                            tasks.create_task(self.commands.run(), name="mqtt-commands"),
                            tasks.create_task(self.notifier.feed_watchdog(), name="watchdog"),
                            tasks.create_task(self._track_buffer(), name="buffer-stats")]
            if self.syncer is not None:
                housekeeping.append(tasks.create_task(self._track_sync_lag(), name="sync-lag"))
            self._log_started()
            await stop.wait()
            self.notifier.stopping()
            for task in housekeeping:
                task.cancel()
            log.info("stopping: committing in-flight messages")
            deadline = time.monotonic() + self.settings.gateway.shutdown_timeout_s
            await self._drain(pipeline)
            if not await self.bus.drain(max(0.5, deadline - time.monotonic())):
                log.warning("shutdown deadline passed with agent work queued; "
                            "detection resumes from its saved position at the next start")
            await self.mqtt.close()
            await mqtt
            if self.syncer is not None and sync is not None:
                await self.syncer.close()
                await sync

    async def _drain(self, pipeline: asyncio.Task[None]) -> None:
        await self.pipeline.drain()
        timeout_s = self.settings.gateway.shutdown_timeout_s
        try:
            await asyncio.wait_for(asyncio.shield(pipeline), timeout_s)
        except TimeoutError:
            # Uncommitted messages were never acknowledged: the broker redelivers them.
            log.warning("shutdown deadline passed; cancelling the pipeline",
                        extra={"pending": self.pipeline.pending_count})
            pipeline.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pipeline

    async def _announce_ready(self) -> None:
        await self.mqtt.connected_event.wait()
        self.notifier.ready("ingesting")

    async def _track_buffer(self) -> None:
        path = self.settings.buffer.path
        while True:
            try:
                for kind, depth in (await self.buffer.status.depths()).items():
                    self.metrics.buffer_rows.labels(kind).set(depth.rows)
                self.metrics.buffer_bytes.set(sum(
                    p.stat().st_size for p in (path, path.with_name(path.name + "-wal"))
                    if p.exists()))
            except Exception:  # statistics only; the next round tries again
                log.debug("buffer statistics failed", exc_info=True)
            await asyncio.sleep(10)

    async def _track_sync_lag(self) -> None:
        """edge_sync_lag_seconds: age (by arrival) of the oldest reading central lacks.

        Measured from the buffer, not by the syncer, so it keeps growing while the central
        side is down (the moment an alert on it must fire); arrival time, not reading time,
        so a backfill of old readings is not lag.
        """
        while True:
            try:
                oldest_us = await self.buffer.status.oldest_unsynced_reading_us()
                lag_s = 0.0 if oldest_us is None else max(0.0, time.time() - oldest_us / 1e6)
                self.metrics.sync_lag.set(lag_s)
            except Exception:  # statistics only; the next round tries again
                log.debug("sync lag measurement failed", exc_info=True)
            await asyncio.sleep(1.0)

    def _log_started(self) -> None:
        s = self.settings
        log.info("gateway started", extra={
            "version": __version__, "broker": f"{s.mqtt.host}:{s.mqtt.port}",
            "client_id": s.mqtt_client_id, "buffer": str(s.buffer.path),
            "subscriptions": [sub.topic for sub in s.mqtt.subscriptions],
            "agents": [agent.agent_id for agent in self.agents],
            "detection_build": detection_build(),
        })
        if edited := stale_detection_modules():
            log.warning("sources edited since the detection modules were compiled: they run "
                        "as they were before the edit until `make install` rebuilds them",
                        extra={"edited": edited})
        if self.syncer is None:
            log.info("central sync not configured (central.dsn): running buffer-only")
        else:
            log.info("central sync enabled", extra={"sslmode": s.central.sslmode})


async def run_until_signalled(settings: Settings) -> None:
    """Run the gateway until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await Gateway(settings).run(stop)
