"""Use cases: the only code that changes state. Each checks access, applies the rules, writes
through a unit of work and queues the resulting events in the same transaction."""
