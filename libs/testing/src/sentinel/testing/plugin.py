"""pytest plugin: session-wide stores and span capture. Loaded by the repository's conftest.py."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sentinel.testing import stores
from sentinel.testing.tracing import install_span_exporter

# One OpenBLAS thread per process, as in the services (ARCHITECTURE.md §3).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def pytest_configure(config: pytest.Config) -> None:
    # Before any server or channel is built, so their interceptors report to this provider.
    install_span_exporter()


@pytest.fixture(scope="session")
def store_work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where embedded servers keep their data for this test run."""
    return tmp_path_factory.mktemp("stores")


@pytest.fixture(scope="session")
def postgres_admin_dsn(store_work_dir: Path) -> Iterator[str]:
    """DSN of the PostgreSQL server for this run (env, testcontainers, or embedded)."""
    with stores.postgres_server(store_work_dir) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def redis_url(store_work_dir: Path) -> Iterator[str]:
    """URL of the Redis server for this run (env, testcontainers, or embedded)."""
    with stores.redis_server(store_work_dir) as url:
        yield url


@pytest.fixture
async def postgres_dsn(postgres_admin_dsn: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    dsn = await stores.create_database(postgres_admin_dsn)
    try:
        yield dsn
    finally:
        await stores.drop_database(postgres_admin_dsn, dsn)


@pytest.fixture
def redis_namespace() -> str:
    """A key prefix no other test uses."""
    import uuid

    return f"sentinel-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The in-memory span exporter, emptied before and after the test."""
    exporter = install_span_exporter()
    exporter.clear()
    yield exporter
    exporter.clear()
