#!/usr/bin/env bash
# soak.sh: a bounded soak of the whole paper stack (not part of the default suite). Runs
# scripts/run.sh (Redis, the simulator replaying the repo's candles fast, the five services, each
# under supervise.sh) with the momentum model so it trades, and for SOAK_MINUTES SIGKILLs a
# random one of the five services or Redis every SOAK_KILL_MIN_SECS..SOAK_KILL_MAX_SECS
# seconds (supervise.sh restarts a service; this script restarts Redis on its AOF, as a
# container restart would). Then everything runs SOAK_SETTLE_SECS undisturbed and the run is
# checked (the first four by scripts/stack_check.py, as ha-test.sh checks its run):
#
#   intents final      execution's group on qt:intents has nothing pending or undelivered, and
#                      no order of execution's database is still SENDING (outcome unknown)
#   no duplicate       no client order id twice on the exchange (orders and algo orders, from
#                      allOrders / allAlgoOrders of every symbol), and no signal opened twice
#                      (no two filled entry orders of execution's database share a signal id)
#   limits             never more symbols held at once than max_concurrent_positions (sampled
#                      from the simulator's book every 200 ms), no entry above max_leverage, no
#                      filled entry above max_notional_per_trade by more than 2 % (the guard
#                      checks the reference price; the fill may be a little off it)
#   protected in 5 s   every stretch in which a position had neither its stop resting on the
#                      exchange nor a market close working was shorter than SOAK_BARE_SECS (5)
#   no crash           no service exited by itself (every exit a supervisor saw was our SIGKILL
#                      or the final stop) and no log line says `panicked`
#   RSS flat           each process's resident memory is sampled every 10 s; per service the
#                      first, last and largest sample are printed, and for the longest-lived
#                      process of each the last sample must be at most 1.5 x (+16 MiB) its
#                      sample one minute after it started
#
# The simulator is the exchange, not one of our services: it keeps its state in a snapshot
# written every few seconds, so a SIGKILL would make it forget orders a real venue keeps. It is
# left alone unless SOAK_KILL_SIM=1.
#
#   scripts/soak.sh                                   # 20 minutes, release build
#   SOAK_MINUTES=10 QT_BIN_DIR=target/debug scripts/soak.sh   # binaries already built
#
# Settings (environment): SOAK_MINUTES (20), SOAK_SPEED (300: a 5m candle every second),
# SOAK_SETTLE_SECS (60), SOAK_KILL_MIN_SECS (10), SOAK_KILL_MAX_SECS (40), SOAK_SEED (random;
# printed, replays the same kill schedule), SOAK_BARE_SECS (5), SOAK_KILL_SIM (0), SOAK_DIR
# (.data/soak: logs, databases, samples and summary.txt), QT_BIN_DIR (as run.sh: unset builds
# release). Exits 0 when every check passes, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_pkg redis-server redis-server redis-tools
need_pkg sqlite3 sqlite3
need_pkg curl curl

minutes=${SOAK_MINUTES:-20}
speed=${SOAK_SPEED:-300}
settle=${SOAK_SETTLE_SECS:-60}
kill_min=${SOAK_KILL_MIN_SECS:-10}
kill_max=${SOAK_KILL_MAX_SECS:-40}
bare_max=${SOAK_BARE_SECS:-5}
seed=${SOAK_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$seed
for v in minutes speed settle kill_min kill_max bare_max; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" = 0 ]; then
    echo "soak.sh: $v must be a positive whole number, not '${!v}'" >&2
    exit 2
  fi
done
if [ "$kill_max" -lt "$kill_min" ]; then
  echo "soak.sh: SOAK_KILL_MAX_SECS ($kill_max) is below SOAK_KILL_MIN_SECS ($kill_min)" >&2
  exit 2
fi

out=${SOAK_DIR:-.data/soak}
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
DATA=$out/data
mkdir -p "$DATA"

if [ -n "${QT_BIN_DIR:-}" ]; then
  BIN=$(cd "$QT_BIN_DIR" && pwd)
else
  echo "==> building (release)"
  cargo build --release --locked --workspace --bins
  BIN=$PWD/target/release
fi
for b in sim-exchange trading-bot execution exit-brain portfolio-intelligence clm soak-watch; do
  [ -x "$BIN/$b" ] || { echo "soak.sh: $BIN/$b is missing (cargo build --bins)" >&2; exit 2; }
done

# Below the kernel's ephemeral range (32768 up), so no outgoing connection can hold a port a
# service binds again after each restart.
port_base=${SOAK_PORT_BASE:-$((20000 + RANDOM % 12000 / 20 * 20))}
redis_port=${SOAK_REDIS_PORT:-$((port_base + 11))}
sim_addr=127.0.0.1:$((port_base + 10))
services=(trading-bot execution exit-brain portfolio-intelligence clm)
targets=("${services[@]}" redis)
if [ "${SOAK_KILL_SIM:-0}" = 1 ]; then targets+=(sim-exchange); fi

echo "==> soak: $minutes min of SIGKILLs every ${kill_min}-${kill_max} s at ${speed}x, then ${settle} s settling"
echo "    seed $seed, redis :$redis_port, services :$((port_base + 1))-$((port_base + 5)), sim $sim_addr, files in $out"

run_pid='' watch_pid='' rss_pid=''
cleanup() {
  trap '' INT TERM
  touch "$out/stop"
  if [ -n "$rss_pid" ]; then kill "$rss_pid" 2>/dev/null || true; fi
  if [ -n "$run_pid" ]; then
    kill -TERM "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
  fi
  if [ -n "$watch_pid" ]; then wait "$watch_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The stack, exactly as run.sh starts it, with the momentum model so that it trades.
QT_DATA_DIR=$DATA REDIS_PORT=$redis_port QT_PORT_BASE=$port_base QT_BIN_DIR=$BIN \
  SIM_SPEED=$speed QT_TRADING_BOT__MODEL=${QT_TRADING_BOT__MODEL:-momentum} \
  setsid scripts/run.sh >"$out/run.log" 2>&1 &
run_pid=$!

ready() { curl -fsS -m 2 "http://127.0.0.1:$1/health/ready" >/dev/null 2>&1; }
for _ in $(seq 120); do
  all=1
  for i in "${!services[@]}"; do ready $((port_base + i + 1)) || all=0; done
  [ "$all" = 1 ] && break
  sleep 1
done
if [ "$all" != 1 ]; then
  echo "soak.sh: the stack did not become ready in 120 s; see $out/run.log and $DATA/logs" >&2
  exit 1
fi
echo "==> stack ready"

"$BIN/soak-watch" "$sim_addr" "$out/stop" >"$out/watch.json" 2>"$out/watch.err" &
watch_pid=$!

# Resident memory of every process, every 10 s: epoch name pid kB.
(
  while [ ! -e "$out/stop" ]; do
    now=$(date +%s)
    for n in sim-exchange "${services[@]}" redis; do
      pid=$(cat "$DATA/run/$n.pid" 2>/dev/null || true)
      [ -n "$pid" ] || continue
      kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      [ -n "$kb" ] && echo "$now $n $pid $kb"
    done >>"$out/rss.txt"
    sleep 10
  done
) &
rss_pid=$!

start_redis() { # as run.sh starts it, on the same AOF
  grep -v '^dir ' deploy/redis.conf | redis-server - --dir "$DATA/redis" --bind 127.0.0.1 \
    --port "$redis_port" --protected-mode yes --daemonize yes --logfile "$DATA/logs/redis.log" \
    --pidfile "$DATA/run/redis.pid"
}

end=$((SECONDS + minutes * 60))
kills=0
while :; do
  wait_s=$((kill_min + RANDOM % (kill_max - kill_min + 1)))
  [ $((SECONDS + wait_s)) -lt "$end" ] || break
  sleep "$wait_s"
  t=${targets[RANDOM % ${#targets[@]}]}
  pid=$(cat "$DATA/run/$t.pid" 2>/dev/null || true)
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "$(date -u +%FT%TZ) $t not running (restarting); no kill" >>"$out/kills.txt"
    continue
  fi
  kill -KILL "$pid"
  kills=$((kills + 1))
  echo "$(date -u +%FT%TZ) SIGKILL $t ($pid)" | tee -a "$out/kills.txt"
  if [ "$t" = redis ]; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    sleep 1
    start_redis
  fi
done
sleep $((end > SECONDS ? end - SECONDS : 0))
echo "==> $kills SIGKILLs done; settling ${settle} s"
sleep "$settle"

# ---- checks ----
touch "$out/stop"
wait "$watch_pid" || true
watch_pid=''
failures=()
report() { echo "$*" | tee -a "$out/summary.txt"; }
: >"$out/summary.txt"
report "soak: $minutes min, ${speed}x, $kills SIGKILLs (seed $seed), settled ${settle} s"
awk '{print $3}' "$out/kills.txt" 2>/dev/null | sort | uniq -c | sed 's/^/    killed /' | tee -a "$out/summary.txt" || true

# Intents final, no duplicate, limits, protected in 5 s: the same checks as ha-test.sh's.
max_pos=${QT_EXECUTION__LIMITS__MAX_CONCURRENT_POSITIONS:-8}
max_lev=${QT_EXECUTION__LIMITS__MAX_LEVERAGE:-10}
max_notional=${QT_EXECUTION__LIMITS__MAX_NOTIONAL_PER_TRADE:-2500}
checks_ok=1
python3 scripts/stack_check.py --redis-cli "redis-cli -p $redis_port" \
  --db "$DATA/state/execution.db" --sim "http://$sim_addr" --watch "$out/watch.json" \
  --bare-secs "$bare_max" --wait 30 --max-positions "$max_pos" --max-leverage "$max_lev" \
  --max-notional "$max_notional" >"$out/checks.txt" 2>&1 || checks_ok=0
sed '/^FAILED:/,$d' "$out/checks.txt" | tee -a "$out/summary.txt"
if [ "$checks_ok" = 0 ]; then
  if grep -q '^FAILED:' "$out/checks.txt"; then
    while read -r f; do failures+=("$f"); done < <(sed -n '/^FAILED:/,$p' "$out/checks.txt" | tail -n +2 | sed 's/^ *//')
  else
    failures+=("scripts/stack_check.py could not check (see above)")
  fi
fi

crashes=$(grep ' exited ' "$out/run.log" | grep -v 'signal 9' || true)
panics=$(grep -l 'panicked' "$DATA"/logs/*.log 2>/dev/null || true)
report "exits not by our SIGKILL: $(grep -c . <<<"$crashes" || true); logs with a panic: ${panics:-none}"
if [ -n "$crashes" ]; then
  sed 's/^/    /' <<<"$crashes" | tee -a "$out/summary.txt"
  failures+=("a service exited by itself")
fi
if [ -n "$panics" ]; then failures+=("panics in $panics"); fi

report "RSS (MiB)          first   last    max | longest-lived process: at 1 min  last  (minutes)"
for n in sim-exchange "${services[@]}" redis; do
  line=$(awk -v n="$n" '
    $2 != n {next}
    { if (!seen++) first = $4; last = $4; if ($4 > max) max = $4
      if (!($3 in t0)) { t0[$3] = $1; order[++k] = $3 }
      t1[$3] = $1; l[$3] = $4
      if (!($3 in base) && $1 - t0[$3] >= 60) base[$3] = $4 }
    END {
      if (!seen) { print "none"; exit }
      best = ""; for (i = 1; i <= k; i++) { p = order[i]; if (best == "" || t1[p] - t0[p] > t1[best] - t0[best]) best = p }
      b = (best in base) ? base[best] : ""
      flat = (b == "" || l[best] <= b * 1.5 + 16384) ? "flat" : "GROWS"
      printf "%-18s %6.1f %6.1f %6.1f | %6s %6.1f (%.1f) %s\n", n, first/1024, last/1024, max/1024,
        (b == "" ? "-" : sprintf("%.1f", b/1024)), l[best]/1024, (t1[best]-t0[best])/60, flat
    }' "$out/rss.txt")
  report "$line"
  if grep -q GROWS <<<"$line"; then failures+=("RSS of $n grows"); fi
done

if [ "${#failures[@]}" = 0 ]; then
  report "==> soak passed"
  exit 0
fi
report "==> soak FAILED:"
for f in "${failures[@]}"; do report "    $f"; done
exit 1
