#!/usr/bin/env bash
# Webhooks at full speed: the worker end to end, payments created → processed by the simulated
# bank (no delay) → final → all three webhooks of each (created, pending, success) received by
# a receiver in a process of its own (`paygate-bench receiver`), on SQLite + the embedded queue
# and on PostgreSQL + Redis. Each setup runs with the default settings and with the
# per-destination limit lifted (WEBHOOK_ENDPOINT_CONCURRENCY=1000), side by side in each round:
#
# - drain: a backlog of E2E_PAYMENTS payments (8,000) created first, then drained by the
#   worker, to one destination and to 100 (100 merchants, a URL each); reported: payments per
#   second fully notified (the worker's start to the last webhook's arrival).
# - paced: 1,000 payments per second for 5 s to one destination; reported: the delay from each
#   payment's state change to its payment.success webhook's arrival (the first attempt),
#   p50/p99.
#
#   bench/webhooks.sh                   # ROUNDS=3 E2E_PAYMENTS=8000; about 7 minutes
source "$(dirname "$0")/lib.sh"
E2E_PAYMENTS=${E2E_PAYMENTS:-8000}
PACED_RATE=${PACED_RATE:-1000}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$LOAD" receiver --port "$port" &
receiver_pid=$!
trap 'kill $receiver_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$port/stats" >/dev/null && break
  sleep 0.1
done
RECEIVER="http://127.0.0.1:$port"

setups() { # runs one benchmark on each setup, default settings and limit lifted: $@ = flags
  for limit in default lifted; do
    local extra=()
    [ "$limit" = lifted ] && extra=(--endpoint-concurrency 1000)
    run_one webhooks "sqlite+embedded:$limit" sqlite --receiver "$RECEIVER" "${extra[@]}" "$@"
    run_one webhooks "postgres+redis:$limit" postgres --redis-url "$REDIS_URL" --receiver "$RECEIVER" "${extra[@]}" "$@"
  done
}

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round"
  for destinations in 1 100; do
    setups --payments "$E2E_PAYMENTS" --rate 0 --destinations "$destinations"
  done
  setups --payments $((PACED_RATE * 5)) --rate "$PACED_RATE" --destinations 1
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
m = lambda sel, k: statistics.median(r[k] for r in sel)
print(f"\n{'setup':18} {'destinations':>12} {'default p/s':>11} {'lifted p/s':>10} {'ratio':>6} {'complete':>8} {'duplicates':>10}")
for setup in ("sqlite+embedded", "postgres+redis"):
    for d in (1, 100):
        sel = {lim: [r for r in rows if r["label"] == f"{setup}:{lim}" and r["rate"] == 0 and r["destinations"] == d]
               for lim in ("default", "lifted")}
        if sel["default"] and sel["lifted"]:
            a, b = m(sel["default"], "payments_per_s"), m(sel["lifted"], "payments_per_s")
            every = sel["default"] + sel["lifted"]
            print(f"{setup:18} {d:12} {a:11.0f} {b:10.0f} {a / b:6.2f} {str(all(r['complete'] for r in every)):>8} {sum(r['duplicates'] for r in every):10}")
print(f"\n{'setup':18} {'limit':>8} {'payments/s':>10} {'first attempt p50 ms':>21} {'p99 ms':>8}")
for setup in ("sqlite+embedded", "postgres+redis"):
    for lim in ("default", "lifted"):
        sel = [r for r in rows if r["label"] == f"{setup}:{lim}" and r["rate"] > 0]
        if sel:
            print(f"{setup:18} {lim:>8} {sel[0]['rate']:10} {m(sel, 'first_attempt_p50_ms'):21.2f} {m(sel, 'first_attempt_p99_ms'):8.2f}")
PY
