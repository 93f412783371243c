# Shared by bench/queue.sh and bench/webhooks.sh: builds the load generator, and `run_one`
# runs one in-process benchmark on a fresh database (and a throwaway Redis key prefix),
# appending its JSON line, labelled, to $results.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${ROUNDS:-3}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}

cargo build --release -q -p paygate-bench
LOAD=target/release/paygate-bench
work=$(mktemp -d)
results="$work/results.jsonl"
trap 'rm -rf "$work"' EXIT

run_one() { # $1 = subcommand, $2 = label, $3 = database kind (sqlite|postgres), then flags
  local cmd=$1 label=$2 kind=$3; shift 3
  local db prefix="paygate-bench-$$-$RANDOM"
  if [ "$kind" = sqlite ]; then
    db="sqlite://$work/b-$RANDOM.db"
  else
    local name="paygate_bench_$$_$RANDOM"
    psql -q "$PG_URL/postgres" -c "CREATE DATABASE $name"
    db="$PG_URL/$name"
  fi
  "$LOAD" "$cmd" --database-url "$db" --redis-prefix "$prefix" "$@" \
    | sed "s/^{/{\"label\":\"$label\",/" | tee -a "$results"
  [ "$kind" = sqlite ] || psql -q "$PG_URL/postgres" -c "DROP DATABASE ${db##*/} WITH (FORCE)"
  redis-cli -u "$REDIS_URL" --scan --pattern "$prefix:*" | xargs -r redis-cli -u "$REDIS_URL" DEL >/dev/null
}
