#!/usr/bin/env bash
# Settlement benchmark (issue 33): one settlement cycle over N captured payments and N/10
# processed refunds of one merchant, all final three days ago, on each backend. Prints how long
# `paygate processor settle` took (the cycle itself, as it reports, and the whole command), checks
# that every transaction was settled once and that the settlement adds up, then times the recon
# list's first page against a page deep in it (`starting_after` 90 % of the way), SAMPLES each.
# Results: docs/BENCHMARKS.md, "Settlements".
#
#   bench/settle.sh                          # 1 M payments, SQLite and PostgreSQL
#   N=100000 BACKENDS=sqlite bench/settle.sh
#
# Needs: sqlite3, psql and a PostgreSQL server (PG_URL, default postgres://postgres@127.0.0.1:5432),
# curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
BACKENDS=${BACKENDS:-"sqlite postgres"}
SAMPLES=${SAMPLES:-30}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PORT=${BENCH_PORT:-18092}
MERCHANT=550e8400-e29b-41d4-a716-446655440000
KEY=key_test_abc123
SECRET=secret_test_xyz789

cargo build --release -q -p paygate
BIN=target/release/paygate
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# Payment i (of order i) captured three days ago, i seconds apart / N; its fee 2 % and GST 18 %
# of the fee; every tenth payment has a processed refund of 10,000.
seed_sqlite() {
  sqlite3 "$1" <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1000000;
BEGIN;
CREATE TEMP TABLE t AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $N)
  SELECT i, strftime('%Y-%m-%dT%H:%M:%f', 'now', '-3 days', '+' || (i * 3600.0 / $N) || ' seconds') || '000+00:00' AS at FROM c;
INSERT INTO orders (id, merchant_id, amount, currency, receipt, notes, status, created_at, updated_at)
  SELECT printf('order_%016d', i), '$MERCHANT', 50000, 'INR', NULL, '{}', 'paid', at, at FROM t;
INSERT INTO payments (id, merchant_id, order_id, amount, currency, method, vpa, status, captured, captured_at, amount_refunded, created_at, updated_at, fee, tax)
  SELECT printf('pay_%016d', i), '$MERCHANT', printf('order_%016d', i), 50000, 'INR', 'upi', 'success@upi', 'success', TRUE, at,
         CASE WHEN i % 10 = 1 THEN 10000 ELSE 0 END, at, at, 1000, 180 FROM t;
INSERT INTO refunds (id, merchant_id, payment_id, amount, reason, status, created_at, updated_at, processed_at)
  SELECT printf('rfnd_%016d', i), '$MERCHANT', printf('pay_%016d', i), 10000, NULL, 'processed', at, at, at FROM t WHERE i % 10 = 1;
COMMIT;
ANALYZE;
SQL
}

seed_postgres() {
  psql -q -v ON_ERROR_STOP=1 "$1" <<SQL
SET synchronous_commit = off;
CREATE TEMP TABLE t AS SELECT i, now() - interval '3 days' + (i * interval '3600 seconds' / $N) AS at FROM generate_series(1, $N) AS i;
INSERT INTO orders (id, merchant_id, amount, currency, receipt, notes, status, created_at, updated_at)
  SELECT 'order_' || lpad(i::text, 16, '0'), '$MERCHANT', 50000, 'INR', NULL, '{}', 'paid', at, at FROM t;
INSERT INTO payments (id, merchant_id, order_id, amount, currency, method, vpa, status, captured, captured_at, amount_refunded, created_at, updated_at, fee, tax)
  SELECT 'pay_' || lpad(i::text, 16, '0'), '$MERCHANT', 'order_' || lpad(i::text, 16, '0'), 50000, 'INR', 'upi', 'success@upi', 'success', TRUE, at,
         CASE WHEN i % 10 = 1 THEN 10000 ELSE 0 END, at, at, 1000, 180 FROM t;
INSERT INTO refunds (id, merchant_id, payment_id, amount, reason, status, created_at, updated_at, processed_at)
  SELECT 'rfnd_' || lpad(i::text, 16, '0'), '$MERCHANT', 'pay_' || lpad(i::text, 16, '0'), 10000, NULL, 'processed', at, at, at FROM t WHERE i % 10 = 1;
SQL
  psql -q "$1" -c "VACUUM ANALYZE"
}

query() { # $1 = backend, $2 = url/file, $3 = SQL
  if [ "$1" = sqlite ]; then sqlite3 "$2" "$3"; else psql -qAt "$2" -c "$3"; fi
}

median_ms() { # curl SAMPLES times; prints the median in ms
  local url=$1
  for _ in $(seq 1 "$SAMPLES"); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "X-Api-Key: $KEY" -H "X-Api-Secret: $SECRET" "$url"
  done | python3 -c 'import sys,statistics; print(f"{statistics.median(float(l) for l in sys.stdin)*1000:.2f}")'
}

refunds=$((N / 10))
want_amount=$((N * 50000 - refunds * 10000 - N * 1180))
for backend in $BACKENDS; do
  if [ "$backend" = sqlite ]; then
    db="$work/settle.db"; url="sqlite://$db"; target=$db
  else
    name="paygate_settle_$$"
    psql -q "$PG_URL/postgres" -c "CREATE DATABASE $name" >/dev/null
    url="$PG_URL/$name"; target=$url
  fi
  DATABASE_URL="$url" "$BIN" migrate >/dev/null
  started=$(date +%s)
  if [ "$backend" = sqlite ]; then seed_sqlite "$db"; else seed_postgres "$url"; fi
  seeded=$(( $(date +%s) - started ))
  started=$(date +%s.%N)
  out=$(DATABASE_URL="$url" SETTLEMENT_DELAY=2d REFUND_DELAY_MIN=0 REFUND_DELAY_MAX=0 RUST_LOG=warn \
    "$BIN" processor settle --json)
  wall=$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")
  cycle=$(echo "$out" | python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["seconds"])')
  got=$(query "$backend" "$target" "SELECT count || ' ' || amount || ' ' || status FROM settlements")
  unsettled=$(query "$backend" "$target" "SELECT COUNT(*) FROM payments WHERE settlement_id IS NULL")
  [ "$got" = "$((N + refunds)) $want_amount processed" ] || { echo "settlement wrong: $got (want $((N + refunds)) $want_amount processed)"; exit 1; }
  [ "$unsettled" = 0 ] || { echo "$unsettled payments left unsettled"; exit 1; }
  DATABASE_URL="$url" PORT=$PORT DASHBOARD_PORT=0 CHECKOUT_PORT=0 RUST_LOG=warn "$BIN" serve >"$work/gateway.log" 2>&1 &
  gw=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  deep=$(printf 'pay_%016d' $((N * 9 / 10)))
  first=$(median_ms "http://127.0.0.1:$PORT/api/v1/settlements/recon?limit=100")
  later=$(median_ms "http://127.0.0.1:$PORT/api/v1/settlements/recon?limit=100&starting_after=$deep")
  kill -TERM "$gw"; wait "$gw" || true
  echo "{\"backend\":\"$backend\",\"payments\":$N,\"refunds\":$refunds,\"seed_s\":$seeded,\"settle_cycle_s\":$cycle,\"settle_command_s\":$wall,\"recon_first_page_ms\":$first,\"recon_page_at_90pct_ms\":$later}"
  if [ "$backend" = sqlite ]; then rm -f "$db"*; else psql -q "$PG_URL/postgres" -c "DROP DATABASE $name WITH (FORCE)" >/dev/null; fi
done
