#!/usr/bin/env bash
# Two builds of the gateway side by side: the release `paygate` of this checkout (B) against
# another `paygate` binary (A, `BASE`, e.g. a release build of an earlier commit kept aside),
# create-order then create-payment at CLIENTS connections, interleaved A, B on SQLite then on
# PostgreSQL for ROUNDS rounds. Prints one line per run (rates, create-payment p50/p99, the
# machine's idle share and the mean write batch with its stages) and the medians of each side.
#
#   git stash; cargo build --release -p paygate; cp target/release/paygate /tmp/paygate-a; git stash pop
#   BASE=/tmp/paygate-a bench/ab.sh              # ROUNDS=3 DURATION=6 CLIENTS=32; about 3 minutes
#
# BACKENDS="postgres" (or "sqlite") runs one backend only. To compare two settings of one build,
# BASE is a script that sets A's and B takes this script's environment, e.g. for write lanes:
#
#   printf '#!/bin/sh\nWRITE_LANES=1 exec %s/target/release/paygate "$@"\n' "$PWD" > /tmp/lanes1
#   chmod +x /tmp/lanes1; WRITE_LANES=2 BASE=/tmp/lanes1 BACKENDS=postgres ROUNDS=5 bench/ab.sh
#
# Needs: a PostgreSQL server (PG_URL, default postgres://postgres@127.0.0.1:5432), curl.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BASE:?BASE must name the paygate binary to compare against}"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-6}
CLIENTS=${CLIENTS:-32}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PORT=${BENCH_PORT:-18080}

cargo build --release -q -p paygate -p paygate-bench
LOAD=target/release/paygate-bench
work=$(mktemp -d)
results="$work/results.jsonl"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

run() { # $1 = backend (sqlite|postgres), $2 = side (A|B)
  local url name="" bin=target/release/paygate
  [ "$2" = A ] && bin=$BASE
  if [ "$1" = sqlite ]; then
    url="sqlite://$work/ab-$RANDOM.db"
  else
    name="paygate_ab_$$_$RANDOM"
    psql -q "$PG_URL/postgres" -c "CREATE DATABASE $name"
    url="$PG_URL/$name"
  fi
  DATABASE_URL="$url" PORT=$PORT DASHBOARD_PORT=0 CHECKOUT_PORT=0 RUST_LOG=warn "$bin" serve >"$work/gateway.log" 2>&1 &
  local gw=$!
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.05
  done
  "$LOAD" api --url "http://127.0.0.1:$PORT" --duration "$DURATION" --pid "$gw" --concurrency "$CLIENTS" \
    | sed "s/^{/{\"backend\":\"$1\",\"side\":\"$2\",/" >>"$results"
  kill -TERM $gw; wait $gw || true
  [ -z "$name" ] || psql -q "$PG_URL/postgres" -c "DROP DATABASE $name WITH (FORCE)"
}

for _ in $(seq 1 "$ROUNDS"); do
  for backend in ${BACKENDS:-sqlite postgres}; do
    run "$backend" A
    run "$backend" B
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def line(r):
    w = r.get("create_payment_watch", {})
    stages = ", ".join(f"{k} {v:.0f}" for k, v in w.get("stages_us", {}).items() if v >= 20)
    return (f"{r['backend']:8} {r['side']}  order/s {r['create_order_per_s']:7.0f}  payment/s {r['create_payment_per_s']:6.0f}"
            f"  p50 {r['create_payment_p50_ms']:6.2f}  p99 {r['create_payment_p99_ms']:6.2f}  idle {w.get('idle', 0):.2f}"
            f"  batch {w.get('batch_mean', 0):.1f} of {w.get('batch_us', 0):.0f} us: {stages}")
for r in rows:
    print(line(r))
print("\nmedians")
for b in ("sqlite", "postgres"):
    for side in ("A", "B"):
        sel = [r for r in rows if r["backend"] == b and r["side"] == side]
        if not sel:
            continue
        m = lambda k: statistics.median(r[k] for r in sel)
        w = [r["create_payment_watch"] for r in sel if "create_payment_watch" in r]
        begin = statistics.median(x["stages_us"].get("begin", 0) for x in w) if w else 0
        batch = statistics.median(x["batch_us"] for x in w) if w else 0
        print(f"{b:8} {side}  order/s {m('create_order_per_s'):7.0f}  payment/s {m('create_payment_per_s'):6.0f}"
              f"  p99 {m('create_payment_p99_ms'):6.2f}  payment batch {batch:.0f} us, begin {begin:.0f} us")
    a = [r["create_payment_per_s"] for r in rows if r["backend"] == b and r["side"] == "A"]
    bb = [r["create_payment_per_s"] for r in rows if r["backend"] == b and r["side"] == "B"]
    if a and bb:
        print(f"{b:8} B/A create-payment {statistics.median(bb) / statistics.median(a):.2f}x")
PY
