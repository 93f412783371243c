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
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
JOBS=${JOBS:-10000}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}

cargo build --release -q -p paygate-bench
LOAD=target/release/paygate-bench
work=$(mktemp -d)
results="$work/results.jsonl"
trap 'rm -rf "$work"' EXIT

one() { # $1 = label, $2 = database kind, then extra flags
  local label=$1 kind=$2; shift 2
  local db prefix="paygate-bench-$$-$RANDOM"
  if [ "$kind" = sqlite ]; then
    db="sqlite://$work/q-$RANDOM.db"
  else
    local name="paygate_qbench_$$_$RANDOM"
    psql -q "$PG_URL/postgres" -c "CREATE DATABASE $name"
    db="$PG_URL/$name"
  fi
  "$LOAD" queue --database-url "$db" --redis-prefix "$prefix" "$@" \
    | sed "s/^{/{\"label\":\"$label\",/" | tee -a "$results"
  [ "$kind" = sqlite ] || psql -q "$PG_URL/postgres" -c "DROP DATABASE ${db##*/} WITH (FORCE)"
  redis-cli -u "$REDIS_URL" --scan --pattern "$prefix:*" | xargs -r redis-cli -u "$REDIS_URL" DEL >/dev/null
}

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round"
  one "sqlite+embedded" sqlite --jobs "$JOBS"
  one "postgres+embedded" postgres --jobs "$JOBS"
  one "postgres+redis" postgres --jobs "$JOBS" --redis-url "$REDIS_URL"
  one "sqlite+embedded" sqlite --jobs 1000 --rate 100
  one "postgres+embedded" postgres --jobs 1000 --rate 100
  one "postgres+redis" postgres --jobs 1000 --rate 100 --redis-url "$REDIS_URL"
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
