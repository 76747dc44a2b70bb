"""Log set-up for server processes: request lines are JSON already; others get a prefix."""

from __future__ import annotations

import logging
import sys


def configure(level: str) -> None:
    root = logging.getLogger()
    if getattr(root, "_dockyard_configured", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"))
    access = logging.StreamHandler(sys.stderr)
    access.setFormatter(logging.Formatter("%(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access_logger = logging.getLogger("dockyard.access")
    access_logger.handlers[:] = [access]
    access_logger.propagate = False
    for noisy in ("uvicorn.access", "sqlalchemy.engine", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root._dockyard_configured = True  # type: ignore[attr-defined]
