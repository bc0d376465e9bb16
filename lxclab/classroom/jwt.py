"""JSON Web Tokens the way a registry token server makes them: ES256 with an `x5c` header.

A JWT is three base64url parts joined by dots: a header, the claims, and a signature over
the first two. ES256 signs with ECDSA P-256 and SHA-256; the signature is the raw
32-byte `r` then 32-byte `s`, not the DER form most libraries produce. Decoding needs no
key: anybody holding a token can read its claims, which is why a lesson can show them.
`verify` checks what a registry checks: the signature, then expiry (`exp`), not-before
(`nbf`), audience (`aud`) and issuer (`iss`).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ..errors import TokenError

ALGORITHM = "ES256"
CLASSROOM = "lxclab-classroom"  # the classroom token server's issuer and service (the audience)
LEEWAY = 60  # seconds of clock skew tolerated on exp and nbf, as the registry does
_P256_BYTES = 32


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, the alphabet of every JWT part."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of a base64url part, padding or not."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def header(certificate_der: bytes) -> dict[str, Any]:
    """The JOSE header a registry accepts: ES256, and the signing certificate in `x5c`.

    `x5c` holds standard base64 (not base64url) DER certificates, leaf first.
    """
    return {"typ": "JWT", "alg": ALGORITHM, "x5c": [base64.b64encode(certificate_der).decode("ascii")]}


def claims(
    *, issuer: str, subject: str, audience: str, access: list[dict], issued_at: int, ttl: int
) -> dict[str, Any]:
    """The claims of a registry token; `subject` is "" for anonymous, `audience` the service.

    The registry wants `aud` as a plain string and `exp`/`nbf`/`iat` as integer seconds.
    """
    return {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": issued_at + ttl,
        "nbf": issued_at,
        "iat": issued_at,
        "jti": secrets.token_urlsafe(16),
        "access": access,
    }


def encode(jose_header: dict, token_claims: dict, private_key: ec.EllipticCurvePrivateKey) -> str:
    """Sign header and claims with ES256 and return the compact token `h.c.s`."""
    signing_input = ".".join(b64url_encode(_json_bytes(part)) for part in (jose_header, token_claims))
    der = private_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    return f"{signing_input}.{b64url_encode(raw)}"


def decode(token: str) -> tuple[dict, dict]:
    """Read a token's header and claims WITHOUT checking its signature."""
    header_part, claims_part, _ = _split(token)
    try:
        return json.loads(b64url_decode(header_part)), json.loads(b64url_decode(claims_part))
    except ValueError as exc:
        raise TokenError(f"the JWT's header or claims are not base64url JSON: {exc}") from exc


def verify(token: str, public_key: ec.EllipticCurvePublicKey, audience: str = CLASSROOM, issuer: str = CLASSROOM,
           now: float | None = None) -> dict:
    """The claims of `token` once its signature checks out and it is current, for `audience`, from `issuer`."""
    token_claims = verify_signature(token, public_key)
    check_claims(token_claims, audience, issuer, time.time() if now is None else now)
    return token_claims


def check_claims(token_claims: dict, audience: str, issuer: str, now: float) -> None:
    """Raise TokenError unless the claims name `issuer` and `audience` and `now` lies in [nbf, exp] (with LEEWAY)."""
    if token_claims.get("iss") != issuer:
        raise TokenError(f"the JWT was issued by {token_claims.get('iss')!r}, not by {issuer!r}")
    aud = token_claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise TokenError(f"the JWT is meant for {aud!r}, not for {audience!r}")
    exp, nbf = token_claims.get("exp"), token_claims.get("nbf")
    if not isinstance(exp, int) or (nbf is not None and not isinstance(nbf, int)):
        raise TokenError("the JWT's exp (and nbf, if present) must be integer seconds")
    if now > exp + LEEWAY:
        raise TokenError(f"the JWT expired {int(now - exp)} s ago (exp {exp})")
    if nbf is not None and now < nbf - LEEWAY:
        raise TokenError(f"the JWT is not valid for another {int(nbf - now)} s (nbf {nbf})")


def verify_signature(token: str, public_key: ec.EllipticCurvePublicKey) -> dict:
    """The claims of `token` once its ES256 signature checks out against `public_key` (nothing else is checked)."""
    header_part, claims_part, signature_part = _split(token)
    jose_header, token_claims = decode(token)
    if jose_header.get("alg") != ALGORITHM:
        raise TokenError(f"the JWT is signed with {jose_header.get('alg')!r}, expected {ALGORITHM}")
    raw = b64url_decode(signature_part)
    if len(raw) != 2 * _P256_BYTES:
        raise TokenError(f"an ES256 signature has 64 bytes, this one has {len(raw)}")
    der = encode_dss_signature(int.from_bytes(raw[:_P256_BYTES], "big"), int.from_bytes(raw[_P256_BYTES:], "big"))
    try:
        public_key.verify(der, f"{header_part}.{claims_part}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise TokenError("the JWT's signature does not match its header and claims") from exc
    return token_claims


def _split(token: str) -> tuple[str, str, str]:
    """The three dot-separated parts of a compact JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError(f"a JWT has three dot-separated parts, this one has {len(parts)}")
    return parts[0], parts[1], parts[2]


def _json_bytes(value: dict) -> bytes:
    """Compact JSON, serialised once: the exact bytes that get signed."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
