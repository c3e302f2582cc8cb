#!/usr/bin/env bash
# Schemathesis against a live server (issue #11): starts the dashboard example
# (examples/dashboard: the rtdash HTTP API with AllowAll, the seeded `ops`
# dashboard and its demo producer) on a free 127.0.0.1 port, and fuzzes every
# operation of its GET /openapi.json with a small fixed budget. Fails on any
# check failure: a 5xx, a status, content type or body the document does not
# describe. Installs schemathesis (pinned, from PyPI) in a venv first.
#
# Run from anywhere: `bash .ci/schemathesis.sh`. Environment:
#   RTDASH_DASHBOARD_BIN=/path      test this binary (skips the cargo build)
#   SCHEMATHESIS_MAX_EXAMPLES=N     test cases per operation and phase (default 25)
#   SCHEMATHESIS_SEED=N             the run's random seed (default fixed, for
#                                   reproducible CI runs; vary it to explore)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV=target/venv-schemathesis
REPORT_DIR=target/schemathesis-report
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
SEED="${SCHEMATHESIS_SEED:-11}"
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
  step "installing schemathesis $SCHEMATHESIS_VERSION in $VENV"
  # --clear: a venv moved or left from another checkout has stale paths; start afresh.
  python3 -m venv --clear "$VENV" || {
    echo "error: python3 -m venv failed; install python3 with venv (Debian: python3-venv)" >&2
    exit 1
  }
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$VENV/bin/schemathesis" --version

BIN="${RTDASH_DASHBOARD_BIN:-}"
if [ -z "$BIN" ]; then
  step "cargo build --release --example dashboard"
  cargo build --release --example dashboard
  BIN=target/release/examples/dashboard
fi

step "starting $BIN on 127.0.0.1:0"
mkdir -p "$REPORT_DIR"
server_log="$REPORT_DIR/server.log"
"$BIN" --addr 127.0.0.1:0 --seed 1 >"$server_log" 2>&1 &
server=$!
stop_server() {
  if kill -0 "$server" 2>/dev/null; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
}
trap stop_server EXIT

# The example prints `open http://127.0.0.1:PORT/` once it listens.
base=""
for _ in $(seq 1 300); do
  base="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$server_log" | head -n 1 || true)"
  [ -n "$base" ] && break
  if ! kill -0 "$server" 2>/dev/null; then
    cat "$server_log" >&2
    echo "error: the server exited before listening" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$base" ]; then
  cat "$server_log" >&2
  echo "error: the server printed no URL within 30 s" >&2
  exit 1
fi
"$VENV/bin/python" - "$base/health" <<'EOF'
import sys, time, urllib.request
deadline = time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"error: {sys.argv[1]} did not answer 200 within 30 s")
    time.sleep(0.1)
EOF
echo "server at $base (GET /health: 200)"

step "schemathesis run $base/openapi.json (checks $CHECKS; $MAX_EXAMPLES examples per operation; seed $SEED)"
# AllowAll admits reads without a token, but the SSE stream needs one: every
# request carries a bearer token, which AllowAll accepts.
# It runs in the report directory, where it keeps its cache (.schemathesis/).
status=0
st="$PWD/$VENV/bin/schemathesis"
(cd "$REPORT_DIR" && timeout 300 "$st" run "$base/openapi.json" \
  --checks "$CHECKS" \
  --max-examples "$MAX_EXAMPLES" \
  --seed "$SEED" \
  --request-timeout 5 \
  --header "Authorization: Bearer schemathesis" \
  --generation-database none \
  --report junit --report-dir . \
  --no-color) || status=$?

if ! kill -0 "$server" 2>/dev/null; then
  echo "error: the server died during the run; its log:" >&2
  cat "$server_log" >&2
  status=1
elif grep -q 'panicked' "$server_log"; then
  echo "error: the server panicked during the run; its log:" >&2
  cat "$server_log" >&2
  status=1
fi
stop_server
trap - EXIT

if [ "$status" -ne 0 ]; then
  echo "schemathesis: FAILED (exit $status) after $((SECONDS - started)) s; report in $REPORT_DIR" >&2
  exit "$status"
fi
printf '\nschemathesis: passed in %ss\n' "$((SECONDS - started))"
