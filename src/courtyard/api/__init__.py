"""The HTTP API: thin routes that parse, call one service method, and shape the response."""
