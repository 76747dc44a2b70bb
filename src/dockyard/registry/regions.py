"""Regions: named storage locations, each a storage driver, that may hold a blob's bytes.

The default region is the storage the registry always had: uploads land there and a blob
without ``region_blobs`` rows is held there alone. A replica runs in one region (its *local*
one) and serves a blob from it when it holds the blob, otherwise from a region that does.
With one region configured, :meth:`Regions.choose` asks nothing of the database.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from sqlalchemy import delete, select

from dockyard.db.engine import Database
from dockyard.errors import NotFound
from dockyard.oci.digest import Digest
from dockyard.registry.paths import blob_path
from dockyard.registry.tables import region_blobs
from dockyard.storage.base import PathNotFound, StorageDriver

# Hot path (GET/HEAD of a blob with several regions): the local region first, then the default.
_HOLDER = """
    SELECT region FROM region_blobs WHERE digest = $1
    ORDER BY CASE WHEN region = $2 THEN 0 WHEN region = $3 THEN 1 ELSE 2 END, region
    LIMIT 1
"""


@dataclass(frozen=True)
class Region:
    name: str
    storage: StorageDriver


class Regions:
    def __init__(self, db: Database, default: str, local: str, stores: dict[str, StorageDriver]) -> None:
        if default not in stores or local not in stores:
            raise ValueError("the default and the local region must be configured")
        self.db = db
        self.default = Region(default, stores[default])
        self.local = Region(local, stores[local])
        self._stores = dict(stores)

    @classmethod
    def single(cls, db: Database, storage: StorageDriver, name: str = "default") -> Regions:
        return cls(db, name, name, {name: storage})

    @property
    def names(self) -> list[str]:
        return sorted(self._stores)

    @property
    def several(self) -> bool:
        return len(self._stores) > 1

    def get(self, name: str) -> Region:
        storage = self._stores.get(name)
        if storage is None:
            raise NotFound(f"no region {name[:40]!r}; configured: {', '.join(self.names)}")
        return Region(name, storage)

    async def choose(self, digest: str) -> Region:
        """The region to read ``digest`` from: the local one if it holds it, else one that does."""
        if len(self._stores) == 1:
            return self.default
        row = await self.db.fetch_one(_HOLDER, digest, self.local.name, self.default.name)
        if row is None:
            return self.default
        storage = self._stores.get(str(row[0]))
        return self.default if storage is None else Region(str(row[0]), storage)

    async def forget(self, digest: str) -> None:
        """GC collected ``digest`` (no manifest needs it): its bytes go from every other region."""
        if len(self._stores) == 1:
            return
        async with self.db.read() as conn:
            held = (
                await conn.execute(select(region_blobs.c.region).where(region_blobs.c.digest == digest))
            ).scalars()
            names = [str(n) for n in held]
        for name in names:
            storage = self._stores.get(name)
            if storage is not None and name != self.default.name:
                with contextlib.suppress(PathNotFound):
                    await storage.delete(blob_path(Digest(digest)))
        async with self.db.write() as conn:
            await conn.execute(delete(region_blobs).where(region_blobs.c.digest == digest))
