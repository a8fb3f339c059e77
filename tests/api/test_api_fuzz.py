"""Property-based fuzzing of the operator API from its own OpenAPI document (schemathesis), against
a real server with authentication on, for a bounded number of cases per route: no answer is a
server error, and a request without credentials is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from api_server import admin_token, serving
from kuroshio.node import Node, init_node, open_node
from observations import observation

CASES_PER_ROUTE = 40
SKIPPED = {("GET", "/api/stream")}
"""The live stream answers by never ending; its parameters are checked in the API tests."""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with init_node(tmp_path / "twn", "TWN"):
        pass
    with open_node(tmp_path / "twn") as opened:
        opened.ingest([observation(n) for n in range(5)])
        yield opened


def test_no_generated_request_gets_a_server_error(node: Node) -> None:
    with serving(node) as http:
        spec: dict[str, Any] = http.get("/openapi.json").json()
        base_url = str(http.base_url).rstrip("/")
        schema = schemathesis.openapi.from_dict(spec)
        headers = {"Authorization": f"Bearer {admin_token(node)}"}
        checked = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SKIPPED:
                continue

            @settings(
                max_examples=CASES_PER_ROUTE,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def probe(case: schemathesis.Case) -> None:
                response = case.call(base_url=base_url, headers=headers, timeout=30)
                assert response.status_code < 500, (
                    f"{case.method} {case.formatted_path} {case.query}: "
                    f"{response.status_code} {response.text[:300]}"
                )
                anonymous = case.call(base_url=base_url, timeout=30)
                if case.operation.path != "/api/health":
                    assert anonymous.status_code == 401, (case.method, case.formatted_path)

            probe()
            checked += 1
        assert checked >= 15
