#!/usr/bin/env bash
# Runs the whole stack in paper mode on this machine, without Docker: Redis with AOF, the
# simulated exchange replaying the repo's real candles, and the five services. Installs
# redis-server if it is missing and builds in release mode. Logs: .data/logs/<service>.log.
# Ctrl-C (or SIGTERM) stops everything cleanly. With Docker, `docker compose up -d` does the same.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_pkg redis-server redis-server redis-tools

SPEED=${SIM_SPEED:-60}
DATA=.data
mkdir -p "$DATA/redis" "$DATA/logs" "$DATA/sim" "$DATA/state"

echo "==> building (release)"
cargo build --release --locked --workspace --bins

pids=()
stop() {
  echo "==> stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli -p "${REDIS_PORT:-6379}" shutdown >/dev/null 2>&1 || true
}
trap stop EXIT INT TERM

REDIS_PORT=${REDIS_PORT:-6379}
echo "==> redis on 127.0.0.1:$REDIS_PORT (appendonly yes, data in $DATA/redis)"
redis-server deploy/redis.conf --dir "$PWD/$DATA/redis" --bind 127.0.0.1 --port "$REDIS_PORT" \
  --daemonize yes --logfile "$PWD/$DATA/logs/redis.log"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

export QT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export QT_LOG_FORMAT=${QT_LOG_FORMAT:-json}
export QT_EXCHANGE=${QT_EXCHANGE:-paper}
export QT_EXCHANGE_REST_URL=${QT_EXCHANGE_REST_URL:-http://127.0.0.1:8090}
export QT_EXCHANGE_WS_URL=${QT_EXCHANGE_WS_URL:-ws://127.0.0.1:8090}
export QT_API_KEY=${QT_API_KEY:-paper-key}
export QT_API_SECRET=${QT_API_SECRET:-paper-secret}
export SIM_API_KEYS=${SIM_API_KEYS:-paper-key:paper-secret}

start() { # start NAME ARGS...
  local name=$1; shift
  "$@" >>"$DATA/logs/$name.log" 2>&1 &
  pids+=($!)
  echo "    $name (pid $!) → $DATA/logs/$name.log"
}

echo "==> services"
if [ "$QT_EXCHANGE" = paper ]; then
  start sim-exchange target/release/sim-exchange --listen 127.0.0.1:8090 --data data/klines/5m \
    --speed "$SPEED" --state-dir "$DATA/sim"
fi
for svc in trading-bot execution exit-brain portfolio-intelligence clm; do
  start "$svc" target/release/"$svc"
done

cat <<MSG

Quantum Trader is running in $QT_EXCHANGE mode.
  logs:     tail -f $DATA/logs/execution.log
  streams:  target/release/qtctl streams
  tail:     target/release/qtctl tail intents --follow
  health:   curl -s localhost:8082/health/ready
  redis:    redis-cli -p $REDIS_PORT XINFO GROUPS qt:intents
Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "==> a process exited; see $DATA/logs"
