"""The synthetic factory: signal model with labelled faults, the MQTT simulator, the scorecard."""
