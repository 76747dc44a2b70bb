"""Every feature's tables on the one :data:`~dockyard.db.metadata.metadata`: importing this module
registers them all (the composition root, the migration test and ``dockyard db`` need the whole
schema; a feature needs only its own tables and those below it)."""

from __future__ import annotations

from dockyard.auth import tables as auth_tables
from dockyard.builds import tables as builds_tables
from dockyard.catalog import tables as catalog_tables
from dockyard.cluster import tables as cluster_tables
from dockyard.db.metadata import metadata
from dockyard.jobs import tables as jobs_tables
from dockyard.marks import tables as marks_tables
from dockyard.regions import tables as regions_tables
from dockyard.registry import tables as registry_tables
from dockyard.retention import tables as retention_tables
from dockyard.tenancy import tables as tenancy_tables
from dockyard.transfer import tables as transfer_tables
from dockyard.upstream import tables as upstream_tables
from dockyard.webhooks import tables as webhooks_tables

FEATURE_TABLES = (
    auth_tables,
    builds_tables,
    catalog_tables,
    cluster_tables,
    jobs_tables,
    marks_tables,
    regions_tables,
    registry_tables,
    retention_tables,
    tenancy_tables,
    transfer_tables,
    upstream_tables,
    webhooks_tables,
)

__all__ = ["FEATURE_TABLES", "metadata"]
