#!/usr/bin/env bash
# Runs the whole stack in paper mode on this machine, without Docker: Redis with AOF, the
# simulated exchange replaying the repo's real candles, and the five services. Installs
# redis-server if it is missing and builds in release mode. Logs: .data/logs/<service>.log.
# Every service (and the simulator) runs under scripts/supervise.sh: one that dies is started
# again with backoff (1 s doubling to 30 s) and a line saying which and how it exited, as
# compose's `restart: unless-stopped` does. Ctrl-C (or SIGTERM) stops everything cleanly.
# With Docker, `docker compose up -d` does the same.
#
# Where things go (environment): QT_DATA_DIR (.data: Redis's AOF, databases, models, logs,
# pids), REDIS_PORT (6379), QT_PORT_BASE (8080: services on +1..+5, the simulator on +10),
# QT_BIN_DIR (unset: build in release mode and run target/release; set: run the binaries
# already there, no build).
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
DATA=${QT_DATA_DIR:-.data}
mkdir -p "$DATA/redis" "$DATA/logs" "$DATA/sim" "$DATA/state" "$DATA/run"
DATA=$(cd "$DATA" && pwd)
REDIS_PORT=${REDIS_PORT:-6379}
PORT_BASE=${QT_PORT_BASE:-8080}
SIM_ADDR=127.0.0.1:$((PORT_BASE + 10))

if [ -n "${QT_BIN_DIR:-}" ]; then
  BIN=$(cd "$QT_BIN_DIR" && pwd)
else
  echo "==> building (release)"
  cargo build --release --locked --workspace --bins
  BIN=$PWD/target/release
fi

sups=()
stop() {
  trap '' INT TERM
  echo "==> stopping"
  for p in "${sups[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true
  echo "==> stopped"
}
trap stop EXIT
trap 'exit 130' INT TERM

echo "==> redis on 127.0.0.1:$REDIS_PORT (appendonly yes, data in $DATA/redis)"
# deploy/redis.conf without its container-only `dir /data` (redis reads the file before the
# command line's --dir and refuses a folder that does not exist).
grep -v '^dir ' deploy/redis.conf | redis-server - --dir "$DATA/redis" --bind 127.0.0.1 \
  --port "$REDIS_PORT" --protected-mode yes --daemonize yes --logfile "$DATA/logs/redis.log" \
  --pidfile "$DATA/run/redis.pid"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

export QT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export QT_LOG_FORMAT=${QT_LOG_FORMAT:-json}
export QT_EXCHANGE=${QT_EXCHANGE:-paper}
if [ "$QT_EXCHANGE" = paper ]; then
  # Paper mode trades on the simulator with its built-in account. In testnet and live mode the
  # exchange's hosts come from the mode (or QT_EXCHANGE_REST_URL / QT_EXCHANGE_WS_URL) and the
  # keys from QT_API_KEY(_FILE) and QT_API_SECRET(_FILE).
  export QT_EXCHANGE_REST_URL=${QT_EXCHANGE_REST_URL:-http://$SIM_ADDR}
  export QT_EXCHANGE_WS_URL=${QT_EXCHANGE_WS_URL:-ws://$SIM_ADDR}
  if [ -z "${QT_API_KEY:-}${QT_API_KEY_FILE:-}" ]; then export QT_API_KEY=paper-key; fi
  if [ -z "${QT_API_SECRET:-}${QT_API_SECRET_FILE:-}" ]; then export QT_API_SECRET=paper-secret; fi
  export SIM_API_KEYS=${SIM_API_KEYS:-paper-key:paper-secret}
fi
export QT_EXECUTION__SQLITE_PATH=${QT_EXECUTION__SQLITE_PATH:-$DATA/state/execution.db}
export QT_EXIT_BRAIN__SQLITE_PATH=${QT_EXIT_BRAIN__SQLITE_PATH:-$DATA/state/exit-brain.db}
export QT_PORTFOLIO_INTELLIGENCE__SQLITE_PATH=${QT_PORTFOLIO_INTELLIGENCE__SQLITE_PATH:-$DATA/state/portfolio-intelligence.db}
export QT_CLM__SQLITE_PATH=${QT_CLM__SQLITE_PATH:-$DATA/state/clm.db}
export QT_CLM__ARTIFACTS_DIR=${QT_CLM__ARTIFACTS_DIR:-$DATA/models}
services=(trading-bot execution exit-brain portfolio-intelligence clm)
# The dashboard's service-health panel polls every service.
for i in "${!services[@]}"; do
  var=QT_PORTFOLIO_INTELLIGENCE__SERVICES__$(echo "${services[$i]}" | tr 'a-z-' 'A-Z_')
  export "$var=${!var:-http://127.0.0.1:$((PORT_BASE + i + 1))}"
done
export QT_PID_DIR=$DATA/run

start() { # start NAME COMMAND [ARGS...]: under supervise.sh, in a session of its own (Ctrl-C
  # reaches this script only, which stops each service in turn).
  local name=$1; shift
  setsid scripts/supervise.sh "$name" "$DATA/logs/$name.log" "$@" &
  sups+=($!)
  echo "    $name → $DATA/logs/$name.log"
}

echo "==> services (restarted when they exit; pids in $DATA/run)"
if [ "$QT_EXCHANGE" = paper ]; then
  start sim-exchange "$BIN/sim-exchange" --listen "$SIM_ADDR" --data data/klines/5m \
    --speed "$SIM_SPEED" --warmup-candles "$SIM_WARMUP_CANDLES" --state-dir "$DATA/sim"
fi
for i in "${!services[@]}"; do
  svc=${services[$i]}
  start "$svc" env QT_HTTP_ADDR="127.0.0.1:$((PORT_BASE + i + 1))" "$BIN/$svc"
done

# qtctl's defaults are this script's defaults (Redis on 6379, services on 8081-8085, models in
# .data/models); anything else is told to it through the same variables.
qtctl_env=""
if [ "$REDIS_PORT" != 6379 ]; then qtctl_env+="QT_REDIS_URL=$QT_REDIS_URL "; fi
if [ "$PORT_BASE" != 8080 ]; then
  qtctl_env+="QT_PORTFOLIO_URL=http://127.0.0.1:$((PORT_BASE + 4)) QT_SERVICES="
  for i in "${!services[@]}"; do
    qtctl_env+="${services[$i]}=http://127.0.0.1:$((PORT_BASE + i + 1)),"
  done
  qtctl_env="${qtctl_env%,} "
fi
if [ "$DATA" != "$PWD/.data" ]; then qtctl_env+="QT_MODELS_DIR=$QT_CLM__ARTIFACTS_DIR "; fi

echo
echo "Quantum Trader is running in $QT_EXCHANGE mode."
if [ -n "$qtctl_env" ]; then echo "  qtctl:    export ${qtctl_env% }   (where this run differs from qtctl's defaults)"; fi
cat <<MSG
  logs:     tail -f $DATA/logs/execution.log
  status:   $BIN/qtctl status
  streams:  $BIN/qtctl streams
  tail:     $BIN/qtctl tail intents --follow
  health:   curl -s localhost:$((PORT_BASE + 2))/health/ready
  redis:    redis-cli -p $REDIS_PORT XINFO GROUPS qt:intents
A service that exits is restarted; Ctrl-C stops everything.
MSG
# The supervisors only exit when stopped; a signal to this script ends the wait.
wait
