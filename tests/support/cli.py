"""``python -m dockyard`` as one logged-in person, for the functional tests of the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.servers import RunningRegistry


@dataclass
class Cli:
    """``python -m dockyard`` with one config file (one logged-in person)."""

    registry: RunningRegistry
    config: Path

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        done = subprocess.run(
            [sys.executable, "-m", "dockyard", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,  # a generous bound: `retention run` and builds follow their job
            check=False,
            env={**base, "DOCKYARD_CLI_CONFIG": str(self.config), "COLUMNS": "200"},
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def ok(self, *args: str, stdin: str = "") -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, (
            f"dockyard {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fails(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Runs a command that must fail with one readable message (no traceback)."""
        done = self.run(*args, stdin=stdin)
        assert done.returncode != 0, f"dockyard {' '.join(args)} succeeded:\n{done.stdout}"
        assert "error:" in done.stderr, done.stderr
        return done
