"""The one :class:`~sqlalchemy.MetaData` every feature's ``tables.py`` defines its tables on, and
the column types they share. Features own their tables (``dockyard.<feature>.tables``); the
schema itself changes only through migrations (:mod:`dockyard.db.migrations`)."""

from __future__ import annotations

from sqlalchemy import MetaData, String

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
DIGEST = String(150)
