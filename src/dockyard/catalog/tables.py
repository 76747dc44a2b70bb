"""Tables of the catalog: images, their versions, their history, uncompressed layer sizes
and the per-workspace catalog policy.

Timestamps are float seconds since the epoch (UTC). All tables are on the one
:data:`dockyard.db.metadata.metadata`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

from dockyard.db.metadata import DIGEST, metadata

images = Table(
    "images",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(140), nullable=False, server_default=""),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(140), nullable=False, server_default=""),
    Column("built_at", Float),
    Column("built_by", String(140)),
    # A workspace's images in name order (the catalog lists filtered by workspace).
    Index("ix_images_workspace_name", "workspace_id", "name"),
)


image_versions = Table(
    "image_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", Integer, ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("version", String(128), nullable=False),
    Column("source", String(10), nullable=False),  # internal, external
    Column("kind", String(10), nullable=False, server_default="tool"),  # tool, bench
    Column("cluster_compatibility", Text, nullable=False, server_default="[]"),  # JSON list, bench only
    Column("regions", Text, nullable=False, server_default="[]"),  # JSON list
    # internal: pending, available, failed; external: unverified, reachable, unreachable
    Column("status", String(12), nullable=False),
    Column("status_reason", Text),
    Column("external_reference", String(600)),  # canonical reference, external versions
    # external: the upstream refused anonymous access and the workspace's registry profile
    # was needed (such an image stays private: catalog.sharing)
    Column("private_upstream", Boolean, nullable=False, server_default=false()),
    Column("digest", String(150)),
    Column("media_type", String(255)),
    Column("compressed_size", BigInteger),
    Column("uncompressed_size", BigInteger),
    Column("platforms", Text, nullable=False, server_default="[]"),  # JSON list of os/arch[/variant]
    Column("warnings", Text, nullable=False, server_default="[]"),  # JSON list of {code, message}
    Column("checked_at", Float),
    Column("imported_from", Text),  # JSON: the provenance of a version imported by URL
    Column("created_at", Float, nullable=False),
    Column("created_by", String(140), nullable=False, server_default=""),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("image_id", "version", name="uq_image_versions_image_version"),
    # The version list's sort orders (GET /api/v1/versions): a first page reads the index in
    # order and stops, instead of sorting every visible version.
    Index("ix_image_versions_compressed_size", "compressed_size"),
    Index("ix_image_versions_updated_at", "updated_at"),
    Index("ix_image_versions_version", "version"),
)


image_events = Table(
    "image_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", Integer, ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("version", String(128)),
    Column("at", Float, nullable=False),
    Column("actor", String(140), nullable=False, server_default=""),
    Column("kind", String(40), nullable=False),  # created, modified, pushed, built, verified, ...
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON object
    Index("ix_image_events_image", "image_id", "id"),
)


# Uncompressed sizes of layer blobs, measured once per blob (layers are shared).
blob_uncompressed = Table(
    "blob_uncompressed",
    metadata,
    Column("digest", DIGEST, ForeignKey("blobs.digest", ondelete="CASCADE"), primary_key=True),
    Column("size", BigInteger, nullable=False),
)


# Workspace policies for the catalog (one row per workspace that set one).
catalog_policies = Table(
    "catalog_policies",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("require_amd64", Boolean, nullable=False, server_default=false()),
)


# What a deleted image was: who deleted it, when, its versions and its history up to then, so
# that its history outlives it (and is shown again should the name be reused). Rows go with
# their workspace; the audit log keeps the deletion beyond that.
image_deletions = Table(
    "image_deletions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("image_name", String(255), nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(140), nullable=False, server_default=""),
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON: versions, tags
    Column("history", Text, nullable=False, server_default="[]"),  # JSON list of image events
    Index("ix_image_deletions_name", "image_name", "id"),
)


# Tags a push may not move, per workspace: glob patterns (``v*``) and exceptions to them
# (``latest``), JSON lists. A tag that matches a pattern and no exception keeps the manifest
# it was first pushed with (:mod:`dockyard.catalog.immutability`).
immutable_tags = Table(
    "immutable_tags",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("patterns", Text, nullable=False, server_default="[]"),
    Column("exceptions", Text, nullable=False, server_default="[]"),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(140), nullable=False, server_default=""),
)


# Imports by URL (:mod:`dockyard.catalog.imports`): one row per version being or having been
# copied from its external reference into Dockyard's storage. It keeps where the version came
# from (reference, digest, when, by whom) once the version is internal.
image_imports = Table(
    "image_imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", Integer, ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("version", String(128), nullable=False),
    Column("state", String(12), nullable=False),  # running, succeeded, failed
    Column("job_id", Integer),
    Column("source_reference", String(600), nullable=False),
    Column("source_digest", String(150)),  # the upstream's digest, once fetched
    Column("target_digest", String(150)),  # what the tag is pushed as (differs if platforms chosen)
    Column("platforms", Text, nullable=False, server_default="[]"),  # JSON list; [] = all
    Column("requested_at", Float, nullable=False),
    Column("requested_by", String(140), nullable=False),
    Column("imported_at", Float),
    Column("error", Text),
    UniqueConstraint("image_id", "version", name="uq_image_imports_image_version"),
)


# The software a version's filesystem declares (:mod:`dockyard.catalog.packages`): one row per
# package found by the inspection, read as a stream from the layers. ``ecosystem`` is one of
# deb, apk, rpm, conda, python, r; ``name_key`` is the name folded for matching (lower case,
# ``_`` and ``.`` as ``-`` for python). Search finds versions by name (and compares versions in
# Python only over the rows that matched by name).
version_packages = Table(
    "version_packages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", Integer, ForeignKey("image_versions.id", ondelete="CASCADE"), nullable=False),
    Column("ecosystem", String(12), nullable=False),
    Column("name", String(255), nullable=False),
    Column("name_key", String(255), nullable=False),
    Column("version", String(255), nullable=False, server_default=""),
    Column("platform", String(64), nullable=False, server_default=""),  # os/arch of an index entry
    Index("ix_version_packages_name", "name_key", "version_id"),
    Index("ix_version_packages_version", "version_id"),
    # Search's package terms (migration 0030): the versions of a name that compare as asked,
    # read from the index alone (without it every row of a common package is fetched).
    Index("ix_version_packages_name_version", "name_key", "version", "version_id"),
)


# When a version's packages were read, and what came of it: one row per version scanned.
version_package_scans = Table(
    "version_package_scans",
    metadata,
    Column(
        "version_id",
        Integer,
        ForeignKey("image_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("state", String(12), nullable=False),  # succeeded, failed, partial
    Column("digest", String(150)),  # the manifest read
    Column("scanned_at", Float, nullable=False),
    Column("packages", Integer, nullable=False, server_default="0"),
    Column("bytes_read", BigInteger, nullable=False, server_default="0"),
    Column("detail", Text),  # why failed or partial (a size limit, an unreadable database)
    # The scanner that made it (package_scan.SCANNER): one that reads more makes again the
    # scans an older one left partial or failed.
    Column("scanner", Integer, nullable=False, server_default="1"),
)


# Lineage (:mod:`dockyard.catalog.lineage`): for each platform of an inspected version, the
# chain id of every prefix of its layers (``chain`` at ``depth`` i = sha256 over the layer
# diff ids 1..i, :mod:`dockyard.catalog.chains`); ``top`` marks the whole image's. A version's
# base is the version whose ``top`` chain equals one of its proper prefixes, the deepest: an
# indexed lookup on ``chain``.
layer_chains = Table(
    "layer_chains",
    metadata,
    Column("version_id", Integer, ForeignKey("image_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("platform", String(64), primary_key=True),
    Column("depth", Integer, primary_key=True),
    Column("chain", String(80), nullable=False),
    Column("top", Boolean, nullable=False, server_default=false()),
    Index("ix_layer_chains_chain", "chain", "top"),
)


# The base found for a version when it was inspected (or rebuilt, or a deeper base appeared):
# what it was then (``base_digest``, ``base_chain``, pushed at ``base_pushed_at``), so that a
# base tag moved or a newer version of the base image is seen as "base updated".
version_lineage = Table(
    "version_lineage",
    metadata,
    Column("version_id", Integer, ForeignKey("image_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("platform", String(64), nullable=False, server_default=""),
    Column("base_version_id", Integer, ForeignKey("image_versions.id", ondelete="SET NULL")),
    Column("base_image_id", Integer, ForeignKey("images.id", ondelete="SET NULL")),
    Column("base_version", String(128)),
    Column("base_digest", String(150)),
    Column("base_chain", String(80)),
    Column("base_pushed_at", Float),
    Column("depth", Integer, nullable=False, server_default="0"),  # the base's layers
    Column("layers_added", Integer, nullable=False, server_default="0"),
    Column("computed_at", Float, nullable=False),
    Index("ix_version_lineage_base", "base_version_id", "version_id"),
    Index("ix_version_lineage_base_image", "base_image_id"),
)


# What a build run here said its image was built FROM (the final stage's), by the manifest
# digest it pushed: preferred as the base when it resolves to a catalog version.
built_from = Table(
    "built_from",
    metadata,
    Column("digest", String(150), primary_key=True),
    Column("reference", String(600), nullable=False),
    Column("at", Float, nullable=False),
)


# What a version's image says of itself (:mod:`dockyard.catalog.search_index`): its config's
# labels (``origin`` label) and its manifest's annotations (``origin`` annotation), written by
# the inspection. Search filters on them (``label:key=value``) and indexes their text.
version_labels = Table(
    "version_labels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", Integer, ForeignKey("image_versions.id", ondelete="CASCADE"), nullable=False),
    Column("origin", String(12), nullable=False),  # label, annotation
    Column("key", String(255), nullable=False),
    Column("value", Text, nullable=False, server_default=""),
    Index("ix_version_labels_key", "key", "version_id"),
    Index("ix_version_labels_version", "version_id"),
)


# The full-text document of a name (:mod:`dockyard.catalog.search_index`): one row per image
# or build definition name, its words folded (lower case, punctuation as spaces) in columns of
# decreasing weight. PostgreSQL ranks ``tsv`` (tsvector, GIN); SQLite mirrors the columns into
# the FTS5 table ``search_fts`` by triggers (both made by migration 0030).
search_documents = Table(
    "search_documents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("image_id", Integer, ForeignKey("images.id", ondelete="SET NULL")),
    Column("title", Text, nullable=False, server_default=""),  # the name's words
    Column("body", Text, nullable=False, server_default=""),  # description, labels, annotations
    Column("history", Text, nullable=False, server_default=""),  # the config history's created_by
    Column("dockerfile", Text, nullable=False, server_default=""),  # the build definition's
    Column("tsv", Text().with_variant(TSVECTOR(), "postgresql")),
    Column("updated_at", Float, nullable=False),
    Index("ix_search_documents_image", "image_id"),
    Index("ix_search_documents_tsv", "tsv", postgresql_using="gin"),
    # Similar names (typos) on PostgreSQL: pg_trgm's similarity over the name's words.
    Index(
        "ix_search_documents_trgm", "title", postgresql_using="gin", postgresql_ops={"title": "gin_trgm_ops"}
    ),
)
