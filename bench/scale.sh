#!/usr/bin/env bash
# Scale benchmark: how every list, page and resource read costs as one merchant's data grows.
# For each size and backend: a fresh database (migrated by the gateway), bulk-loaded with N
# orders and N payments of the test merchant spread over the last 365 days (a tenth of them
# failed, a third by card), N/10 refunds, events and webhook deliveries (half of them to one
# webhook endpoint), and the overview's rollups recounted; then `paygate serve` answers each
# request SAMPLES times over one keep-alive connection (bench/scale_time.py), printing p50/p99
# per request as JSON lines and a table at the end. Results: docs/BENCHMARKS.md, "Scale".
#
#   bench/scale.sh                                  # 1 M payments, SQLite and PostgreSQL
#   SIZES="1000000 10000000" bench/scale.sh         # and 10 M
#   BACKENDS=sqlite SAMPLES=100 bench/scale.sh
#
# The load is SQL that generates the rows in the database (a recursive CTE on SQLite,
# generate_series on PostgreSQL), one statement per table with the indexes in place.
# Needs: sqlite3, psql and a PostgreSQL server (PG_URL, default postgres://postgres@127.0.0.1:5432),
# curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-1000000}
BACKENDS=${BACKENDS:-"sqlite postgres"}
SAMPLES=${SAMPLES:-50}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PORT=${BENCH_PORT:-18090}
DASH=${BENCH_DASHBOARD_PORT:-18091}
MERCHANT=550e8400-e29b-41d4-a716-446655440000

cargo build --release -q -p paygate
BIN=target/release/paygate
work=$(mktemp -d)
results="$work/results.jsonl"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

gateway() { # $1 = DATABASE_URL; starts `paygate serve` and waits until healthy
  DATABASE_URL="$1" PORT=$PORT DASHBOARD_PORT=$DASH CHECKOUT_PORT=0 RUST_LOG=warn "$BIN" serve >"$work/gateway.log" 2>&1 &
  gw=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return 0
    sleep 0.1
  done
  cat "$work/gateway.log"; return 1
}

stop() { kill -TERM "$gw"; wait "$gw" || true; }

# One statement per table: N rows numbered 1..N, the i-th created (365 days × i / N) after a
# year ago; payment i is for order i. $1 = N. Timestamps are written as the gateway writes them.
seed_sqlite() {
  local n=$1 db=$2
  sqlite3 "$db" <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1000000;
BEGIN;
CREATE TEMP TABLE n AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $n) SELECT i FROM c;
CREATE TEMP TABLE t AS SELECT i, strftime('%Y-%m-%dT%H:%M:%f', 'now', '-365 days', '+' || (i * 31536.0 / $n * 1000) || ' seconds') || '000+00:00' AS at FROM n;
INSERT INTO orders (id, merchant_id, amount, currency, receipt, notes, status, created_at, updated_at)
  SELECT printf('order_%016d', i), '$MERCHANT', 50000, 'INR', NULL, '{}', CASE WHEN i % 10 = 0 THEN 'created' ELSE 'paid' END, at, at FROM t;
INSERT INTO payments (id, merchant_id, order_id, amount, currency, method, vpa, card_network, card_last4, status, captured, amount_refunded, created_at, updated_at)
  SELECT printf('pay_%016d', i), '$MERCHANT', printf('order_%016d', i), 50000, 'INR',
         CASE WHEN i % 3 = 0 THEN 'card' ELSE 'upi' END, CASE WHEN i % 3 = 0 THEN NULL ELSE 'success@upi' END,
         CASE WHEN i % 3 = 0 THEN 'visa' END, CASE WHEN i % 3 = 0 THEN '1111' END,
         CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'success' END, FALSE, CASE WHEN i % 10 = 1 THEN 10000 ELSE 0 END, at, at FROM t;
INSERT INTO refunds (id, merchant_id, payment_id, amount, reason, status, created_at, updated_at, processed_at)
  SELECT printf('rfnd_%016d', i), '$MERCHANT', printf('pay_%016d', i), 10000, NULL, 'processed', at, at, at FROM t WHERE i % 10 = 1;
INSERT INTO events (id, merchant_id, event_type, resource_id, data, created_at)
  SELECT printf('evt_%016d', i), '$MERCHANT', 'payment.success', printf('pay_%016d', i), '{}', at FROM t WHERE i % 10 = 2;
INSERT INTO webhook_endpoints (id, merchant_id, url, description, enabled, events, secret, created_at, updated_at)
  VALUES ('we_bench', '$MERCHANT', 'http://127.0.0.1:9/hook', NULL, TRUE, '', 'whsec_bench', strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now', '-366 days'), strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now', '-366 days'));
INSERT INTO webhook_logs (id, merchant_id, event_id, event, payload, status, attempts, created_at, updated_at, endpoint_id)
  SELECT printf('whd_%016d', i), '$MERCHANT', printf('evt_%016d', i), 'payment.success', '{}', 'success', 1, at, at,
         CASE WHEN i % 20 = 2 THEN 'we_bench' END FROM t WHERE i % 10 = 2;
DELETE FROM payment_days;
INSERT INTO payment_days (merchant_id, day, payments, successful, amount)
  SELECT merchant_id, substr(created_at, 1, 10), COUNT(*), SUM(status = 'success'), SUM(CASE WHEN status = 'success' THEN amount ELSE 0 END)
  FROM payments GROUP BY merchant_id, substr(created_at, 1, 10);
COMMIT;
ANALYZE;
SQL
}

seed_postgres() {
  local n=$1 url=$2
  psql -q -v ON_ERROR_STOP=1 "$url" <<SQL
SET synchronous_commit = off;
CREATE TEMP TABLE t AS SELECT i, now() - interval '365 days' + (i * interval '31536 seconds' / $n * 1000) AS at FROM generate_series(1, $n) AS i;
INSERT INTO orders (id, merchant_id, amount, currency, receipt, notes, status, created_at, updated_at)
  SELECT 'order_' || lpad(i::text, 16, '0'), '$MERCHANT', 50000, 'INR', NULL, '{}', CASE WHEN i % 10 = 0 THEN 'created' ELSE 'paid' END, at, at FROM t;
INSERT INTO payments (id, merchant_id, order_id, amount, currency, method, vpa, card_network, card_last4, status, captured, amount_refunded, created_at, updated_at)
  SELECT 'pay_' || lpad(i::text, 16, '0'), '$MERCHANT', 'order_' || lpad(i::text, 16, '0'), 50000, 'INR',
         CASE WHEN i % 3 = 0 THEN 'card' ELSE 'upi' END, CASE WHEN i % 3 = 0 THEN NULL ELSE 'success@upi' END,
         CASE WHEN i % 3 = 0 THEN 'visa' END, CASE WHEN i % 3 = 0 THEN '1111' END,
         CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'success' END, FALSE, CASE WHEN i % 10 = 1 THEN 10000 ELSE 0 END, at, at FROM t;
INSERT INTO refunds (id, merchant_id, payment_id, amount, reason, status, created_at, updated_at, processed_at)
  SELECT 'rfnd_' || lpad(i::text, 16, '0'), '$MERCHANT', 'pay_' || lpad(i::text, 16, '0'), 10000, NULL, 'processed', at, at, at FROM t WHERE i % 10 = 1;
INSERT INTO events (id, merchant_id, event_type, resource_id, data, created_at)
  SELECT 'evt_' || lpad(i::text, 16, '0'), '$MERCHANT', 'payment.success', 'pay_' || lpad(i::text, 16, '0'), '{}', at FROM t WHERE i % 10 = 2;
INSERT INTO webhook_endpoints (id, merchant_id, url, description, enabled, events, secret, created_at, updated_at)
  VALUES ('we_bench', '$MERCHANT', 'http://127.0.0.1:9/hook', NULL, TRUE, '', 'whsec_bench', now() - interval '366 days', now() - interval '366 days');
INSERT INTO webhook_logs (id, merchant_id, event_id, event, payload, status, attempts, created_at, updated_at, endpoint_id)
  SELECT 'whd_' || lpad(i::text, 16, '0'), '$MERCHANT', 'evt_' || lpad(i::text, 16, '0'), 'payment.success', '{}', 'success', 1, at, at,
         CASE WHEN i % 20 = 2 THEN 'we_bench' END FROM t WHERE i % 10 = 2;
DELETE FROM payment_days;
INSERT INTO payment_days (merchant_id, day, payments, successful, amount)
  SELECT merchant_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), COUNT(*), SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END),
         SUM(CASE WHEN status = 'success' THEN amount ELSE 0 END)
  FROM payments GROUP BY merchant_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD');
SQL
  psql -q "$url" -c "VACUUM ANALYZE"
}

for n in $SIZES; do
  for backend in $BACKENDS; do
    if [ "$backend" = sqlite ]; then
      db="$work/scale-$n.db"; url="sqlite://$db"
    else
      name="paygate_scale_${n}_$$"
      psql -q "$PG_URL/postgres" -c "CREATE DATABASE $name" >/dev/null
      url="$PG_URL/$name"
    fi
    gateway "$url"; stop # migrations and the test merchant
    started=$(date +%s)
    if [ "$backend" = sqlite ]; then seed_sqlite "$n" "$db"; else seed_postgres "$n" "$url"; fi
    echo "{\"backend\":\"$backend\",\"payments\":$n,\"seed_seconds\":$(( $(date +%s) - started ))}" | tee -a "$results"
    gateway "$url"
    python3 bench/scale_time.py --api "http://127.0.0.1:$PORT" --dashboard "http://127.0.0.1:$DASH" \
      --payments "$n" --samples "$SAMPLES" \
      | sed "s/^{/{\"backend\":\"$backend\",\"payments\":$n,/" | tee -a "$results"
    stop
    if [ "$backend" = sqlite ]; then rm -f "$db"*; else psql -q "$PG_URL/postgres" -c "DROP DATABASE $name WITH (FORCE)" >/dev/null; fi
  done
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
timed = [r for r in rows if "request" in r]
sizes = sorted({r["payments"] for r in timed})
backends = sorted({r["backend"] for r in timed})
names = list(dict.fromkeys(r["request"] for r in timed))
get = {(r["backend"], r["payments"], r["request"]): r for r in timed}
for b in backends:
    print(f"\n{b}: p50 / p99 ms" + ("" if len(sizes) < 2 else f", p99 growth {sizes[0]:,} → {sizes[-1]:,}"))
    print("| request | " + " | ".join(f"{s:,}" for s in sizes) + (" | growth |" if len(sizes) > 1 else " |"))
    print("|---|" + "---:|" * (len(sizes) + (len(sizes) > 1)))
    for name in names:
        cells = []
        for s in sizes:
            r = get.get((b, s, name))
            cells.append(f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}" if r else "")
        growth = ""
        if len(sizes) > 1 and get.get((b, sizes[0], name)) and get.get((b, sizes[-1], name)):
            growth = f" | {get[(b, sizes[-1], name)]['p99_ms'] / max(get[(b, sizes[0], name)]['p99_ms'], 0.01):.2f}×"
        print(f"| {name} | " + " | ".join(cells) + growth + (" |" if growth or len(sizes) == 1 else " | |"))
for r in rows:
    if "seed_seconds" in r:
        print(f"seeded {r['payments']:,} payments on {r['backend']} in {r['seed_seconds']} s")
PY
