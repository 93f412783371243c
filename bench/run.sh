#!/usr/bin/env bash
# API load benchmark: create-order and create-payment against a running `paygate serve`, on
# SQLite and on PostgreSQL, side by side with pgbench doing the equivalent single-row insert
# at the same concurrency. Prints one JSON line per run and a summary of medians.
#
#   bench/run.sh                       # 3 rounds, 10 s per phase, 32 clients
#   ROUNDS=5 DURATION=20 CONCURRENCY=64 bench/run.sh
#
# Needs: a PostgreSQL server (PG_URL, default postgres://postgres@127.0.0.1:5432) and pgbench.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-32}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PORT=${BENCH_PORT:-18080}

cargo build --release -q -p paygate -p paygate-bench
BIN=target/release/paygate
LOAD=target/release/paygate-bench
work=$(mktemp -d)
results="$work/results.jsonl"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

gateway() { # $1 = DATABASE_URL; starts `paygate serve` and waits until healthy
  DATABASE_URL="$1" PORT=$PORT RUST_LOG=warn "$BIN" serve >"$work/gateway.log" 2>&1 &
  gw=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return 0
    sleep 0.1
  done
  cat "$work/gateway.log"; return 1
}

run_paygate() { # $1 = backend name, $2 = DATABASE_URL
  gateway "$2"
  "$LOAD" --url "http://127.0.0.1:$PORT" --concurrency "$CONCURRENCY" --duration "$DURATION" \
    | sed "s/^{/{\"backend\":\"$1\",/" | tee -a "$results"
  kill -TERM $gw; wait $gw || true
}

run_pgbench() { # $1 = database
  psql -q "$PG_URL/$1" -c "CREATE TABLE bench_payments (id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL,
    order_id TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL, method TEXT NOT NULL,
    vpa TEXT, status TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL)"
  cat >"$work/insert.sql" <<'SQL'
INSERT INTO bench_payments (id, merchant_id, order_id, amount, currency, method, vpa, status, created_at, updated_at)
VALUES ('pay_' || md5(random()::text || clock_timestamp()::text), '550e8400-e29b-41d4-a716-446655440000',
        'order_x', 50000, 'INR', 'upi', 'success@bench', 'pending', now(), now());
SQL
  tps=$(pgbench -n -c "$CONCURRENCY" -j 2 -T "$DURATION" -f "$work/insert.sql" "$PG_URL/$1" 2>/dev/null \
    | awk '/^tps/ {print int($3); exit}')
  echo "{\"backend\":\"pgbench\",\"concurrency\":$CONCURRENCY,\"insert_per_s\":$tps}" | tee -a "$results"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round"
  run_paygate sqlite "sqlite://$work/bench-$round.db"
  db="paygate_bench_${round}_$$"
  psql -q "$PG_URL/postgres" -c "CREATE DATABASE $db"
  run_paygate postgres "$PG_URL/$db"
  psql -q "$PG_URL/postgres" -c "DROP DATABASE $db WITH (FORCE)"
  psql -q "$PG_URL/postgres" -c "CREATE DATABASE ${db}_pgbench"
  run_pgbench "${db}_pgbench"
  psql -q "$PG_URL/postgres" -c "DROP DATABASE ${db}_pgbench WITH (FORCE)"
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(backend, key):
    vals = [r[key] for r in rows if r["backend"] == backend]
    return statistics.median(vals) if vals else None
pg = med("pgbench", "insert_per_s")
print(f"\nmedians of {sum(r['backend']=='sqlite' for r in rows)} rounds, concurrency {rows[0]['concurrency']}")
print(f"{'backend':10} {'op':15} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs pgbench':>10}")
for b in ("sqlite", "postgres"):
    for op in ("create_order", "create_payment"):
        rate = med(b, op + "_per_s")
        ratio = f"{rate / pg:.0%}" if (b == "postgres" and pg) else ""
        print(f"{b:10} {op:15} {rate:8.0f} {med(b, op + '_p50_ms'):8.2f} {med(b, op + '_p99_ms'):8.2f} {ratio:>10}")
print(f"{'pgbench':10} {'insert':15} {pg:8.0f}")
PY
