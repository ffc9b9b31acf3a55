"""A self-signed certificate for loopback TLS servers in the tests.

Made the way `.ci/dovecot.sh` makes Dovecot's: `openssl req -x509` with CN=localhost and
subjectAltName DNS:localhost, IP:127.0.0.1, so a client that validates certificates and
checks the host name accepts it once it trusts the file itself (the certificate is its own CA).
The `cryptography` package is not a dependency of the project, the `openssl` tool is
everywhere the tests run.
"""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SelfSignedCertificate:
    """A certificate and its key, PEM files in one folder."""

    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        """What a TLS server presents: this certificate and key."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert_path), str(self.key_path))
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and checks the host name)."""
        return ssl.create_default_context(cafile=str(self.cert_path))


def openssl_binary() -> str | None:
    """Path of the `openssl` tool, or None."""
    return shutil.which("openssl")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def make_self_signed(
    folder: Path, name: str = "server", *, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")
) -> SelfSignedCertificate:
    """Write FOLDER/NAME.pem and FOLDER/NAME.key, valid for `hosts` (DNS names or IPs)."""
    binary = openssl_binary()
    if binary is None:
        raise FileNotFoundError("openssl is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    alt_names = ",".join(f"{'IP' if _is_ip(host) else 'DNS'}:{host}" for host in hosts)
    cert = SelfSignedCertificate(folder / f"{name}.pem", folder / f"{name}.key")
    done = subprocess.run(
        [
            binary,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            f"/CN={hosts[0]}",
            "-addext",
            f"subjectAltName={alt_names}",
            "-keyout",
            str(cert.key_path),
            "-out",
            str(cert.cert_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl could not make a test certificate: {done.stderr.strip()}")
    return cert
