"""Regions in the settings (JSON, TOML, checks, the worker round trip), which region a blob is read
from, and GC taking a collected blob out of every region (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dockyard.db.engine import Database
from dockyard.oci.digest import Digest
from dockyard.registry.paths import blob_path
from dockyard.registry.regions import Regions
from dockyard.registry.tables import region_blobs
from dockyard.settings import Settings
from dockyard.storage.filesystem import FilesystemDriver
from tests.support.oci import image_config, oci_manifest, random_blob
from tests.unit.registry.factories import age, open_services, push_manifest

US = {"driver": "filesystem", "root": "/srv/us"}


def test_no_regions_configured_is_one_default_region() -> None:
    settings = Settings()
    assert (settings.default_region, settings.regions, settings.effective_region) == (
        "default",
        {},
        "default",
    )


def test_regions_from_json_and_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bucket = {"driver": "s3", "endpoint": "http://s3", "bucket": "b", "access_key": "k", "secret_key": "s"}
    monkeypatch.setenv("DOCKYARD_REGIONS", json.dumps({"us": bucket}))
    monkeypatch.setenv("DOCKYARD_DEFAULT_REGION", "eu")
    monkeypatch.setenv("DOCKYARD_REGION", "us")
    settings = Settings()
    assert settings.regions["us"].bucket == "b"
    assert settings.regions["us"].secret_key.get_secret_value() == "s"
    assert settings.effective_region == "us"
    for name, value in settings.to_env().items():  # what server workers are started with
        monkeypatch.setenv(name, value)
    assert Settings() == settings

    for name in ("DOCKYARD_REGIONS", "DOCKYARD_DEFAULT_REGION", "DOCKYARD_REGION"):
        monkeypatch.delenv(name)
    config = tmp_path / "dockyard.toml"
    config.write_text('default_region = "eu"\n[regions.asia]\ndriver = "filesystem"\nroot = "/srv/asia"\n')
    monkeypatch.setenv("DOCKYARD_CONFIG", str(config))
    assert Settings().regions["asia"].root == Path("/srv/asia")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"regions": {"Bad_Name": US}}, "must be 1-32"),
        ({"regions": {"default": US}}, "is the default region"),
        ({"region": "mars"}, "not a configured region"),
        ({"regions": {"us": {"driver": "filesystem"}}}, "needs its root folder"),
        ({"regions": {"us": {"driver": "s3", "bucket": "b"}}}, "needs bucket, access_key"),
        ({"regions": {"us": {**US, "colour": "red"}}}, "colour"),
    ],
)
def test_region_settings_are_checked(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**fields)


class CountingDatabase(Database):
    queries = 0

    async def fetch_one(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        self.queries += 1
        return await super().fetch_one(sql, *args)


async def test_the_local_region_serves_what_it_holds_and_one_region_asks_nothing(
    database_url: str, tmp_path: Path
) -> None:
    db = CountingDatabase(database_url)
    eu, us, asia = (FilesystemDriver(tmp_path / name) for name in ("eu", "us", "asia"))
    try:
        single = Regions.single(db, eu, "eu")
        assert (await single.choose("sha256:" + "a" * 64)).name == "eu"
        assert db.queries == 0, "one region: no query per blob"

        in_us = Regions(db, "eu", "us", {"eu": eu, "us": us, "asia": asia})
        only_default, everywhere, elsewhere = ("sha256:" + c * 64 for c in "bcd")
        async with db.write() as conn:
            rows = [("eu", everywhere), ("us", everywhere), ("asia", everywhere), ("asia", elsewhere)]
            await conn.execute(region_blobs.insert(), [{"region": r, "digest": d} for r, d in rows])
        assert (await in_us.choose(only_default)).name == "eu"  # no rows: the default region alone
        assert (await in_us.choose(everywhere)).name == "us"  # the replica's own first
        assert (await in_us.choose(elsewhere)).name == "asia"
    finally:
        await db.dispose()


async def test_gc_takes_a_collected_blob_out_of_every_region(database_url: str, tmp_path: Path) -> None:
    async with open_services(database_url, tmp_path, FilesystemDriver(tmp_path / "eu")) as services:
        us = FilesystemDriver(tmp_path / "us")
        regions = Regions(services.db, "default", "default", {"default": services.storage, "us": us})
        services.gc.regions = regions
        layer = random_blob(300)
        dropped = oci_manifest(image_config(), [layer])
        await push_manifest(services, "team/app", dropped)  # untagged: collected once old
        path = blob_path(Digest(layer.digest))
        await us.put_content(path, layer.data)
        async with services.db.write() as conn:
            rows = [{"region": "default", "digest": layer.digest}, {"region": "us", "digest": layer.digest}]
            await conn.execute(region_blobs.insert(), rows)
        await age(services.db, 7200)

        report = await services.gc.run()

        assert layer.digest in report.blobs
        assert not (tmp_path / "us" / path).exists()
        async with services.db.read() as conn:
            assert (await conn.execute(region_blobs.select())).first() is None
