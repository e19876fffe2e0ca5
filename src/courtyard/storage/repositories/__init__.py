"""One repository per aggregate; each wraps a connection inside a unit of work."""
