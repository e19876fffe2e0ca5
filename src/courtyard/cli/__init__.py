"""The `courtyard` command line."""
