"""Bus backends: memory (one process), Redis/Valkey pub/sub, NATS."""
