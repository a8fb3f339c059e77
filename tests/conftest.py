"""Shared fixtures: where the public data lives, whether servers must be reachable, and the
PostgreSQL server the store tests use."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

SHARED_DATA = Path(
    os.environ.get(
        "KUROSHIO_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
).resolve()


def require_data() -> bool:
    return os.environ.get("KUROSHIO_REQUIRE_DATA") == "1"


def require_services() -> bool:
    return os.environ.get("KUROSHIO_REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public data directory (../shared/data beside the checkout).

    Skips the test when it is absent, unless KUROSHIO_REQUIRE_DATA=1, where it fails.
    """
    if not (SHARED_DATA / "README.md").is_file():
        message = (
            f"public data not found at {SHARED_DATA} (expected ../shared/data beside the checkout)"
        )
        if require_data():
            pytest.fail(message + "; KUROSHIO_REQUIRE_DATA=1 makes it required")
        pytest.skip(message)
    return SHARED_DATA


def service_unreachable(name: str, reason: str) -> NoReturn:
    """Skip (or fail under KUROSHIO_REQUIRE_SERVICES=1) a test whose server cannot be reached."""
    message = f"{name} unreachable: {reason}"
    if require_services():
        pytest.fail(message + "; KUROSHIO_REQUIRE_SERVICES=1 makes it required")
    pytest.skip(message)


POSTGRES_DSN = os.environ.get("KUROSHIO_TEST_POSTGRES", "host=127.0.0.1 user=postgres dbname=test")


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The PostgreSQL server for store tests (skips, or fails when services are required)."""
    try:
        psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        service_unreachable("PostgreSQL", f"{POSTGRES_DSN}: {exc}".strip())
    return POSTGRES_DSN


POSTGRES_SCHEMAS: list[str] = []
"""Schemas made by test nodes on PostgreSQL, for the backend fixture to drop afterwards."""


def drop_postgres_schemas(dsn: str) -> None:
    """Remove every schema the test nodes made."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        while POSTGRES_SCHEMAS:
            conn.execute(f"DROP SCHEMA IF EXISTS {POSTGRES_SCHEMAS.pop()} CASCADE")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The store the nodes of a test keep: a SQLite file, or a schema of the PostgreSQL server
    (named by KUROSHIO_STORE_DSN, set here; required under KUROSHIO_REQUIRE_SERVICES=1)."""
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


@pytest.fixture(scope="session")
def tak_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TAK certificates for the feed tests (:func:`feed_support.make_tak_pki`)."""
    from feed_support import make_tak_pki

    return make_tak_pki(tmp_path_factory.mktemp("tak-pki"))
