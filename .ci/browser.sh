#!/usr/bin/env bash
# Browser test of the dashboard example (examples/dashboard): headless
# Chromium opens the page, sees widgets render and change, sees the status go
# to "reconnecting" when the server is killed and back to "live" when it
# restarts, and saves docs/screenshot.png; then tests/browser/editor.test.mjs
# drives the dashboard editor in two browser contexts (create, widgets, alert
# rules, alert history, rename, move/resize, delete) and saves
# docs/screenshot-editor.png and docs/screenshot-alert-history.png. Installs
# what it needs first.
#
# Run from anywhere: `bash .ci/browser.sh`. Environment:
#   CHROMIUM=/path/to/chromium   use this browser (skips the install)
#   RTDASH_DASHBOARD_BIN=/path   test this binary (skips the cargo build)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "error: need root (or sudo) to apt-get install $*" >&2
      exit 1
    fi
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  step "installing chromium"
  if command -v apt-get >/dev/null 2>&1; then
    apt_install chromium fonts-dejavu-core
  else
    echo "error: no browser at $CHROMIUM and no apt-get to install one; set CHROMIUM=/path/to/chromium" >&2
    exit 1
  fi
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  step "installing node and npm"
  if command -v apt-get >/dev/null 2>&1; then
    apt_install nodejs npm
  else
    echo "error: node and npm are needed (Node.js 20 or newer)" >&2
    exit 1
  fi
fi
"$CHROMIUM" --version 2>/dev/null | grep -v '^\s*$' || true
echo "node $(node --version)"

step "npm ci (tests/browser: playwright-core, pinned)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

if [ -z "${RTDASH_DASHBOARD_BIN:-}" ]; then
  step "cargo build --release --example dashboard"
  cargo build --release --example dashboard
fi

step "browser test"
node tests/browser/dashboard.test.mjs

step "editor browser test"
node tests/browser/editor.test.mjs
