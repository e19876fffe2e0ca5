"""Pure domain model: entities, rules and errors. No I/O and no frameworks."""
