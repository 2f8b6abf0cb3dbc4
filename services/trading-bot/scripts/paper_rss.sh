#!/usr/bin/env bash
# Memory of the trading-bot binary in a paper run: redis-server, the sim-exchange binary
# replaying the repo's six symbols at 300× (one 5m candle per second), and trading-bot on all six,
# for DURATION seconds (default 60). Prints VmRSS/VmHWM every 10 s and what the bot published.
# Needs release binaries: cargo build --release -p trading-bot -p sim-exchange
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
BIN="$ROOT/target/release"
DURATION="${DURATION:-60}"
TMP="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SIM_PORT="$(free_port)"; BOT_PORT="$(free_port)"

redis-server --port 0 --unixsocket "$TMP/redis.sock" --dir "$TMP" --appendonly yes --save '' >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
SIM_API_KEYS="k:s" "$BIN/sim-exchange" --listen "127.0.0.1:$SIM_PORT" --data "$ROOT/data/klines/5m" \
  --speed 300 --warmup-candles 400 >"$TMP/sim.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$SIM_PORT/fapi/v1/ping" >/dev/null && break; sleep 0.1; done

cat >"$TMP/qt.toml" <<TOML
[trading_bot]
symbols = ["ADAUSDT", "BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
TOML
QT_CONFIG="$TMP/qt.toml" QT_REDIS_URL="unix://$TMP/redis.sock" QT_HTTP_ADDR="127.0.0.1:$BOT_PORT" \
  QT_LOG_FORMAT=json QT_LOG_LEVEL=warn \
  QT_EXCHANGE_REST_URL="http://127.0.0.1:$SIM_PORT" QT_EXCHANGE_WS_URL="ws://127.0.0.1:$SIM_PORT" \
  QT_API_KEY=k QT_API_SECRET=s "$BIN/trading-bot" >"$TMP/bot.log" 2>&1 &
BOT=$!
PIDS+=($BOT)

for t in $(seq 10 10 "$DURATION"); do
  sleep 10
  rss=$(awk '/VmRSS/{print $2}' "/proc/$BOT/status"); hwm=$(awk '/VmHWM/{print $2}' "/proc/$BOT/status")
  echo "t=${t}s VmRSS=${rss} kB VmHWM=${hwm} kB $(curl -s "http://127.0.0.1:$BOT_PORT/health/market")"
done
echo "market entries: $(redis-cli -s "$TMP/redis.sock" XLEN qt:market), signals: $(redis-cli -s "$TMP/redis.sock" XLEN qt:signals), intents: $(redis-cli -s "$TMP/redis.sock" XLEN qt:intents)"
