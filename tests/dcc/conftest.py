"""DCC storage backends for the tests: SQLite always, PostgreSQL when a server is reachable.

PostgreSQL is found through SMARTHYDRA_TEST_POSTGRES_URL (default
postgresql://smarthydra:smarthydra@localhost/smarthydra, what .ci/postgres-setup.sh makes);
each test gets its own schema, dropped afterwards, so parallel workers never meet.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DEFAULT_POSTGRES = "postgresql://smarthydra:smarthydra@localhost/smarthydra"


def postgres_base_url() -> str:
    return os.environ.get("SMARTHYDRA_TEST_POSTGRES_URL", DEFAULT_POSTGRES)


def _driver_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema of the test PostgreSQL database."""
    try:
        import psycopg  # noqa: F401
        from sqlalchemy import create_engine, text
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[postgres]')")
    base = _driver_url(postgres_base_url())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(base)
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:
        pytest.skip(f"no PostgreSQL server at {postgres_base_url()}: {type(exc).__name__}: {exc}")
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
