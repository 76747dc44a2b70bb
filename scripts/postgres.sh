#!/usr/bin/env bash
# Make sure a PostgreSQL server answers for the tests, and print its admin DSN.
#
# Uses DOCKYARD_TEST_PG if set, else 127.0.0.1:5432 if a server answers there; otherwise
# starts a throwaway cluster (trust auth, fsync off) under .cache/postgres on port 55432,
# installing Debian's postgresql first when run as root and it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

dsn="${DOCKYARD_TEST_PG:-postgresql://postgres@127.0.0.1:5432}"
if psql "$dsn/postgres" -qtAc 'select 1' >/dev/null 2>&1; then
  echo "$dsn"
  exit 0
fi

port=55432
dsn="postgresql://postgres@127.0.0.1:$port"
if psql "$dsn/postgres" -qtAc 'select 1' >/dev/null 2>&1; then
  echo "$dsn"
  exit 0
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing postgresql ..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  else
    echo "error: no PostgreSQL server answers and none is installed; run as root or set DOCKYARD_TEST_PG" >&2
    exit 1
  fi
fi

data="$PWD/.cache/postgres"
run_as=()
if [ "$(id -u)" = 0 ]; then
  run_as=(runuser -u postgres --)
fi
if [ ! -f "$data/PG_VERSION" ]; then
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown postgres "$data"
  "${run_as[@]}" "$bindir/initdb" -D "$data" -A trust -U postgres >/dev/null
fi
mkdir -p "$data/run"
[ "$(id -u)" = 0 ] && chown postgres "$data/run"
"${run_as[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
  -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$data/run -c fsync=off -c max_connections=300" \
  start >&2
echo "$dsn"
