#!/usr/bin/env bash
# The worker end to end: payments created → processed by the simulated bank → final → all three
# webhooks of each (created, pending, success) received by a local receiver, on the embedded
# queue (SQLite, PostgreSQL) and on Redis (PostgreSQL + Redis). Two kinds of runs:
#
# - max: payments created as fast as 32 producers go, with the bank answering at once
#   (E2E_PAYMENTS, 10,000) or after the 1 s test delay (E2E_SLOW_PAYMENTS, 5,000; the worker
#   then runs 2,048 payments at once: WORKER_CONCURRENCY is the cap on payments in the bank);
#   reported: payments per second end to end.
# - paced: 100 and 1,000 payments per second for 5 s; reported: the delay from each payment's
#   state change to its payment.success webhook's arrival (the first attempt), p50/p99.
#
#   bench/webhooks.sh                   # ROUNDS=3
source "$(dirname "$0")/lib.sh"
E2E_PAYMENTS=${E2E_PAYMENTS:-10000}
E2E_SLOW_PAYMENTS=${E2E_SLOW_PAYMENTS:-5000}

setups() { # runs one benchmark on each setup: $@ = flags
  run_one webhooks "sqlite+embedded" sqlite "$@"
  run_one webhooks "postgres+embedded" postgres "$@"
  run_one webhooks "postgres+redis" postgres --redis-url "$REDIS_URL" "$@"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round"
  setups --payments "$E2E_PAYMENTS" --rate 0
  setups --payments "$E2E_SLOW_PAYMENTS" --rate 0 --delay-ms 1000 --worker-concurrency 2048
  for rate in 100 1000; do
    setups --payments $((rate * 5)) --rate "$rate"
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
m = lambda sel, k: statistics.median(r[k] for r in sel)
labels = ("sqlite+embedded", "postgres+embedded", "postgres+redis")
print(f"\n{'setup':20} {'bank delay':>10} {'payments/s':>10} {'deliveries/s':>12} {'all delivered':>13}")
for label in labels:
    for delay in (0, 1000):
        sel = [r for r in rows if r["label"] == label and r["rate"] == 0 and r["delay_ms"] == delay]
        if sel:
            print(f"{label:20} {delay:8} ms {m(sel, 'payments_per_s'):10.0f} {m(sel, 'deliveries_per_s'):12.0f} {str(all(r['complete'] for r in sel)):>13}")
print(f"\n{'setup':20} {'payments/s':>10} {'first attempt p50 ms':>21} {'p99 ms':>8}")
for label in labels:
    for rate in (100, 1000):
        sel = [r for r in rows if r["label"] == label and r["rate"] == rate]
        if sel:
            print(f"{label:20} {rate:10} {m(sel, 'first_attempt_p50_ms'):21.2f} {m(sel, 'first_attempt_p99_ms'):8.2f}")
PY
