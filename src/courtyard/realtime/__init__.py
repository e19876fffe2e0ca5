"""The realtime event stream: outbox relay, fan-out bus, hub and WebSocket sessions."""
