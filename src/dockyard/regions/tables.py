"""Which regions a catalog version lives in, each with its status and its copy's progress.

A version with no row lives in the default region alone (every push); its rows are written the
first time a region is added to it. ``status``: copying (a ``regions.copy`` job runs, ``job_id``),
available, failed (``reason``), removing (its blobs are being deleted from the region). Which
blobs each region holds is the registry's ``region_blobs``."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from dockyard.db.metadata import metadata

version_regions = Table(
    "version_regions",
    metadata,
    Column("version_id", Integer, ForeignKey("image_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("reason", Text),
    Column("bytes_done", BigInteger, nullable=False, server_default="0"),
    Column("bytes_total", BigInteger, nullable=False, server_default="0"),
    Column("blobs_done", Integer, nullable=False, server_default="0"),
    Column("blobs_total", Integer, nullable=False, server_default="0"),
    Column("job_id", Integer),
    Column("updated_at", Float, nullable=False),
    Index("ix_version_regions_region", "region", "status"),
)
