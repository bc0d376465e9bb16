"""Parse the `WWW-Authenticate` header a registry sends with its 401 answer.

A registry says how to authenticate in a challenge, for example
`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`.
The grammar is RFC 7235: a scheme, then `name=value` parameters separated by commas, where a
value is a token or a quoted string. Commas may sit inside the quotes (`"...:pull,push"`),
and a scope value may hold several scopes separated by spaces (a cross-repository mount).
Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_BARE = re.compile(r"[^,\s]*")
_SPACES = re.compile(r"[ \t]*")
_SEPARATORS = re.compile(r"[ \t,]*")
_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: a scheme (`bearer`, `basic`) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        """Where to authenticate: the token server's URL for Bearer, a label for Basic."""
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        """The name the token server knows this registry by (the token's audience)."""
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes the registry asks for, like `repository:lab/busybox:pull,push`; space-separated in the header."""
        return tuple(self.params.get("scope", "").split())

    @property
    def sorted_scopes(self) -> str:
        """The scopes with each one's actions sorted (`pull,push`), as a message shows them: registries vary the order."""
        return " ".join(sorted_actions(scope) for scope in self.scopes)

    @property
    def error(self) -> str | None:
        """The RFC 6750 error code, such as `invalid_token` (expired) or `insufficient_scope`."""
        return self.params.get("error")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse every challenge in one `WWW-Authenticate` value; scheme names come back lowercase."""
    challenges: list[Challenge] = []
    pos = _skip(_SEPARATORS, header, 0)
    while pos < len(header):
        scheme = _TOKEN.match(header, pos)
        if not scheme:
            break
        params, pos = _parse_params(header, scheme.end())
        challenges.append(Challenge(scheme.group().lower(), params))
        pos = _skip(_SEPARATORS, header, pos)
    return challenges


def parse_challenge(headers: list[str] | str) -> Challenge | None:
    """The challenge to answer from one or more header values: Bearer if offered, else the first one."""
    values = [headers] if isinstance(headers, str) else headers
    found = [c for value in values for c in parse_challenges(value)]
    bearer = [c for c in found if c.scheme == "bearer"]
    return (bearer or found or [None])[0]


def _parse_params(header: str, pos: int) -> tuple[dict[str, str], int]:
    """Read `name=value` pairs after a scheme, stopping before the next scheme name or at the end."""
    params: dict[str, str] = {}
    while True:
        start = _skip(_SEPARATORS, header, pos)
        name = _TOKEN.match(header, start)
        equals = _skip(_SPACES, header, name.end()) if name else start
        if not name or not header.startswith("=", equals):
            return params, pos
        value, pos = _parse_value(header, _skip(_SPACES, header, equals + 1))
        params[name.group().lower()] = value


def _parse_value(header: str, pos: int) -> tuple[str, int]:
    """Read a quoted string (unescaping `\\x`), else a bare value up to the next comma or space."""
    quoted = _QUOTED.match(header, pos)
    if quoted:
        return _ESCAPE.sub(r"\1", quoted.group(1)), quoted.end()
    bare = _BARE.match(header, pos)
    return bare.group(), bare.end()


def _skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    return pattern.match(text, pos).end()


def sorted_actions(scope: str) -> str:
    """A scope `type:name:actions` with its actions in sorted order (the registry sends them in any order)."""
    resource, _, actions = scope.rpartition(":")
    return f"{resource}:{','.join(sorted(actions.split(',')))}" if resource else scope
