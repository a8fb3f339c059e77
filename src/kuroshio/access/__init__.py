"""Who may use a node's operator API, and what each role may do.

Five roles, each allowing what the one before it does and more: ``monitor`` (the node's metrics
and nothing else, for a monitoring system), ``viewer`` (the picture and every read),
``operator`` (adds observations), ``liaison`` (the partners, links, agreements and the
reciprocity ledger), ``admin`` (keys, operators, configuration). A request is made by a
:class:`Principal`: a local operator through a bearer token or a browser session
(:mod:`kuroshio.access.local`), or a person of an organisation's identity provider through an
OpenID Connect bearer token (:mod:`kuroshio.access.oidc`). This package decides nothing about
routes; the API says which role each route needs.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias, get_args

import msgspec

from kuroshio.errors import InputError, NotPermitted

Role: TypeAlias = Literal["monitor", "viewer", "operator", "liaison", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
"""From least to most allowed; each role may do all that the ones before it may."""
ROLE_DUTIES: Final[dict[Role, str]] = {
    "monitor": "the node's metrics (GET /metrics) and nothing else",
    "viewer": "the picture and every read",
    "operator": "adds observations",
    "liaison": "partners, links, agreements and the reciprocity ledger",
    "admin": "keys, operators and configuration",
}


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who makes a request, with which role, and how that is known."""

    name: str
    role: Role
    via: Literal["token", "session", "oidc", "local"]
    csrf: str | None = None
    """For a browser session: the token an unsafe request must carry in ``X-CSRF-Token``."""

    @property
    def label(self) -> str:
        """How the audit log names this operator, e.g. ``session:alice`` or ``oidc:4f1c…``."""
        return f"{self.via}:{self.name}"


def allows(role: str, needed: Role) -> bool:
    """Whether ``role`` may do what ``needed`` may."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def require(principal: Principal, needed: Role) -> Principal:
    """``principal`` when its role allows ``needed``; raises :class:`NotPermitted` otherwise."""
    if not allows(principal.role, needed):
        raise NotPermitted(
            f"{principal.label} is {principal.role}; this needs the {needed} role "
            f"({ROLE_DUTIES[needed]})"
        )
    return principal


def role_named(text: str) -> Role:
    """The role called ``text``; raises :class:`InputError` naming the roles otherwise."""
    if text not in ROLES:
        raise InputError(f"role {text!r}: one of {', '.join(ROLES)} expected")
    return text


__all__ = ["ROLES", "ROLE_DUTIES", "Principal", "Role", "allows", "require", "role_named"]
