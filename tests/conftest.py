"""Fixtures shared by every test: the database backend, a live server, and people."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import DatabaseFactory, Org, Person, QueryCounter, org_context


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="database backend for the whole run (make test runs both)",
    )


@pytest.fixture(scope="session")
def db_backend(request: pytest.FixtureRequest) -> str:
    """'sqlite' or 'postgres'."""
    return str(request.config.getoption("--db"))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory for the whole run."""
    return tmp_path_factory.mktemp("courtyard")


@pytest.fixture(scope="session")
async def databases(db_backend: str, workdir: Path) -> AsyncIterator[DatabaseFactory]:
    """Makes migrated databases; drops them at the end of the run."""
    factory = DatabaseFactory(db_backend, workdir)
    yield factory
    await factory.drop_all()


@pytest.fixture(scope="session")
async def org(databases: DatabaseFactory, workdir: Path) -> AsyncIterator[Org]:
    """One organisation on one live server, shared by tests that create their own people."""
    async with org_context(databases, workdir) as shared:
        yield shared


@pytest.fixture
async def fresh_org(databases: DatabaseFactory, workdir: Path) -> AsyncIterator[Org]:
    """An organisation of its own (for tests that need an empty or unusual installation)."""
    async with org_context(databases, workdir) as own:
        yield own


@pytest.fixture
async def owner(org: Org) -> Person:
    """The organisation's owner."""
    return org.owner


@pytest.fixture
async def admin(org: Org) -> Person:
    """A fresh administrator."""
    return await org.person("admin", role="admin")


@pytest.fixture
async def alice(org: Org) -> Person:
    """A fresh member."""
    return await org.person("alice")


@pytest.fixture
async def bob(org: Org) -> Person:
    """A fresh member."""
    return await org.person("bob")


@pytest.fixture
async def carol(org: Org) -> Person:
    """A fresh member."""
    return await org.person("carol")


@pytest.fixture
async def guest(org: Org) -> Person:
    """A fresh guest."""
    return await org.person("guest", role="guest")


@pytest.fixture
def queries(org: Org) -> QueryCounter:
    """Counts SQL statements the shared server sends."""
    return QueryCounter(org.server.services)
