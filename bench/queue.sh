#!/usr/bin/env bash
# Queue benchmark: jobs per second end to end (payment committed with its job → picked up →
# processed → final status committed) with zero processing delay, and the latency from commit
# to pick-up at a steady 100 payments/s, on the embedded queue (SQLite, PostgreSQL) and on
# Redis (PostgreSQL + Redis). Prints one JSON line per run and the medians.
#
#   bench/queue.sh                      # ROUNDS=3 JOBS=10000
#
# Needs PostgreSQL (PG_URL, default postgres://postgres@127.0.0.1:5432) and Redis (REDIS_URL,
# default redis://127.0.0.1:6379; keys go under a throwaway prefix that is deleted afterwards).
source "$(dirname "$0")/lib.sh"
JOBS=${JOBS:-10000}

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round"
  run_one queue "sqlite+embedded" sqlite --jobs "$JOBS"
  run_one queue "postgres+embedded" postgres --jobs "$JOBS"
  run_one queue "postgres+redis" postgres --jobs "$JOBS" --redis-url "$REDIS_URL"
  run_one queue "sqlite+embedded" sqlite --jobs 1000 --rate 100
  run_one queue "postgres+embedded" postgres --jobs 1000 --rate 100
  run_one queue "postgres+redis" postgres --jobs 1000 --rate 100 --redis-url "$REDIS_URL"
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n{'setup':20} {'mode':12} {'jobs/s':>8} {'pickup p50 ms':>14} {'pickup p99 ms':>14}")
for label in ("sqlite+embedded", "postgres+embedded", "postgres+redis"):
    for rate in sorted({r["rate"] for r in rows}):
        sel = [r for r in rows if r["label"] == label and r["rate"] == rate]
        if not sel: continue
        m = lambda k: statistics.median(r[k] for r in sel)
        mode = "max" if rate == 0 else f"{rate}/s"
        print(f"{label:20} {mode:12} {m('jobs_per_s'):8.0f} {m('pickup_p50_ms'):14.2f} {m('pickup_p99_ms'):14.2f}")
PY
