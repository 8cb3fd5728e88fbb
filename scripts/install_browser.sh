#!/usr/bin/env bash
# Install the headless browser the browser tests drive (Debian's chromium + chromium-driver, via apt).
# Idempotent and quiet: does nothing when /usr/bin/chromium and /usr/bin/chromedriver are both present.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver
if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install_browser.sh: $CHROMIUM or $CHROMEDRIVER is missing and apt-get is not available;" \
       "install chromium and chromium-driver by hand" >&2
  exit 1
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install_browser.sh: need root (or sudo) to apt-get install chromium" >&2; exit 1; }
  SUDO=sudo
fi
echo "installing chromium + chromium-driver with apt-get (browser tests)..." >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver; } \
    >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "install_browser.sh: apt-get failed to install chromium + chromium-driver (log tail above)" >&2
  exit 1
fi
for bin in "$CHROMIUM" "$CHROMEDRIVER"; do
  [ -x "$bin" ] || { echo "install_browser.sh: apt-get succeeded but $bin is still missing" >&2; exit 1; }
done
