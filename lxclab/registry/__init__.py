"""Talk to an image registry: parse its auth challenge, get tokens, pull and push content.

`challenge` is a pure parser of WWW-Authenticate; `auth` is the token dance as an httpx
auth flow; `client` is the RegistryClient that verifies every digest; `credentials`
keeps the logins saved by `lxclab login`.
"""

from .auth import RegistryAuth, scopes_for
from .challenge import Challenge, parse_challenge, parse_challenges
from .client import RegistryClient
from .credentials import forget, lookup, save

__all__ = [
    "Challenge",
    "RegistryAuth",
    "RegistryClient",
    "forget",
    "lookup",
    "parse_challenge",
    "parse_challenges",
    "save",
    "scopes_for",
]
