#!/usr/bin/env bash
# Run every check and test: ruff, mypy --strict, the import-layer contracts, then pytest
# (unit, storage contract on filesystem, memory and S3 (Ceph radosgw), black-box HTTP and
# real clients on SQLite and PostgreSQL).
# Installs what it needs first (Debian packages too, when run as root).
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
#
# pytest measures line and branch coverage of src/dockyard, the servers and CLI processes the
# tests start included ([tool.coverage.*] in pyproject.toml): the files short of 100% and the
# total are printed after the tests, the full report is build/coverage/html/index.html (and
# build/coverage/coverage.xml). scripts/test.sh --no-cov runs without measuring.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh test
# shellcheck disable=SC1091
. .venv/bin/activate
DOCKYARD_TEST_PG="$(scripts/postgres.sh)"
export DOCKYARD_TEST_PG
# Ceph radosgw for the S3 driver's tests (they would start it themselves; failing here is clearer)
scripts/ceph.sh >/dev/null

echo "== ruff"
ruff check src tests bench
ruff format --check src
echo "== mypy --strict"
mypy
echo "== import layers"
lint-imports
echo "== pytest (with coverage of src/dockyard)"
# (the benchmark's S3 smoke runs once, in the S3 stage below)
pytest --cov --cov-report=term:skip-covered --cov-report=xml --cov-report=html \
    --ignore=tests/functional/test_bench_s3_smoke.py "$@"
echo "== the real clients and the pull/push spec tests once more, against Dockyard on S3 (radosgw),"
echo "   and the benchmark's S3 rows at tiny sizes (python -m bench --quick --s3)"
DOCKYARD_TEST_STORAGE=s3 DOCKYARD_TEST_DB=sqlite pytest --no-cov -p no:cacheprovider -q \
    tests/functional/test_clients.py tests/functional/test_spec_pull.py tests/functional/test_spec_push_blobs.py \
    tests/functional/test_bench_s3_smoke.py
