#!/bin/sh
# Entry point of a Redis Sentinel in deploy/compose-ha.yml. Sentinel rewrites its own file (the
# current master, the replicas and Sentinels it learned), so the file lives on the Sentinel's
# volume and is written only the first time: a restarted Sentinel remembers a failover.
# Addresses, not names: the name of a container that is down no longer resolves, and a Sentinel
# waiting on the resolver stalls into its TILT mode and promotes nobody.
set -e
conf=/data/sentinel.conf
name=${QT_REDIS_MASTER_NAME:-qt}
if [ ! -s "$conf" ]; then
  cat >"$conf" <<CONF
port 26379
sentinel monitor $name ${SENTINEL_FIRST_MASTER:?set SENTINEL_FIRST_MASTER} 6379 2
sentinel down-after-milliseconds $name ${SENTINEL_DOWN_AFTER_MS:-3000}
sentinel failover-timeout $name 20000
sentinel parallel-syncs $name 1
CONF
fi
exec redis-server "$conf" --sentinel
