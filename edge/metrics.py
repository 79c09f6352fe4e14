"""Prometheus metrics of one gateway, in one registry handed to the parts that record them.

No module-level globals: tests and benchmarks build their own `GatewayMetrics`.
"""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

from edge import __version__


class GatewayMetrics:
    """Every metric the gateway exports; names follow Prometheus conventions."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)  # process_*, python_info, python_gc_*
        self.build_info = Gauge("edge_build_info", "Build of this gateway.", ["version"], registry=r)
        self.build_info.labels(version=__version__).set(1)
        self.mqtt_connected = Gauge(
            "edge_mqtt_connected", "1 while connected to the MQTT broker.", registry=r
        )
        self.messages_received = Counter(
            "edge_messages_received", "Messages received, by subscription.", ["subscription"],
            registry=r,
        )
        self.readings_accepted = Counter(
            "edge_readings_accepted", "Readings committed to the buffer.", registry=r
        )
        self.readings_rejected = Counter(
            "edge_readings_rejected", "Messages or readings quarantined, by reason.", ["reason"],
            registry=r,
        )
        self.states_accepted = Counter(
            "edge_states_accepted",
            "States (and nulls) durably committed: equipment states, flags, texts.",
            registry=r,
        )
        self.sparkplug_events = Counter(
            "edge_sparkplug_events",
            "Sparkplug B session events: seq_gap, rebirth_requested, node_offline, "
            "node_online, transient_skipped.",
            ["event"], registry=r,
        )
        self.readings_duplicate = Counter(
            "edge_readings_duplicate",
            "Readings already in the buffer (same sensor and ts), e.g. broker redelivery.",
            registry=r,
        )
        self.readings_clock_suspect = Counter(
            "edge_readings_clock_suspect",
            "Readings stored but flagged clock_suspect (stamped before ingest.min_reading_time or "
            "older than ingest.max_reading_age_s); not fed to detection.", registry=r,
        )
        self.sensors_tracked = Gauge(
            "edge_sensors_tracked", "Distinct sensors the gateway tracks (ingest.max_sensors caps it).",
            registry=r,
        )
        self.messages_skipped = Counter(
            "edge_messages_skipped",
            "Messages acknowledged without storing anything, by reason: retained_seen (a "
            "retained message already taken), own_notification (the gateway's own "
            "notification topics), gateway_notification (another gateway's).",
            ["reason"], registry=r,
        )
        self.messages_dropped = Counter(
            "edge_messages_dropped",
            "QoS 0 messages dropped before the buffer, by reason.", ["reason"], registry=r,
        )
        self.ingest_latency = Histogram(
            "edge_ingest_latency_seconds",
            "Time from arrival to durable commit, per batch.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.buffer_rows = Gauge("edge_buffer_rows", "Rows in the local buffer, by kind.", ["kind"],
                                 registry=r)
        self.buffer_bytes = Gauge("edge_buffer_bytes", "Size of the buffer files (db + WAL).",
                                  registry=r)
        self.buffer_evicted = Counter(
            "edge_buffer_evicted", "Buffer rows evicted to respect the size cap, by kind and reason.",
            ["kind", "reason"], registry=r,
        )
        self.buffer_files_moved_aside = Counter(
            "edge_buffer_files_moved_aside", "Corrupt or foreign buffer files renamed at start.",
            ["reason"], registry=r,
        )
        self.buffer_commit_errors = Counter(
            "edge_buffer_commit_errors", "Buffer commits that failed (nothing was acked).",
            registry=r,
        )
        self.bus_queue_depth = Gauge(
            "edge_bus_queue_depth", "Events waiting per bus subscriber.", ["subscriber"],
            registry=r,
        )
        self.bus_handler_errors = Counter(
            "edge_bus_handler_errors", "Handler failures per bus subscriber.", ["subscriber"],
            registry=r,
        )
        self.bus_dead_letters = Counter(
            "edge_bus_dead_letters", "Events given up on after repeated failures.",
            ["subscriber"], registry=r,
        )
        self.bus_overflow = Counter(
            "edge_bus_overflow",
            "Events not queued because the subscriber's queue was full (it catches up from "
            "the buffer).", ["subscriber"], registry=r,
        )
        self.detection_worker_restarts = Counter(
            "edge_detection_worker_restarts",
            "Detection worker processes that died and were replaced (recovered from the saved "
            "position).", registry=r,
        )
        self.http_rejected = Counter(
            "edge_http_requests_rejected", "HTTP requests refused by a guard, by reason.",
            ["reason"], registry=r,
        )
        self.decisions = Counter(
            "edge_decisions", "Operator decisions, by where they came from and their outcome "
            "(applied, rejected, unknown_target, duplicate, conflict: a decision id reused "
            "for another decision).", ["origin", "outcome"], registry=r,
        )
        self.commands = Counter(
            "edge_commands", "MQTT commands, by outcome (applied, duplicate, conflict, rejected, "
            "unknown_target, invalid, retained_ignored, unavailable, empty, overloaded, error).",
            ["outcome"],
            registry=r,
        )
        self.agent_up = Gauge("edge_agent_up", "1 while the agent runs.", ["agent"], registry=r)
        self.anomalies = Counter(
            "edge_anomalies", "Alerts opened, by detector and severity.", ["detector", "severity"],
            registry=r,
        )
        self.anomaly_candidates = Counter(
            "edge_anomaly_candidates", "Candidate anomalies, by outcome: accepted, or the "
            "reason they were not (e.g. false_alarm_feedback).", ["outcome"], registry=r,
        )
        self.alerts_open = Gauge("edge_alerts_open", "Alerts open now.", registry=r)
        self.tasks_open = Gauge("edge_tasks_open", "Maintenance tasks open now.", registry=r)
        self.notifications = Counter(
            "edge_notifications", "Notifications sent, by channel and outcome.",
            ["channel", "outcome"], registry=r,
        )
        self.sync_rows = Counter(
            "edge_sync_rows", "Buffer rows the central database confirmed, by kind.", ["kind"],
            registry=r,
        )
        self.sync_conflicts = Counter(
            "edge_sync_conflicts",
            "Readings the central side already had with the same key and another value "
            "(kept in sensor_reading_conflicts).", registry=r,
        )
        self.sync_errors = Counter(
            "edge_sync_errors", "Failed attempts to reach or write the central database.",
            registry=r,
        )
        self.central_up = Gauge(
            "edge_central_up", "1 while the central database is reachable.", registry=r
        )
        self.central_state = Gauge(
            "edge_central_state", "1 for the central link's current state (up, down, refused, "
            "schema_missing, schema_outdated, connecting).", ["state"], registry=r,
        )
        self.sync_lag = Gauge(
            "edge_sync_lag_seconds", "Age of the oldest reading not yet in the central database.",
            registry=r,
        )
