#!/usr/bin/env bash
# Webhook delivery benchmark: deliveries per second to a local receiver, and the delay from a
# payment's state change to the first attempt of its payment.success webhook (p50/p99), with
# zero processing delay, at 100 and 1,000 payments/s, on the embedded queue (SQLite,
# PostgreSQL) and on Redis. Prints one JSON line per run and the medians.
#
#   bench/webhooks.sh                   # ROUNDS=3
source "$(dirname "$0")/lib.sh"

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round"
  for rate in 100 1000; do
    n=$((rate * 5))
    run_one webhooks "sqlite+embedded" sqlite --payments "$n" --rate "$rate"
    run_one webhooks "postgres+embedded" postgres --payments "$n" --rate "$rate"
    run_one webhooks "postgres+redis" postgres --payments "$n" --rate "$rate" --redis-url "$REDIS_URL"
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n{'setup':20} {'payments/s':>10} {'deliveries/s':>12} {'first attempt p50 ms':>21} {'p99 ms':>8}")
for label in ("sqlite+embedded", "postgres+embedded", "postgres+redis"):
    for rate in (100, 1000):
        sel = [r for r in rows if r["label"] == label and r["rate"] == rate]
        if not sel: continue
        m = lambda k: statistics.median(r[k] for r in sel)
        print(f"{label:20} {rate:10} {m('deliveries_per_s'):12.0f} {m('first_attempt_p50_ms'):21.2f} {m('first_attempt_p99_ms'):8.2f}")
PY
