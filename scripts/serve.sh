#!/usr/bin/env bash
# Install what serving needs, then run `dockyard serve` (embedded default: SQLite and a
# data folder, http://127.0.0.1:5000). Arguments go to `dockyard serve`, e.g. --port 5001.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh runtime
# shellcheck disable=SC1091
. .venv/bin/activate
exec dockyard serve "$@"
