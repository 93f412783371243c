#!/usr/bin/env bash
# Recovery in seconds: the price of a crash, in time, with the default leases (15 s jobs, 60 s
# idempotency keys), on SQLite (one `paygate all`) and on PostgreSQL + Redis (`serve` and
# `worker` processes). Scenarios (see bench/src/recovery.rs): kill -9 of the process holding
# payments at the bank and an immediate restart (time to final after the restart, repeated
# charges); a retry after its `serve` died mid-request (time to an answer other than 409);
# Redis flushed (PostgreSQL + Redis: time until the jobs are back).
#
#   bench/recovery.sh                   # ROUNDS=3 PAYMENTS=100; about 3 minutes
source "$(dirname "$0")/lib.sh"
PAYMENTS=${PAYMENTS:-100}
cargo build --release -q -p paygate

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round"
  run_one recovery sqlite sqlite --payments "$PAYMENTS"
  run_one recovery postgres+redis postgres --redis-url "$REDIS_URL" --payments "$PAYMENTS"
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
m = lambda sel, k: statistics.median(r[k] for r in sel)
print()
for config in ("sqlite", "postgres+redis"):
    kill = [r for r in rows if r["config"] == config and r["scenario"] == "kill"]
    if kill:
        print(f"{config:15} kill -9 + restart: final after restart p50 {m(kill, 'final_after_restart_p50_s'):.2f} s, "
              f"p99 {m(kill, 'final_after_restart_p99_s'):.2f} s, max {max(r['final_after_restart_max_s'] for r in kill):.2f} s; "
              f"{m(kill, 'at_bank_at_kill'):.0f} at the bank at the kill; repeated charges {sum(r['repeated_charges'] for r in kill)}")
    retry = [r for r in rows if r["config"] == config and r["scenario"] == "retry"]
    if retry:
        print(f"{config:15} retry after its serve died: answered after {m(retry, 'answered_after_death_s'):.2f} s (max "
              f"{max(r['answered_after_death_s'] for r in retry):.2f} s), status {sorted({r['status'] for r in retry})}")
    flush = [r for r in rows if r["config"] == config and r["scenario"] == "flush"]
    if flush:
        print(f"{config:15} Redis flushed: jobs back within {m(flush, 'back_within_s'):.2f} s (max "
              f"{max(r['back_within_s'] for r in flush):.2f} s) of the flush, {m(flush, 'pending_at_flush'):.0f} pending")
PY
