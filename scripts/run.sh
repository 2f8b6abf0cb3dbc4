#!/usr/bin/env bash
# Runs the whole stack in paper mode on this machine, without Docker: Redis with AOF, the
# simulated exchange replaying the repo's real candles, and the five services. Installs
# redis-server if it is missing and builds in release mode. Logs: .data/logs/<service>.log.
# Ctrl-C (or SIGTERM) stops everything cleanly. With Docker, `docker compose up -d` does the same.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_pkg redis-server redis-server redis-tools

# ---- paper defaults: begin ----
# One `NAME=${NAME:-value}` per line: tests/tests/paper.rs runs the stack with exactly these
# (the sim stepped instead of timed). Any of them can be overridden from the environment.
# 120x replay: a 5m candle closes every 2.5 s. 400 closed candles at start, so the bot's warm-up
# (one day of 5m candles for change_24h) is ready at once and it trades on its first live candle.
SIM_SPEED=${SIM_SPEED:-120}
SIM_WARMUP_CANDLES=${SIM_WARMUP_CANDLES:-400}
# The universe: every symbol the repo has candles for.
export QT_TRADING_BOT__SYMBOLS=${QT_TRADING_BOT__SYMBOLS:-[ADAUSDT,BNBUSDT,BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT]}
# The model: none (trading-bot's default) until clm deploys one its gate validated, so nothing
# trades and the dashboard and `qtctl status` say why. QT_TRADING_BOT__MODEL=momentum trades the
# momentum rule: BUY/SELL at a 24h change of +/-1%, sent from confidence 0.5 (the threshold).
export QT_TRADING_BOT__MIN_CONFIDENCE=${QT_TRADING_BOT__MIN_CONFIDENCE:-0.5}
# Wall-clock minutes: at 120x one minute is two hours of market time.
export QT_TRADING_BOT__COOLDOWN_MINUTES=${QT_TRADING_BOT__COOLDOWN_MINUTES:-1}
# The risk guard's own cooldown (default 15 wall-clock minutes = 30 h of replay) matches it.
export QT_EXECUTION__LIMITS__COOLDOWN_MINUTES=${QT_EXECUTION__LIMITS__COOLDOWN_MINUTES:-1}
# Exits sized for a 5m replay, so a trade ends within minutes of market time: stop 0.6%,
# targets 0.4/0.8/1.2% (1/1.5/2.5% in high volatility), time stop 3 wall-clock minutes.
export QT_EXIT_BRAIN__EXITS__STOP_PCT=${QT_EXIT_BRAIN__EXITS__STOP_PCT:-0.6}
export QT_EXIT_BRAIN__EXITS__LOW_VOL_TARGETS_PCT=${QT_EXIT_BRAIN__EXITS__LOW_VOL_TARGETS_PCT:-[0.4,0.8,1.2]}
export QT_EXIT_BRAIN__EXITS__HIGH_VOL_TARGETS_PCT=${QT_EXIT_BRAIN__EXITS__HIGH_VOL_TARGETS_PCT:-[1.0,1.5,2.5]}
export QT_EXIT_BRAIN__EXITS__TRAILING_ACTIVATION_PCT=${QT_EXIT_BRAIN__EXITS__TRAILING_ACTIVATION_PCT:-1.0}
export QT_EXIT_BRAIN__EXITS__TRAILING_CALLBACK_PCT=${QT_EXIT_BRAIN__EXITS__TRAILING_CALLBACK_PCT:-0.4}
export QT_EXIT_BRAIN__EXITS__TIME_STOP_MINUTES=${QT_EXIT_BRAIN__EXITS__TIME_STOP_MINUTES:-3}
# ---- paper defaults: end ----
SPEED=$SIM_SPEED
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
trap stop EXIT
trap 'exit 130' INT TERM

REDIS_PORT=${REDIS_PORT:-6379}
echo "==> redis on 127.0.0.1:$REDIS_PORT (appendonly yes, data in $DATA/redis)"
# deploy/redis.conf without its container-only `dir /data` (redis reads the file before the
# command line's --dir and refuses a folder that does not exist).
grep -v '^dir ' deploy/redis.conf | redis-server - --dir "$PWD/$DATA/redis" --bind 127.0.0.1 \
  --port "$REDIS_PORT" --protected-mode yes --daemonize yes --logfile "$PWD/$DATA/logs/redis.log"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

export QT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export QT_LOG_FORMAT=${QT_LOG_FORMAT:-json}
export QT_EXCHANGE=${QT_EXCHANGE:-paper}
export QT_EXCHANGE_REST_URL=${QT_EXCHANGE_REST_URL:-http://127.0.0.1:8090}
export QT_EXCHANGE_WS_URL=${QT_EXCHANGE_WS_URL:-ws://127.0.0.1:8090}
export QT_API_KEY=${QT_API_KEY:-paper-key}
export QT_API_SECRET=${QT_API_SECRET:-paper-secret}
export SIM_API_KEYS=${SIM_API_KEYS:-paper-key:paper-secret}
export QT_EXECUTION__SQLITE_PATH=${QT_EXECUTION__SQLITE_PATH:-$DATA/state/execution.db}
export QT_EXIT_BRAIN__SQLITE_PATH=${QT_EXIT_BRAIN__SQLITE_PATH:-$DATA/state/exit-brain.db}
export QT_PORTFOLIO_INTELLIGENCE__SQLITE_PATH=${QT_PORTFOLIO_INTELLIGENCE__SQLITE_PATH:-$DATA/state/portfolio-intelligence.db}
export QT_CLM__SQLITE_PATH=${QT_CLM__SQLITE_PATH:-$DATA/state/clm.db}
export QT_CLM__ARTIFACTS_DIR=${QT_CLM__ARTIFACTS_DIR:-$DATA/models}

start() { # start NAME ARGS...
  local name=$1; shift
  "$@" >>"$DATA/logs/$name.log" 2>&1 &
  pids+=($!)
  echo "    $name (pid $!) → $DATA/logs/$name.log"
}

echo "==> services"
if [ "$QT_EXCHANGE" = paper ]; then
  start sim-exchange target/release/sim-exchange --listen 127.0.0.1:8090 --data data/klines/5m \
    --speed "$SPEED" --warmup-candles "$SIM_WARMUP_CANDLES" --state-dir "$DATA/sim"
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
