#!/usr/bin/env bash
# Chaos soak: a steady mixed load for DURATION seconds while the gateway's processes, Redis and
# PostgreSQL fail at random (from SEED, printed at the start so a run can be repeated), then an
# audit of the books, the simulated bank's ledger, the load's log and the webhook receivers'
# logs (see bench/src/chaos/). The last line is the report, one JSON object; the exit status is
# non-zero when any invariant failed.
#
#   bench/chaos.sh postgres     # 2 serve + 2 worker on a private PostgreSQL and Redis (default)
#   bench/chaos.sh sqlite       # one `paygate all`, killed -9 and restarted in a loop
#   DURATION=600 RATE=300 SETTLE=60 SEED=7 bench/chaos.sh sqlite
#
# Defaults: DURATION=600 (10 minutes), RATE=300 requests/s, SETTLE=60; about 12 minutes with
# the build. PROFILE=debug uses debug builds (CI, which has them already); BIN_DIR=dir runs the
# `paygate` and `paygate-bench` binaries found there, without building. Everything the run
# starts is its own (free ports, its own folder, a private PostgreSQL server and redis-server)
# and is stopped when it ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-postgres}
DURATION=${DURATION:-600}
RATE=${RATE:-300}
SETTLE=${SETTLE:-60}
PROFILE=${PROFILE:-release}

if [ -n "${BIN_DIR:-}" ]; then
  bin=$BIN_DIR
elif [ "$PROFILE" = release ]; then
  cargo build --release -q -p paygate -p paygate-bench
  bin=target/release
else
  cargo build -q -p paygate -p paygate-bench
  bin=target/debug
fi
work=$(mktemp -d /tmp/paygate-chaos.XXXXXX)
chmod 755 "$work"
cleanup() {
  # The driver stops what it started (on TERM too); this catches what a killed driver left
  # behind: its process group, and the PostgreSQL server (pg_ctl starts it in a session of
  # its own).
  if [ -n "${driver:-}" ]; then
    kill -TERM -- "-$driver" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 -- "-$driver" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$driver" 2>/dev/null || true
  fi
  if [ -f "$work/pg/data/postmaster.pid" ]; then
    pg=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    runuser -u postgres -- "$pg/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

seed=()
[ -n "${SEED:-}" ] && seed=(--seed "$SEED")
setsid "$bin/paygate-bench" chaos --config "$CONFIG" --duration "$DURATION" --rate "$RATE" \
  --settle "$SETTLE" --bin "$bin/paygate" --dir "$work" "${seed[@]}" &
driver=$!
status=0
wait "$driver" || status=$?
exit "$status"
