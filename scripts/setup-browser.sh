#!/usr/bin/env bash
# Installs Debian's chromium for the report's headless-browser test, where it is missing and we may install it.
# Never fails the set-up: without chromium the browser test is skipped (and says so).
set -u
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the report browser test (apt-get) ..."
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core) >/dev/null 2>&1 \
    || echo "note: could not install chromium; the browser test will be skipped"
else
  echo "note: chromium not found and not root; the report browser test will be skipped"
fi
exit 0
