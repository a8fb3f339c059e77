"""Shared fixtures: where the public data lives, whether servers must be reachable, and the
PostgreSQL server the store tests use."""

from __future__ import annotations

import os
from pathlib import Path

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


def service_unreachable(name: str, reason: str) -> None:
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
