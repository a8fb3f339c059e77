"""OpenID Connect bearer tokens from an organisation's identity provider (Keycloak or any OIDC
issuer), checked against the issuer's published keys (JWKS) with joserfc.

A token is accepted when its signature checks with a key of the JWKS (fetched over HTTPS and
kept; fetched again, at most once a minute, when a token names a key not held), it names the
configured issuer and audience, it has not expired, and a claim (``roles`` by default, a dotted
path such as ``realm_access.roles`` for Keycloak) holds a kuroshio role (optionally with a
prefix, e.g. ``kuroshio-liaison``); the highest role held is taken. This module signs nothing and
keeps no session.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated, Any, Final

import httpx
import msgspec
from joserfc import errors as jose_errors
from joserfc import jws, jwt
from joserfc.jwk import KeySet

from kuroshio.access import ROLES, Principal, Role
from kuroshio.errors import NotAuthenticated, NotPermitted

REFETCH_AFTER_S: Final = 60.0
"""Least time between two fetches of the JWKS for an unknown key id."""
KEEP_KEYS_S: Final = 3_600.0
MAX_TOKEN_BYTES: Final = 16 * 1024


class OidcSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[api.oidc]`` in ``kuroshio.toml``: the identity provider whose tokens are accepted."""

    issuer: Annotated[str, msgspec.Meta(min_length=1)]
    """The ``iss`` its tokens carry, e.g. ``https://sso.example/realms/watch``."""
    audience: Annotated[str, msgspec.Meta(min_length=1)]
    """The ``aud`` a token for this node carries (its client id)."""
    jwks_url: str | None = None
    """Where the issuer publishes its keys (``…/protocol/openid-connect/certs`` for Keycloak)."""
    jwks_file: str | None = None
    """Or a JWKS file, for a node that cannot reach the issuer."""
    roles_claim: str = "roles"
    """The claim holding the roles, a dotted path for nested claims."""
    role_prefix: str = ""
    """What the provider puts before a role name (``kuroshio-`` gives ``kuroshio-viewer``)."""
    algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")
    leeway_s: Annotated[int, msgspec.Meta(ge=0, le=300)] = 30


class OidcVerifier:
    """Checks bearer tokens of one identity provider; safe to share between threads."""

    def __init__(self, settings: OidcSettings, *, directory: Path | None = None) -> None:
        if (settings.jwks_url is None) == (settings.jwks_file is None):
            raise NotAuthenticated("[api.oidc] needs exactly one of jwks_url and jwks_file")
        self.settings = settings
        self._directory = directory
        self._keys: KeySet | None = None
        self._fetched = 0.0
        self._lock = threading.Lock()

    def _load(self) -> KeySet:
        settings = self.settings
        try:
            if settings.jwks_file is not None:
                path = Path(settings.jwks_file)
                if self._directory is not None and not path.is_absolute():
                    path = self._directory / path
                document = msgspec.json.decode(path.read_bytes())
            else:
                assert settings.jwks_url is not None
                response = httpx.get(settings.jwks_url, timeout=10.0, follow_redirects=False)
                response.raise_for_status()
                document = response.json()
            return KeySet.import_key_set(document)
        except (OSError, httpx.HTTPError, ValueError, jose_errors.JoseError) as error:
            raise NotAuthenticated(f"identity provider keys unavailable: {error}") from None

    def _key_set(self, kid: str | None) -> KeySet:
        with self._lock:
            now = time.monotonic()
            stale = self._keys is None or now - self._fetched > KEEP_KEYS_S
            unknown = (
                self._keys is not None
                and kid is not None
                and all(key.kid != kid for key in self._keys.keys)
                and now - self._fetched > REFETCH_AFTER_S
            )
            if stale or unknown:
                self._keys, self._fetched = self._load(), now
            assert self._keys is not None
            return self._keys

    def principal(self, token: str) -> Principal:
        """The person a token speaks for, with the highest kuroshio role its claim holds.

        Raises :class:`NotAuthenticated` for a token that does not check out and
        :class:`NotPermitted` for a valid one that holds no kuroshio role."""
        if len(token) > MAX_TOKEN_BYTES:
            raise NotAuthenticated("bearer token too long")
        settings = self.settings
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (jose_errors.JoseError, ValueError, UnicodeEncodeError):
            raise NotAuthenticated("bearer token is not a JWT") from None
        kid = header.get("kid")
        try:
            decoded = jwt.decode(token, self._key_set(kid), algorithms=list(settings.algorithms))
            jwt.JWTClaimsRegistry(
                leeway=settings.leeway_s,
                iss={"essential": True, "value": settings.issuer},
                aud={"essential": True, "value": settings.audience},
                exp={"essential": True},
            ).validate(decoded.claims)
        except (jose_errors.JoseError, ValueError, TypeError) as error:
            raise NotAuthenticated(f"bearer token refused: {_why(error)}") from None
        claims = decoded.claims
        subject = str(claims.get("preferred_username") or claims.get("sub") or "unnamed")[:200]
        role = self._role(claims)
        if role is None:
            raise NotPermitted(
                f"oidc:{subject} holds no kuroshio role in the {settings.roles_claim!r} claim"
            )
        return Principal(name=subject, role=role, via="oidc")

    def _role(self, claims: dict[str, Any]) -> Role | None:
        value: Any = claims
        for part in self.settings.roles_claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        held = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        prefix = self.settings.role_prefix
        best: Role | None = None
        for item in held:
            if isinstance(item, str) and item.startswith(prefix):
                name = item[len(prefix) :]
                if name in ROLES and (best is None or ROLES.index(name) > ROLES.index(best)):
                    best = name
        return best


def _why(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:200]


__all__ = ["OidcSettings", "OidcVerifier"]
