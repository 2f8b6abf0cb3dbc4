#!/usr/bin/env bash
# docker compose, run for real: the repo's docker-compose.yml on this machine's Docker engine,
# with checks that fail when the stack does not do what the README says.
#
# No image registry is needed: the images the standard files name are built here when missing
# (scripts/compose/common.sh), `quantum-trader:latest` with the binaries built on the host:
# target/debug's by default, the ones scripts/test.sh builds (QT_COMPOSE_BIN_DIR=target/release
# for those). Containers reach Debian's mirror during `docker build` (apt-get in the runtime
# stage and the redis image); the running stack is on an internal network of its own and sends nothing outside the machine.
#
# Proves: `up -d` brings every healthcheck to healthy and the stack trades (momentum model);
# a crash of each container (SIGKILL) → Docker restarts it and it resumes its consumer groups
# (same consumer, the command sent after the kill delivered, nothing pending) and no intent
# was sent twice (execution's database); `logs <service>` is that service's JSON lines;
# `exec redis redis-cli XINFO GROUPS qt:intents` and `run --rm qtctl streams|status` work;
# `down` + `up` keeps Redis's AOF and every database. Always ends with `down -v`.
#
# Skipped (exit 0) without a Docker engine, unless CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

PROJECT=${QT_COMPOSE_PROJECT:-qt-compose-test}
BIN_DIR=${QT_COMPOSE_BIN_DIR:-target/debug}
MIRROR=${QT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BINS=(trading-bot execution exit-brain portfolio-intelligence clm sim-exchange qtctl)
SERVICES=(sim-exchange trading-bot execution exit-brain portfolio-intelligence clm)

TEST_NAME=compose-test
. scripts/compose/common.sh
docker_test_setup

work=$(mktemp -d)
# The test's settings: its own project and env file (a user's .env is not read), free host
# ports, a model that trades so orders flow, no route out of the stack's network, and the
# healthchecks probed more often.
cat >"$work/env" <<ENV
QT_REDIS_HOST_PORT=$(free_port)
QT_SIM_HOST_PORT=$(free_port)
QT_DASHBOARD_HOST_PORT=$(free_port)
QT_TRADING_BOT__MODEL=momentum
ENV
{
  echo "networks:"
  echo "  default:"
  echo "    internal: true"
  # The same healthchecks, probed every 2 s instead of 10 so a restart shows sooner.
  echo "services:"
  for s in redis "${SERVICES[@]}"; do
    printf '  %s:\n    healthcheck:\n      interval: 2s\n' "$s"
  done
} >"$work/test.yml"
dc() { docker-compose -p "$PROJECT" --env-file "$work/env" -f docker-compose.yml -f "$work/test.yml" "$@"; }
cleanup() {
  local rc=$?
  trap - EXIT
  if [ "$rc" != 0 ]; then
    dc ps || true
    dc logs --no-color --tail=40 || true
  fi
  step "down -v"
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  as_root rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# ---- images ----
build_images

# ---- helpers ----
read_ids_all() { read_ids redis "${SERVICES[@]}"; }
restarts() { docker inspect -f '{{.RestartCount}}' "$(cid "$1")"; }
rcli() { docker exec "$(cid redis)" redis-cli "$@"; }
# A field of one group in `XINFO GROUPS STREAM` (redis-cli prints name, value, name, value...).
group_field() { # STREAM GROUP FIELD
  rcli XINFO GROUPS "$1" | awk -v g="$2" -v f="$3" 'prev == "name" { cur = $0 } prev == f && cur == g { print; exit } { prev = $0 }'
}
consumers() { # STREAM GROUP: consumer names, one line each
  rcli XINFO CONSUMERS "$1" "$2" | awk 'prev == "name" { print } { prev = $0 }' | sort
}
id_ge() { # A B: stream id A >= B
  local a_ms=${1%-*} a_seq=${1#*-} b_ms=${2%-*} b_seq=${2#*-}
  [ "$a_ms" -gt "$b_ms" ] || { [ "$a_ms" -eq "$b_ms" ] && [ "$a_seq" -ge "$b_seq" ]; }
}
all_healthy() {
  local s
  for s in redis "${SERVICES[@]}"; do
    [ "$(health "$s" 2>/dev/null)" = healthy ] || return 1
  done
}
sqlite_in() { # VOLUME FILE SQL: run SQL on a database in one of the project's volumes
  local mp
  mp=$(docker volume inspect -f '{{.Mountpoint}}' "${PROJECT}_$1")
  as_root sqlite3 -readonly "$mp/$2" "$3"
}
qtctl() { dc run --rm qtctl "$@"; }
# qtctl from the same image, in a running container other than SERVICE (quicker than `run`).
qtctl_beside() { # SERVICE ARGS...
  local other=trading-bot
  if [ "$1" = trading-bot ]; then other=execution; fi
  shift
  docker exec -e QT_REDIS_URL=redis://redis:6379 "$(cid "$other")" qtctl "$@"
}

# ---- QT_EXCHANGE reaches every service, and no URL default keeps one on the simulator ----
for mode in testnet live; do
  QT_EXCHANGE=$mode dc config >"$work/$mode.yml"
  python3 - "$work/$mode.yml" "$mode" <<'PY' || fail "QT_EXCHANGE=$mode does not reach every service"
import sys, yaml
doc, mode = yaml.safe_load(open(sys.argv[1])), sys.argv[2]
for name in ["trading-bot", "execution", "exit-brain", "portfolio-intelligence", "clm"]:
    env = doc["services"][name]["environment"]
    assert env["QT_EXCHANGE"] == mode, (name, env["QT_EXCHANGE"])
    # Empty: the mode's Binance hosts (qt-exchange's config tests).
    assert not env.get("QT_EXCHANGE_REST_URL") and not env.get("QT_EXCHANGE_WS_URL"), name
    assert env["QT_API_KEY_FILE"] == "/run/secrets/qt_api_key", name
PY
done
step "QT_EXCHANGE=testnet|live reaches every service with the mode's hosts"

# ---- up ----
step "up -d"
dc down -v --remove-orphans >/dev/null 2>&1 || true
dc up -d --no-build 2>&1 | sed 's/^/    /'
read_ids_all
wait_until 180 "every healthcheck green" all_healthy
step "every healthcheck green"
has_intents() { [ "$(rcli XLEN qt:intents)" -gt 0 ]; }
wait_until 180 "an intent on qt:intents (the stack does not trade)" has_intents
step "trading: $(rcli XLEN qt:intents) intents"

# ---- kill each container ----
for svc in "${SERVICES[@]}" redis; do
  before=$(restarts "$svc")
  if [ "$svc" != redis ] && [ "$svc" != sim-exchange ]; then
    known=$(consumers qt:control "$svc")
    [ -n "$known" ] || fail "$svc has no consumer on qt:control"
  fi
  # SIGKILL of the container's process from the host: a crash, which the restart policy
  # handles. (`docker kill` is a stop by hand to the engine: `unless-stopped` leaves it down.)
  as_root kill -KILL "$(docker inspect -f '{{.State.Pid}}' "$(cid "$svc")")"
  # A command sent while it is dead or restarting.
  came_back() { [ "$(restarts "$svc")" -gt "$before" ] && [ "$(health "$svc")" = healthy ]; }
  if [ "$svc" = redis ]; then
    wait_until 90 "redis restarted and healthy" came_back
  fi
  sent=$(qtctl_beside "$svc" --json kill-switch off --reason compose-test 2>/dev/null | tail -1)
  entry=$(echo "$sent" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entry_id"])') ||
    fail "qtctl kill-switch: $sent"
  wait_until 90 "$svc restarted by Docker and healthy" came_back
  if [ "$svc" != redis ] && [ "$svc" != sim-exchange ]; then
    resumed() {
      local delivered pending
      delivered=$(group_field qt:control "$svc" last-delivered-id)
      pending=$(group_field qt:control "$svc" pending)
      id_ge "$delivered" "$entry" && [ "$pending" = 0 ]
    }
    wait_until 60 "$svc resuming qt:control from its offset (command $entry)" resumed
    [ "$(consumers qt:control "$svc")" = "$known" ] || fail "$svc's consumers changed: $(consumers qt:control "$svc")"
  fi
  step "SIGKILL $svc → restarted by Docker ($(restarts "$svc") restarts), resumed"
done
# Every group still has its consumers after Redis's own restart (its AOF).
for svc in trading-bot execution exit-brain portfolio-intelligence clm; do
  [ -n "$(consumers qt:control "$svc")" ] || fail "$svc's group on qt:control is gone after redis's restart"
done

# ---- no order doubled ----
entries=$(sqlite_in execution-data execution.db "SELECT COUNT(*) FROM exec_orders WHERE leg = 'entry'")
doubled=$(sqlite_in execution-data execution.db \
  "SELECT intent_id FROM exec_orders WHERE leg = 'entry' GROUP BY intent_id HAVING COUNT(*) > 1")
[ "$entries" -gt 0 ] || fail "execution's database holds no entry order"
[ -z "$doubled" ] || fail "intents sent twice: $doubled"
step "no intent sent twice ($entries entry orders)"

# ---- logs, exec, qtctl ----
dc logs --no-color execution >"$work/execution.log"
python3 - "$work/execution.log" <<'PY' || fail "logs execution is not execution's JSON lines"
import json, sys
lines = [l.rstrip("\n") for l in open(sys.argv[1]) if " | " in l]
assert lines, "no line"
for l in lines:
    prefix, body = l.split(" | ", 1)
    assert prefix.strip().startswith("execution"), prefix
    json.loads(body)
print(f"    {len(lines)} JSON lines from execution")
PY
dc exec -T redis redis-cli XINFO GROUPS qt:intents >"$work/groups"
grep -qx execution "$work/groups" || fail "exec redis redis-cli XINFO GROUPS qt:intents: $(cat "$work/groups")"
step "exec redis redis-cli XINFO GROUPS qt:intents lists execution"
qtctl streams >"$work/streams"
grep -q 'qt:intents' "$work/streams" || fail "run --rm qtctl streams: $(cat "$work/streams")"
qtctl status >"$work/status" || fail "run --rm qtctl status: $(cat "$work/status")"
step "run --rm qtctl streams and status"

# ---- down + up keeps the volumes ----
last=$(group_field qt:intents execution last-delivered-id)
len=$(rcli XLEN qt:intents)
orders=$(sqlite_in execution-data execution.db "SELECT COUNT(*) FROM exec_orders")
step "down, then up (qt:intents: $len entries, execution at $last; $orders orders)"
dc down 2>&1 | sed 's/^/    /'
dc up -d --no-build 2>&1 | sed 's/^/    /'
read_ids_all
wait_until 180 "every healthcheck green after down + up" all_healthy
[ "$(rcli XLEN qt:intents)" -ge "$len" ] || fail "qt:intents lost entries across down + up"
id_ge "$(group_field qt:intents execution last-delivered-id)" "$last" || fail "execution's offset went back"
[ "$(sqlite_in execution-data execution.db "SELECT COUNT(*) FROM exec_orders")" -ge "$orders" ] ||
  fail "execution's database lost orders"
for vf in exit-brain-data:exit-brain.db portfolio-data:portfolio.db clm-data:clm.db; do
  sqlite_in "${vf%%:*}" "${vf#*:}" "SELECT 1" >/dev/null || fail "${vf#*:} is gone from ${vf%%:*}"
done
step "AOF and databases kept across down + up"
step "passed"
