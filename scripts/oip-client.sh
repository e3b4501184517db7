#!/usr/bin/env bash
# Runs scripts/oip-client/client.py (tritonclient[http], pinned) against a Vigil server.
# Usage: scripts/oip-client.sh HOST:PORT TOKEN ROWS_JSON
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! py=$("$here/pyenv.sh" oip-client "$here/oip-client/requirements.txt"); then
  echo "could not install tritonclient[http] (scripts/oip-client/requirements.txt) with pip:" \
       "the Open Inference Protocol client test needs PyPI reachable once; the venv is cached after that" >&2
  exit 1
fi
exec "$py" "$here/oip-client/client.py" "$@"
