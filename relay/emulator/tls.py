"""A self-signed certificate the standalone emulator makes for itself.

Replicate's file outputs are `https://` URLs, and both official clients only
wrap `https:` (and `data:`) outputs as `FileOutput`. So `--tls` serves the
emulator over HTTPS with a certificate valid for 127.0.0.1, ::1 and
localhost, written once into the state dir (`tls/cert.pem`, `tls/key.pem`).
Clients trust it through the usual variables: `SSL_CERT_FILE` (Python, httpx)
or `NODE_EXTRA_CA_CERTS` (node). `cryptography` makes it; it is a test
dependency, needed only for this option.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path


def ensure_certificate(state_dir: Path) -> tuple[Path, Path]:
    """(cert, key) paths, made on first use."""
    folder = state_dir / "tls"
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:  # pragma: no cover - depends on the install
        raise SystemExit("--tls needs the `cryptography` package (pip install cryptography)") from None

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay emulator")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names = x509.SubjectAlternativeName([
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(alt_names, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
