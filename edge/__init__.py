"""Smart Maintenance Edge Gateway: MQTT sensor ingest with a durable buffer and agents."""

__version__ = "0.1.0"
__all__ = ["__version__"]
