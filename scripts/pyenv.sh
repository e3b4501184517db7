#!/usr/bin/env bash
# Creates (once) a Python virtual environment with pinned packages and prints its python path.
# Usage: scripts/pyenv.sh NAME REQUIREMENTS_FILE
# The environment lives under ${VIGIL_CACHE:-$HOME/.cache/vigil}/venv-NAME and is rebuilt when
# the requirements file changes. It is a cache: deleting it is always safe.
set -euo pipefail
name=$1
req=$2
cache=${VIGIL_CACHE:-$HOME/.cache/vigil}
dir="$cache/venv-$name"
stamp="$dir/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
# Two tests (or benches) may ask for the same environment at once: one builds it, the
# other waits for it.
mkdir -p "$cache"
exec 9>"$cache/venv-$name.lock"
flock 9
if [ ! -x "$dir/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$dir"
  mkdir -p "$cache"
  python3 -m venv "$dir" >&2
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$dir/bin/python"
