#!/usr/bin/env bash
# Runs Vigil's whole test suite. Every store test runs twice: on SQLite and on PostgreSQL
# (VIGIL_TEST_POSTGRES_URL, by default the local server at 127.0.0.1:5432, user postgres).
# A PostgreSQL that cannot be reached is a failure, never a silent skip.
set -euo pipefail
cd "$(dirname "$0")/.."

export VIGIL_TEST_POSTGRES_URL=${VIGIL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}

# The tamper tests drive the databases' own command-line clients.
missing=()
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v psql >/dev/null || missing+=(postgresql-client)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "scripts/test.sh: please install ${missing[*]}" >&2
    exit 1
  fi
fi

# The dashboard's browser tests drive headless Chromium through chromedriver.
scripts/browser.sh

# Start the local PostgreSQL cluster if it is installed but stopped.
if ! psql "$VIGIL_TEST_POSTGRES_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    sleep 2
  fi
fi
if ! psql "$VIGIL_TEST_POSTGRES_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  echo "scripts/test.sh: PostgreSQL is not reachable at $VIGIL_TEST_POSTGRES_URL" >&2
  exit 1
fi

cargo test --workspace --locked "$@"
