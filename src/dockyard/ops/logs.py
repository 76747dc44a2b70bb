"""Log set-up for server processes. Request lines bypass logging (see :mod:`.access`)."""

from __future__ import annotations

import logging
import sys


def configure(level: str) -> None:
    root = logging.getLogger()
    if getattr(root, "_dockyard_configured", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "sqlalchemy.engine", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A marker on the root logger: configure once per process, however often called.
    root._dockyard_configured = True  # type: ignore[attr-defined]
