"""TLS for a classroom served on the network: a CA made once, and a server certificate for the address.

On a LAN the registry and token server speak HTTPS, as Docker requires of any registry
that is not on loopback. The classroom makes its own certificate authority (kept in the
state directory, reused on every start) and issues a certificate for the address it
serves on. Learners trust that CA with one step: they put `ca.crt` where lxclab looks
for a registry's CA, `$LXCLAB_HOME/certs.d/<host:port>/ca.crt` (as Docker does in
/etc/docker/certs.d), after checking its fingerprint against the one the teacher shows.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DIRECTORY = "tls"  # inside the classroom's state directory
CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
VALIDITY = datetime.timedelta(days=825)  # the longest a server certificate may live for browsers and Apple


@dataclass(frozen=True)
class TlsFiles:
    """Where a classroom's CA certificate, server certificate and server key are."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def fingerprint(certificate_file: Path) -> str:
    """A PEM certificate's SHA-256 fingerprint, as `openssl x509 -noout -fingerprint -sha256` prints it."""
    certificate = x509.load_pem_x509_certificate(certificate_file.read_bytes())
    return ":".join(f"{byte:02X}" for byte in certificate.fingerprint(hashes.SHA256()))


def server_context(certificate: Path, key: Path) -> ssl.SSLContext:
    """An SSL context that serves `certificate` with `key` (TLS 1.2 at least)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate, key)
    return context


def files(state_dir: Path) -> TlsFiles:
    """Where the TLS files of the classroom kept in `state_dir` are."""
    tls_dir = state_dir / DIRECTORY
    return TlsFiles(tls_dir / CA_CERT, tls_dir / SERVER_CERT, tls_dir / SERVER_KEY)


def ensure(state_dir: Path, host: str) -> TlsFiles:
    """The classroom's TLS files: the CA made on first use, a server certificate for `host` made now."""
    tls_dir = state_dir / DIRECTORY
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(tls_dir, 0o700)
    ca_key, ca_cert = _load_or_make_ca(tls_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _issue(key, ca_key, ca_cert, host)
    _write(tls_dir / SERVER_KEY, _private_pem(key), 0o600)
    _write(tls_dir / SERVER_CERT, certificate.public_bytes(serialization.Encoding.PEM), 0o600)
    return files(state_dir)


def _load_or_make_ca(tls_dir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The CA key and certificate in `tls_dir`, made (key 0600) if either is missing."""
    key_path, cert_path = tls_dir / CA_KEY, tls_dir / CA_CERT
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lxclab classroom CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _private_pem(key), 0o600)
    _write(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return key, certificate


def _issue(key: ec.EllipticCurvePrivateKey, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
           host: str) -> x509.Certificate:
    """A server certificate for `host` (an IP address or a DNS name), signed by the CA."""
    try:
        alt_name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt_name = x509.DNSName(host)
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([alt_name]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path`, created with `mode` (and set to it if it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), mode)
        out.write(data)
