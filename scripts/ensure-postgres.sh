#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the integration tests on 127.0.0.1:5432 — the address
# the Cloud SQL Auth Proxy serves inside the Airflow pod — installing Debian's package if missing.
# Superuser access: user postgres over the unix socket in $PGSOCKET (trust); TCP needs passwords.
set -euo pipefail
PGROOT=${PGROOT:-/tmp/airflow-gke-pg}
PGSOCKET=$PGROOT/sock
PGDATA=$PGROOT/data

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
BIN=$(find_bin)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  echo "ensure-postgres: installing PostgreSQL from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  BIN=$(find_bin)
fi
id postgres >/dev/null 2>&1 || useradd --system --home "$PGROOT" postgres
run_as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }

if [ -f "$PGDATA/postmaster.pid" ] && run_as_pg "$BIN/pg_ctl -D $PGDATA status" >/dev/null 2>&1; then
  echo "ensure-postgres: already running ($PGDATA)"; exit 0
fi
# Something else on 5432 (e.g. Debian's own cluster started by the package): stop it, we need the port.
if "$BIN/pg_isready" -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  command -v pg_lsclusters >/dev/null && pg_lsclusters --no-header | awk '$4=="online"{print $1, $2}' | \
    while read -r version cluster; do pg_ctlcluster "$version" "$cluster" stop || true; done
fi
mkdir -p "$PGSOCKET"
if [ ! -f "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  [ "$(id -u)" = 0 ] && chown -R postgres "$PGROOT"
  run_as_pg "$BIN/initdb -D $PGDATA -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null"
fi
[ "$(id -u)" = 0 ] && chown -R postgres "$PGROOT"
run_as_pg "$BIN/pg_ctl -D $PGDATA -l $PGROOT/server.log -w -t 60 start \
  -o \"-c listen_addresses=127.0.0.1 -p 5432 -c unix_socket_directories=$PGSOCKET -c max_connections=200 -c fsync=off\"" >/dev/null
echo "ensure-postgres: PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:5432 (socket $PGSOCKET)"
