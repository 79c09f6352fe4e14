"""Smart Maintenance Edge Gateway: MQTT sensor ingest with a durable buffer and agents.

Layers, from the bottom up; each may import only what is below it (checked by the
import-linter contracts in pyproject.toml, run by tests/unit/test_import_contracts.py):

1. The shared kernel: `errors`, `records` (hot-path tuples, alert/task records, sync rows),
   `times`, `units`, `backoff`, `logs`, `metrics`, `events`. No I/O of its own.
2. `settings`: the configuration models (with `detection.settings`); they import no running
   part, and only the composition root loads them from files and the environment.
3. `detection`: pure computation (detectors, alert life cycle); no I/O, no asyncio, no
   other layer, so tests and benchmarks drive the very objects the agents run.
   `buffer`: the SQLite file and its small stores; it knows no transport, agent or bus.
   `bus`: typed publish/subscribe with bounded queues.
4. `ingest`: everything from a byte on a socket to a committed, acknowledged reading
   (transports, codecs, topics, validation, the pipeline, its ports); it never imports
   agents, the HTTP layer or central code.
   `agents`: bus-driven agents; they meet only on the bus and through the ports handed to
   them, never a transport, the buffer module or an I/O library.
   `cloud_sync` (a sibling package): the central schema and the syncer; it never imports
   agents, transports, the bus or the HTTP layer.
5. `http`: the API, speaking to the daemon only through its `GatewayApi` port; `status`.
6. The composition root: `daemon` (with `api`, which implements the HTTP port), and the
   entry points `cli` and `demo`. Only these reach `cloud_sync`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
