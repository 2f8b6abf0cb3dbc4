#!/usr/bin/env bash
# The Kubernetes Redis high availability (deploy/k8s/components/redis-sentinel), run across
# containers: what overlays/paper-ha renders — the data nodes' and Sentinels' start scripts from
# its ConfigMap, QT_REDIS_SENTINELS and QT_REDIS_MASTER_NAME from qt-config, redis.conf — run on
# this machine's Docker engine, each node in a container that carries its pod's hostname and
# stable name (`redis-0.redis`, `redis-sentinel-1.redis-sentinel`) on an internal network, its
# /data on a volume as the StatefulSets' claims are. Then:
#
#   1. first start: every Sentinel names redis-0 the primary, redis-1 replicates it;
#   2. the primary hangs (docker pause: its name still resolves, as a pod's that is not gone):
#      the Sentinels promote redis-1, and a write acknowledged by both nodes before is there;
#   3. the old primary comes back (unpause): the Sentinels make it redis-1's replica;
#   4. redis-0 rescheduled (container removed and created again on its volume): its start
#      script asks the Sentinels and starts as redis-1's replica;
#   5. a Sentinel restarted on its volume remembers the failover, and one started on an empty
#      volume (a lost claim) learns the primary from its peers.
#
# The cluster's own parts (kubelet, CoreDNS, the StatefulSet controller) are not here: the
# manifests themselves are validated offline by scripts/k8s-test.sh. Skipped (exit 0) without a
# Docker engine, unless CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

MIRROR=${QT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
TEST_NAME=k8s-ha-test
. scripts/compose/common.sh
docker_test_setup
command -v kubectl >/dev/null 2>&1 || need_pkg kubectl kubernetes-client
python3 -c 'import yaml' 2>/dev/null || need_pkg python3-yaml python3-yaml

work=$(mktemp -d)
run=qtk8sha$$
net=$run
cleanup() {
  local rc=$?
  trap - EXIT
  docker ps -aq --filter "label=$run" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker volume ls -q --filter "label=$run" | xargs -r docker volume rm >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# What Kubernetes would mount: the rendered ConfigMaps, written out as files.
step "render overlays/paper-ha"
kubectl kustomize deploy/k8s/overlays/paper-ha 2>/dev/null >"$work/rendered.yaml"
python3 - "$work" <<'EOF'
import sys, yaml
work = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(f"{work}/rendered.yaml")) if d]
cms = {d["metadata"]["name"].rsplit("-", 1)[0]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
import os
os.makedirs(f"{work}/ha", exist_ok=True)
os.makedirs(f"{work}/conf", exist_ok=True)
for name, text in cms["qt-redis-ha"].items():
    open(f"{work}/ha/{name}", "w").write(text)
open(f"{work}/conf/redis.conf", "w").write(cms["qt-redis-conf"]["redis.conf"])
with open(f"{work}/env", "w") as f:
    for k in ("QT_REDIS_SENTINELS", "QT_REDIS_MASTER_NAME"):
        f.write(f"{k}={cms['qt-config'][k]}\n")
sets = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "StatefulSet"}
with open(f"{work}/sets", "w") as f:
    for name in ("redis", "redis-sentinel"):
        f.write(f"{name} {sets[name]['serviceName']} {sets[name]['replicas']}\n")
EOF
read -r _ REDIS_SVC REDIS_N < <(grep '^redis ' "$work/sets")
read -r _ SENT_SVC SENT_N < <(grep '^redis-sentinel ' "$work/sets")
MASTER_NAME=$(sed -n 's/^QT_REDIS_MASTER_NAME=//p' "$work/env")
[ "$REDIS_N" = 2 ] && [ "$SENT_N" = 3 ] || fail "expected 2 data nodes and 3 Sentinels, got $REDIS_N and $SENT_N"

# Only the base and redis:7: no service binary runs here.
build_debian_base
start_redis_build
finish_redis_build

docker network create --internal --label "$run" "$net" >/dev/null

# start POD SERVICE SCRIPT [VOLUME]: a container as the StatefulSet's pod POD would be.
start() {
  local pod=$1 svc=$2 script=$3 vol=${4:-$run-$1}
  docker volume inspect "$vol" >/dev/null 2>&1 || docker volume create --label "$run" "$vol" >/dev/null
  docker run -d --label "$run" --name "$run-$pod" --hostname "$pod" \
    --network "$net" --network-alias "$pod.$svc" \
    --env-file "$work/env" -v "$vol:/data" \
    -v "$work/ha:/usr/local/etc/redis-ha:ro" -v "$work/conf:/usr/local/etc/redis:ro" \
    --entrypoint sh redis:7 "/usr/local/etc/redis-ha/$script" >/dev/null
}
cli() { # POD ARGS...: redis-cli inside POD's container
  local pod=$1
  shift
  docker exec "$run-$pod" timeout 5 redis-cli "$@" 2>/dev/null
}
master_of() { cli "$1" -p 26379 --raw SENTINEL get-master-addr-by-name "$MASTER_NAME" | head -n 1; }
sentinels_agree() { # NAME: every Sentinel names NAME the primary
  local i
  for ((i = 0; i < SENT_N; i++)); do
    [ "$(master_of "redis-sentinel-$i")" = "$1" ] || return 1
  done
}
role() { cli "$1" --raw ROLE | head -n 1; }
replica_of() { # POD PRIMARY: POD replicates PRIMARY with its link up
  local info
  info=$(cli "$1" INFO replication | tr -d '\r')
  grep -qx "role:slave" <<<"$info" && grep -qx "master_host:$2" <<<"$info" &&
    grep -qx "master_link_status:up" <<<"$info"
}
sentinel_view() { # what a Sentinel knows: replicas and other Sentinels of the primary
  cli "$1" -p 26379 SENTINEL master "$MASTER_NAME" | tr -d '\r' |
    awk 'p {print k"="$0; p=0} /^(num-slaves|num-other-sentinels|flags)$/ {k=$0; p=1}' | tr '\n' ' '
}
knows_all() { # SENTINEL: it sees one replica and the two other Sentinels
  local v
  v=$(sentinel_view "$1")
  [[ $v == *"num-slaves=1"* && $v == *"num-other-sentinels=2"* ]]
}

step "1. first start: redis-0, redis-1, three Sentinels"
start redis-0 "$REDIS_SVC" redis-start.sh
start redis-1 "$REDIS_SVC" redis-start.sh
for ((i = 0; i < SENT_N; i++)); do start "redis-sentinel-$i" "$SENT_SVC" sentinel-start.sh; done
wait_until 60 "redis-1 replicating redis-0" replica_of redis-1 "redis-0.$REDIS_SVC"
wait_until 60 "every Sentinel naming redis-0 the primary" sentinels_agree "redis-0.$REDIS_SVC"
for ((i = 0; i < SENT_N; i++)); do
  wait_until 60 "redis-sentinel-$i seeing the replica and its two peers" knows_all "redis-sentinel-$i"
done
echo "    redis-0 primary; redis-1: $(role redis-1); sentinel-0: $(sentinel_view redis-sentinel-0)"

step "2. the primary hangs: redis-0 paused"
[ "$(cli redis-0 SET qt:k8s-ha-test before-failover)" = OK ] || fail "SET on the primary"
[ "$(cli redis-0 WAIT 1 5000)" = 1 ] || fail "the write did not reach the replica"
docker pause "$run-redis-0" >/dev/null
t=$SECONDS
wait_until 90 "the Sentinels promoting redis-1" sentinels_agree "redis-1.$REDIS_SVC"
wait_until 30 "redis-1 answering as primary" bash -c "[ \"\$(docker exec $run-redis-1 redis-cli --raw ROLE | head -n 1)\" = master ]"
echo "    redis-1 promoted $((SECONDS - t)) s after the pause"
[ "$(cli redis-1 --raw GET qt:k8s-ha-test)" = before-failover ] || fail "the acknowledged write is lost"

step "3. the old primary comes back: redis-0 unpaused"
docker unpause "$run-redis-0" >/dev/null
wait_until 90 "redis-0 made redis-1's replica" replica_of redis-0 "redis-1.$REDIS_SVC"

step "4. redis-0 rescheduled: its container removed and created again on its volume"
docker rm -f "$run-redis-0" >/dev/null
start redis-0 "$REDIS_SVC" redis-start.sh
wait_until 60 "redis-0 starting as redis-1's replica" replica_of redis-0 "redis-1.$REDIS_SVC"
docker logs "$run-redis-0" 2>&1 | grep -q "redis-start: replica of redis-1.$REDIS_SVC" ||
  fail "redis-0's start script did not take the primary from the Sentinels"
sentinels_agree "redis-1.$REDIS_SVC" || fail "the Sentinels changed their primary"

step "5. Sentinels restarted: one on its volume, one on an empty volume"
docker rm -f "$run-redis-sentinel-1" >/dev/null
start redis-sentinel-1 "$SENT_SVC" sentinel-start.sh
docker rm -f "$run-redis-sentinel-2" >/dev/null
start redis-sentinel-2 "$SENT_SVC" sentinel-start.sh "$run-redis-sentinel-2-new"
wait_until 60 "the restarted Sentinels naming redis-1 the primary" sentinels_agree "redis-1.$REDIS_SVC"
wait_until 60 "the new Sentinel seeing the replica and its peers" knows_all redis-sentinel-2
echo "    sentinel-2 (empty volume): $(sentinel_view redis-sentinel-2)"
step "passed"
