"""Who may use the operator API, over HTTP against a real server: nothing but the health check
without an operator; every route × role; the browser session (cookie flags, CSRF token, login
and logout); requests naming another host or coming from another site; OpenID Connect tokens
checked against a JWKS served over HTTP; the operator named in the audit; private files."""

from __future__ import annotations

import contextlib
import http.server
import json
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from api_server import serving
from kuroshio.access import ROLES
from kuroshio.access.oidc import OidcSettings
from kuroshio.api import create_app
from kuroshio.node import Node, init_node, open_node, save_config
from observations import observation

PASSWORD = "correct horse battery"

# Every route of the app and the least role that may use it (None: no operator needed).
MATRIX: dict[tuple[str, str], str | None] = {
    ("GET", "/api/health"): None,
    ("GET", "/login"): None,
    ("POST", "/login"): None,
    ("GET", "/metrics"): "monitor",
    ("GET", "/api/whoami"): "viewer",
    ("POST", "/api/logout"): "viewer",
    ("GET", "/api/observations"): "viewer",
    ("GET", "/api/events"): "viewer",
    ("GET", "/api/stream"): "viewer",
    ("GET", "/api/cop/status"): "viewer",
    ("GET", "/api/cop/catalogue"): "viewer",
    ("GET", "/api/cop/zones"): "viewer",
    ("GET", "/api/cop/observation"): "viewer",
    ("GET", "/api/cop/sorties"): "viewer",
    ("GET", "/api/cop/audit"): "viewer",
    ("GET", "/api/fused"): "viewer",
    ("GET", "/api/feeds"): "viewer",
    ("GET", "/api/export.kml"): "viewer",
    ("GET", "/api/export.kmz"): "viewer",
    ("GET", "/api/export.geojson"): "viewer",
    ("GET", "/"): "viewer",
    ("GET", "/assets/{name:path}"): "viewer",
    ("GET", "/openapi.json"): "viewer",
    ("POST", "/api/observations"): "operator",
    ("GET", "/api/links"): "liaison",
    ("GET", "/api/ledger"): "liaison",
    ("GET", "/api/operators"): "admin",
    ("GET", "/api/messages"): "viewer",
    ("GET", "/api/messages/{message_id}"): "viewer",
    ("POST", "/api/messages"): "liaison",
    ("POST", "/api/messages/{message_id}/ack"): "liaison",
    ("GET", "/api/requests"): "viewer",
    ("POST", "/api/requests"): "liaison",
    ("POST", "/api/requests/{request_id}/cancel"): "liaison",
    ("GET", "/api/incidents"): "viewer",
    ("GET", "/api/incidents/{incident_id}"): "viewer",
    ("POST", "/api/incidents"): "liaison",
    ("POST", "/api/incidents/{incident_id}"): "liaison",
}
PARAMS = {
    "/api/cop/observation": {"id": "TWN:none:1"},
    "/api/cop/sorties": {"start": "2022-08-05", "end": "2022-08-06"},
    "/api/fused": {"start": "2022-08-05", "end": "2022-08-06"},
    "/assets/{name:path}": {},
}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with init_node(tmp_path / "twn", "TWN") as made:
        for role in ROLES:
            made.add_operator(f"an-{role}", role, PASSWORD)
    with open_node(tmp_path / "twn") as opened:
        yield opened


def _tokens(node: Node) -> dict[str, str]:
    return {role: node.issue_token(f"an-{role}", "tests", None) for role in ROLES}


def _call(http: httpx.Client, method: str, path: str, **kwargs: object) -> httpx.Response:
    url = path.replace("{name:path}", "app.js")
    if path == "/api/stream":
        with http.stream(method, url, params={"after": 0}, **kwargs) as response:  # type: ignore[arg-type]
            if response.status_code != 200:
                response.read()  # a refusal says why; the stream itself never ends
            return response
    if method == "POST" and path == "/api/observations":
        kwargs.setdefault("content", msgspec.json.encode(observation(1)))
    return http.request(method, url, params=PARAMS.get(path, {}), **kwargs)  # type: ignore[arg-type]


def test_every_route_is_in_the_matrix(node: Node) -> None:
    def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:  # a router included in the app
                yield from walk(included.routes, prefix)
                continue
            for method in getattr(route, "methods", ()) or ():
                if method != "HEAD":
                    yield method, prefix + route.path

    assert set(walk(create_app(node).routes)) == set(MATRIX)


def test_route_by_role(node: Node) -> None:
    tokens = _tokens(node)
    with serving(node, token=None) as http:
        for (method, path), needed in MATRIX.items():
            if path == "/login":
                continue
            anonymous = _call(http, method, path)
            if needed is None:
                assert anonymous.status_code == 200, (method, path)
                continue
            expected_anonymous = 303 if path == "/" else 401
            assert anonymous.status_code == expected_anonymous, (method, path, anonymous.text)
            for role in ROLES:
                headers = {"Authorization": f"Bearer {tokens[role]}"}
                response = _call(http, method, path, headers=headers)
                allowed = ROLES.index(role) >= ROLES.index(needed)
                if allowed:
                    assert response.status_code not in (401, 403), (method, path, role)
                else:
                    assert response.status_code == 403, (method, path, role)
                    # It names a role the operator lacks: the route's, or one on the way to it
                    # (a monitor refused a liaison's route by the viewer check before it).
                    lacked = ROLES[ROLES.index(role) + 1 : ROLES.index(needed) + 1]
                    detail = response.json()["detail"]
                    assert any(f"needs the {r} role" in detail for r in lacked), detail


def test_unknown_revoked_and_expired_tokens_are_refused(node: Node) -> None:
    token = node.issue_token("an-viewer", "soon-gone", None)
    with serving(node, token=token) as http:
        assert http.get("/api/whoami").json()["name"] == "an-viewer"
        node.revoke_token("an-viewer", "soon-gone")
        refused = http.get("/api/whoami")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        wrong = http.get("/api/whoami", headers={"Authorization": "Bearer ksh_nothing"})
        assert wrong.status_code == 401
        node.remove_operator("an-admin")
        admin = node.directory / "keys" / "admin.token"  # still works: another operator
        assert (
            http.get(
                "/api/whoami", headers={"Authorization": f"Bearer {admin.read_text().strip()}"}
            ).json()["role"]
            == "admin"
        )


def _log_in(http: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    return http.post(
        "/login",
        content=f"name={name}&password={password.replace(' ', '+')}",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )


def test_the_browser_session_login_csrf_and_logout(node: Node) -> None:
    with serving(node, token=None) as http:
        assert http.get("/", follow_redirects=False).headers["location"] == "/login"
        page = http.get("/login")
        assert page.status_code == 200 and 'name="password"' in page.text
        refused = _log_in(http, "an-operator", "wrong password!")
        assert refused.status_code == 401 and "not accepted" in refused.text

        accepted = _log_in(http, "an-operator")
        assert accepted.status_code == 303 and accepted.headers["location"] == "/"
        cookie = accepted.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        me = http.get("/api/whoami").json()
        assert (me["name"], me["role"], me["via"]) == ("an-operator", "operator", "session")

        body = msgspec.json.encode(observation(1))
        without = http.post("/api/observations", content=body)
        assert without.status_code == 403 and "X-CSRF-Token" in without.json()["detail"]
        added = http.post("/api/observations", content=body, headers={"X-CSRF-Token": me["csrf"]})
        assert added.status_code == 200 and added.json()["inserted"] == 1

        assert http.post("/api/logout", headers={"X-CSRF-Token": me["csrf"]}).status_code == 204
        assert http.get("/api/whoami").status_code == 401
    [ingest] = node.audit.entries("ingest")[-1:]
    assert ingest.details["operator"] == "session:an-operator"
    logins = [e.subject for e in node.audit.entries("access")]
    assert "login refused" in logins and "login an-operator" in logins
    assert "logout an-operator" in logins


def test_cross_site_and_rebinding_requests_are_refused(node: Node) -> None:
    token = _tokens(node)["operator"]
    with serving(node, token=token) as http:
        body = msgspec.json.encode(observation(1))
        forged = http.post(
            "/api/observations",
            content=body,
            headers={"content-type": "text/plain", "Origin": "https://evil.example"},
        )
        assert forged.status_code == 403 and "evil.example" in forged.json()["detail"]
        rebound = http.get("/api/health", headers={"Host": "evil.example:8080"})
        assert rebound.status_code == 403 and "evil.example" in rebound.json()["detail"]
        site = http.post(
            "/api/observations", content=body, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert site.status_code == 403
        same = http.post(
            "/api/observations", content=body, headers={"Origin": str(http.base_url).rstrip("/")}
        )
        assert same.status_code == 200
    assert node.store.count_versions() == 1


def test_the_operator_of_every_write_is_in_the_audit(node: Node) -> None:
    token = _tokens(node)["operator"]
    with serving(node, token=token) as http:
        http.post("/api/observations", content=msgspec.json.encode(observation(1)))
    node.ingest([observation(2)])
    first, second = node.audit.entries("ingest")
    assert first.details["operator"] == "token:an-operator"
    assert second.details["operator"].startswith("local:")
    issued = [e for e in node.audit.entries("access") if "issued" in e.subject]
    assert issued and all("ksh_" not in json.dumps(e.details) for e in issued)


def test_a_node_directory_is_private(node: Node) -> None:
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(node.directory) == 0o700
    assert mode(node.directory / "keys") == 0o700
    for name in ("kuroshio.toml", "store.sqlite", "keys/admin.token", "keys/signing.key"):
        assert mode(node.directory / name) == 0o600, name
    node.ingest([observation(1)])
    assert mode(node.directory / "store.sqlite-wal") == 0o600


# --- OpenID Connect --------------------------------------------------------------------------


class _Jwks(http.server.BaseHTTPRequestHandler):
    document: bytes = b"{}"
    fetches = 0

    def do_GET(self) -> None:
        type(self).fetches += 1
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).document)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _jwks_server(keys: KeySet) -> Iterator[str]:
    _Jwks.document = json.dumps(keys.as_dict(private=False)).encode()
    _Jwks.fetches = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/certs"
    finally:
        server.shutdown()
        thread.join(10)


ISSUER = "https://sso.example/realms/watch"


def _token(key: RSAKey, **claims: object) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": "kuroshio-twn", "exp": now + 300, "iat": now, **claims}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, payload, key)


def test_openid_connect_tokens_are_checked_against_the_issuers_keys(node: Node) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    with _jwks_server(KeySet([key])) as jwks_url:
        node.config.api.oidc = OidcSettings(
            issuer=ISSUER,
            audience="kuroshio-twn",
            jwks_url=jwks_url,
            roles_claim="realm_access.roles",
            role_prefix="kuroshio-",
        )
        save_config(node.directory, node.config)
        with serving(open_node(node.directory), token=None) as http:

            def whoami(token: str) -> httpx.Response:
                return http.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})

            roles = {"realm_access": {"roles": ["offline", "kuroshio-viewer", "kuroshio-liaison"]}}
            good = whoami(_token(key, preferred_username="lin", **roles))
            assert good.json() == {"name": "lin", "role": "liaison", "via": "oidc", "csrf": None}
            assert whoami(_token(key, aud="another")).status_code == 401
            assert whoami(_token(key, exp=int(time.time()) - 3600, **roles)).status_code == 401
            assert whoami(_token(stranger, **roles)).status_code == 401
            assert whoami(_token(key, iss="https://elsewhere", **roles)).status_code == 401
            no_role = whoami(_token(key, sub="x", realm_access={"roles": ["offline"]}))
            assert no_role.status_code == 403 and "no kuroshio role" in no_role.json()["detail"]
            viewer = _token(key, **{"realm_access": {"roles": ["kuroshio-viewer"]}})
            post = http.post(
                "/api/observations",
                content=msgspec.json.encode(observation(1)),
                headers={"Authorization": f"Bearer {viewer}"},
            )
            assert post.status_code == 403
            assert _Jwks.fetches >= 1


def test_the_openapi_document_names_both_schemes(node: Node) -> None:
    with serving(node) as http:
        spec = http.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["session"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "kuroshio_session",
        "description": schemes["session"]["description"],
    }
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if path == "/api/health":
                assert "security" not in operation
            else:
                assert {"bearer": []} in operation["security"], (method, path)
