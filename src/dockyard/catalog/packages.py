"""The software inside a version: the packages its filesystem declares, indexed when inspected.

The inspection (:mod:`.inspections`) calls :meth:`PackageIndex.scan` once a version is read:
each platform manifest's layers are streamed from the blob store (:mod:`.package_scan`; a
pull-through cache's layers not stored yet are fetched through the cache, as its configs are)
and the version's rows in ``version_packages`` are replaced in one transaction, with how the
scan went in ``version_package_scans`` (``succeeded``; ``partial`` with what was not read;
``failed`` with why). Readers page them by (ecosystem, name key, version, platform);
:func:`versions_with_package` is what search asks.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, tuple_

from dockyard.archive.packages import Ecosystem, name_key
from dockyard.auth.policy import Subject
from dockyard.catalog.content import LayerNotPulled
from dockyard.catalog.inspect import ContentSource, platform_name
from dockyard.catalog.package_scan import FAILED, PARTIAL, SCANNER, SUCCEEDED, ScanLimits, scan_in_thread
from dockyard.catalog.service import Catalog
from dockyard.catalog.tables import image_versions, images, version_package_scans, version_packages
from dockyard.db.engine import Connection, Database
from dockyard.errors import Invalid, NotFound
from dockyard.oci.manifest import parse_manifest

log = logging.getLogger("dockyard.catalog")

LayerStream = Callable[[str, str], AsyncIterator[bytes]]  # (repository, digest) -> bytes
MAX_PAGE = 500


@dataclass(frozen=True)
class PackageRow:
    ecosystem: str
    name: str
    version: str
    platform: str


@dataclass(frozen=True)
class ScanState:
    state: str
    digest: str | None
    scanned_at: float
    packages: int
    bytes_read: int
    detail: str | None


@dataclass(frozen=True)
class PackagePage:
    scan: ScanState | None  # None: not scanned yet
    packages: list[PackageRow]
    next: str | None  # the ``last`` of the next page


def page_key(row: PackageRow) -> str:
    """Where the next page starts: the row's sort key, as URL-safe text."""
    key = [row.ecosystem, name_key(row.ecosystem, row.name), row.version, row.platform]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _after(last: str) -> list[str]:
    try:
        key = json.loads(base64.urlsafe_b64decode(last + "=" * (-len(last) % 4)))
    except ValueError:
        key = None
    if not isinstance(key, list) or len(key) != 4 or not all(isinstance(part, str) for part in key):
        raise Invalid("last: not the 'next' of a page of packages")
    return key


class PackageIndex:
    def __init__(
        self, db: Database, catalog: Catalog, source: ContentSource, layers: LayerStream, limits: ScanLimits
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.source = source
        self.layers = layers
        self.limits = limits

    async def _platforms(self, repository: str, digest: str) -> list[tuple[str, list[str]]]:
        """(platform, layer digests bottom first) of each image manifest the version names."""
        _, data = await self.source.manifest(repository, digest)
        parsed = parse_manifest(data, None)
        if not parsed.is_index:
            return [("", [str(layer.digest) for layer in parsed.layers])] if parsed.config else []
        found = []
        for child in parsed.manifests:
            platform = child.platform or {}
            if platform.get("os") == "unknown":  # attestation manifests
                continue
            _, child_data = await self.source.manifest(repository, str(child.digest))
            child_parsed = parse_manifest(child_data, None)
            if child_parsed.config is not None:
                layers = [str(layer.digest) for layer in child_parsed.layers]
                found.append((platform_name(platform) if platform else "", layers))
        return found

    async def scan(self, repository: str, image_id: int, version: str, digest: str) -> ScanState | None:
        """Read and store the packages of ``image_id``'s ``version`` at ``digest``; None when the
        version was pushed again meanwhile (the newer push's inspection scans it)."""
        rows: list[dict[str, Any]] = []
        notes: list[str] = []
        read = 0
        state = SUCCEEDED
        try:
            for platform, digests in await self._platforms(repository, digest):

                def layers(layer: str) -> AsyncIterator[bytes]:
                    return self.layers(repository, layer)

                found = await scan_in_thread(layers, digests, self.limits)
                read += found.bytes_read
                notes += [f"{platform}: {note}" if platform else note for note in found.notes]
                if found.failed:
                    state = FAILED
                elif found.notes and state == SUCCEEDED:
                    state = PARTIAL
                for package in found.packages:
                    rows.append(
                        {
                            "ecosystem": package.ecosystem,
                            "name": package.name,
                            "name_key": package.name_key,
                            "version": package.version,
                            "platform": platform,
                        }
                    )
        except LayerNotPulled as exc:  # a cached image: scanned once a client pulled its layers
            log.debug("the packages of %s@%s wait for its layers to be pulled: %s", repository, digest, exc)
            return None
        except Exception as exc:  # the version stays readable; the scan records why it failed
            log.warning("could not index the packages of %s@%s: %s", repository, digest, exc)
            state, rows, notes = FAILED, [], [f"the image could not be read: {exc}"]
        detail = "; ".join(notes)[:4000] or None
        result = ScanState(state, digest, time.time(), len(rows), read, detail)
        return await self._store(image_id, version, digest, rows, result)

    async def _store(
        self, image_id: int, version: str, digest: str, rows: list[dict[str, Any]], result: ScanState
    ) -> ScanState | None:
        async with self.db.write() as conn:
            found = (
                await conn.execute(
                    select(image_versions.c.id).where(
                        image_versions.c.image_id == image_id,
                        image_versions.c.version == version,
                        image_versions.c.digest == digest,
                    )
                )
            ).first()
            if found is None:
                return None
            version_id = int(found[0])
            await conn.execute(delete(version_packages).where(version_packages.c.version_id == version_id))
            await conn.execute(
                delete(version_package_scans).where(version_package_scans.c.version_id == version_id)
            )
            for start in range(0, len(rows), 1000):
                batch = [{**row, "version_id": version_id} for row in rows[start : start + 1000]]
                await conn.execute(insert(version_packages), batch)
            await conn.execute(
                insert(version_package_scans).values(
                    version_id=version_id,
                    state=result.state,
                    digest=result.digest,
                    scanned_at=result.scanned_at,
                    packages=result.packages,
                    bytes_read=result.bytes_read,
                    detail=result.detail,
                    scanner=SCANNER,
                )
            )
        return result

    async def list(
        self,
        actor: Subject,
        name: str,
        version: str,
        *,
        ecosystem: Ecosystem | None = None,
        query: str | None = None,
        limit: int = 100,
        last: str | None = None,
    ) -> PackagePage:
        """A page of a version's packages, for whoever may read the version (ordered by
        ecosystem, name key, version, platform; ``last`` is the previous page's ``next``)."""
        await self.catalog.version(actor, name, version)  # NotFound for whoever may not see it
        limit = max(1, min(limit, MAX_PAGE))
        async with self.db.read() as conn:
            version_id = (
                await conn.execute(
                    select(image_versions.c.id)
                    .join(images, images.c.id == image_versions.c.image_id)
                    .where(images.c.name == name, image_versions.c.version == version)
                )
            ).scalar_one_or_none()
            if version_id is None:  # deleted since it was seen
                raise NotFound(f"{name}:{version} is not in the catalog")
            scan = (
                await conn.execute(
                    select(version_package_scans).where(version_package_scans.c.version_id == version_id)
                )
            ).first()
            p = version_packages.c
            stmt = select(p.ecosystem, p.name, p.version, p.platform).where(p.version_id == version_id)
            if ecosystem is not None:
                stmt = stmt.where(p.ecosystem == ecosystem.value)
            if query:
                stmt = stmt.where(p.name_key.contains(query.lower(), autoescape=True))
            if last:
                after = _after(last)
                stmt = stmt.where(tuple_(p.ecosystem, p.name_key, p.version, p.platform) > tuple_(*after))
            stmt = stmt.order_by(p.ecosystem, p.name_key, p.version, p.platform).limit(limit + 1)
            found = [PackageRow(*row) for row in await conn.execute(stmt)]
        more = len(found) > limit
        found = found[:limit]
        state = None
        if scan is not None:
            m = scan._mapping
            state = ScanState(
                m["state"], m["digest"], m["scanned_at"], m["packages"], m["bytes_read"], m["detail"]
            )
        return PackagePage(state, found, page_key(found[-1]) if more and found else None)


async def versions_with_package(
    conn: Connection, key: str, ecosystem: str | None = None, *, limit: int = 1000
) -> list[tuple[int, str, str, str]]:
    """(version id, ecosystem, package version, platform) of the versions holding a package
    whose name key is ``key`` (lowercase; PEP 503 for Python: see :func:`name_key`). Visibility
    is the caller's to apply (join ``image_versions`` and its image)."""
    p = version_packages.c
    stmt = select(p.version_id, p.ecosystem, p.version, p.platform).where(p.name_key == key)
    if ecosystem is not None:
        stmt = stmt.where(p.ecosystem == ecosystem)
    stmt = stmt.order_by(p.version_id, p.ecosystem, p.version, p.platform).limit(limit)
    return [(int(v), str(e), str(ver), str(pl)) for v, e, ver, pl in await conn.execute(stmt)]
