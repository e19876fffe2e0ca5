"""`courtyard dev-cert`: a local certificate authority and a server certificate for testing TLS.

Never for production: the CA's key sits next to the certificates. Trust ``ca.pem`` in the
client (``curl --cacert``, ``httpx.Client(verify=...)``, the browser's store) and point
``[tls] cert_file``/``key_file`` at ``cert.pem``/``key.pem``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rich.console import Console

console = Console(stderr=True)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Courtyard development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def make_dev_certificates(out: Path, hosts: list[str], days: int) -> dict[str, Path]:
    """Write ca.pem, ca-key.pem, cert.pem and key.pem into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Courtyard development CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    paths = {
        "ca": out / "ca.pem",
        "ca_key": out / "ca-key.pem",
        "cert": out / "cert.pem",
        "key": out / "key.pem",
    }
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_key(paths["ca_key"], ca_key)
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(paths["key"], key)
    return paths


def dev_cert(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the files into.")],
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="Name or IP address the certificate is for (repeatable). "
            "Default: localhost, 127.0.0.1 and ::1.",
        ),
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=825, help="Validity in days.")] = 30,
) -> None:
    """Create a local CA and a server certificate for testing TLS (never for production)."""
    hosts = [h.strip() for h in (host or ["localhost", "127.0.0.1", "::1"]) if h.strip()]
    if not hosts:
        console.print("[red]error:[/red] --host must not be empty")
        raise typer.Exit(2)
    try:
        paths = make_dev_certificates(out, hosts, days)
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot write into {out}: {exc.strerror}")
        raise typer.Exit(1) from None
    console.print(f"[green]certificate for {', '.join(hosts)}, valid {days} days[/green]")
    console.print(
        f'  \\[tls]\n  cert_file = "{paths["cert"]}"\n  key_file = "{paths["key"]}"\n'
        f"  clients trust: {paths['ca']}",
        highlight=False,
        soft_wrap=True,
    )
