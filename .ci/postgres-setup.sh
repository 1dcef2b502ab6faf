#!/usr/bin/env bash
# Install and start a PostgreSQL server for the DCC storage tests, with a database and user
# `smarthydra` (password `smarthydra`) on localhost:5432. Tests find it through
# SMARTHYDRA_TEST_POSTGRES_URL, default postgresql://smarthydra:smarthydra@localhost/smarthydra.
# Idempotent: safe to run again on a machine where it already ran.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  apt-get install -y -qq postgresql >/dev/null || {
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  }
fi

version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
  pg_createcluster "$version" main >/dev/null
fi
if ! pg_lsclusters -h | awk '$1=="'"$version"'" && $2=="main" {print $4}' | grep -qx online; then
  pg_ctlcluster "$version" main start
fi

for _ in $(seq 1 30); do
  if su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1; then break; fi
  sleep 1
done

su postgres -c "psql -qtAc \"select 1 from pg_roles where rolname='smarthydra'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"create role smarthydra login password 'smarthydra'\""
su postgres -c "psql -qtAc \"select 1 from pg_database where datname='smarthydra'\"" | grep -q 1 \
  || su postgres -c "createdb -O smarthydra smarthydra"
echo "postgresql $version ready: postgresql://smarthydra:smarthydra@localhost/smarthydra"
