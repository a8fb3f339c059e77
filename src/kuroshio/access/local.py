"""Local operators: names and roles kept in the node's store, passwords hashed with Argon2id,
bearer tokens for scripts and sessions for the browser picture.

Secrets (tokens, session ids) are random 256-bit values shown once; the store keeps only their
SHA-256, so a copy of the store opens nothing. A password is checked against its Argon2id hash
(argon2-cffi's defaults, RFC 9106's second recommended profile). This module talks to no client;
the API reads credentials from requests (:mod:`kuroshio.api.access`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
from typing import Final

import argon2

from kuroshio.access import Principal, Role, role_named
from kuroshio.errors import InputError
from kuroshio.store.sql import micros
from kuroshio.store.transaction import Transaction

TOKEN_PREFIX: Final = "ksh_"
"""Local bearer tokens start with this; anything else is taken for an OpenID Connect token."""
NAME_PATTERN: Final = re.compile(r"^[a-z][a-z0-9._-]{0,62}$")
MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1_024
SESSION_HOURS: Final = 12

_hasher = argon2.PasswordHasher()


@functools.cache
def _unusable() -> str:
    """A hash of a random password nobody knows: an unknown operator's password is checked
    against it, so that answering takes as long as for a known one. Made once, when first
    needed (hashing is slow by design; a command that checks no password does not pay it)."""
    return _hasher.hash(secrets.token_urlsafe(32))


"""Checked against when the operator does not exist, so that the answer takes as long."""


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise InputError(
            f"operator name {name[:70]!r}: lower case letters, digits, '.', '_' or '-', "
            "starting with a letter"
        )
    return name


def _password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InputError(f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def add_operator(
    tx: Transaction, name: str, role: str, password: str | None, now: dt.datetime
) -> Role:
    """Add (or change the role and password of) a local operator; its role."""
    checked = role_named(role)
    hashed = None if password is None else _hasher.hash(_password(password))
    tx.operators.put(_name(name), checked, hashed, micros(now))
    return checked


def check_password(tx: Transaction, name: str, password: str) -> Principal | None:
    """The operator whose name and password these are, else None (taking as long either way)."""
    found = tx.operators.get(name) if NAME_PATTERN.fullmatch(name) else None
    stored = found.password_hash if found is not None and not found.disabled else None
    try:
        _hasher.verify(stored or _unusable(), password[:MAX_PASSWORD])
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return None
    if found is None or stored is None:
        return None
    return Principal(name=found.name, role=role_named(found.role), via="session")


def issue_token(
    tx: Transaction,
    operator: str,
    label: str,
    now: dt.datetime,
    *,
    valid_for: dt.timedelta | None = None,
) -> str:
    """A new bearer token acting as ``operator`` (shown this once), named ``label``."""
    found = tx.operators.get(_name(operator))
    if found is None or found.disabled:
        raise InputError(f"no operator {operator!r}: add it first with 'kuroshio user add'")
    if not NAME_PATTERN.fullmatch(label):
        raise InputError(f"token name {label[:70]!r}: lower case letters, digits, '.', '_', '-'")
    if tx.operators.token_labelled(operator, label):
        raise InputError(f"{operator} already has a token named {label!r}; revoke it first")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = None if valid_for is None else micros(now + valid_for)
    tx.operators.add_token(_digest(secret), label, operator, micros(now), expires)
    return secret


def token_principal(tx: Transaction, secret: str, now: dt.datetime) -> Principal | None:
    """The operator a bearer token acts as, while it and its operator are valid."""
    row = tx.operators.token(_digest(secret))
    if row is None or (row.expires_at is not None and row.expires_at <= micros(now)):
        return None
    found = tx.operators.get(row.operator)
    if found is None or found.disabled:
        return None
    return Principal(name=found.name, role=role_named(found.role), via="token")


def open_session(
    tx: Transaction, operator: str, now: dt.datetime, hours: int = SESSION_HOURS
) -> tuple[str, str]:
    """A new browser session for ``operator``: (session id, CSRF token), shown this once."""
    secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    tx.operators.forget_expired(micros(now))
    tx.operators.open_session(
        _digest(secret), operator, csrf, micros(now + dt.timedelta(hours=hours))
    )
    return secret, csrf


def session_principal(tx: Transaction, secret: str, now: dt.datetime) -> Principal | None:
    """The operator of a browser session while it is open, with its CSRF token."""
    row = tx.operators.session(_digest(secret))
    if row is None or row.expires_at <= micros(now):
        return None
    found = tx.operators.get(row.operator)
    if found is None or found.disabled:
        return None
    return Principal(name=found.name, role=role_named(found.role), via="session", csrf=row.csrf)


def close_session(tx: Transaction, secret: str) -> None:
    tx.operators.close_session(_digest(secret))


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a CSRF token with the session's."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


__all__ = [
    "TOKEN_PREFIX",
    "add_operator",
    "check_password",
    "close_session",
    "issue_token",
    "open_session",
    "same_secret",
    "session_principal",
    "token_principal",
]
