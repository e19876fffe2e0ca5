"""Courtyard's benchmark harness (issue 7): see docs/benchmarks.md.

Everything runs on loopback: a real ``courtyard serve`` process (or several), a minimal "floor"
server, and separate load-generator processes driven by the orchestrator in ``bench.run``.
"""
