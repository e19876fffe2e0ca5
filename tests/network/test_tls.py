"""TLS terminated by `courtyard serve` itself: real TLS clients against a real server process,
with a certificate from `courtyard dev-cert`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.processes import COURTYARD, ServerProcess, free_port
from tests.support import DatabaseFactory


def dev_cert(out: Path) -> Path:
    result = subprocess.run(
        [COURTYARD, "dev-cert", "--out", str(out), "--host", "localhost", "--host", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "key.pem").stat().st_mode & 0o077 == 0  # the key is private
    return out


class TLSServer(ServerProcess):
    """`courtyard serve` with [tls] set; health-checked over HTTPS with the dev CA."""

    ca: Path = Path()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        if not self.port:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"serve-{self.port}.log"
        self.process = subprocess.Popen(
            [COURTYARD, "serve"],
            env=self.env(),
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if httpx.get(
                    f"{self.url}/healthz",
                    verify=ssl.create_default_context(cafile=self.ca),
                    timeout=1,
                ).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"TLS server did not become healthy:\n{self.log()}")


@pytest.fixture(params=["0"])
async def tls_server(
    request: pytest.FixtureRequest, databases: DatabaseFactory, workdir: Path
) -> AsyncIterator[TLSServer]:
    tag = secrets.token_hex(3)
    certs = dev_cert(workdir / f"certs-{tag}")
    served = workdir / f"served-{tag}"
    served.mkdir()
    shutil.copy(certs / "cert.pem", served / "cert.pem")
    shutil.copy(certs / "key.pem", served / "key.pem")
    server = TLSServer(
        await databases.create(),
        workdir / f"tls-{tag}",
        extra_env={
            "COURTYARD_TLS__CERT_FILE": str(served / "cert.pem"),
            "COURTYARD_TLS__KEY_FILE": str(served / "key.pem"),
            "COURTYARD_TLS__RELOAD_POLL_SECONDS": request.param,
        },
    )
    server.ca = certs / "ca.pem"
    server.start()
    try:
        yield server
    finally:
        server.stop()


def handshake(port: int, context: ssl.SSLContext) -> tuple[str | None, bytes]:
    """Connect, handshake; the negotiated version and the server certificate (DER)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version(), tls.getpeercert(binary_form=True) or b""


def healthy(server: TLSServer) -> bool:
    return httpx.get(
        f"{server.url}/healthz", verify=ssl.create_default_context(cafile=server.ca), timeout=10
    ).is_success


def client_context(version: ssl.TLSVersion, ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = context.maximum_version = version
    if ca is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(ca)
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client even try
    return context


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_tls_12_and_13_handshakes_succeed(
    tls_server: TLSServer, version: ssl.TLSVersion
) -> None:
    negotiated, _ = handshake(tls_server.port, client_context(version, tls_server.ca))
    assert (
        negotiated
        == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    )


def _old_tls_server(version: ssl.TLSVersion, cert_dir: Path) -> tuple[int, threading.Thread]:
    """A throwaway server that does speak TLS 1.0/1.1: proves the client below can."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = context.maximum_version = version
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_cert_chain(cert_dir / "cert.pem", cert_dir / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_one() -> None:
        with listener:
            listener.settimeout(10)
            conn, _ = listener.accept()
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    return port, thread


# Offering the old versions is the point of this test; Python warns whenever they are named.
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
async def test_tls_10_and_11_are_refused(
    tls_server: TLSServer, version: ssl.TLSVersion, workdir: Path
) -> None:
    context = client_context(version)
    # The client is able to speak the old version (against a server that allows it) ...
    certs = tls_server.ca.parent
    port, thread = _old_tls_server(version, certs)
    try:
        negotiated, _ = handshake(port, context)
    except ssl.SSLError as exc:
        pytest.fail(
            f"this OpenSSL cannot speak {version.name} at all, so the test proves nothing: {exc}"
        )
    finally:
        thread.join(10)
    assert negotiated is not None
    # ... and Courtyard refuses it.
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        handshake(tls_server.port, context)
    # The server is still fine afterwards.
    assert healthy(tls_server)


async def test_hsts_is_sent_over_tls(tls_server: TLSServer) -> None:
    with httpx.Client(verify=ssl.create_default_context(cafile=tls_server.ca)) as client:
        for path in ("/healthz", "/api/v1/me", "/no/such/page"):
            response = client.get(tls_server.url + path)
            assert response.headers["strict-transport-security"] == "max-age=31536000", path
            assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("tls_server", "trigger"), [("0", "SIGHUP"), ("0.2", "file")], indirect=["tls_server"]
)
async def test_a_renewed_certificate_is_used_for_new_handshakes(
    tls_server: TLSServer, workdir: Path, trigger: str
) -> None:
    served = Path(tls_server.env()["COURTYARD_TLS__CERT_FILE"]).parent
    before = handshake(tls_server.port, client_context(ssl.TLSVersion.TLSv1_3, tls_server.ca))[1]
    # An open keep-alive connection survives the reload (the listener is never replaced).
    kept = httpx.Client(verify=ssl.create_default_context(cafile=tls_server.ca))
    assert kept.get(tls_server.url + "/healthz").status_code == 200
    renewed = dev_cert(workdir / f"renewed-{secrets.token_hex(3)}")
    shutil.copy(renewed / "cert.pem", served / "cert.pem")
    shutil.copy(renewed / "key.pem", served / "key.pem")
    assert tls_server.process is not None
    if trigger == "SIGHUP":
        tls_server.process.send_signal(signal.SIGHUP)
    new_client = client_context(ssl.TLSVersion.TLSv1_3, renewed / "ca.pem")
    deadline = time.monotonic() + 20
    after = before
    while time.monotonic() < deadline:
        try:
            after = handshake(tls_server.port, new_client)[1]
            break
        except ssl.SSLCertVerificationError:
            time.sleep(0.05)  # still the old certificate
    assert hashlib.sha256(after).digest() != hashlib.sha256(before).digest(), tls_server.log()
    assert kept.get(tls_server.url + "/healthz").status_code == 200
    kept.close()
    reason = "SIGHUP" if trigger == "SIGHUP" else "certificate file changed"
    assert f"TLS certificate reloaded ({reason})" in tls_server.log()


async def test_the_event_socket_works_over_tls(tls_server: TLSServer) -> None:
    async with httpx.AsyncClient(
        base_url=tls_server.url, verify=ssl.create_default_context(cafile=tls_server.ca)
    ) as client:
        made = await client.post(
            "/api/v1/setup",
            json={
                "setup_token": tls_server.setup_token(),
                "organization_name": "TLS",
                "username": "owner",
                "password": "a long passphrase for the owner",
                "session_type": "token",
            },
        )
        assert made.status_code == 201, made.text
    context = ssl.create_default_context(cafile=str(tls_server.ca))
    async with websockets.connect(
        f"wss://127.0.0.1:{tls_server.port}/api/v1/events",
        ssl=context,
        server_hostname="localhost",
        additional_headers={"Authorization": f"Bearer {made.json()['token']}"},
    ) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "hello"
