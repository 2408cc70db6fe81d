#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium exists for the dashboard's browser tests
# (Playwright drives /usr/bin/chromium; it never downloads a browser of its own).
set -euo pipefail
if [ -n "${CHUTE_CHROMIUM:-}" ] && [ -x "$CHUTE_CHROMIUM" ]; then exit 0; fi
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium not found and apt-get is not available: install Chromium and set CHUTE_CHROMIUM" >&2
  echo "to its executable (the browser tests are skipped without it)." >&2
  exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing chromium with apt-get (for the dashboard's browser tests)..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
