"""Who may use the operator API: every route but ``/api/health`` needs an authenticated operator
whose role allows it.

Credentials: a bearer token (a local one made by ``kuroshio user token``, or an OpenID Connect
access token from the node's identity provider) for scripts, and for the browser a session cookie
(``HttpOnly``, ``SameSite=Strict``, ``Secure`` over TLS) set by the login form at ``/login``.
Whatever the credentials, a request naming a host this node does not serve is refused (DNS
rebinding), and so is an unsafe request (``POST``…) from another origin or site; a session's
unsafe requests must also carry its CSRF token in ``X-CSRF-Token``. Both schemes are in the
OpenAPI document. The checks themselves live in :mod:`kuroshio.access`; no SQL runs here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import ipaddress
import json
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from kuroshio.access import Principal, Role, require
from kuroshio.access.local import (
    TOKEN_PREFIX,
    check_password,
    close_session,
    open_session,
    same_secret,
    session_principal,
    token_principal,
)
from kuroshio.access.oidc import OidcVerifier
from kuroshio.errors import NotAuthenticated, NotPermitted
from kuroshio.node import Node
from kuroshio.store.sqlite import StoreReader

SESSION_COOKIE: Final = "kuroshio_session"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_LOGIN_BODY: Final = 4_096
LOGIN_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)

bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    auto_error=False,
    description=(
        "A local token (`kuroshio user token NAME`, starting `ksh_`) or an OpenID Connect access "
        "token of the node's identity provider (`[api.oidc]`), roles from its roles claim."
    ),
)
session_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="session",
    auto_error=False,
    description=(
        "The browser session set by the login form at /login; unsafe requests also carry the "
        f"session's CSRF token (GET /api/whoami) in {CSRF_HEADER}."
    ),
)

router = APIRouter(tags=["access"])


class Gate:
    """The access settings of one app: the hosts it serves, the identity provider, sessions."""

    def __init__(self, node: Node) -> None:
        api = node.config.api
        hosts = {*LOOPBACK_NAMES, *(name.lower() for name in api.public_hosts)}
        if api.host not in ("0.0.0.0", "::"):
            hosts.add(api.host.lower())
        self.hosts = frozenset(hosts)
        self.secure = api.certfile is not None
        self.session_hours = api.session_hours
        self.oidc = None if api.oidc is None else OidcVerifier(api.oidc, directory=node.directory)

    def serves(self, host_header: str | None) -> bool:
        """Whether a ``Host`` header names this node."""
        if not host_header:
            return False
        host = host_header.strip().lower()
        if host.startswith("["):
            host = host[1 : host.find("]")] if "]" in host else host
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        with contextlib.suppress(ValueError):
            host = str(ipaddress.ip_address(host))
        return host in self.hosts


def _gate(request: Request) -> Gate:
    gate: Gate = request.app.state.gate
    return gate


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def _reader(request: Request) -> StoreReader:
    reader: StoreReader = request.app.state.reader
    return reader


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    session: Annotated[str | None, Security(session_scheme)],
) -> Principal:
    """The operator making ``request``; raises :class:`NotAuthenticated` when there is none."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    now = _now()
    principal: Principal | None
    if bearer is not None:
        secret = bearer.credentials
        if secret.startswith(TOKEN_PREFIX):
            principal = _reader(request).read(lambda tx: token_principal(tx, secret, now))
            if principal is None:
                raise NotAuthenticated("bearer token unknown, revoked or expired")
        elif _gate(request).oidc is not None:
            verifier = _gate(request).oidc
            assert verifier is not None
            principal = verifier.principal(secret)
        else:
            raise NotAuthenticated("bearer token unknown (no identity provider is configured)")
    elif session:
        principal = _reader(request).read(lambda tx: session_principal(tx, session, now))
        if principal is None:
            raise NotAuthenticated("session expired or ended: log in again at /login")
        if request.method not in SAFE_METHODS and not same_secret(
            request.headers.get(CSRF_HEADER), principal.csrf
        ):
            raise NotPermitted(f"a session's {request.method} needs its {CSRF_HEADER} header")
    else:
        raise NotAuthenticated("authentication required: a bearer token or a session (/login)")
    request.state.principal = principal
    return principal


def needs(role: Role) -> Callable[..., Principal]:
    """A dependency: the request's operator, when its role allows ``role``."""

    def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        return require(principal, role)

    check.__name__ = f"needs_{role}"
    return check


Operator = Annotated[Principal, Depends(needs("viewer"))]


# --- the host and origin of every request ----------------------------------------------------

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class SameSiteOnly:
    """ASGI middleware: refuse a request naming a host this node does not serve, and an unsafe
    one sent by a page of another origin or site (cross-site request forgery)."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host")
        refusal = None
        if not self.gate.serves(host):
            refusal = f"host {(host or '')[:100]!r} is not served here"
        elif scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin")
            scheme = "https" if scope.get("scheme") == "https" else "http"
            if origin is not None and origin != f"{scheme}://{host}":
                refusal = f"a {scope['method']} from {origin[:100]!r} is not served here"
            elif headers.get("sec-fetch-site") == "cross-site":
                refusal = f"a cross-site {scope['method']} is not served here"
        if refusal is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": refusal}).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# --- logging in and out ------------------------------------------------------------------------

_LOGIN_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kuroshio: log in to {node}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 24em; margin: 4em auto">
<h1 style="font-size: 1.3em">{node}</h1>
<p>Log in to this node's picture.</p>
{message}
<form method="post" action="/login">
<p><label>Operator<br><input name="name" autocomplete="username" required autofocus></label></p>
<p><label>Password<br><input name="password" type="password" autocomplete="current-password"
 required></label></p>
<p><button type="submit">Log in</button></p>
</form></body></html>
"""


def _login_page(node: Node, message: str = "", status: int = 200) -> HTMLResponse:
    shown = f'<p role="alert" style="color: #a00">{html.escape(message)}</p>' if message else ""
    name = html.escape(f"{node.config.node.name} ({node.party})")
    return HTMLResponse(
        _LOGIN_PAGE.format(node=name, message=shown),
        status_code=status,
        headers={"Content-Security-Policy": LOGIN_POLICY, "Cache-Control": "no-store"},
    )


@router.get("/login", include_in_schema=False)
def login_page(request: Request) -> Response:
    return _login_page(_node(request))


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    node = _node(request)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BODY:
            return _login_page(node, "request too large", 413)
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
    name = (form.get("name") or [""])[0].strip()
    password = (form.get("password") or [""])[0]
    opened = await run_in_threadpool(_log_in, node, name, password, _gate(request).session_hours)
    if opened is None:
        return _login_page(node, "That operator name and password were not accepted.", 401)
    secret, hours = opened
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=hours * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_gate(request).secure,
    )
    return response


def _log_in(node: Node, name: str, password: str, hours: int) -> tuple[str, int] | None:
    with node.store.transaction() as tx:
        principal = check_password(tx, name, password)
        if principal is None:
            node.audit.append(
                tx, "access", "login refused", {"operator": name[:64], "outcome": "refused"}
            )
            return None
        secret, _ = open_session(tx, principal.name, _now(), hours)
        node.audit.append(
            tx,
            "access",
            f"login {principal.name}",
            {"operator": principal.label, "role": principal.role, "outcome": "session"},
        )
    return secret, hours


@router.post("/api/logout", summary="End this browser session")
def logout(
    request: Request,
    principal: Operator,
    session: Annotated[str | None, Security(session_scheme)],
) -> Response:
    node = _node(request)
    if session and principal.via == "session":
        with node.store.transaction() as tx:
            close_session(tx, session)
            node.audit.append(
                tx, "access", f"logout {principal.name}", {"operator": principal.label}
            )
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/api/whoami", summary="The operator making this request, its role and CSRF token")
def whoami(principal: Operator) -> dict[str, str | None]:
    return {
        "name": principal.name,
        "role": principal.role,
        "via": principal.via,
        "csrf": principal.csrf,
    }


@router.get(
    "/api/operators",
    summary="Local operators and their tokens (names, roles and dates; never a secret)",
    dependencies=[Depends(needs("admin"))],
)
def operators(request: Request) -> dict[str, list[dict[str, object]]]:
    def listing(tx: Any) -> dict[str, list[dict[str, object]]]:
        return {
            "operators": [
                {
                    "name": row.name,
                    "role": row.role,
                    "password": row.password_hash is not None,
                    "disabled": row.disabled,
                }
                for row in tx.operators.all()
            ],
            "tokens": [
                {
                    "operator": row.operator,
                    "name": row.label,
                    "expires_at": None if row.expires_at is None else row.expires_at // 1_000_000,
                }
                for row in tx.operators.tokens()
            ],
        }

    return _reader(request).read(listing)


def picture_or_login(request: Request) -> Principal | Response:
    """The viewer opening the picture, or a redirect to the login form."""
    try:
        return needs("viewer")(
            authenticate(
                request,
                _bearer_of(request),
                request.cookies.get(SESSION_COOKIE),
            )
        )
    except NotAuthenticated:
        return RedirectResponse("/login", status_code=303)


def _bearer_of(request: Request) -> HTTPAuthorizationCredentials | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials.strip())


__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Gate",
    "Operator",
    "SameSiteOnly",
    "authenticate",
    "needs",
    "picture_or_login",
    "router",
]
