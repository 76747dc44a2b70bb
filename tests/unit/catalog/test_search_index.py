"""Search documents kept in step with the catalog (:mod:`dockyard.catalog.search_index`), on
SQLite and PostgreSQL: descriptions as they change, a build definition's Dockerfile (before
and after its image exists, gone with it), and on PostgreSQL names found despite a typo."""

from __future__ import annotations

import time

from dockyard.app.services import Services
from dockyard.builds.definitions import DefinitionChanges, DefinitionInput
from dockyard.catalog.search import search
from dockyard.catalog.search_query import parse
from tests.unit.catalog.factories import WORKSPACE, People, push


async def names(services: Services, people: People, q: str) -> list[str]:
    async with services.db.read() as conn:
        found = await search(
            conn, people.reader, parse(q), 20, 0, now=time.time(), is_sqlite=services.db.is_sqlite
        )
    return [item.name for item in found.items]


async def test_documents_follow_descriptions_and_dockerfiles(services: Services, people: People) -> None:
    assert services.builds is not None
    definitions = services.builds.definitions
    dockerfile = "FROM debian:12\nRUN apt-get install -y bcftools\n"
    await definitions.create(people.developer, WORKSPACE, "caller", DefinitionInput(dockerfile=dockerfile))
    await push(services, f"{WORKSPACE}/caller", "v1")
    assert await names(services, people, "bcftools") == ["lab/caller"]
    await services.catalog.update_image(people.maintainer, "lab/caller", "Calls SNPs")
    assert await names(services, people, "snps") == ["lab/caller"]
    await definitions.update(
        people.developer, "lab/caller", DefinitionChanges(dockerfile="FROM debian:12\nRUN make htslib\n")
    )
    assert await names(services, people, "bcftools") == []
    assert await names(services, people, "htslib") == ["lab/caller"]
    await definitions.delete(people.maintainer, "lab/caller", "192.0.2.1")
    assert await names(services, people, "htslib") == []
    assert await names(services, people, "snps") == ["lab/caller"]  # the image stays


async def test_similar_names_on_postgresql(services: Services, people: People) -> None:
    await push(services, f"{WORKSPACE}/samtools", "v1")
    found = await names(services, people, "samtols")
    assert found == ([] if services.db.is_sqlite else ["lab/samtools"])  # pg_trgm; FTS5 has no typos
    assert await names(services, people, "samt") == ["lab/samtools"]  # a prefix, on both
