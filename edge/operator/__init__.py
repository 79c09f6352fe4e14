"""What operators do: decide about alerts and tasks (the one decision path) and reach it over
MQTT commands. HTTP reaches it through the API (edge/http), central decisions through the
syncer's puller (cloud_sync/decisions_pull.py)."""
