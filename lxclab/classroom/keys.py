"""The classroom's signing key: an EC P-256 key and a self-signed certificate, made once.

The token server signs every JWT with the key; the registry trusts the certificate as its
`rootcertbundle` and checks each token's `x5c` header against it. Both files live in the
classroom's state directory and are reused on every start, so tokens stay verifiable.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..errors import ClassroomError

KEY_FILE = "token-signing.key"
CERT_FILE = "token-signing.crt"
CERT_VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class SigningKey:
    """A private key and the certificate that vouches for it."""

    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def certificate_der(self) -> bytes:
        """The certificate in DER, the form a JWT's `x5c` header carries (base64-encoded)."""
        return self.certificate.public_bytes(serialization.Encoding.DER)


def generate(common_name: str) -> SigningKey:
    """Make a new P-256 key and a self-signed certificate for it, valid for ten years."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return SigningKey(key, cert)


def load_or_create(state_dir: Path, common_name: str = "lxclab-classroom") -> SigningKey:
    """The signing key of `state_dir`, generated and saved (key mode 0600) on first use."""
    key_path, cert_path = state_dir / KEY_FILE, state_dir / CERT_FILE
    if key_path.exists() and cert_path.exists():
        return load(state_dir)
    signing_key = generate(common_name)
    save(signing_key, state_dir)
    return signing_key


def load(state_dir: Path) -> SigningKey:
    """Read the signing key and certificate saved in `state_dir`."""
    try:
        key = serialization.load_pem_private_key((state_dir / KEY_FILE).read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate((state_dir / CERT_FILE).read_bytes())
    except (OSError, ValueError) as exc:
        raise ClassroomError(
            f"cannot read the classroom signing key in {state_dir}: {exc}; "
            f"delete {KEY_FILE} and {CERT_FILE} there to make a new pair"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ClassroomError(f"{state_dir / KEY_FILE} is not an EC key; delete it to make a new one")
    return SigningKey(key, cert)


def save(signing_key: SigningKey, state_dir: Path) -> None:
    """Write the key (mode 0600) and the certificate (PEM) into `state_dir`."""
    state_dir.mkdir(parents=True, exist_ok=True)
    key_pem = signing_key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(state_dir / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as key_file:
        key_file.write(key_pem)
    (state_dir / CERT_FILE).write_bytes(signing_key.certificate.public_bytes(serialization.Encoding.PEM))


def certificate_path(state_dir: Path) -> Path:
    """Where the certificate lives: the registry's `rootcertbundle`."""
    return state_dir / CERT_FILE
