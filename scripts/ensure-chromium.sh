#!/usr/bin/env bash
# Run before the tests (npm's "pretest"): the web UI tests drive Debian's Chromium headless.
# Installs it with apt when it is missing and we may (root); otherwise says what to do.
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$chromium" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium for the web UI tests (apt-get)…" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && exit 0
fi
echo "no Chromium at $chromium: run 'apt-get install -y chromium' (or set CHROMIUM_PATH); the web UI tests will be skipped" >&2
exit 0
