"""Everything from a byte on a socket to a committed, acknowledged reading.

Transports (`mqtt_source` over `mqtt_client`, `http_source`), payload `codecs`, `topics`
templates, `timestamps`, `validation`, and the `pipeline` that batches, commits,
acknowledges and announces (with `receipts` for transports that answer a client); `ports`
holds the types they meet through.
"""
