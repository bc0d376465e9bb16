"""Who may do what in the classroom registry: scopes asked for, and the access granted.

A client asks the token server for scopes like `repository:lab/busybox:pull,push` (several
`scope` parameters, or several scopes in one value separated by spaces). Like Docker Hub,
the token server never refuses a scope: it grants the allowed actions and silently drops
the rest, and the registry later answers 401 `insufficient_scope`. A repository name
that breaks the distribution grammar (`alice/../bob`, `alice/x/../../bob`) is granted
nothing at all, before any rule looks at its prefix. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..reference import is_repository_name

ANONYMOUS = ""
TEACHER = "teacher"
STUDENT = "student"
REPOSITORY = "repository"
REGISTRY = "registry"
CATALOG = "catalog"


@dataclass(frozen=True)
class Scope:
    """One requested scope: a resource type, its name, and the actions wanted on it."""

    type: str
    name: str
    actions: tuple[str, ...]

    def as_access(self, actions: tuple[str, ...]) -> dict:
        """The JWT `access` entry granting `actions` on this resource."""
        return {"type": self.type, "name": self.name, "actions": list(actions)}


def parse_scopes(values: list[str]) -> list[Scope]:
    """Every scope in the `scope` query values; malformed ones are ignored, as registries do.

    A scope is `type:name:actions`; the name itself may hold a colon (a registry host with a
    port), so the actions are what follows the LAST colon.
    """
    scopes = []
    for value in values:
        for text in value.split():
            resource_type, _, rest = text.partition(":")
            name, _, actions = rest.rpartition(":")
            if resource_type and name and actions:
                scopes.append(Scope(resource_type, name, tuple(a for a in actions.split(",") if a)))
    return scopes


def allowed_actions(scope: Scope, subject: str, role: str | None) -> set[str]:
    """The actions `subject` (with `role`, or None when anonymous) may have on `scope`'s resource."""
    if scope.type == REGISTRY:
        return {"*"} if role == TEACHER and scope.name == CATALOG else set()
    if scope.type != REPOSITORY or not is_repository_name(scope.name):
        return set()
    if role == TEACHER:
        return {"pull", "push", "delete", "*"}
    if role == STUDENT and scope.name.startswith(f"{subject}/"):
        return {"pull", "push"}
    return {"pull"}


def grant(scopes: list[Scope], subject: str, role: str | None) -> list[dict]:
    """The JWT `access` list: each scope with only the actions allowed, in the order asked."""
    access = []
    for scope in scopes:
        allowed = allowed_actions(scope, subject, role)
        access.append(scope.as_access(tuple(a for a in scope.actions if a in allowed)))
    return access
