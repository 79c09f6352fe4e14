"""Transports in: MQTT session, payload codecs, topic templates, timestamps, units."""
