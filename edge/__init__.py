"""Smart Maintenance Edge Gateway: MQTT sensor ingest with a durable buffer and agents.

Layers, from the bottom up; a module imports only from layers below its own, and modules
side by side in one layer (separated by |) do not import each other. The import-linter
contracts in pyproject.toml check this (tests/unit/test_import_contracts.py).

 1. records | errors | times | units: the shared kernel (hot-path tuples, alert and task
    records, sync rows, typed errors, time and unit conversions); no I/O.
 2. events | metrics | logs | backoff: the event catalog and the plumbing every part uses.
 3. detection: pure computation (detectors, alert life cycle): no I/O, no asyncio, so tests
    and benchmarks drive the very objects the agents run.
 4. settings: the configuration models; only the composition root loads them from files and
    the environment.
 5. buffer | bus: the SQLite file and its small stores (no transport, agent or bus); typed
    publish/subscribe with bounded queues.
 6. ingest | agents | notify | systemd | status | simulator:
    - ingest owns everything from a byte on a socket to a committed, acknowledged reading
      (transports, codecs, topics, validation, the pipeline and its ports);
    - agents live on the bus and touch only the ports handed to them, never a transport,
      the buffer module or an I/O library;
    - notify (webhook sender), systemd (readiness, watchdog), status (the status report),
      simulator (the synthetic factory).
 7. http: the API, speaking to the daemon only through its `GatewayApi` port.
 8. api: the daemon's implementation of that port.
 9. daemon: the composition root, the only part of `edge` that reaches `cloud_sync` (a
    sibling package that never imports agents, transports, the bus or the HTTP layer).
10. demo, cli, __main__: the entry points (the CLI's `db` commands reach `cloud_sync` too).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
