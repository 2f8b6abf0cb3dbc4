#!/usr/bin/env bash
# Redis high availability, proven across containers: docker-compose.yml with
# deploy/compose-ha.yml (a primary, a replica, three Sentinels; every service through the
# Sentinels), the simulator and the five services, each in its own container on this machine's
# Docker engine. While the stack trades (momentum model):
#
#   1. the Redis primary is killed and stays down: the Sentinels promote the replica and every
#      service follows; the old primary, started again, becomes a replica;
#   2. execution is cut off from Redis (its link to the data nodes' network, redis-ha,
#      disconnected) for QT_HA_CUT_SECS (30) and reconnected; it keeps its link to the exchange;
#   3. trading-bot is SIGKILLed and restarted by Docker.
#
# After each step and at the end, scripts/stack_check.py: every intent final, no order twice
# on the exchange, no signal opened twice, no limit breached, no position without its stop for
# QT_HA_BARE_SECS (5) or more (from soak-watch's 200 ms samples of the simulator's book); the
# figures are printed. Images as compose-test.sh builds them (scripts/compose/common.sh). The
# stack's networks are internal: nothing leaves the machine. Ends with `down -v`.
#
# Skipped (exit 0) without a Docker engine, unless CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

PROJECT=${QT_HA_PROJECT:-qt-ha-test}
BIN_DIR=${QT_COMPOSE_BIN_DIR:-target/debug}
MIRROR=${QT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CUT_SECS=${QT_HA_CUT_SECS:-30}
BARE_SECS=${QT_HA_BARE_SECS:-5}
BINS=(trading-bot execution exit-brain portfolio-intelligence clm sim-exchange qtctl)
SERVICES=(sim-exchange trading-bot execution exit-brain portfolio-intelligence clm)
DATA_NODES=(redis redis-replica sentinel-1 sentinel-2 sentinel-3)

TEST_NAME=ha-test
. scripts/compose/common.sh
docker_test_setup
[ -x "$BIN_DIR/soak-watch" ] || cargo build --locked -p qt-e2e --bin soak-watch
WATCH=$BIN_DIR/soak-watch
[ -x "$WATCH" ] || WATCH=target/debug/soak-watch

work=$(mktemp -d)
# The data nodes' network, a range of its own for the test (deploy/compose-ha.yml).
ha_net=172.29.$((RANDOM % 200 + 20))
cat >"$work/env" <<ENV
QT_REDIS_HOST_PORT=$(free_port)
QT_SIM_HOST_PORT=$(free_port)
QT_DASHBOARD_HOST_PORT=$(free_port)
QT_TRADING_BOT__MODEL=momentum
QT_REDIS_HA_NET=$ha_net
ENV
# The default network internal too (the data nodes' one already is): no route out of the
# machine. Healthchecks probed every 2 s.
{
  echo "networks:"
  echo "  default:"
  echo "    internal: true"
  echo "services:"
  for s in "${DATA_NODES[@]}" "${SERVICES[@]}"; do
    printf '  %s:\n    healthcheck:\n      interval: 2s\n' "$s"
  done
} >"$work/test.yml"
dc() {
  docker-compose -p "$PROJECT" --env-file "$work/env" -f docker-compose.yml \
    -f deploy/compose-ha.yml -f "$work/test.yml" "$@"
}
watch_pid=''
cleanup() {
  local rc=$?
  trap - EXIT
  [ -z "$watch_pid" ] || kill "$watch_pid" 2>/dev/null || true
  if [ "$rc" != 0 ]; then
    dc ps || true
    dc logs --no-color --tail=30 || true
    dc logs --no-color >"${QT_HA_LOGS:-/tmp/ha-test.log}" 2>&1 || true
    echo "every container's log: ${QT_HA_LOGS:-/tmp/ha-test.log}"
  fi
  step "down -v"
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  as_root rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

build_images

all_healthy() {
  local s
  for s in "${DATA_NODES[@]}" "${SERVICES[@]}"; do
    [ "$(health "$s" 2>/dev/null)" = healthy ] || [ "$s" = "${DOWN:-}" ] || return 1
  done
}
# The data node the Sentinels name as the master (they speak addresses: compose-ha.yml's).
master() {
  local ip
  ip=$(docker exec "$(cid sentinel-1)" redis-cli -p 26379 SENTINEL get-master-addr-by-name qt 2>/dev/null | head -1)
  case $ip in
    "$ha_net.10") echo redis ;;
    "$ha_net.11") echo redis-replica ;;
    *) echo "unknown($ip)" ;;
  esac
}
mcli() { docker exec "$(cid "$(master)")" redis-cli "$@"; }
intents() { mcli XLEN qt:intents 2>/dev/null || echo 0; }
more_intents_than() { [ "$(intents)" -gt "$1" ]; }
# A consistent copy of execution's database, readable here (stack_check.py re-makes it).
sudo=''
[ "$(id -u)" = 0 ] || sudo=sudo
cat >"$work/refresh-db" <<SH
#!/bin/sh
set -e
mp=\$(docker volume inspect -f '{{.Mountpoint}}' ${PROJECT}_execution-data)
$sudo sqlite3 -readonly "\$mp/execution.db" ".backup '$work/execution.db'"
$sudo chmod a+r '$work/execution.db'
SH
chmod +x "$work/refresh-db"
check() { # WHAT [last]: the checks of the run so far, then a new watcher unless last
  touch "$work/stop"
  wait "$watch_pid" || true
  watch_pid=''
  step "checks after: $1"
  python3 scripts/stack_check.py --redis-cli "docker exec $(cid "$(master)") redis-cli" \
    --db "$work/execution.db" --db-refresh "$work/refresh-db" \
    --sim "http://$sim" --watch "$work/watch.json" --bare-secs "$BARE_SECS" |
    sed 's/^/    /'
  [ "${PIPESTATUS[0]}" = 0 ] || fail "the stack broke a promise after: $1"
  [ "${2:-}" != last ] || return 0
  rm -f "$work/stop"
  "$WATCH" "$sim" "$work/stop" >"$work/watch.json" 2>/dev/null &
  watch_pid=$!
}

# ---- up ----
step "up -d (primary, replica, three Sentinels, the simulator, five services)"
dc down -v --remove-orphans >/dev/null 2>&1 || true
dc up -d --no-build 2>&1 | sed 's/^/    /'
read_ids "${DATA_NODES[@]}" "${SERVICES[@]}"
wait_until 240 "every healthcheck green" all_healthy
# The simulator by its address on the stack's network: an internal network publishes no port.
sim=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(cid sim-exchange)"):8090
"$WATCH" "$sim" "$work/stop" >"$work/watch.json" 2>/dev/null &
watch_pid=$!
[ "$(master)" = redis ] || fail "the Sentinels name $(master), not redis, as the first master"
wait_until 180 "an intent on qt:intents (the stack does not trade)" more_intents_than 0
step "trading: $(intents) intents; master $(master)"

# ---- 1. failover ----
n=$(intents)
docker kill "$(cid redis)" >/dev/null
killed_at=$SECONDS
DOWN=redis
promoted() { [ "$(master)" = redis-replica ]; }
wait_until 60 "the Sentinels promoting redis-replica" promoted
step "primary killed; redis-replica promoted after $((SECONDS - killed_at)) s"
wait_until 120 "trading going on on the new master" more_intents_than "$n"
step "trading on the new master: $(intents) intents ($((SECONDS - killed_at)) s after the kill)"
docker start "$(cid redis)" >/dev/null
DOWN=''
is_replica() { docker exec "$(cid redis)" redis-cli ROLE 2>/dev/null | head -1 | grep -qx slave; }
wait_until 60 "the old primary rejoining as a replica" is_replica
wait_until 60 "every healthcheck green after the failover" all_healthy
check "the failover"

# ---- 2. execution cut off from Redis ----
net="${PROJECT}_redis-ha"
n=$(intents)
docker network disconnect "$net" "$(cid execution)"
step "execution cut off from Redis for ${CUT_SECS} s"
sleep "$CUT_SECS"
docker network connect --alias execution "$net" "$(cid execution)"
wait_until 90 "execution healthy after the cut" all_healthy
wait_until 120 "trading going on after the cut" more_intents_than "$n"
step "execution reconnected; trading: $(intents) intents"
check "execution's cut"

# ---- 3. trading-bot killed ----
n=$(intents)
restarts() { docker inspect -f '{{.RestartCount}}' "$(cid trading-bot)"; }
before=$(restarts)
as_root kill -KILL "$(docker inspect -f '{{.State.Pid}}' "$(cid trading-bot)")"
came_back() { [ "$(restarts)" -gt "$before" ] && [ "$(health trading-bot)" = healthy ]; }
wait_until 90 "trading-bot restarted by Docker and healthy" came_back
wait_until 120 "trading going on after trading-bot's restart" more_intents_than "$n"
step "trading-bot SIGKILLed, restarted; trading: $(intents) intents"
check "trading-bot's kill" last
step "passed"
