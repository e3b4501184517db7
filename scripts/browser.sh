#!/usr/bin/env bash
# Installs the headless browser the dashboard's browser tests drive: Debian's `chromium` and
# `chromium-driver` (WebDriver). Called by scripts/test.sh; as root it installs what is
# missing, otherwise it says what to install and fails.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "scripts/browser.sh: please install the Debian packages chromium and chromium-driver" >&2
  exit 1
fi
