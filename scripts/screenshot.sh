#!/usr/bin/env bash
# Screenshots an HTML file in headless Chromium: scripts/screenshot.sh HTML_FILE PNG_FILE [WIDTH,HEIGHT]
# Installs Debian's chromium first when it is missing and we are root.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 HTML_FILE PNG_FILE [WIDTH,HEIGHT]" >&2
  exit 2
fi
html=$1
png=$2
size=${3:-1280,4000}

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
  else
    echo "chromium is not installed (apt-get install chromium, as root)" >&2
    exit 1
  fi
fi

abs_html=$(realpath "$html")
abs_png=$(realpath -m "$png")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$profile" --window-size="$size" \
  --screenshot="$abs_png" "file://$abs_html" 2>/dev/null

test -s "$abs_png"
echo "$abs_png"
