"""Close codes of the event socket (RFC 6455 section 7.4 plus Courtyard's 4000-4999 range)."""

from __future__ import annotations

NORMAL = 1000
GOING_AWAY = 1001  # server shutting down or restarting: reconnect with `since`
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003  # binary frames
INVALID_PAYLOAD = 1007  # text frame that is not UTF-8
POLICY_VIOLATION = 1008  # repeated abuse (frame floods, malformed frames)
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013  # connection caps reached
IDLE_TIMEOUT = 4000  # no traffic (not even pongs) for too long
UNAUTHENTICATED = 4001  # no, invalid or expired credentials
FORBIDDEN = 4003  # deactivated account, missing scope
SESSION_ENDED = 4004  # signed out, revoked, password changed
SLOW_CONSUMER = 4008  # the client did not read fast enough; reconnect with `since`
