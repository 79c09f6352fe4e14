"""The central side: schema models and the syncer that drains the buffer into TimescaleDB."""
