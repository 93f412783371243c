#!/usr/bin/env bash
# API load benchmark: create-order and create-payment against a running `paygate serve`, on
# SQLite and on PostgreSQL, at 1, 10 and 32 clients, side by side with pgbench doing the
# equivalent single-row insert at the same client count, in one run; then create-payment with a
# webhook URL set (each payment also writes its deliveries); then both operations paced at
# 1,000 requests/s (p50/p99); then the gateway's idle memory and start-to-ready time. Rounds
# interleave the setups. Prints one JSON line per run and a summary of medians.
#
#   bench/run.sh                                   # 3 rounds, 8 s per phase; about 12 minutes
#   ROUNDS=5 DURATION=20 CLIENTS="1 10 32 64" bench/run.sh
#
# Needs: a PostgreSQL server (PG_URL, default postgres://postgres@127.0.0.1:5432), pgbench, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CLIENTS=${CLIENTS:-"1 10 32"}
PACED=${PACED:-1000}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PORT=${BENCH_PORT:-18080}

cargo build --release -q -p paygate -p paygate-bench
BIN=target/release/paygate
LOAD=target/release/paygate-bench
work=$(mktemp -d)
results="$work/results.jsonl"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

gateway() { # $1 = DATABASE_URL; starts `paygate serve` and waits until healthy
  DATABASE_URL="$1" PORT=$PORT DASHBOARD_PORT=0 CHECKOUT_PORT=0 RUST_LOG=warn "$BIN" serve >"$work/gateway.log" 2>&1 &
  gw=$!
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return 0
    sleep 0.05
  done
  cat "$work/gateway.log"; return 1
}

fresh_db() { # $1 = kind (sqlite|postgres), $2 = tag; prints a DATABASE_URL
  if [ "$1" = sqlite ]; then
    echo "sqlite://$work/bench-$2.db"
  else
    local name="paygate_bench_$2_$$"
    psql -q "$PG_URL/postgres" -c "CREATE DATABASE $name" >/dev/null
    echo "$PG_URL/$name"
  fi
}

drop_db() { # $1 = DATABASE_URL
  case "$1" in postgres*) psql -q "$PG_URL/postgres" -c "DROP DATABASE ${1##*/} WITH (FORCE)" >/dev/null ;; esac
}

run_paygate() { # $1 = backend, $2 = label, then load generator flags
  local backend=$1 label=$2; shift 2
  local url; url=$(fresh_db "$backend" "$RANDOM")
  gateway "$url"
  "$LOAD" api --url "http://127.0.0.1:$PORT" --duration "$DURATION" --pid "$gw" "$@" \
    | sed "s/^{/{\"backend\":\"$backend\",\"label\":\"$label\",/" | tee -a "$results"
  kill -TERM $gw; wait $gw || true
  drop_db "$url"
}

run_pgbench() { # $1 = clients
  local url; url=$(fresh_db postgres "pgbench$RANDOM")
  psql -q "$url" -c "CREATE TABLE bench_payments (id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL,
    order_id TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL, method TEXT NOT NULL,
    vpa TEXT, status TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL)"
  cat >"$work/insert.sql" <<'SQL'
INSERT INTO bench_payments (id, merchant_id, order_id, amount, currency, method, vpa, status, created_at, updated_at)
VALUES ('pay_' || md5(random()::text || clock_timestamp()::text), '550e8400-e29b-41d4-a716-446655440000',
        'order_x', 50000, 'INR', 'upi', 'success@bench', 'pending', now(), now());
SQL
  local tps
  tps=$(pgbench -n -c "$1" -j "$(( $1 < 2 ? 1 : 2 ))" -T "$DURATION" -f "$work/insert.sql" "$url" 2>/dev/null \
    | awk '/^tps/ {print int($3); exit}')
  echo "{\"backend\":\"pgbench\",\"label\":\"insert\",\"concurrency\":$1,\"insert_per_s\":$tps}" | tee -a "$results"
  drop_db "$url"
}

footprint() { # $1 = backend: start-to-ready (ms) and idle RSS (KiB) of `paygate` (all-in-one)
  local url; url=$(fresh_db "$1" "fp$RANDOM")
  # The database is created and migrated first, so the timing is of a normal start.
  DATABASE_URL="$url" "$BIN" migrate >/dev/null
  local started ready
  started=$(date +%s%N)
  DATABASE_URL="$url" PORT=$PORT DASHBOARD_PORT=0 CHECKOUT_PORT=0 RUST_LOG=warn "$BIN" >"$work/fp.log" 2>&1 &
  local pid=$!
  until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; do sleep 0.001; done
  ready=$(date +%s%N)
  sleep 3
  local rss; rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  kill -TERM $pid; wait $pid || true
  drop_db "$url"
  echo "{\"backend\":\"$1\",\"label\":\"footprint\",\"ready_ms\":$(( (ready - started) / 1000000 )),\"idle_rss_kib\":$rss}" | tee -a "$results"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round"
  for c in $CLIENTS; do
    run_paygate sqlite load --concurrency "$c"
    run_paygate postgres load --concurrency "$c"
    run_pgbench "$c"
  done
  run_paygate sqlite webhooks --concurrency 32 --webhook-url http://127.0.0.1:9/hooks
  run_paygate postgres webhooks --concurrency 32 --webhook-url http://127.0.0.1:9/hooks
  run_paygate sqlite paced --rate "$PACED"
  run_paygate postgres paced --rate "$PACED"
  footprint sqlite
  footprint postgres
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(sel, key):
    vals = [r[key] for r in sel]
    return statistics.median(vals) if vals else float("nan")
def pick(**kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]
print(f"\nmedians of the rounds, {len(pick(backend='pgbench')) // max(1, len({r['concurrency'] for r in pick(backend='pgbench')}))} rounds")
print(f"{'backend':9} {'clients':>7} {'op':15} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs pgbench':>10}")
for c in sorted({r["concurrency"] for r in pick(label="load")}):
    pg = med(pick(backend="pgbench", concurrency=c), "insert_per_s")
    for b in ("sqlite", "postgres"):
        sel = pick(backend=b, label="load", concurrency=c)
        for op in ("create_order", "create_payment"):
            rate = med(sel, op + "_per_s")
            ratio = f"{rate / pg:.2f}x" if b == "postgres" else ""
            print(f"{b:9} {c:7} {op:15} {rate:8.0f} {med(sel, op + '_p50_ms'):8.2f} {med(sel, op + '_p99_ms'):8.2f} {ratio:>10}")
    print(f"{'pgbench':9} {c:7} {'insert':15} {pg:8.0f}")
for b in ("sqlite", "postgres"):
    sel = pick(backend=b, label="webhooks")
    print(f"{b:9} {32:7} {'payment+hooks':15} {med(sel, 'create_payment_per_s'):8.0f} {med(sel, 'create_payment_p50_ms'):8.2f} {med(sel, 'create_payment_p99_ms'):8.2f}")
for b in ("sqlite", "postgres"):
    sel = pick(backend=b, label="paced")
    for op in ("create_order", "create_payment"):
        print(f"{b:9} {'paced':>7} {op:15} {med(sel, op + '_per_s'):8.0f} {med(sel, op + '_p50_ms'):8.2f} {med(sel, op + '_p99_ms'):8.2f}")
print("\nduring the 32-client phases: machine idle share, the gateway's peak RSS, and the mean write batch")
print(f"{'backend':9} {'op':15} {'idle':>5} {'RSS MiB':>8} {'batch':>6} {'wait us':>8} {'batch us':>9}  stages (mean us)")
for b in ("sqlite", "postgres"):
    sel = pick(backend=b, label="load", concurrency=32)
    for op in ("create_order", "create_payment"):
        w = [r[op + "_watch"] for r in sel if op + "_watch" in r]
        if not w:
            continue
        m = lambda k: statistics.median(x[k] for x in w)
        stages = {k: statistics.median(x["stages_us"].get(k, 0) for x in w) for k in w[0]["stages_us"]}
        print(f"{b:9} {op:15} {m('idle'):5.2f} {m('peak_rss_mib'):8.1f} {m('batch_mean'):6.1f} {m('wait_us'):8.0f} {m('batch_us'):9.0f}  "
              + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()))
for b in ("sqlite", "postgres"):
    sel = pick(backend=b, label="footprint")
    print(f"{b:9} start to ready {med(sel, 'ready_ms'):.0f} ms, idle RSS {med(sel, 'idle_rss_kib') / 1024:.1f} MiB")
PY
