"""TLS for `courtyard serve`: one SSLContext per process, reloaded in place.

``SSLContext.load_cert_chain`` on the context the listener already uses replaces the
certificate for every *new* handshake; established connections keep theirs and the listening
socket is never closed. Renewals (certbot, an internal CA) are picked up by polling the
files' modification times, or at once on SIGHUP.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from courtyard.domain.audit import Details

logger = logging.getLogger(__name__)

# TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3's are all of that already).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:!DSS:!PSK:!SRP"


def server_context(cert_file: Path, key_file: Path, min_version: str = "1.2") -> ssl.SSLContext:
    """A server context: TLS 1.2 or 1.3 minimum, modern suites, no compression or
    renegotiation, HTTP/1.1 by ALPN."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= (
        ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    )
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(cert_file, key_file)
    return context


def _stamp(*paths: Path) -> tuple[float | None, ...]:
    stamps: list[float | None] = []
    for path in paths:
        try:
            stamps.append(os.stat(path).st_mtime_ns / 1e9)
        except OSError:
            stamps.append(None)
    return tuple(stamps)


class CertificateReloader:
    """Reloads the certificate and key into a live context."""

    def __init__(
        self,
        context: ssl.SSLContext,
        cert_file: Path,
        key_file: Path,
        *,
        on_event: Callable[[str, Details], Awaitable[None]] | None = None,
    ) -> None:
        self.context = context
        self.on_event = on_event
        self.cert_file = cert_file
        self.key_file = key_file
        self._stamp = _stamp(cert_file, key_file)
        self.reloads = 0

    async def reload(self, reason: str) -> bool:
        """Load the files again; on failure (a half-written renewal) keep serving the old
        certificate and say so."""
        try:
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            logger.error("TLS certificate reload (%s) failed; keeping the old one: %s", reason, exc)
            await self._record("tls.reload_failed", {"reason": reason, "error": str(exc)})
            return False
        self.reloads += 1
        logger.warning("TLS certificate reloaded (%s) from %s", reason, self.cert_file)
        await self._record("tls.reloaded", {"reason": reason, "cert_file": str(self.cert_file)})
        return True

    async def _record(self, action: str, details: Details) -> None:
        if self.on_event is None:
            return
        try:
            await self.on_event(action, details)
        except Exception:
            logger.warning("could not audit %s", action, exc_info=True)

    async def watch(self, interval: float) -> None:
        """Poll the files' modification times (cheap: two stats per interval)."""
        while True:
            await asyncio.sleep(interval)
            stamp = _stamp(self.cert_file, self.key_file)
            if stamp != self._stamp and None not in stamp:
                self._stamp = stamp
                await self.reload("certificate file changed")
