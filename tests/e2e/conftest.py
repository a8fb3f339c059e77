"""The store backends federation tests run on: every node of a test keeps its store in a SQLite
file, or in a schema of the PostgreSQL server (required under KUROSHIO_REQUIRE_SERVICES=1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from federation_nodes import drop_postgres_schemas


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite"
        return
    dsn = request.getfixturevalue("postgres_dsn")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUROSHIO_STORE_DSN", dsn)
        try:
            yield "postgres"
        finally:
            drop_postgres_schemas(dsn)
