"""Fixtures of the build tests: each test module gets a server (per database) and a team."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.builds import Builds, Team, build_server, database_kinds, in_process, new_team
from tests.support.clients import Skopeo
from tests.support.images import TestImages
from tests.support.servers import RunningRegistry


@pytest.fixture(scope="module", params=database_kinds())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    kind: str = request.param
    label = request.module.__name__.rsplit(".", 1)[-1]
    with build_server(kind, tmp_path_factory.mktemp(f"{label}-{kind}")) as running:
        yield running


@pytest.fixture(scope="module")
def team(server: RunningRegistry, test_images: TestImages, tmp_path_factory: pytest.TempPathFactory) -> Team:
    return new_team(server, test_images, Skopeo(tmp_path_factory.mktemp("skopeo")))


@pytest.fixture
async def builds(server: RunningRegistry, tmp_path: Path) -> AsyncIterator[Builds]:
    async with in_process(server, tmp_path / "builds") as found:
        yield found
