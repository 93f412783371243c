#!/usr/bin/env bash
# schemathesis against a running gateway on PostgreSQL + Redis (the production
# configuration), authenticated as the seeded test merchant, over every operation of the
# served OpenAPI document: no 5xx, and every answer conforms to the document (status code,
# content type, headers, body schema). A database with a random name and a random Redis key
# prefix, both removed afterwards.
#
# Usage: .ci/schemathesis.sh [paygate binary]   (default target/debug/paygate)
# Needs PAYGATE_TEST_POSTGRES_URL, PAYGATE_TEST_REDIS_URL; schemathesis is installed into a
# venv (PAYGATE_ST_VENV, default /tmp/paygate-st) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/debug/paygate}"
admin="${PAYGATE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
redis="${PAYGATE_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
venv="${PAYGATE_ST_VENV:-/tmp/paygate-st}"
# The version is pinned so a new release's checks cannot change CI's verdict unannounced.
st_version="4.32.5"
if [ ! -x "$venv/bin/schemathesis" ] || ! "$venv/bin/schemathesis" --version | grep -q "$st_version"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$st_version"
fi

suffix=$(python3 -c 'import secrets; print(secrets.token_hex(5))')
db="paygate_st_$suffix"
prefix="paygate-st-$suffix"
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
psql "$admin" -qAtc "CREATE DATABASE $db"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql "$admin" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  redis-cli -u "$redis" --scan --pattern "$prefix:*" | xargs -r -n 500 redis-cli -u "$redis" DEL >/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

DATABASE_URL="${admin%/*}/$db" REDIS_URL="$redis" REDIS_PREFIX="$prefix" \
  PORT="$port" DASHBOARD_PORT=0 CHECKOUT_PORT=0 \
  TEST_MODE=true TEST_PROCESSING_DELAY=0 WEBHOOK_RETRY_INTERVALS_TEST=true \
  "$bin" serve >"$dir/paygate.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.2
done

status=0
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --url "http://127.0.0.1:$port" \
  -H "X-Api-Key: key_test_abc123" -H "X-Api-Secret: secret_test_xyz789" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${PAYGATE_ST_EXAMPLES:-50}" \
  --workers 2 \
  --seed "${PAYGATE_ST_SEED:-1}" \
  --no-color \
  --report junit --report-dir "$dir/report" || status=$?
if grep -q 'internal error\|panicked' "$dir/paygate.log"; then
  echo "the gateway logged a server error:" >&2
  grep 'internal error\|panicked' "$dir/paygate.log" | head -20 >&2
  status=1
fi
exit "$status"
